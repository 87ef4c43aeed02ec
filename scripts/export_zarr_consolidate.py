"""Adapter of rule export_zarr_consolidate: unpack the snakemake object and call the package."""

from heliocube.export.zarr_store import consolidate_job
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_zarr_consolidate", snakemake.output[0]):  # noqa: F821
    consolidate_job(snakemake.output[0], snakemake.params.years, snakemake.wildcards.experiment)  # noqa: F821
