"""Adapter of rule export_shards: unpack the snakemake object and call the package."""

from heliocube.export.shards import write_month_shards
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    params = snakemake.params.month  # noqa: F821
    write_month_shards(snakemake.input.synced, snakemake.output[0], params["shard_names"],  # noqa: F821
                       period_days=params["period_days"], float16=params["shards"]["float16"])
