# Helpers shared by every stage. Everything here is date arithmetic on the config: the Snakefile is parsed
# again by every job (and every SLURM submission), so nothing may glob the file system or touch the network.
import re
import sys

from heliocube.config import ConfigError, config_hash, validate_config
from heliocube.configchecks import missing_email, operations_warnings
from heliocube.events.settings import events_of, sampling_of
from heliocube.experiments import experiments_of
from heliocube.export.normalization import phase1_config
from heliocube.export.periods import export_month_params, export_months_of
from heliocube.params.settings import settings_for
from heliocube.export.years import export_year_params, export_years_of
from heliocube.registry import get_product
from heliocube.timegrid import days_of_month, listed_days_of_month, months_in_range
from heliocube.variants import variants_of


# One code path with `heliocube check-config`: the package checks the schema (filling nested defaults) and what spans
# keys (unknown product, range outside operations, size dividing the native size, JSOC email in production).
# The JSOC email is left to the Snakefile's onstart (real runs only, before any job): Snakemake does not say at
# parse time whether this is a dry run, and a dry run contacts nothing, so it plans without the email.
try:
    config.update(validate_config(config, require_email=False))
except ConfigError as err:
    sys.exit(f"heliocube: {err}")  # one line naming the key, not a traceback
if problem := missing_email(config):
    print(f"heliocube: warning: config key 'jsoc.email': {problem}; a real run stops before any job",
          file=sys.stderr)


def require_jsoc_email():
    """Stop a real run, before any job, when JSOC products have no email (the config check a dry run skips)."""
    if problem := missing_email(config):
        sys.exit(f"heliocube: config key 'jsoc.email': {problem}")
for warning in operations_warnings(config):
    print(f"heliocube: warning: {warning}", file=sys.stderr)

ROOT = config["output_root"]
PRODUCTS = config["products"]
MONTHS = months_in_range(config["date_start"], config["date_finish"])
YEARS = sorted({month[:4] for month in MONTHS})
VARIANTS = {variant.name: variant for variant in variants_of(config)}
EXPERIMENTS = experiments_of(config)


wildcard_constraints:
    product="|".join(PRODUCTS),
    month=r"\d{4}-\d{2}",
    year=r"\d{4}",
    variant="|".join(re.escape(name) for name in VARIANTS),
    experiment="|".join(re.escape(name) for name in EXPERIMENTS) or "(?!)",


def get_month_days(wildcards):
    """The configured days of the job's month, as ISO strings; a param, so a changed range reruns the month."""
    return [
        day.isoformat()
        for day in days_of_month(
            wildcards.month, config["date_start"], config["date_finish"]
        )
    ]


def get_listed_days(wildcards):
    """Days a query job lists: the month's days in range plus the day on either side of them."""
    return [
        day.isoformat()
        for day in listed_days_of_month(
            wildcards.month, config["date_start"], config["date_finish"]
        )
    ]


def get_query_index(wildcards):
    """The query index of the fetch job's month (its query also lists the day on either side of the month)."""
    return f"{ROOT}/manifests/{wildcards.product}/{wildcards.month}.index.csv"


def get_archive_connections(wildcards, archive):
    """Connections a job of this product opens to ``archive`` (jsoc or sdac), for global resource caps."""
    is_jsoc = get_product(wildcards.product).is_jsoc
    if is_jsoc == (archive == "jsoc"):
        return config["fetch"]["connections_per_archive"]
    return 0


def get_jsoc_connections(wildcards):
    return get_archive_connections(wildcards, "jsoc")


def get_sdac_connections(wildcards):
    return get_archive_connections(wildcards, "sdac")


def get_variant_params(wildcards):
    """The job's variant as plain values; a param, so redefining a variant reruns its jobs."""
    return VARIANTS[wildcards.variant].as_params()


def get_year_frame_indexes(wildcards):
    """Frame indexes of the months of the job's year that are in range, in time order."""
    return [
        f"{ROOT}/frames/{wildcards.variant}/{wildcards.product}/{month}.index.csv"
        for month in MONTHS
        if month.startswith(wildcards.year)
    ]


def get_year_cubes(wildcards):
    """Per-year cubes of one product-variant, in time order."""
    return [
        f"{ROOT}/cubes/{wildcards.variant}/{wildcards.product}/{year}.h5"
        for year in YEARS
    ]


def get_experiment_params(wildcards):
    """The experiment with its defaults resolved; a param, so redefining it reruns its sync."""
    return EXPERIMENTS[wildcards.experiment]


