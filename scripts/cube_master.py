"""Adapter of rule cube_master: unpack the snakemake object and call the package."""

from heliocube.jobs import master_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    master_job(list(snakemake.input), snakemake.output.cube, config=snakemake.config)  # noqa: F821
