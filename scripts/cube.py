"""Adapter of rule cube: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, cube_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
cube_job(snakemake.config, snakemake.wildcards.product, snakemake.params.variant, list(snakemake.input),  # noqa: F821
         snakemake.output.cube)  # noqa: F821
