"""Adapter of checkpoint events_select: unpack the snakemake object and call the package."""

from heliocube.events.run import select_job
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log); the job first removes
# what is built from its outputs (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "events_select", snakemake.output.candidates):  # noqa: F821
    select_job(snakemake.config, snakemake.wildcards.name, snakemake.output.candidates, snakemake.output.events)  # noqa: F821
