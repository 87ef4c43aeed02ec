"""Adapter of rule export_normalization: unpack the snakemake object and call the package."""

from heliocube.export.normalization import Settings, gather_statistics
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    gather_statistics(list(snakemake.input), Settings.from_config(snakemake.params.settings),  # noqa: F821
                      snakemake.output[0], experiment=snakemake.wildcards.experiment,  # noqa: F821
                      config_hash=snakemake.params.config_hash)  # noqa: F821
