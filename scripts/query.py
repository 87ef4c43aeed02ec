"""Adapter of rule query: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, query_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
query_job(snakemake.config, snakemake.wildcards.product, snakemake.params.days, snakemake.output.index)  # noqa: F821
