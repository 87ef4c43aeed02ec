rule fetch:
    """Fill every slot of one product-month with the nearest candidate that downloads whole; raw FITS go to
    the cache under raw/{product}/{YYYY}/{day}/ (not declared, so a failed job never deletes good files)."""
    input:
        get_query_index,
    output:
        slots=f"{ROOT}/raw/{{product}}/{{month}}.slots.csv",
        ledger=f"{ROOT}/raw/{{product}}/{{month}}.ledger.csv",
    params:
        days=get_month_days,
    resources:
        jsoc_connections=get_jsoc_connections,
        sdac_connections=get_sdac_connections,
        runtime=240,
        mem_mb=2000,
    retries: 2
    log:
        f"{ROOT}/logs/fetch/{{product}}/{{month}}.log",
    benchmark:
        f"{ROOT}/benchmarks/fetch/{{product}}/{{month}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/fetch.py"
