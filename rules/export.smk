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


rule export_shards:
    """One month of an experiment's WebDataset shards: a tar per period (default a day) whose samples are the
    synced rows, SDOML-lite names, and the month's part of the shard index. One job per experiment-month: the
    synced file is `ancient` (it is rewritten whenever anything changes), so the frame indexes its rows come from
    (the month's and its neighbours') and the month's clipped range in params decide when the month is rewritten:
    extending the range rewrites the last month and writes the new ones, in jobs of at most 31 tars."""
    input:
        synced=ancient(f"{ROOT}/synced/{{experiment}}.h5"),
        frames=get_export_month_frame_indexes,
    output:
        f"{ROOT}/exports/{{experiment}}/shards/{{month}}.index.json",
    params:
        month=get_export_month_params,
    resources:
        runtime=240,
        mem_mb=1000,
    log:
        f"{ROOT}/logs/export_shards/{{experiment}}/{{month}}.log",
    benchmark:
        f"{ROOT}/benchmarks/export_shards/{{experiment}}/{{month}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_shards.py"


rule export_shard_index:
    """The experiment's shard index: samples, bytes and sha256 of every shard, from the months' parts."""
    input:
        get_export_shard_parts,
    output:
        f"{ROOT}/exports/{{experiment}}/shards/index.json",
    resources:
        runtime=10,
        mem_mb=500,
    log:
        f"{ROOT}/logs/export_shard_index/{{experiment}}.log",
    benchmark:
        f"{ROOT}/benchmarks/export_shard_index/{{experiment}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_shard_index.py"


rule export_stats:
    """Phase 1 of the normalization for one experiment-year: each channel's mergeable statistics (count, mean, M2,
    min, max, fixed-edge histogram) of its transformed synced rows. Rerun as export_zarr's years are."""
    input:
        synced=ancient(f"{ROOT}/synced/{{experiment}}.h5"),
        cubes=get_export_year_cubes,
    output:
        f"{ROOT}/exports/{{experiment}}/stats/{{year}}.json",
    params:
        year=get_export_stats_params,
    resources:
        runtime=240,
        mem_mb=1000,
    log:
        f"{ROOT}/logs/export_stats/{{experiment}}/{{year}}.log",
    benchmark:
        f"{ROOT}/benchmarks/export_stats/{{experiment}}/{{year}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_stats.py"


rule export_normalization:
    """The gather step: the years' statistics merged into the versioned normalization artifact, with each
    channel's clip and scaling for the configured preset."""
    input:
        get_export_stats_parts,
    output:
        f"{ROOT}/exports/{{experiment}}/normalization.json",
    params:
        settings=config["exports"]["normalization"],
        config_hash=get_config_hash(),
    resources:
        runtime=10,
        mem_mb=500,
    log:
        f"{ROOT}/logs/export_normalization/{{experiment}}.log",
    benchmark:
        f"{ROOT}/benchmarks/export_normalization/{{experiment}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/export_normalization.py"
