rule sync:
    """Sync one experiment's products onto a shared UTC axis from one variant's master cubes (frames copied,
    never recast), with a CSV of the synced times and a ledger of the rows each product could not fill."""
    input:
        get_experiment_cubes,
    output:
        synced=f"{ROOT}/synced/{{experiment}}.h5",
        times=f"{ROOT}/synced/{{experiment}}.csv",
        ledger=f"{ROOT}/synced/{{experiment}}.ledger.csv",
    params:
        experiment=get_experiment_params,
    resources:
        runtime=240,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/sync/{{experiment}}.log",
    benchmark:
        f"{ROOT}/benchmarks/sync/{{experiment}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/sync.py"


rule sync_prior_tool:
    """The synced experiment also in the prior tool's layout (per-product _sync.h5 and _times_sync.csv)."""
    input:
        f"{ROOT}/synced/{{experiment}}.h5",
    output:
        directory(f"{ROOT}/synced/{{experiment}}.prior-tool"),
    resources:
        runtime=120,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/sync_prior_tool/{{experiment}}.log",
    benchmark:
        f"{ROOT}/benchmarks/sync_prior_tool/{{experiment}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/sync_prior_tool.py"
