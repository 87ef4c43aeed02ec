"""Adapter of rule cube: unpack the snakemake object and call the package."""

from heliocube.jobs import cube_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    cube_job(snakemake.config, snakemake.wildcards.product, snakemake.params.variant, list(snakemake.input),  # noqa: F821
             snakemake.output.cube)  # noqa: F821
