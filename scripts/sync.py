"""Adapter of rule sync: unpack the snakemake object and call the package."""

from heliocube.jobs import sync_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    sync_job(snakemake.config, snakemake.params.experiment, list(snakemake.input), snakemake.output.synced,  # noqa: F821
             snakemake.output.ledger)  # noqa: F821
