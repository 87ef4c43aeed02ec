"""Adapter of rule sync_prior_tool: unpack the snakemake object and call the package."""

from heliocube.jobs import sync_prior_tool_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    sync_prior_tool_job(snakemake.input[0], snakemake.output[0], config=snakemake.config)  # noqa: F821
