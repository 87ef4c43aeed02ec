# ML-ready exports of each synced experiment (see heliocube.export): an SDOML v2-style Zarr store with one group
# per year, written by one job per experiment-year so extending the range rewrites one year, and leak-free splits.


rule export_zarr:
    """One year group of an experiment's Zarr store: a float32 (time, y, x) array per channel with per-frame header
    lists in its attributes, a CF-encoded time coordinate and 1-D provenance arrays. The synced file is `ancient`:
    it is rewritten whenever any year changes, so the year's own cubes (and the year before, whose last frames can
    match or precede its first rows) and its clipped range in params decide when the year is rewritten."""
    input:
        synced=ancient(f"{ROOT}/synced/{{experiment}}.h5"),
        cubes=get_export_year_cubes,
    output:
        directory(f"{ROOT}/exports/{{experiment}}.zarr/{{year}}"),
    params:
        year=get_export_year_params,
    resources:
        runtime=240,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/export_zarr/{{experiment}}/{{year}}.log",
    benchmark:
        f"{ROOT}/benchmarks/export_zarr/{{experiment}}/{{year}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_zarr.py"


rule export_zarr_consolidate:
    """The store's root group (experiment, channels, years) and its consolidated metadata over every year group;
    year groups of years no longer configured are removed."""
    input:
        get_export_years,
    output:
        f"{ROOT}/exports/{{experiment}}.zarr/zarr.json",
    params:
        years=get_export_year_names,
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        f"{ROOT}/logs/export_zarr_consolidate/{{experiment}}.log",
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_zarr_consolidate.py"


rule export_splits:
    """Train/val/test assignment of every synced row by time blocks, with a guard gap at split boundaries."""
    input:
        f"{ROOT}/synced/{{experiment}}.h5",
    output:
        f"{ROOT}/exports/{{experiment}}/splits.csv",
    params:
        splits=config["exports"]["splits"],
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        f"{ROOT}/logs/export_splits/{{experiment}}.log",
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_splits.py"
