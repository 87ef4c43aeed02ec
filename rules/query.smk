rule query:
    """List every candidate record of one product-month; write one manifest per day and the month's index."""
    output:
        index=f"{ROOT}/manifests/{{product}}/{{month}}.index.csv",
    params:
        days=get_listed_days,
    resources:
        jsoc_connections=get_jsoc_connections,
        sdac_connections=get_sdac_connections,
        runtime=30,
    retries: 2
    log:
        f"{ROOT}/logs/query/{{product}}/{{month}}.log",
    benchmark:
        f"{ROOT}/benchmarks/query/{{product}}/{{month}}.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/query.py"
