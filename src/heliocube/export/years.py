"""The years of an experiment's Zarr store, and what decides each year's group (the job's params).

Light on imports: the workflow's helpers (``rules/common.smk``) call these when every Snakemake process parses
the Snakefile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ..timegrid import parse_day, parse_duration
from .channels import channel_names

__all__ = ["export_year_params", "export_years_of", "year_bounds"]


def export_years_of(experiment: Mapping) -> list[str]:
    """Calendar years ('YYYY') the experiment's axis covers, in order: one Zarr group each."""
    first, last = parse_day(experiment["date_start"]).year, parse_day(experiment["date_finish"]).year
    return [f"{year:04d}" for year in range(first, last + 1)]


def year_bounds(experiment: Mapping, year: str) -> tuple[dt.date, dt.date]:
    """First and last day of ``year`` within the experiment's range."""
    start, finish = parse_day(experiment["date_start"]), parse_day(experiment["date_finish"])
    first, last = dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
    if last < start or first > finish:
        raise ValueError(f"year {year} is outside the experiment's range {start}..{finish}")
    return max(first, start), min(last, finish)


def export_year_params(experiment: Mapping, year: str, zarr_options: Mapping, anchor: str | None = None) -> dict:
    """Plain values that decide one year group: the experiment with its range clipped to ``year``, the channel
    names and the Zarr options (and ``anchor``, the config's first day the axis is laid from, when the step does
    not divide a day).

    Extending the experiment's range past ``year`` leaves this unchanged, so Snakemake's params trigger rewrites
    only the years the change reaches.
    """
    first, last = year_bounds(experiment, year)
    step = parse_duration(experiment["step"]) if experiment.get("step") else None
    # the axis is laid from the config's first day: moving it moves every row unless the step divides a day
    divides_a_day = step is None or not dt.timedelta(days=1) % step
    spec_anchor = None if divides_a_day else anchor
    spec = {key: value for key, value in experiment.items() if key not in ("date_start", "date_finish")}
    spec.pop("prior_tool_layout", None)  # a second layout of the synced file, not its content
    return {
        "experiment": spec,
        "year": year,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "anchor": spec_anchor,
        "channels": channel_names(experiment["products"]),
        "zarr": dict(zarr_options),
    }
