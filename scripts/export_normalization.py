"""Adapter of rule export_normalization: unpack the snakemake object and call the package."""

from heliocube.export.normalization import Settings, gather_statistics
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_normalization", snakemake.output[0]):  # noqa: F821
    gather_statistics(list(snakemake.input), Settings.from_config(snakemake.params.settings),  # noqa: F821
                      snakemake.output[0], experiment=snakemake.wildcards.experiment,  # noqa: F821
                      config_hash=snakemake.params.config_hash)  # noqa: F821
