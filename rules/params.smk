# Image parameters (heliocube.params): the ten GSU texture parameters on a grid of cells of every frame of a
# product-variant-year cube, with the heatmaps of its last frame. One job per cube year, like the cubes.


rule params:
    """The (T, G, G, 10) parameters of one per-year cube, its frame table and every setting, and the ten heatmaps of
    its last frame. The settings are a param, so changing any of them reruns the product's jobs."""
    input:
        cube=f"{ROOT}/cubes/{{variant}}/{{product}}/{{year}}.h5",
    output:
        params=f"{ROOT}/params/{{variant}}/{{product}}/{{year}}.h5",
        heatmaps=directory(f"{ROOT}/params/{{variant}}/{{product}}/{{year}}_heatmaps"),
    params:
        settings=get_params_settings,
    resources:
        runtime=240,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/params/{{variant}}/{{product}}/{{year}}.log",
    benchmark:
        f"{ROOT}/benchmarks/params/{{variant}}/{{product}}/{{year}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/params.py"
