rule cube:
    """Stream one product-variant-year of cleaned frames into an HDF5 cube with its times CSV."""
    input:
        get_year_frame_indexes,
    output:
        cube=f"{ROOT}/cubes/{{variant}}/{{product}}/{{year}}.h5",
        times=f"{ROOT}/cubes/{{variant}}/{{product}}/{{year}}_times.csv",
    params:
        variant=get_variant_params,
    resources:
        runtime=120,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/cube/{{variant}}/{{product}}/{{year}}.log",
    benchmark:
        f"{ROOT}/benchmarks/cube/{{variant}}/{{product}}/{{year}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/cube.py"


rule cube_master:
    """Join the per-year cubes of one product-variant with HDF5 virtual datasets (no pixels copied)."""
    input:
        get_year_cubes,
    output:
        cube=f"{ROOT}/cubes/{{variant}}/{{product}}.h5",
        times=f"{ROOT}/cubes/{{variant}}/{{product}}_times.csv",
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        f"{ROOT}/logs/cube_master/{{variant}}/{{product}}.log",
    benchmark:
        f"{ROOT}/benchmarks/cube_master/{{variant}}/{{product}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/cube_master.py"


rule seed_metadata:
    """A copy of one JSOC product's master cube with the archive keywords of exactly its records (batched
    queries), each row's header rescaled once to the cube's grid."""
    input:
        f"{ROOT}/cubes/{{variant}}/{{product}}.h5",
    output:
        f"{ROOT}/cubes/{{variant}}/{{product}}.seeded.h5",
    resources:
        jsoc_connections=1,
        runtime=60,
        mem_mb=2000,
    retries: 2
    log:
        f"{ROOT}/logs/seed_metadata/{{variant}}/{{product}}.log",
    benchmark:
        f"{ROOT}/benchmarks/seed_metadata/{{variant}}/{{product}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/seed_metadata.py"
