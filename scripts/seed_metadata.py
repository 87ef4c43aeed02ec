"""Adapter of rule seed_metadata: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, seed_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
seed_job(snakemake.config, snakemake.wildcards.product, snakemake.input[0], snakemake.output[0])  # noqa: F821