def get_experiment_cubes(wildcards):
    """Master cubes of the experiment's products, in the experiment's order."""
    spec = EXPERIMENTS[wildcards.experiment]
    return [f"{ROOT}/cubes/{spec['variant']}/{product}.h5" for product in spec["products"]]


def get_export_years(wildcards):
    """Year groups of the experiment's Zarr store: one per calendar year of its range."""
    return [
        f"{ROOT}/exports/{wildcards.experiment}.zarr/{year}"
        for year in export_years_of(EXPERIMENTS[wildcards.experiment])
    ]


def get_export_year_names(wildcards):
    """The experiment's years; a param, so a shrunk range reconsolidates (dropping the years left out)."""
    return export_years_of(EXPERIMENTS[wildcards.experiment])


def get_export_year_cubes(wildcards):
    """Per-year cubes the year's synced rows come from: the year's own and, when in range, the year before's (its
    last frames may match the year's first axis times or be their running-difference predecessors)."""
    spec = EXPERIMENTS[wildcards.experiment]
    years = [str(int(wildcards.year) - 1), wildcards.year]
    return [
        f"{ROOT}/cubes/{spec['variant']}/{product}/{year}.h5"
        for year in years
        if year in YEARS
        for product in spec["products"]
    ]


def get_export_year_params(wildcards):
    """The experiment clipped to the job's year, with the Zarr options; a param, so a range change that reaches
    the year (and only such a change) rewrites it."""
    return export_year_params(
        EXPERIMENTS[wildcards.experiment],
        wildcards.year,
        config["exports"]["zarr"],
        anchor=config["date_start"],
    )


def get_export_month_frame_indexes(wildcards):
    """Frame indexes a month's synced rows come from: the month's and, when in range, its neighbours' (a row near
    the month's edge can match a frame across it, a running difference subtracts the row before), per product."""
    spec = EXPERIMENTS[wildcards.experiment]
    i = MONTHS.index(wildcards.month)
    return [
        f"{ROOT}/frames/{spec['variant']}/{product}/{month}.index.csv"
        for month in MONTHS[max(i - 1, 0) : i + 2]
        for product in spec["products"]
    ]


def get_export_month_params(wildcards):
    """The experiment clipped to the job's month, the shard options and the month's shard names; a param, so a
    range change that reaches the month (and only such a change) rewrites it."""
    return export_month_params(
        EXPERIMENTS[wildcards.experiment],
        wildcards.month,
        config["exports"]["shards"],
        anchor=config["date_start"],
    )


def get_export_shard_parts(wildcards):
    """The months' shard index parts of the experiment."""
    return [
        f"{ROOT}/exports/{wildcards.experiment}/shards/{month}.index.json"
        for month in export_months_of(EXPERIMENTS[wildcards.experiment])
    ]


def get_export_stats_params(wildcards):
    """The experiment clipped to the job's year and what phase 1 of the normalization depends on (the transform
    and the histogram, not the clip or the scaling, which only the gather step applies)."""
    params = export_year_params(
        EXPERIMENTS[wildcards.experiment], wildcards.year, {}, anchor=config["date_start"]
    )
    params.pop("zarr")
    params["normalization"] = phase1_config(config["exports"]["normalization"])
    return params


def get_export_stats_parts(wildcards):
    """The years' phase-1 statistics of the experiment."""
    return [
        f"{ROOT}/exports/{wildcards.experiment}/stats/{year}.json"
        for year in export_years_of(EXPERIMENTS[wildcards.experiment])
    ]


def get_config_hash():
    """The hash of what decides the data (heliocube.config.config_hash), recorded in the normalization artifact."""
    return config_hash(config)


def get_export_outputs():
    """Every experiment's Zarr store (root metadata, written last), splits, shard index (after every shard) and
    normalization artifact, unless exports are disabled."""
    if not config["exports"]["enabled"]:
        return []
    targets = []
    for name in EXPERIMENTS:
        targets += [
            f"{ROOT}/exports/{name}.zarr/zarr.json",
            f"{ROOT}/exports/{name}/splits.csv",
            f"{ROOT}/exports/{name}/shards/index.json",
            f"{ROOT}/exports/{name}/normalization.json",
        ]
    return targets


def get_params_variants():
    """The variants whose cubes get image parameters: params.variants, or every variant."""
    return config["params"]["variants"] or list(VARIANTS)


def get_params_settings(wildcards):
    """The product-variant's parameter settings as JSON (heliocube.params.settings); a param, so a changed
    setting reruns its jobs."""
    return settings_for(config["params"], wildcards.product, VARIANTS[wildcards.variant].as_params()).to_json()


