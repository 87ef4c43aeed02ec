rule report:
    """One self-contained HTML page over the whole output tree: coverage, rejections, synced |dt|, thumbnails,
    runtimes and ledgers. It depends on every dataset output and the tables it reads, so it is built last."""
    input:
        get_report_inputs(),
    output:
        f"{ROOT}/report/index.html",
    resources:
        runtime=30,
        mem_mb=2000,
    log:
        f"{ROOT}/logs/report.log",
    benchmark:
        f"{ROOT}/benchmarks/report.tsv"
    conda:
        "../envs/heliocube.yaml"
    script:
        "../scripts/report.py"
