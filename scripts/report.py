"""Adapter of rule report: unpack the snakemake object and call the package."""

from heliocube.logs import job_log
from heliocube.report import build_report

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    build_report(snakemake.config["output_root"], snakemake.output[0])  # noqa: F821
