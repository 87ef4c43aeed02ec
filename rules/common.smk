# Helpers shared by every stage. Everything here is date arithmetic on the config: the Snakefile is parsed
# again by every job (and every SLURM submission), so nothing may glob the file system or touch the network.
from snakemake.utils import validate

from heliocube.config import SCHEMA_PATH, validate_config
from heliocube.registry import get_product
from heliocube.timegrid import days_of_month, listed_days_of_month, months_in_range


validate(config, schema=str(SCHEMA_PATH))
# The package fills nested defaults and runs the checks that span keys (unknown product, finish before start,
# size dividing the native size, JSOC email in production); each error names its key.
config.update(validate_config(config))

ROOT = config["output_root"]
PRODUCTS = config["products"]
MONTHS = months_in_range(config["date_start"], config["date_finish"])


wildcard_constraints:
    product="|".join(PRODUCTS),
    month=r"\d{4}-\d{2}",


def get_month_days(wildcards):
    """The configured days of the job's month, as ISO strings; a param, so a changed range reruns the month."""
    return [
        day.isoformat()
        for day in days_of_month(
            wildcards.month, config["date_start"], config["date_finish"]
        )
    ]


def get_listed_days(wildcards):
    """Days a query job lists: the month's days in range plus the day beyond either end of the range."""
    return [
        day.isoformat()
        for day in listed_days_of_month(
            wildcards.month, config["date_start"], config["date_finish"]
        )
    ]


def get_neighbour_query_indexes(wildcards):
    """Query indexes a fetch job reads: its own month and the adjacent ones in range (slots near midnight
    may take a frame from the neighbouring day)."""
    position = MONTHS.index(wildcards.month)
    months = MONTHS[max(position - 1, 0) : position + 2]
    return [
        f"{ROOT}/manifests/{wildcards.product}/{month}.index.csv" for month in months
    ]


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


def get_final_output():
    """Every product's fetch outputs for every month of the range."""
    return expand(
        f"{ROOT}/raw/{{product}}/{{month}}.slots.csv", product=PRODUCTS, month=MONTHS
    )
