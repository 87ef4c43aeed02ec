# heliocube: SoHO and SDO images into machine-learning-ready datasets.
# Stages (one rules/<stage>.smk each): query -> fetch -> clean -> cube -> sync. Jobs are one per product x calendar month; files are
# one per day (see README "Design").
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/query.smk"
include: "rules/fetch.smk"
include: "rules/clean.smk"
include: "rules/cube.smk"
include: "rules/sync.smk"


# Joining per-year cubes writes only virtual-dataset maps: not worth a cluster submission.
localrules:
    all,
    cube_master,


rule all:
    default_target: True
    input:
        get_final_output(),
