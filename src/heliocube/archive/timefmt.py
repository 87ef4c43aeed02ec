"""Time arithmetic of the embedded archive: integer milliseconds, TAI <-> UTC, and JSOC/SDAC time spellings.

Times are int64 milliseconds since 1970-01-01T00:00:00 *in the series' own scale*: UTC (POSIX, no leap seconds)
for SDAC and AIA, TAI for MDI and HMI (whose T_REC are TAI). Conversions go through astropy.time.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
from astropy.time import Time

__all__ = [
    "ANCHOR_MS",
    "format_iso",
    "format_iso_z",
    "format_tai",
    "ms_to_timestamp",
    "parse_jsoc_duration",
    "parse_jsoc_time",
    "tai_to_utc_ms",
    "to_utc_ms",
    "utc_to_tai_ms",
]

#: Grid anchor of every series: 1993-01-01T00:00:00 in the series' scale (JSOC's TAI epoch for MDI/HMI T_REC,
#: a UTC midnight for AIA and SDAC, so any whole-day cadence divisor gives the same grid).
ANCHOR_MS = 725846400000
_JD_UNIX = 2440587.5


def _ms_to_time(ms: np.ndarray, scale: str) -> Time:
    ms = np.asarray(ms, dtype=np.int64)
    days = ms // 86400000
    frac = (ms - days * 86400000) / 86400000.0
    return Time(_JD_UNIX + days.astype(float), frac, format="jd", scale=scale)


def _time_to_ms(t: Time) -> np.ndarray:
    jd1, jd2 = t.jd1 - _JD_UNIX, t.jd2
    days = np.round(jd1)
    frac = (jd1 - days) + jd2
    return (days.astype(np.int64) * 86400000 + np.round(frac * 86400000.0).astype(np.int64)).astype(np.int64)


def tai_to_utc_ms(ms) -> np.ndarray:
    """TAI milliseconds (naive TAI clock since 1970-01-01) to POSIX UTC milliseconds."""
    ms = np.atleast_1d(np.asarray(ms, dtype=np.int64))
    if ms.size == 0:
        return ms
    return _time_to_ms(_ms_to_time(ms, "tai").utc)


def utc_to_tai_ms(ms) -> np.ndarray:
    """POSIX UTC milliseconds to TAI milliseconds (naive TAI clock since 1970-01-01)."""
    ms = np.atleast_1d(np.asarray(ms, dtype=np.int64))
    if ms.size == 0:
        return ms
    return _time_to_ms(_ms_to_time(ms, "utc").tai)


def to_utc_ms(value) -> int:
    """Milliseconds since the POSIX epoch of a timestamp-like value (naive values are taken as UTC)."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def ms_to_timestamp(ms) -> pd.DatetimeIndex:
    """UTC ms to tz-aware pandas timestamps."""
    return pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True)


def _naive(ms) -> list[dt.datetime]:
    epoch = dt.datetime(1970, 1, 1)
    return [epoch + dt.timedelta(milliseconds=int(m)) for m in np.atleast_1d(ms)]


def _spell(ms, pattern: str, decimals: int) -> list[str]:
    """``strftime(pattern)`` of each time, plus ``decimals`` digits of fractional seconds when asked for."""
    out = []
    for t in _naive(ms):
        text = t.strftime(pattern)
        if decimals:
            text += f".{t.microsecond // 10 ** (6 - decimals):0{decimals}d}"
        out.append(text)
    return out


def format_tai(ms, decimals: int = 0) -> list[str]:
    """JSOC TAI spelling ``YYYY.MM.DD_HH:MM:SS[.ss]_TAI`` of TAI milliseconds."""
    return [s + "_TAI" for s in _spell(ms, "%Y.%m.%d_%H:%M:%S", decimals)]


def format_iso_z(ms, decimals: int = 0) -> list[str]:
    """JSOC UTC spelling ``YYYY-MM-DDTHH:MM:SS[.ss]Z``."""
    return [s + "Z" for s in format_iso(ms, decimals)]


def format_iso(ms, decimals: int = 3) -> list[str]:
    """ISO spelling ``YYYY-MM-DDTHH:MM:SS[.sss]`` (no zone)."""
    return _spell(ms, "%Y-%m-%dT%H:%M:%S", decimals)


_TIME = re.compile(
    r"^(\d{4})[.\-/](\d{1,2})[.\-/](\d{1,2})(?:[T_ ](\d{1,2})(?::(\d{2}))?(?::(\d{2}(?:\.\d*)?))?)?(Z|_TAI|_UTC|_TT)?$",
    re.IGNORECASE,
)


def parse_jsoc_time(text: str, series_scale: str) -> int:
    """Parse a JSOC record-set time into milliseconds in ``series_scale`` (``tai`` or ``utc``).

    Accepts ``YYYY.MM.DD_HH:MM:SS[_TAI|_UTC]``, ISO ``YYYY-MM-DDTHH:MM:SS[Z]`` and dates. A time without a zone
    is in the series' own scale, as JSOC reads it.
    """
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"cannot parse time {text!r}")
    year, month, day, hour, minute, second, zone = match.groups()
    sec = float(second or 0)
    naive = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=dt.UTC)
    ms = int(naive.timestamp()) * 1000 + round(sec * 1000)
    zone = (zone or "").upper().lstrip("_")
    scale = {"Z": "utc", "UTC": "utc", "TAI": "tai", "TT": "tt", "": series_scale}[zone]
    if scale == "tt":
        ms, scale = ms - 32184, "tai"
    if scale == series_scale:
        return ms
    return int((utc_to_tai_ms(ms) if series_scale == "tai" else tai_to_utc_ms(ms))[0])


_DURATION = re.compile(r"^(\d+(?:\.\d*)?)([smhd]?)$", re.IGNORECASE)


def parse_jsoc_duration(text: str) -> int:
    """Parse a JSOC duration (``12m``, ``6h``, ``1d``, ``21600.0s``, bare seconds) into milliseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"cannot parse duration {text!r}")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]
    return round(float(match.group(1)) * unit * 1000)
