"""Adapter of rule export_shard_index: unpack the snakemake object and call the package."""

from heliocube.export.shards import merge_shard_index
from heliocube.jobs import clearing_downstream
from heliocube.logs import job_log

# The log names the cause of any failure, a full disk included (see heliocube.logs.job_log).
# A job first removes every output built from its own (heliocube.jobs.clearing_downstream).
with job_log(snakemake.log[0]), clearing_downstream(snakemake.config, "export_shard_index", snakemake.output[0]):  # noqa: F821
    merge_shard_index(list(snakemake.input), snakemake.output[0])  # noqa: F821
