"""Slot selection: nearest first, ties, empty slots, and independence between slots."""

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from heliocube.slots import rank_candidates


def frame(times, ids=None):
    ids = ids or [f"r{i}" for i in range(len(times))]
    return pd.DataFrame({"time_utc": pd.to_datetime(times, utc=True), "record_id": ids})


SLOTS = pd.to_datetime(["2010-01-01T00:00", "2010-01-01T06:00", "2010-01-01T12:00"], utc=True)


def test_nearest_first_within_half_open_window():
    cands = frame(["2010-01-01T05:59", "2010-01-01T06:01", "2010-01-01T03:00", "2010-01-01T09:00"])
    ranked = rank_candidates(SLOTS, cands, pd.Timedelta("3h"))
    assert ranked == [[], [0, 1, 2], [3]]  # 03:00 is in 06:00's window; 09:00 belongs to 12:00 only


def test_ties_go_to_earlier_then_record_id():
    cands = frame(["2010-01-01T06:05", "2010-01-01T05:55", "2010-01-01T06:05"], ["b", "c", "a"])
    assert rank_candidates(SLOTS[1:2], cands, pd.Timedelta("1h")) == [[1, 2, 0]]


def test_empty_and_missing_times():
    cands = frame(["2010-01-01T06:00", None])
    assert rank_candidates(SLOTS, cands, pd.Timedelta("10min")) == [[], [0], []]
    assert rank_candidates(SLOTS, frame([]), pd.Timedelta("1h")) == [[], [], []]


times_strategy = st.lists(st.integers(0, 36 * 3600), min_size=0, max_size=40)


@given(seconds=times_strategy, extra=st.integers(0, 36 * 3600))
def test_a_slot_depends_only_on_its_window(seconds, extra):
    """Adding a candidate changes only the slots whose window holds it (no cascade)."""
    base = pd.Timestamp("2010-01-01", tz="UTC")
    slots = pd.date_range(base, periods=7, freq="6h")
    tolerance = pd.Timedelta("3h")
    cands = frame([base + pd.Timedelta(seconds=s) for s in seconds])
    before = rank_candidates(slots, cands, tolerance)
    added = pd.concat([cands, frame([base + pd.Timedelta(seconds=extra)], ["zz"])], ignore_index=True)
    after = rank_candidates(slots, added, tolerance)
    new_time = base + pd.Timedelta(seconds=extra)
    for slot, old, new in zip(slots, before, after, strict=True):
        inside = slot - tolerance <= new_time < slot + tolerance
        assert (len(new) == len(old) + 1) if inside else (new == old)


@given(seconds=times_strategy)
def test_each_candidate_fills_at_most_one_slot_and_order_is_by_distance(seconds):
    base = pd.Timestamp("2010-01-01", tz="UTC")
    slots = pd.date_range(base, periods=7, freq="6h")
    cands = frame([base + pd.Timedelta(seconds=s) for s in seconds])
    ranked = rank_candidates(slots, cands, pd.Timedelta("3h"))
    flat = [i for lst in ranked for i in lst]
    assert len(flat) == len(set(flat))
    for slot, lst in zip(slots, ranked, strict=True):
        distances = [abs(cands["time_utc"].iloc[i] - slot) for i in lst]
        assert distances == sorted(distances)
