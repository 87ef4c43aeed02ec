"""Adapter of rule export_shard_index: unpack the snakemake object and call the package."""

from heliocube.export.shards import merge_shard_index
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
with job_log(snakemake.log[0]):  # noqa: F821 - snakemake injects the object
    merge_shard_index(list(snakemake.input), snakemake.output[0])  # noqa: F821
