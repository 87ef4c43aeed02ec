"""Adapter of rule params: unpack the snakemake object and call the package."""

from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log
from heliocube.params.job import params_job

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "params", snakemake.output.params):  # noqa: F821
    params_job(snakemake.config, snakemake.input.cube, snakemake.output.params,  # noqa: F821
               snakemake.output.heatmaps, snakemake.params.settings)  # noqa: F821
