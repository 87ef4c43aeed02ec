"""heliocube.taiutc gives astropy's UTC strings (``Time(..., format="isot", scale=...).utc.isot``) for TAI and UTC
times: its leap-second table is astropy's, normal and leap-second-adjacent times convert to the same string, and
what it does not convert itself (leap seconds, other spellings, other eras) is astropy's answer or error."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys

import pytest
from astropy.time import Time
from astropy.utils.iers import LeapSeconds

from heliocube.taiutc import LEAP_SECONDS, VALID_FROM, VALID_UNTIL, to_utc_isot

#: astropy's own warnings on the times it is given outside the table's span ("dubious year")
pytestmark = pytest.mark.filterwarnings("ignore::erfa.ErfaWarning")


def astropy_isot(iso: list[str], scale: str) -> list[str]:
    return list(Time(iso, format="isot", scale=scale).utc.isot)


def test_the_table_is_astropys_leap_second_table():
    table = LeapSeconds.auto_open()  # IERS' file, or ERFA's table once astropy.time has updated it from that file
    if "day" in table.colnames:  # leap seconds start on the first of a month; ERFA's table has no day
        assert all(int(row["day"]) == 1 for row in table)
    astropys = [(dt.datetime(int(row["year"]), int(row["month"]), 1), int(row["tai_utc"]))
                for row in table if int(row["year"]) >= 1972]
    assert list(LEAP_SECONDS) == astropys
    assert table.expires.to_datetime() >= VALID_UNTIL


def _leap_adjacent() -> list[str]:
    """TAI times from 2 s before to 2 s after each leap second, at the edges and in between (the leap second
    itself included: astropy's UTC 23:59:60.xxx)."""
    steps = (-2, -1.5, -1.001, -1, -0.999, -0.5, -0.001, 0, 0.001, 0.5, 0.999, 1, 1.001, 1.5, 2)
    times = []
    for (start, _), (_, offset) in zip(LEAP_SECONDS[1:], LEAP_SECONDS[:-1], strict=True):
        # the leap second is UTC 23:59:60 of the day before ``start``: TAI start + offset .. start + offset + 1 s
        edge = start + dt.timedelta(seconds=offset)
        times += [(edge + dt.timedelta(seconds=step)).isoformat(timespec="milliseconds") for step in steps]
    return times


def test_leap_second_adjacent_tai_times_convert_as_astropy_converts_them():
    times = _leap_adjacent()
    assert [to_utc_isot([t], "tai")[0] for t in times] == astropy_isot(times, "tai")
    assert to_utc_isot(times, "tai") == astropy_isot(times, "tai")
    outside = [t for t in times if not t.endswith(("00:00:00.000", "00:00:01.000"))]
    assert any(":60." in t for t in astropy_isot(outside, "tai"))  # the leap seconds themselves are in the sample


def test_normal_times_convert_as_astropy_converts_them():
    """TAI and UTC times over the table's span with 0-3 fraction digits, as JSOC writes T_REC and T_OBS."""
    rng = random.Random(17)
    span = (VALID_UNTIL - VALID_FROM).total_seconds() - 100
    times = []
    for digits in (0, 1, 2, 3):
        for _ in range(500):
            moment = VALID_FROM + dt.timedelta(seconds=50 + rng.uniform(0, span))
            text = moment.strftime("%Y-%m-%dT%H:%M:%S")
            times.append(text + (f".{rng.randrange(10 ** digits):0{digits}d}" if digits else ""))
    times += ["2010-10-15T19:12:00", "2011-02-15T00:00:12", "2011-02-15T00:00:14.57", "2026-12-06T08:00:00.123"]
    for scale in ("tai", "utc"):
        assert to_utc_isot(times, scale) == astropy_isot(times, scale)


@pytest.mark.parametrize("text", ["2011-02-15T00:00:14.5712", "2011-02-15", "2011-02-15T00:00",
                                  "1971-12-31T23:59:59", "1972-01-01T00:00:05", "2030-01-01T00:00:00",
                                  "2016-12-31T23:59:60.5", "2016-12-30T23:59:60"])
def test_what_it_does_not_convert_is_astropys_answer(text):
    for scale in ("tai", "utc"):
        try:
            expected = astropy_isot([text], scale)
        except ValueError as err:
            with pytest.raises(type(err)):
                to_utc_isot([text], scale)
        else:
            assert to_utc_isot([text], scale) == expected


@pytest.mark.parametrize("text", ["2011-02-30T00:00:00", "2011-02-15T24:00:00", "2011-13-01T00:00:00"])
def test_invalid_times_fail_as_in_astropy(text):
    with pytest.raises(ValueError):
        astropy_isot([text], "tai")
    with pytest.raises(ValueError):
        to_utc_isot([text], "tai")


def test_jsoc_times_convert_without_astropy_time():
    """The query job's conversion of JSOC's usual times imports no astropy.time (~0.15 s of its start)."""
    times = ['2010.10.15_19:12:00_TAI', '2011-02-15T00:00:14.57Z', 'MISSING']
    code = ("import sys\nfrom heliocube.query.jsoc import jsoc_times_to_utc\n"
            f"print([str(t) for t in jsoc_times_to_utc({times!r})])\n"
            "assert 'astropy.time' not in sys.modules, 'astropy.time imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['2010-10-15", "19:11:26+00:00',", "'2011-02-15", "00:00:14.570000+00:00',",
                                     "'NaT']"]