def get_params_outputs():
    """Every parameter file and heatmap folder: params.products x the params variants x the years."""
    return expand(
        f"{ROOT}/params/{{variant}}/{{product}}/{{year}}{{suffix}}",
        variant=get_params_variants(),
        product=config["params"]["products"],
        year=YEARS,
        suffix=[".h5", "_heatmaps"],
    )


def get_report_inputs():
    """Every dataset output (master and seeded cubes, synced files, prior-tool layouts, exports) and every table the report
    reads (slot tables, fetch, clean and sync ledgers): the report is built after all of them."""
    targets = expand(
        f"{ROOT}/cubes/{{variant}}/{{product}}.h5", variant=list(VARIANTS), product=PRODUCTS
    )
    targets += expand(
        f"{ROOT}/cubes/{{variant}}/{{product}}.seeded.h5",
        variant=list(VARIANTS),
        product=config["metadata_seeding"]["products"],
    )
    for name, spec in EXPERIMENTS.items():
        targets += [f"{ROOT}/synced/{name}.h5", f"{ROOT}/synced/{name}.ledger.csv"]
        if spec["prior_tool_layout"]:
            targets.append(f"{ROOT}/synced/{name}.prior-tool")
    targets += get_export_outputs()
    targets += get_params_outputs()
    targets += get_event_outputs()
    targets += expand(
        f"{ROOT}/raw/{{product}}/{{month}}.{{table}}.csv",
        product=PRODUCTS,
        month=MONTHS,
        table=["slots", "ledger"],
    )
    targets += expand(
        f"{ROOT}/frames/{{variant}}/{{product}}/{{month}}.ledger.csv",
        variant=list(VARIANTS),
        product=PRODUCTS,
        month=MONTHS,
    )
    return targets


def get_final_output():
    """Every dataset output and the report over them (which depends on all of them, see get_report_inputs)."""
    return [*get_report_inputs(), f"{ROOT}/report/index.html"]


# ------------------------------------------------------------------------------------------------ event datasets
EVENTS = events_of(config)


wildcard_constraints:
    name="|".join(re.escape(name) for name in EVENTS) or "(?!)",
    event_id=r"[A-Za-z0-9][A-Za-z0-9._+-]*",


def get_event_spec(wildcards):
    """The event dataset's entry with its defaults resolved; a param, so a changed selection reruns its jobs."""
    return EVENTS[wildcards.name]


def get_event_frames_params(wildcards):
    """What an event's frames depend on besides its row: the channels and how frames are cleaned (not the selection
    rules, so a new selection reruns only the events whose row changed)."""
    spec = EVENTS[wildcards.name]
    return {key: spec[key] for key in ("products", "image_size", "resize_method")}


def get_event_csv(wildcards):
    """The event table a csv-sourced dataset reads (none for HEK)."""
    spec = EVENTS[wildcards.name]
    return [spec["csv"]] if spec.get("source") == "csv" and spec.get("csv") else []


def get_event_sampling(wildcards):
    """The dataset's sampling settings (heliocube.events.dataset); a param, so a new seed resamples."""
    return sampling_of(config, wildcards.name)


def _event_rows(name):
    """The rows of the dataset's events.csv, once its checkpoint has run (Snakemake re-evaluates after it)."""
    import csv

    with open(checkpoints.events_select.get(name=name).output.events, newline="") as stream:
        return list(csv.DictReader(stream))


def get_events_table(wildcards):
    """The dataset's events.csv, as `ancient`: a new selection reruns only the events whose row changed (the row is a
    param, get_event_row), not every event's fetch."""
    return ancient(checkpoints.events_select.get(name=wildcards.name).output.events)


def get_event_row(wildcards):
    """The event's window from events.csv (what its frames depend on; its rank or reason text may change freely)."""
    row = next(row for row in _event_rows(wildcards.name) if row["event_id"] == wildcards.event_id)
    return {key: row[key] for key in ("event_id", "window_start", "window_end")}


def get_event_frame_tables(wildcards):
    """One frame table per kept event of the dataset."""
    return [f"{ROOT}/events/{wildcards.name}/frames/{row['event_id']}.csv" for row in _event_rows(wildcards.name)]


def get_event_jsoc_connections(wildcards):
    """JSOC connections an event's job opens (its channels are JSOC series)."""
    return config["fetch"]["connections_per_archive"]


def get_event_outputs():
    """Every event dataset's outputs (its labels first)."""
    targets = []
    for name in EVENTS:
        targets += [
            f"{ROOT}/events/{name}/candidates.csv",
            *(f"{ROOT}/events/{name}/dataset/{output}" for output in ("labels.csv", "labels.tsv", "summary.csv",
                                                                        "summary.md", "accounting.csv", "events.h5")),
        ]
    return targets
