"""Adapter of rule events_frames: unpack the snakemake object and call the package."""

from heliocube.events.run import frames_job
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log); the job first removes
# what is built from its outputs (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "events_frames", snakemake.output.frames):  # noqa: F821
    frames_job(snakemake.config, snakemake.wildcards.name, snakemake.wildcards.event_id, snakemake.input.events,  # noqa: F821
               snakemake.output.frames)  # noqa: F821
