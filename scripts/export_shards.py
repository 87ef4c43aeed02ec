"""Adapter of rule export_shards: unpack the snakemake object and call the package."""

from heliocube.export.shards import write_month_shards
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_shards", snakemake.output[0]):  # noqa: F821
    params = snakemake.params.month  # noqa: F821
    write_month_shards(snakemake.input.synced, snakemake.output[0], params["shard_names"],  # noqa: F821
                       period_days=params["period_days"], float16=params["shards"]["float16"])
