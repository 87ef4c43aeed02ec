"""Adapter of rule export_zarr: unpack the snakemake object and call the package."""

from heliocube.export.zarr_store import export_year_job
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_zarr", snakemake.output[0]):  # noqa: F821
    export_year_job(snakemake.input.synced, snakemake.output[0], snakemake.params.year)  # noqa: F821
