"""Durations, the fixed UTC slot grid, and the day and month lists derived from a date range.

Everything here is plain date arithmetic: the Snakefile calls it at parse time, so it must never touch
the network or the file system.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "days_in_range",
    "days_of_month",
    "format_duration",
    "listed_days_of_month",
    "months_in_range",
    "parse_day",
    "parse_duration",
    "slots_for_day",
]

_UNIT_SECONDS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")


def parse_duration(text: str | int | float) -> dt.timedelta:
    """Parse a duration such as ``"6h"``, ``"12min"``, ``"720s"`` or ``"1d"``.

    Parameters
    ----------
    text : str
        A positive number followed by a unit (s, min, h, d and their long forms). Bare numbers are rejected
        on purpose: ``6`` could mean hours (the prior tool) or seconds (JSOC).

    Returns
    -------
    datetime.timedelta
        Rounded to whole seconds.

    Raises
    ------
    ValueError
        When the text is not a positive duration with a known unit.
    """
    match = _DURATION.match(str(text))
    if not match or match.group(2).lower() not in _UNIT_SECONDS:
        raise ValueError(f"cannot parse duration {text!r}: use a number and a unit, e.g. '6h', '12min', '720s'")
    seconds = round(float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return dt.timedelta(seconds=seconds)


def format_duration(delta: dt.timedelta) -> str:
    """Shortest exact spelling of a duration (``6h``, ``12min``, ``90s``), used in variant names and paths."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_day(text: str | dt.date) -> dt.date:
    """Parse ``YYYY-MM-DD`` (or pass a date through)."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    return dt.date.fromisoformat(str(text))


def days_in_range(start: str | dt.date, finish: str | dt.date) -> list[dt.date]:
    """Every calendar day from ``start`` to ``finish``, both included."""
    first, last = parse_day(start), parse_day(finish)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def months_in_range(start: str | dt.date, finish: str | dt.date) -> list[str]:
    """Every calendar month (``YYYY-MM``) that the range touches, in order."""
    first, last = parse_day(start), parse_day(finish)
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def days_of_month(month: str, start: str | dt.date, finish: str | dt.date) -> list[dt.date]:
    """The days of ``month`` (``YYYY-MM``) that fall inside the configured range."""
    year, mon = (int(part) for part in month.split("-"))
    first = max(parse_day(start), dt.date(year, mon, 1))
    next_month = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    last = min(parse_day(finish), next_month - dt.timedelta(days=1))
    return days_in_range(first, last) if first <= last else []


def listed_days_of_month(month: str, start: str | dt.date, finish: str | dt.date) -> list[dt.date]:
    """The days a query job of ``month`` lists: its days in range, plus the day just outside either end.

    A slot near midnight may be best filled by a frame of the neighbouring day (HMI's TAI grid puts one at
    23:59:26 UTC), so the fetch job of a month reads the manifests of the day before its first day and the day
    after its last. Listing them in the month's own query job (a day whose manifest exists is not listed again)
    means a fetch job depends on its own month's query only: extending the range reruns the last month's jobs,
    never its neighbour's.
    """
    days = days_of_month(month, start, finish)
    if days:
        days.insert(0, days[0] - dt.timedelta(days=1))
        days.append(days[-1] + dt.timedelta(days=1))
    return days


def slots_for_day(day: dt.date, cadence: dt.timedelta, anchor: dt.date) -> pd.DatetimeIndex:
    """The UTC slot times that fall on ``day``.

    The grid is ``anchor 00:00 UTC + k * cadence`` for whole k, so it is the same whichever job computes it
    and whatever range a run covers: a cadence that does not divide a day (e.g. 7h) still gives one
    continuous grid across day boundaries.
    """
    step = int(cadence.total_seconds())
    anchor_s = int(dt.datetime(anchor.year, anchor.month, anchor.day, tzinfo=dt.UTC).timestamp())
    day_s = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    first_k = -((anchor_s - day_s) // step)  # ceil((day_s - anchor_s) / step)
    import numpy as np
    import pandas as pd

    times = anchor_s + step * np.arange(first_k, first_k + 86400 // step + 2, dtype=np.int64)
    times = times[(times >= day_s) & (times < day_s + 86400)]
    return pd.DatetimeIndex(pd.to_datetime(times, unit="s", utc=True))
