"""Adapter of rule clean: unpack the snakemake object and call the package."""

import sys

from heliocube.jobs import clean_job, configure_logging

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115 - snakemake injects the object; the log lives as long as the job
configure_logging()
clean_job(snakemake.config, snakemake.wildcards.product, snakemake.params.variant, snakemake.params.days,  # noqa: F821
          snakemake.input.slots, snakemake.output.index, snakemake.output.ledger)  # noqa: F821
