"""Adapter of rule sync: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, sync_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
sync_job(snakemake.config, snakemake.params.experiment, list(snakemake.input), snakemake.output.synced,  # noqa: F821
         snakemake.output.ledger)  # noqa: F821
