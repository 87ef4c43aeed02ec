rule clean:
    """Calibrate and resize the kept slots of one product-month into one variant's frame files (one
    multi-extension FITS per day under frames/{variant}/{product}/{YYYY}/, not declared: the month index lists
    them with their digests)."""
    input:
        slots=f"{ROOT}/raw/{{product}}/{{month}}.slots.csv",
    output:
        index=f"{ROOT}/frames/{{variant}}/{{product}}/{{month}}.index.csv",
        ledger=f"{ROOT}/frames/{{variant}}/{{product}}/{{month}}.ledger.csv",
    params:
        days=get_month_days,
        variant=get_variant_params,
    resources:
        runtime=120,
        mem_mb=4000,
    log:
        f"{ROOT}/logs/clean/{{variant}}/{{product}}/{{month}}.log",
    benchmark:
        f"{ROOT}/benchmarks/clean/{{variant}}/{{product}}/{{month}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/clean.py"
