"""Time conversions shared by the sync modules: durations, UTC parsing, and the ISO text stored in files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..timegrid import parse_duration

__all__ = ["as_timedelta", "iso_seconds", "to_utc_times"]


def as_timedelta(value: str | dt.timedelta | pd.Timedelta) -> pd.Timedelta:
    """A duration given as text (``"6h"``), :class:`datetime.timedelta` or :class:`pandas.Timedelta`, in ns."""
    if isinstance(value, str):
        value = parse_duration(value)
    return pd.Timedelta(value).as_unit("ns")


def to_utc_times(values: Sequence | np.ndarray | pd.Series) -> pd.DatetimeIndex:
    """Parse ISO strings or datetimes as UTC (naive values are taken as UTC); empty or invalid become NaT."""
    series = pd.Series(np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values)
    if series.empty:
        return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
    if series.dtype == object:
        series = series.map(lambda v: None if isinstance(v, str) and not v.strip() else v)
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="ISO8601")
    return pd.DatetimeIndex(parsed).as_unit("ns")


def iso_seconds(times: pd.DatetimeIndex) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]`` UTC strings (fraction only when non-zero); NaT becomes ``""``."""
    out = np.full(len(times), "", dtype=object)
    valid = ~times.isna()
    naive = times[valid].tz_convert("UTC").tz_localize(None)
    whole = naive.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object)
    micro = naive.microsecond.to_numpy()
    fraction = np.array([f".{m:06d}" if m else "" for m in micro], dtype=object)
    out[np.flatnonzero(valid)] = whole + fraction if len(whole) else whole
    return out
