# heliocube: SoHO and SDO images into machine-learning-ready datasets.
# Stages (one rules/<stage>.smk each): query -> fetch -> clean -> cube -> sync -> export. Jobs are one per product x calendar month; files are
# one per day (see README "Design").
from snakemake.utils import min_version

from heliocube.summary import print_run_summary

min_version("9.0")


# The demo is the default config, not a base under the user's: with --configfile the user's file is the whole
# config (keys it leaves out take the schema's defaults), exactly what `heliocube check-config FILE` judges.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/query.smk"
include: "rules/fetch.smk"
include: "rules/clean.smk"
include: "rules/cube.smk"
include: "rules/sync.smk"
include: "rules/export.smk"
include: "rules/events.smk"
include: "rules/params.smk"
include: "rules/report.smk"


# Joining per-year cubes writes only virtual-dataset maps, consolidating a Zarr store only its metadata, splits
# only a CSV of times, selecting events one HEK query: not worth a cluster submission.
localrules:
    all,
    cube_master,
    export_zarr_consolidate,
    export_splits,
    export_shard_index,
    export_normalization,
    events_select,


rule all:
    default_target: True
    input:
        get_final_output(),


# A real run (not a dry run) needs the JSOC email for JSOC products; it stops here, before any job, without it.
onstart:
    require_jsoc_email()


# Every run (not a dry run) ends by saying where the outputs are and what was rejected, in a few lines.
onsuccess:
    print_run_summary(ROOT)


onerror:
    print_run_summary(ROOT, failed=True)
