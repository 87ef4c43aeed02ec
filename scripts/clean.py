"""Adapter of rule clean: unpack the snakemake object and call the package."""

from heliocube.jobs import clean_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    clean_job(snakemake.config, snakemake.wildcards.product, snakemake.params.variant, snakemake.params.days,  # noqa: F821
              snakemake.input.slots, snakemake.output.index, snakemake.output.ledger)  # noqa: F821
