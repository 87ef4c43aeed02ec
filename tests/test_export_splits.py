"""Leak-free splits: whole time blocks per split, a guard gap at every change, the same blocks for the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heliocube.config import ConfigError, validate_config
from heliocube.export.splits import GAP, SPLITS, assign_splits, read_splits, splits_job, write_splits

#: Two and a half years every 6 h: enough month blocks for every split.
TIMES = pd.date_range("2010-05-13", "2012-11-30", freq="6h", tz="UTC")


def _closest_across_splits(table: pd.DataFrame) -> pd.Timedelta:
    """Smallest distance between two samples (gap rows excluded) of different splits."""
    kept = table[table["split"] != GAP]
    values = kept["time"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    best = np.iinfo(np.int64).max
    for split in SPLITS:
        mine = np.sort(values[kept["split"].to_numpy() == split])
        other = np.sort(values[kept["split"].to_numpy() != split])
        if len(mine) == 0 or len(other) == 0:
            continue
        at = np.searchsorted(other, mine)
        for side in (np.clip(at, 0, len(other) - 1), np.clip(at - 1, 0, len(other) - 1)):
            best = min(best, int(np.abs(other[side] - mine).min()))
    return pd.Timedelta(best, unit="ns")


def test_every_sample_has_one_split_and_different_splits_are_a_gap_apart():
    table = assign_splits(TIMES, block="month", seed=3, gap="1d")
    assert len(table) == len(TIMES) and table["time"].is_unique  # one row, so one split, per sample
    assert set(table["split"]) == {*SPLITS, GAP}
    assert _closest_across_splits(table) >= pd.Timedelta("1D")
    # whole months: every month's non-gap rows share one split
    months = table[table["split"] != GAP].groupby(table["time"].dt.strftime("%Y-%m"))["split"].nunique()
    assert (months == 1).all()
    shares = table.loc[table["split"] != GAP, "split"].value_counts(normalize=True)
    assert shares["train"] > shares["val"] and shares["train"] > shares["test"]


@settings(max_examples=60, deadline=None)
@given(block=st.sampled_from(["month", "week", "day"]), gap_hours=st.integers(0, 96), seed=st.integers(0, 10**6),
       keep=st.lists(st.booleans(), min_size=200, max_size=200))
def test_no_two_samples_of_different_splits_are_closer_than_the_gap(block, gap_hours, seed, keep):
    times = pd.date_range("2011-01-01", periods=200, freq="13h", tz="UTC")[np.array(keep)]  # irregular rows
    table = assign_splits(times, block=block, seed=seed, gap=pd.Timedelta(hours=gap_hours),
                          fractions={"train": 0.4, "val": 0.3, "test": 0.3})
    assert len(table) == len(times)
    if len(times):
        assert _closest_across_splits(table) >= pd.Timedelta(hours=gap_hours)


def test_the_seed_decides_and_extending_the_range_moves_no_block():
    first = assign_splits(TIMES, seed=7)
    assert first["split"].tolist() == assign_splits(TIMES, seed=7)["split"].tolist()
    assert first["split"].tolist() != assign_splits(TIMES, seed=8)["split"].tolist()
    longer = assign_splits(TIMES.append(pd.date_range("2012-12-01", "2013-06-30", freq="6h", tz="UTC")), seed=7)
    head = longer.iloc[:len(TIMES)]
    not_at_the_end = first["time"] < pd.Timestamp("2012-11-01", tz="UTC")  # the old last month may gain a gap
    assert (head["split"][not_at_the_end] == first["split"][not_at_the_end]).all()


def test_explicit_ranges_with_a_default_and_gaps_at_their_edges():
    times = pd.date_range("2010-10-01", "2010-10-31 18:00", freq="6h", tz="UTC")
    table = assign_splits(times, gap="12h", default="train", ranges=[
        {"split": "val", "start": "2010-10-10", "finish": "2010-10-12"},
        {"split": "test", "start": "2010-10-20", "finish": "2010-10-20"}])
    split = dict(zip(table["time"].dt.strftime("%Y-%m-%dT%H"), table["split"], strict=True))
    # rows closer than 6 h to a change are gap rows: exactly 6 h away is kept
    assert split["2010-10-09T18"] == "train" and split["2010-10-10T00"] == GAP and split["2010-10-10T06"] == "val"
    assert split["2010-10-12T18"] == "val" and split["2010-10-13T00"] == GAP and split["2010-10-13T06"] == "train"
    assert split["2010-10-20T12"] == "test" and split["2010-10-25T00"] == "train"
    assert _closest_across_splits(table) >= pd.Timedelta("12h")


def test_the_manifest_round_trips_and_the_job_covers_every_synced_row(tmp_path):
    from tests.test_export_zarr import make_synced

    synced = make_synced(tmp_path)
    options = validate_config({"products": ["AIA171"], "date_start": "2010-12-31", "date_finish": "2011-01-01",
                               "exports": {"splits": {"block": "day", "gap": "6h"}}})["exports"]["splits"]
    splits_job(str(synced), str(tmp_path / "splits.csv"), options)
    table = read_splits(tmp_path / "splits.csv")
    import h5py

    with h5py.File(synced, "r") as f:
        times = pd.to_datetime([t.decode() for t in f["time"][()]], utc=True)
    assert table["time"].tolist() == list(times)
    write_splits(tmp_path / "again.csv", table)
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "splits.csv").read_text()


@pytest.mark.parametrize(("splits", "key", "message"), [
    ({"fractions": {"train": 0.5}}, "exports.splits.fractions", "sum to 0.7"),
    ({"gap": "soon"}, "exports.splits.gap", "cannot parse duration"),
    ({"block": "year"}, "exports.splits.block", "is not one of"),
    ({"ranges": [{"split": "val", "start": "2010-10-16", "finish": "2010-10-15"}]},
     "exports.splits.ranges[0].finish", "before its start"),
    ({"ranges": [{"split": "val", "start": "2010-10-01", "finish": "2010-10-15"},
                 {"split": "test", "start": "2010-10-15", "finish": "2010-10-20"}]},
     "exports.splits.ranges[1]", "overlaps exports.splits.ranges[0]"),
])
def test_bad_split_settings_name_their_key(splits, key, message):
    with pytest.raises(ConfigError) as info:
        validate_config({"products": ["EIT195"], "date_start": "2010-10-15", "date_finish": "2010-10-16",
                         "exports": {"splits": splits}})
    assert info.value.key == key and message in str(info.value)


def test_exports_are_on_by_default_with_sdoml_chunks():
    exports = validate_config({"products": ["EIT195"], "date_start": "2010-10-15", "date_finish": "2010-10-16"})[
        "exports"]
    assert exports["enabled"] and exports["zarr"]["chunk_frames"] == 120 and exports["splits"]["gap"] == "1d"
