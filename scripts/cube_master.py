"""Adapter of rule cube_master: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, master_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
master_job(list(snakemake.input), snakemake.output.cube)  # noqa: F821
