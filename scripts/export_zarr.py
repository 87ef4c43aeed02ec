"""Adapter of rule export_zarr: unpack the snakemake object and call the package."""

from heliocube.export.zarr_store import export_year_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    export_year_job(snakemake.input.synced, snakemake.output[0], snakemake.params.year)  # noqa: F821
