"""Adapter of rule export_stats: unpack the snakemake object and call the package."""

from heliocube.export.normalization import Settings, write_year_statistics
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    params = snakemake.params.year  # noqa: F821
    write_year_statistics(snakemake.input.synced, int(params["year"]),  # noqa: F821
                          Settings.from_config(params["normalization"]), snakemake.output[0],  # noqa: F821
                          experiment=snakemake.wildcards.experiment)  # noqa: F821
