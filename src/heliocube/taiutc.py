"""ISO times on the TAI or UTC scale as astropy's UTC ``isot`` strings, with the standard library where that is exact.

A query job converts every record's time (:func:`heliocube.query.jsoc.jsoc_times_to_utc`); importing
``astropy.time`` for it cost ~0.15 s CPU of each job's start. Since 1972 TAI-UTC is a whole number of seconds that
changes only at the IERS leap seconds, so for a time with at most millisecond digits, inside the span the table
below is known for and not within a leap second, subtracting it is exact and gives astropy's string (astropy
formats to milliseconds, and its two-double arithmetic is far below half a millisecond off an exact value).
Anything else (more digits, other spellings, out-of-range fields, leap seconds, times before 1972 or past the
table's expiry) goes to ``astropy.time`` as before, so results and errors stay astropy's.
``tests/test_taiutc.py`` checks the table against astropy's and the strings against astropy's on normal and
leap-second-adjacent times.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

__all__ = ["LEAP_SECONDS", "VALID_FROM", "VALID_UNTIL", "to_utc_isot"]

#: (UTC date from which it holds, TAI-UTC in seconds): IERS Leap_Second.dat (Bulletin C 72, July 2026).
LEAP_SECONDS = (
    (dt.datetime(1972, 1, 1), 10), (dt.datetime(1972, 7, 1), 11), (dt.datetime(1973, 1, 1), 12),
    (dt.datetime(1974, 1, 1), 13), (dt.datetime(1975, 1, 1), 14), (dt.datetime(1976, 1, 1), 15),
    (dt.datetime(1977, 1, 1), 16), (dt.datetime(1978, 1, 1), 17), (dt.datetime(1979, 1, 1), 18),
    (dt.datetime(1980, 1, 1), 19), (dt.datetime(1981, 7, 1), 20), (dt.datetime(1982, 7, 1), 21),
    (dt.datetime(1983, 7, 1), 22), (dt.datetime(1985, 7, 1), 23), (dt.datetime(1988, 1, 1), 24),
    (dt.datetime(1990, 1, 1), 25), (dt.datetime(1991, 1, 1), 26), (dt.datetime(1992, 7, 1), 27),
    (dt.datetime(1993, 7, 1), 28), (dt.datetime(1994, 7, 1), 29), (dt.datetime(1996, 1, 1), 30),
    (dt.datetime(1997, 7, 1), 31), (dt.datetime(1999, 1, 1), 32), (dt.datetime(2006, 1, 1), 33),
    (dt.datetime(2009, 1, 1), 34), (dt.datetime(2012, 7, 1), 35), (dt.datetime(2015, 7, 1), 36),
    (dt.datetime(2017, 1, 1), 37),
)
#: UTC span the table is exact for: from the first whole-second offset to the file's expiry (no leap second
#: before it, by Bulletin C 72). Times outside it go to astropy, which knows any later table.
VALID_FROM, VALID_UNTIL = LEAP_SECONDS[0][0], dt.datetime(2027, 6, 28)

#: the form converted here: astropy's ``isot`` with seconds and at most millisecond digits
_ISOT = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?", re.ASCII)


def _parse(text: str) -> dt.datetime | None:
    match = _ISOT.fullmatch(text)
    if match is None:
        return None
    *fields, fraction = match.groups()
    try:
        moment = dt.datetime(*map(int, fields), int((fraction or "0").ljust(3, "0")) * 1000)
    except ValueError:  # a field out of range (a leap second's :60 included): astropy's answer, not a guess
        return None
    return moment if VALID_FROM <= moment < VALID_UNTIL else None


def _tai_to_utc(tai: dt.datetime) -> dt.datetime | None:
    """The UTC of a TAI time; None inside a leap second (UTC 23:59:60, which datetime cannot hold) or before 1972."""
    for index in reversed(range(len(LEAP_SECONDS))):  # the latest offset whose span starts before tai - offset
        start, offset = LEAP_SECONDS[index]
        utc = tai - dt.timedelta(seconds=offset)
        if utc >= start:
            end = LEAP_SECONDS[index + 1][0] if index + 1 < len(LEAP_SECONDS) else VALID_UNTIL
            return utc if utc < end else None  # past its span's end: the second the next offset inserts
    return None


def to_utc_isot(iso: Sequence[str], scale: str) -> list[str]:
    """``Time(iso, format="isot", scale=scale).utc.isot`` as a list, for ``scale`` ``"tai"`` or ``"utc"``."""
    converted = []
    for text in iso:
        moment = _parse(text)
        if moment is not None and scale == "tai":
            moment = _tai_to_utc(moment)
        if moment is None or scale not in ("tai", "utc"):
            from astropy.time import Time  # the cases above that only astropy answers, exactly as it did

            return list(Time(list(iso), format="isot", scale=scale).utc.isot)
        converted.append(moment.isoformat(timespec="milliseconds"))
    return converted
