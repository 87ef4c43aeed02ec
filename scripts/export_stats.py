"""Adapter of rule export_stats: unpack the snakemake object and call the package."""

from heliocube.export.normalization import Settings, write_year_statistics
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_stats", snakemake.output[0]):  # noqa: F821
    params = snakemake.params.year  # noqa: F821
    write_year_statistics(snakemake.input.synced, int(params["year"]),  # noqa: F821
                          Settings.from_config(params["normalization"]), snakemake.output[0],  # noqa: F821
                          experiment=snakemake.wildcards.experiment)  # noqa: F821
