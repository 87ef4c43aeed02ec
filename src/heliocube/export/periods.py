"""The months, shard days and years of an experiment's shards and statistics, and what decides each job.

Light on imports: the workflow's helpers (``rules/common.smk``) call these when every Snakemake process parses the
Snakefile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ..timegrid import months_in_range, parse_day, parse_duration
from .years import export_year_params

__all__ = ["export_month_params", "export_months_of", "month_shard_days", "shard_name", "shard_period_days"]


def shard_period_days(shard_options: Mapping) -> int:
    """``exports.shards.period`` in whole days."""
    period = parse_duration(shard_options.get("period", "1d"))
    if period % dt.timedelta(days=1) or period < dt.timedelta(days=1):
        raise ValueError(f"exports.shards.period {shard_options.get('period')!r} is not a whole number of days")
    return period // dt.timedelta(days=1)


def shard_name(day: dt.date) -> str:
    """``YYYY-MM-DD.tar``: the shard of the period starting on ``day``."""
    return f"{day:%Y-%m-%d}.tar"


def export_months_of(experiment: Mapping) -> list[str]:
    """Months ('YYYY-MM') of the experiment's range: one shard job each."""
    return months_in_range(experiment["date_start"], experiment["date_finish"])


def month_shard_days(month: str, start: str | dt.date, finish: str | dt.date, period_days: int = 1) -> list[dt.date]:
    """First days of the periods of ``month`` (``YYYY-MM``) that hold days of the range ``[start, finish]``.

    Periods are ``period_days`` long and start on the first of the month (the last one ends with the month), so
    their names do not move when the range grows.
    """
    if period_days < 1:
        raise ValueError(f"a shard period of {period_days} days: give at least 1")
    start, finish = parse_day(start), parse_day(finish)
    first = dt.date.fromisoformat(f"{month}-01")
    days = []
    day = first
    while day.month == first.month:
        if day <= finish and day + dt.timedelta(days=period_days - 1) >= start:
            days.append(day)
        day += dt.timedelta(days=period_days)
    return days


def export_month_params(experiment: Mapping, month: str, shard_options: Mapping, anchor: str | None = None) -> dict:
    """Plain values that decide one month's shards: the experiment clipped to ``month`` (see
    :func:`heliocube.export.years.export_year_params`), the shard options and the shards' names.

    Extending the range past the month leaves this unchanged, so Snakemake's params trigger rewrites only the
    months the change reaches.
    """
    params = export_year_params(experiment, month[:4], {}, anchor=anchor)
    params.pop("zarr")
    params.pop("year")
    start, finish = parse_day(experiment["date_start"]), parse_day(experiment["date_finish"])
    first = dt.date.fromisoformat(f"{month}-01")
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    period_days = shard_period_days(shard_options)
    params.update(month=month, first_day=max(first, start).isoformat(), last_day=min(last, finish).isoformat(),
                  shards=dict(shard_options), period_days=period_days,
                  shard_names=[shard_name(d) for d in month_shard_days(month, start, finish, period_days)])
    return params
