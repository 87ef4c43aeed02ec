"""Adapter of rule export_zarr_consolidate: unpack the snakemake object and call the package."""

from heliocube.export.zarr_store import consolidate_job
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    consolidate_job(snakemake.output[0], snakemake.params.years, snakemake.wildcards.experiment)  # noqa: F821
