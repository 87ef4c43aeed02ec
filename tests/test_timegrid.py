"""Durations, the slot grid, and day/month lists."""

import datetime as dt
import itertools

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from heliocube.timegrid import (
    days_in_range,
    days_of_month,
    format_duration,
    listed_days_of_month,
    months_in_range,
    parse_duration,
    slots_for_day,
)


@pytest.mark.parametrize(("text", "seconds"), [("6h", 21600), ("12min", 720), ("720s", 720), ("1d", 86400),
                                               ("1.5h", 5400), ("96 min", 5760)])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["6", "h", "6 fortnights", "-6h", "0s", ""])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(21600, "6h"), (720, "12min"), (90, "90s"), (86400, "1d")])
def test_format_duration(seconds, text):
    assert format_duration(dt.timedelta(seconds=seconds)) == text


def test_days_and_months():
    assert months_in_range("2010-11-30", "2011-02-01") == ["2010-11", "2010-12", "2011-01", "2011-02"]
    assert len(days_in_range("2012-02-01", "2012-03-01")) == 30
    assert days_of_month("2010-12", "2010-12-30", "2011-01-05") == [dt.date(2010, 12, 30), dt.date(2010, 12, 31)]
    assert days_of_month("2009-01", "2010-12-30", "2011-01-05") == []
    assert listed_days_of_month("2010-12", "2010-12-30", "2011-01-05") == [
        dt.date(2010, 12, 29), dt.date(2010, 12, 30), dt.date(2010, 12, 31), dt.date(2011, 1, 1)]
    assert listed_days_of_month("2011-01", "2010-12-30", "2011-01-05")[0] == dt.date(2010, 12, 31)
    assert listed_days_of_month("2011-01", "2010-12-30", "2011-01-05")[-1] == dt.date(2011, 1, 6)
    assert listed_days_of_month("2010-10", "2010-10-15", "2010-10-15") == [
        dt.date(2010, 10, 14), dt.date(2010, 10, 15), dt.date(2010, 10, 16)]


def test_six_hour_slots():
    slots = slots_for_day(dt.date(2010, 10, 16), dt.timedelta(hours=6), dt.date(2010, 10, 15))
    assert list(slots.strftime("%H:%M")) == ["00:00", "06:00", "12:00", "18:00"]
    assert str(slots.tz) == "UTC"


@given(step_minutes=st.integers(1, 60 * 48), offset_days=st.integers(0, 400))
def test_grid_is_continuous_across_days(step_minutes, offset_days):
    """Whatever day a job computes, slots lie on one grid anchored at the start, with no gaps or repeats."""
    anchor = dt.date(2010, 1, 1)
    step = dt.timedelta(minutes=step_minutes)
    day = anchor + dt.timedelta(days=offset_days)
    both = slots_for_day(day, step, anchor).append(slots_for_day(day + dt.timedelta(days=1), step, anchor))
    origin = pd.Timestamp(anchor, tz="UTC")
    assert all((t - origin) % pd.Timedelta(step) == pd.Timedelta(0) for t in both)
    assert all(b - a == pd.Timedelta(step) for a, b in itertools.pairwise(both))
