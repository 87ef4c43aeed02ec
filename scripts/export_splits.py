"""Adapter of rule export_splits: unpack the snakemake object and call the package."""

from heliocube.export.splits import splits_job
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_splits", snakemake.output[0]):  # noqa: F821
    splits_job(snakemake.input[0], snakemake.output[0], snakemake.params.splits)  # noqa: F821
