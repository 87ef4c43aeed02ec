"""Adapter of rule fetch: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import configure_logging, fetch_job

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
fetch_job(snakemake.config, snakemake.wildcards.product, snakemake.params.days,  # noqa: F821
          snakemake.output.slots, snakemake.output.ledger)  # noqa: F821
