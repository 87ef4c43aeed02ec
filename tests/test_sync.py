"""heliocube.sync: nearest matching, ledger, running differences, the synced file, xarray, prior-tool files."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from heliocube.cube import CubeWriter, build_master
from heliocube.slots import rank_candidates
from heliocube.sync import (
    MISSING_FRAME,
    NO_FRAME_WITHIN_TOLERANCE,
    NO_PREVIOUS_ROW,
    PREVIOUS_ROW_BEYOND_MAX_GAP,
    apply_running_difference,
    build_time_axis,
    check_step_multiple,
    match_products,
    nearest_frames,
    open_synced_xarray,
    read_frame_times,
    sync_experiment,
    synced_csv_path,
    write_prior_tool_files,
    write_synced,
)
from heliocube.sync import writer as writer_module

DAY = "2010-01-01"
BASE = pd.Timestamp(DAY, tz="UTC")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").tz_localize(None).isoformat()


def _frames(times, ids=None) -> pd.DataFrame:
    """A frame table with obs_time as ISO text (as cubes store it)."""
    ids = [f"r{i:03d}" for i in range(len(times))] if ids is None else ids
    return pd.DataFrame({"obs_time": [_iso(pd.Timestamp(t)) for t in times], "record_id": ids}, dtype=object)


def _make_cube(path, obs_times, *, shape=(6, 5), seed=0, compression="gzip", cadence="6h"):
    """A small cube with noisy frames (NaN corner), extra provenance columns and headers; returns the frames."""
    rng = np.random.default_rng(seed)
    frames = []
    attrs = {"variant": "test-6h", "config_hash": "cfg1", "units": "DN/s", "cadence": cadence}
    with CubeWriter(path, shape, compression=compression, attrs=attrs) as writer:
        for i, obs in enumerate(obs_times):
            frame = (rng.normal(size=shape) * 1e-10).astype(np.float32)  # LASCO L1-like values: int16 would zero them
            frame[0, 0] = np.nan
            frames.append(frame)
            row = {
                "slot_time": obs[:13] + ":00:00",
                "obs_time": obs,
                "record_id": f"rec{i}",
                "sha256": f"{i:064x}",
                "qc_holes": float(i) / 10,
                "n_missing_blocks": i,
                "qc_ok": bool(i % 2),
            }
            writer.append(frame, row, f"SIMPLE  = T\nFRAME   = {i}\nDATE-OBS= '{obs}'\nCOMMENT first\nCOMMENT second")
    return np.stack(frames) if frames else np.empty((0, *shape), np.float32)


# -- matching ------------------------------------------------------------------------------------------------------


def test_nearest_not_earliest():
    # the prior tool took the earliest frame in the window (05:00); the nearest is 06:20
    frames = _frames([BASE + pd.Timedelta("5h"), BASE + pd.Timedelta("6h20min")])
    table = match_products({"A": frames}, DAY, DAY, "6h")
    assert table.time[0] == BASE + pd.Timedelta("6h") and table.source_index["A"][0] == 1
    assert table.dt_seconds("A")[0] == 1200.0


@pytest.mark.parametrize(
    ("offset", "matched"),
    [("-3h", True), ("-2h59min59s", True), ("2h59min59s", True), ("3h", False), ("-3h1s", False)],
)
def test_tolerance_window_is_half_open(offset, matched):
    noon = BASE + pd.Timedelta("12h")
    frame_time = noon + pd.Timedelta(offset)
    index = nearest_frames(pd.DatetimeIndex([noon]), pd.DatetimeIndex([frame_time]), ["x"], "3h")
    assert bool(index[0] == 0) is matched
    table = match_products({"A": _frames([frame_time])}, DAY, DAY, "6h", tolerance="3h")
    assert (noon in set(table.time)) is matched


def test_ties_go_to_earlier_then_smaller_record_id():
    slot = BASE + pd.Timedelta("12h")
    times = pd.DatetimeIndex([slot + pd.Timedelta("10min"), slot - pd.Timedelta("10min")])
    assert nearest_frames(pd.DatetimeIndex([slot]), times, ["a", "b"], "3h")[0] == 1  # equal |dt|: earlier
    same = pd.DatetimeIndex([slot + pd.Timedelta("1min")] * 3)
    # ids compare as strings, as in rank_candidates: "10" < "9"
    assert nearest_frames(pd.DatetimeIndex([slot]), same, [9, 10, 11], "3h")[0] == 1


def test_nat_frames_are_never_chosen():
    times = pd.DatetimeIndex([pd.NaT, BASE + pd.Timedelta("1min")], tz="UTC")
    assert list(nearest_frames(pd.DatetimeIndex([BASE]), times, ["a", "b"], "3h")) == [1]
    table = match_products({"A": pd.DataFrame({"obs_time": ["", _iso(BASE)], "record_id": ["a", "b"]})}, DAY, DAY, "6h")
    assert list(table.source_index["A"]) == [1]


_minutes = st.integers(min_value=-600, max_value=2000)


@SETTINGS
@given(
    frame_minutes=st.lists(st.one_of(_minutes, st.none()), max_size=40),
    ids=st.lists(st.sampled_from(["a", "b", "10", "9", "a1", "B", ""]), min_size=40, max_size=40),
    slot_minutes=st.lists(st.integers(min_value=-700, max_value=2100), max_size=30),
    tol_minutes=st.integers(min_value=1, max_value=500),
)
def test_vectorised_nearest_equals_rank_candidates(frame_minutes, ids, slot_minutes, tol_minutes):
    times = pd.DatetimeIndex(
        [pd.NaT if m is None else BASE + pd.Timedelta(minutes=m) for m in frame_minutes], tz="UTC"
    ).as_unit("ns")
    ids = ids[: len(times)]
    slots = pd.DatetimeIndex([BASE + pd.Timedelta(minutes=m) for m in slot_minutes], tz="UTC").as_unit("ns")
    tolerance = pd.Timedelta(minutes=tol_minutes)
    expected = rank_candidates(slots, pd.DataFrame({"time_utc": times, "record_id": ids}), tolerance)
    got = nearest_frames(slots, times, ids, tolerance)
    assert list(got) == [ranked[0] if ranked else MISSING_FRAME for ranked in expected]


def test_build_time_axis_covers_whole_days():
    axis = build_time_axis("2010-01-01", "2010-01-02", "6h")
    assert len(axis) == 8 and axis[0] == BASE and axis[-1] == BASE + pd.Timedelta("1D18h")
    assert str(axis.tz) == "UTC"
    # 7h does not divide a day: the anchor keeps the axis on the cubes' slot grid
    axis = build_time_axis("2010-01-02", "2010-01-02", "7h", anchor="2010-01-01")
    assert list(axis.hour) == [4, 11, 18]
    with pytest.raises(ValueError, match="before start"):
        build_time_axis("2010-01-02", "2010-01-01", "6h")


# -- step multiples ------------------------------------------------------------------------------------------------


@given(cadence_s=st.integers(min_value=1, max_value=86400), k=st.integers(min_value=1, max_value=50))
def test_whole_multiples_accepted(cadence_s, k):
    check_step_multiple(dt.timedelta(seconds=cadence_s * k), {"P": dt.timedelta(seconds=cadence_s)})


@given(
    cadence_s=st.integers(min_value=2, max_value=86400),
    k=st.integers(min_value=0, max_value=50),
    remainder=st.integers(min_value=1, max_value=86399),
)
def test_non_multiples_rejected_naming_the_product(cadence_s, k, remainder):
    assume(remainder < cadence_s)
    step = dt.timedelta(seconds=cadence_s * k + remainder)
    with pytest.raises(ValueError, match="EIT195"):
        check_step_multiple(step, {"MDI_96m": dt.timedelta(seconds=1), "EIT195": dt.timedelta(seconds=cadence_s)})


def test_step_checks_in_match_products():
    frames = {"MDI_96m": _frames([BASE]), "EIT195": _frames([BASE])}
    match_products(frames, DAY, DAY, "12h", cadences={"MDI_96m": "6h", "EIT195": "12min"})
    with pytest.raises(ValueError, match="MDI_96m"):
        match_products(frames, DAY, DAY, "9h", cadences={"MDI_96m": "6h", "EIT195": "12min"})
    with pytest.raises(ValueError, match="tolerance"):
        match_products(frames, DAY, DAY, "6h", tolerance=dt.timedelta(hours=3, seconds=1))
    with pytest.raises(ValueError, match="tolerance"):
        match_products(frames, DAY, DAY, "6h", tolerance=dt.timedelta(0))
    with pytest.raises(ValueError, match="no cube cadence given for products \\['EIT195'\\]"):
        match_products(frames, DAY, DAY, "6h", cadences={"MDI_96m": "6h"})


# -- ledger and presence -------------------------------------------------------------------------------------------


def test_product_without_any_frame():
    frames = {"A": _frames([BASE, BASE + pd.Timedelta("6h")]), "B": _frames([])}
    table = match_products(frames, DAY, DAY, "6h")
    assert len(table) == 0 and len(table.axis) == 4
    assert table.dropped_counts().to_dict() == {"A": 2, "B": 4}
    assert set(table.ledger["reason"]) == {NO_FRAME_WITHIN_TOLERANCE}
    kept = match_products(frames, DAY, DAY, "6h", keep_missing=True)
    assert len(kept) == 4 and not kept.present("B").any()
    assert list(kept.present("A")) == [True, True, False, False]
    assert not kept.ledger["dropped"].any() and len(kept.ledger) == 6
    assert np.isnan(kept.dt_seconds("B")).all()


_product_minutes = st.lists(st.integers(min_value=-200, max_value=3 * 1440 + 200), max_size=25)


@SETTINGS
@given(
    per_product=st.lists(_product_minutes, min_size=1, max_size=4),
    step_hours=st.sampled_from([1, 2, 3, 6, 12]),
    tol_fraction=st.sampled_from([0.1, 0.25, 0.5]),
    keep_missing=st.booleans(),
)
def test_every_axis_time_is_a_row_or_counted(per_product, step_hours, tol_fraction, keep_missing):
    frames = {
        f"P{j}": _frames([BASE + pd.Timedelta(minutes=m) for m in minutes]) for j, minutes in enumerate(per_product)
    }
    step = pd.Timedelta(hours=step_hours)
    table = match_products(
        frames, "2010-01-01", "2010-01-03", step, tolerance=step * tol_fraction, keep_missing=keep_missing
    )
    rows = set(table.time)
    dropped = set(table.ledger.loc[table.ledger["dropped"], "time"])
    assert rows.isdisjoint(dropped) and rows | dropped == set(table.axis)
    assert len(table.axis) == 3 * 24 // step_hours
    for product, frame_table in frames.items():
        times = pd.DatetimeIndex(pd.to_datetime(frame_table["obs_time"], utc=True))
        index = table.source_index[product]
        used = index[index != MISSING_FRAME]
        assert len(set(used)) == len(used)  # a frame serves at most one row
        offsets = times[used] - table.time[index != MISSING_FRAME]
        assert ((offsets >= -table.tolerance) & (offsets < table.tolerance)).all()
        # per product: the ledger lists exactly the axis times where that product had no frame
        full = match_products({product: frame_table}, "2010-01-01", "2010-01-03", step, tolerance=table.tolerance)
        missing_times = set(table.axis) - set(full.time)
        assert set(table.ledger.loc[table.ledger["product"] == product, "time"]) == missing_times
        if keep_missing:
            assert list(table.present(product)) == list(index != MISSING_FRAME)
    if keep_missing:
        assert rows == set(table.axis) and not table.ledger["dropped"].any()
    else:
        assert all((table.source_index[p] != MISSING_FRAME).all() for p in frames)


# -- running differences -------------------------------------------------------------------------------------------


@SETTINGS
@given(
    present_hours=st.sets(st.integers(min_value=0, max_value=71), max_size=40),
    gap_hours=st.sampled_from([6, 12, 24]),
)
def test_running_difference_pairs_consecutive_synced_rows(present_hours, gap_hours):
    hours = sorted(present_hours)
    frames = {
        "LASCO_C2": _frames([BASE + pd.Timedelta(hours=h) for h in hours]),
        "EIT195": _frames([BASE + pd.Timedelta(hours=h, minutes=5) for h in range(72)]),
    }
    synced = match_products(frames, "2010-01-01", "2010-01-03", "1h")
    table = apply_running_difference(synced, max_gap=f"{gap_hours}h")
    assert table.difference_products == ("LASCO_C2",)
    position = {t: k for k, t in enumerate(synced.time)}
    expected_rows = [
        k for k in range(1, len(synced)) if synced.time[k] - synced.time[k - 1] <= pd.Timedelta(hours=gap_hours)
    ]
    assert [position[t] for t in table.time] == expected_rows
    for j, k in enumerate(expected_rows):
        assert table.previous_time[j] == synced.time[k - 1]
        assert table.previous_source_index["LASCO_C2"][j] == synced.source_index["LASCO_C2"][k - 1]
        assert table.source_index["EIT195"][j] == synced.source_index["EIT195"][k]  # later row's frame
    diff_ledger = table.ledger[table.ledger["reason"].isin([NO_PREVIOUS_ROW, PREVIOUS_ROW_BEYOND_MAX_GAP])]
    assert len(diff_ledger) == len(synced) - len(table)
    rows, dropped = set(table.time), set(table.ledger.loc[table.ledger["dropped"], "time"])
    assert rows.isdisjoint(dropped) and rows | dropped == set(table.axis)


def test_running_difference_needs_a_difference_product():
    table = match_products({"EIT195": _frames([BASE])}, DAY, DAY, "6h")
    with pytest.raises(ValueError, match="none of"):
        apply_running_difference(table)


def test_written_differences_equal_frame_differences_and_respect_gap(tmp_path):
    c2_hours = [0, 6, 12, 42, 48, 54]  # the 30 h hole breaks the chain: 42h is dropped with max_gap 24h
    c2_obs = [_iso(BASE + pd.Timedelta(hours=h, minutes=3)) for h in c2_hours]
    eit_obs = [_iso(BASE + pd.Timedelta(hours=h, minutes=-7)) for h in range(0, 60, 6)]
    c2 = _make_cube(tmp_path / "c2.h5", c2_obs, seed=1)
    eit = _make_cube(tmp_path / "eit.h5", eit_obs, seed=2)
    result = sync_experiment(
        tmp_path / "synced" / "fc.h5",
        {"LASCO_C2": tmp_path / "c2.h5", "EIT195": tmp_path / "eit.h5"},
        experiment="fc",
        start="2010-01-01",
        finish="2010-01-03",
        step="6h",
        running_difference=True,
    )
    with h5py.File(result.path, "r") as f:
        times = list(f["time"].asstr()[()])
        assert times == [_iso(BASE + pd.Timedelta(hours=h)) for h in (6, 12, 48, 54)]
        assert list(f["previous_time"].asstr()[()]) == [_iso(BASE + pd.Timedelta(hours=h)) for h in (0, 6, 42, 48)]
        cur, prev = f["LASCO_C2/source_index"][()], f["LASCO_C2/previous/source_index"][()]
        assert list(cur) == [1, 2, 4, 5] and list(prev) == [0, 1, 3, 4]
        for i in range(4):
            np.testing.assert_array_equal(f["LASCO_C2/data"][i], c2[cur[i]] - c2[prev[i]])
            np.testing.assert_array_equal(f["EIT195/data"][i], eit[f["EIT195/source_index"][i]])
        assert list(f["LASCO_C2/previous/frames/record_id"].asstr()[()]) == [f"rec{k}" for k in prev]
        assert list(f.attrs["difference_products"]) == ["LASCO_C2"]
        reasons = dict(zip(f["ledger/time"].asstr()[()], f["ledger/reason"].asstr()[()], strict=True))
    assert reasons[_iso(BASE)] == NO_PREVIOUS_ROW
    assert reasons[_iso(BASE + pd.Timedelta("42h"))] == PREVIOUS_ROW_BEYOND_MAX_GAP


# -- the synced file -----------------------------------------------------------------------------------------------


def _two_cubes(tmp_path, compression="gzip"):
    a_obs = [_iso(BASE + pd.Timedelta(hours=h, seconds=s)) for h, s in ((0, 40), (6, -30.5), (12, 2), (18, 0))]
    a_obs += [_iso(BASE + pd.Timedelta(hours=24 + h, minutes=1)) for h in (0, 6, 12, 18)]
    b_obs = [_iso(BASE + pd.Timedelta(hours=h, minutes=-4)) for h in (0, 12, 18, 30, 36, 42)]
    a = _make_cube(tmp_path / "a.h5", a_obs, seed=3, compression=compression)
    b = _make_cube(tmp_path / "b.h5", b_obs, seed=4, compression=compression)
    return {"MDI_96m": tmp_path / "a.h5", "EIT195": tmp_path / "b.h5"}, {"MDI_96m": a, "EIT195": b}


@pytest.mark.parametrize(("cube_compression", "out_compression"), [("gzip", "gzip"), ("gzip", "lzf"), (None, None)])
def test_written_frames_equal_source_rows(tmp_path, monkeypatch, cube_compression, out_compression):
    cubes, frames = _two_cubes(tmp_path, cube_compression)
    if cube_compression == out_compression:  # same filters: every frame must move as its compressed chunk

        def no_decode(self, row):
            raise AssertionError("frame decoded although its chunk could be copied")

        monkeypatch.setattr(writer_module.FrameSource, "read", no_decode)
    times = {p: read_frame_times(path) for p, path in cubes.items()}
    table = match_products(times, "2010-01-01", "2010-01-02", "6h")
    path = write_synced(
        tmp_path / "exp.h5", table, cubes, experiment="exp", config_hash="abc", compression=out_compression
    )
    with h5py.File(path, "r") as f, h5py.File(cubes["EIT195"], "r") as src:
        assert f.attrs["experiment"] == "exp" and f.attrs["config_hash"] == "abc"
        assert list(f.attrs["products"]) == ["MDI_96m", "EIT195"] and f.attrs["step"] == "6h"
        assert f.attrs["tolerance_seconds"] == 10800 and f.attrs["axis_length"] == 8 and f.attrs["n_rows"] == 6
        assert f.attrs["version_h5py"] == h5py.__version__ and list(f.attrs["units"]) == ["DN/s", "DN/s"]
        for product in cubes:
            group = f[product]
            data = group["data"]
            assert data.dtype == np.float32 and data.chunks == (1, 6, 5) and data.compression == out_compression
            index = group["source_index"][()]
            for i, row in enumerate(index):
                stored = data[i]
                assert stored.tobytes() == frames[product][row].tobytes()  # byte-equal, NaN included
            source_frames = read_frame_times(cubes[product])
            assert list(group["frames/record_id"].asstr()[()]) == [f"rec{k}" for k in index]
            assert list(group["obs_time"].asstr()[()]) == [source_frames["obs_time"][k] for k in index]
            assert group["frames/n_missing_blocks"].dtype == np.int64
            assert list(group["frames/n_missing_blocks"][()]) == list(index)
            assert group["frames/qc_ok"].dtype == bool
            np.testing.assert_array_equal(group["dt_seconds"][()], table.dt_seconds(product))
            assert group["present"][()].all() and group.attrs["source_variant"] == "test-6h"
        assert list(f["EIT195/headers"][()]) == [src["headers"][k] for k in f["EIT195/source_index"][()]]
        assert list(f["time"].asstr()[()]) == [_iso(t) for t in table.time]
    with open(synced_csv_path(path), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["time"] for r in rows] == [_iso(t) for t in table.time]
    assert rows[1]["MDI_96m_obs_time"] == "2010-01-01T12:00:02"
    assert float(rows[0]["EIT195_dt_seconds"]) == 240.0


def test_frames_from_a_virtual_master(tmp_path, monkeypatch):
    years = []
    frames = []
    for year, seed in ((2009, 5), (2010, 6)):
        obs = [_iso(pd.Timestamp(f"{year}-12-31", tz="UTC") + pd.Timedelta(hours=h, minutes=2)) for h in (0, 6, 12, 18)]
        frames.append(_make_cube(tmp_path / f"c{year}.h5", obs, seed=seed))
        years.append(tmp_path / f"c{year}.h5")
    build_master(tmp_path / "master.h5", years)
    all_frames = np.concatenate(frames)

    def no_decode(self, row):
        raise AssertionError("the virtual master's chunks should be resolved and copied")

    monkeypatch.setattr(writer_module.FrameSource, "read", no_decode)
    result = sync_experiment(
        tmp_path / "out.h5",
        {"EIT195": tmp_path / "master.h5"},
        experiment="vds",
        start="2009-12-31",
        finish="2010-12-31",
        step="6h",
        cadences="6h",
    )
    assert len(result.table) == 8
    with h5py.File(result.path, "r") as f:
        index = f["EIT195/source_index"][()]
        assert list(index) == list(range(8))
        for i, row in enumerate(index):
            assert f["EIT195/data"][i].tobytes() == all_frames[row].tobytes()


def test_keep_missing_writes_nan_frames_and_mask(tmp_path):
    cubes, frames = _two_cubes(tmp_path)
    result = sync_experiment(
        tmp_path / "km.h5", cubes, experiment="km", start=DAY, finish="2010-01-02", step="6h", keep_missing=True
    )
    with h5py.File(result.path, "r") as f:
        assert f.attrs["n_rows"] == 8 and f.attrs["keep_missing"]
        present = f["EIT195/present"][()]
        assert list(present) == [True, False, True, True, False, True, True, True]
        data = f["EIT195/data"][()]
        assert np.isnan(data[~present]).all()
        index = f["EIT195/source_index"][()]
        assert (index[~present] == MISSING_FRAME).all()
        for i in np.flatnonzero(present):
            assert data[i].tobytes() == frames["EIT195"][index[i]].tobytes()
        assert list(f["EIT195/frames/record_id"].asstr()[()])[1] == ""
        assert np.isnan(f["EIT195/frames/qc_holes"][1]) and f["EIT195/frames/n_missing_blocks"][1] == -1
        assert f["EIT195/headers"].asstr()[1] == ""
        assert list(f["ledger/dropped"][()]) == [False, False]
        assert f["MDI_96m/obs_time"].asstr()[1] == "2010-01-01T05:59:29.500000"  # fractional seconds kept


def test_empty_cube_product(tmp_path):
    cubes, _ = _two_cubes(tmp_path)
    _make_cube(tmp_path / "empty.h5", [])
    cubes = {**cubes, "EIT171": tmp_path / "empty.h5"}
    kwargs = {"experiment": "e", "start": DAY, "finish": "2010-01-02", "step": "6h"}
    dropped = sync_experiment(tmp_path / "d.h5", cubes, **kwargs)
    assert len(dropped.table) == 0 and dropped.table.dropped_counts()["EIT171"] == 8
    with h5py.File(dropped.path, "r") as f:
        assert f["EIT171/data"].shape == (0, 6, 5) and f.attrs["n_dropped_rows"] == 8
    kept = sync_experiment(tmp_path / "k.h5", cubes, keep_missing=True, **kwargs)
    with h5py.File(kept.path, "r") as f:
        assert f["EIT171/data"].shape == (8, 6, 5) and np.isnan(f["EIT171/data"][()]).all()
        assert not f["EIT171/present"][()].any() and f["MDI_96m/present"][()].all()
    with open_synced_xarray(kept.path) as ds:
        assert int(ds["EIT171_present"].sum()) == 0


def test_open_synced_xarray(tmp_path):
    cubes, frames = _two_cubes(tmp_path)
    result = sync_experiment(tmp_path / "x.h5", cubes, experiment="x", start=DAY, finish="2010-01-02", step="6h")
    with open_synced_xarray(result.path) as ds:
        assert ds["EIT195"].dims == ("time", "y", "x") and ds["EIT195"].shape == (6, 6, 5)
        assert ds["EIT195"].attrs["units"] == "DN/s"
        assert list(ds["time"].values) == list(result.table.time.tz_localize(None).to_numpy())
        index = ds["EIT195_source_index"].values
        np.testing.assert_array_equal(ds["EIT195"].isel(time=2).values, frames["EIT195"][index[2]])
        assert ds["MDI_96m_record_id"].values[0] == "rec0"
        assert ds.attrs["products"] == ["MDI_96m", "EIT195"]
    loaded = open_synced_xarray(result.path, load=True)
    np.testing.assert_array_equal(loaded["MDI_96m"].values[1], frames["MDI_96m"][loaded["MDI_96m_source_index"][1]])


def test_atomic_write_leaves_no_file_on_error(tmp_path, monkeypatch):
    cubes, _ = _two_cubes(tmp_path)
    times = {p: read_frame_times(path) for p, path in cubes.items()}
    table = match_products(times, DAY, "2010-01-02", "6h")
    target = tmp_path / "out" / "exp.h5"

    calls = {"n": 0}
    original = writer_module.FrameSource.read_chunk

    def failing(self, row, signature):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, row, signature)

    monkeypatch.setattr(writer_module.FrameSource, "read_chunk", failing)
    with pytest.raises(OSError, match="disk full"):
        write_synced(target, table, cubes, experiment="exp")
    assert not target.exists() and not synced_csv_path(target).exists()
    assert os.listdir(target.parent) == []  # no partial file left behind
    monkeypatch.undo()

    write_synced(target, table, cubes, experiment="first")
    stale = dataclasses.replace(
        table, source_index={**table.source_index, "EIT195": table.source_index["EIT195"] + 100}
    )
    with pytest.raises(ValueError, match="beyond"):
        write_synced(target, stale, cubes, experiment="second")
    with h5py.File(target, "r") as f:
        assert f.attrs["experiment"] == "first"  # the previous complete file is untouched
    assert sorted(os.listdir(target.parent)) == ["exp.csv", "exp.h5"]


def test_cadence_required(tmp_path):
    _make_cube(tmp_path / "a.h5", [_iso(BASE)], cadence="6h")
    with h5py.File(tmp_path / "a.h5", "a") as f:
        del f.attrs["cadence"]
    with pytest.raises(ValueError, match="cadence"):
        sync_experiment(tmp_path / "o.h5", {"A": tmp_path / "a.h5"}, experiment="e", start=DAY, finish=DAY, step="6h")
    with pytest.raises(ValueError, match="A"):
        sync_experiment(
            tmp_path / "o.h5", {"A": tmp_path / "a.h5"}, experiment="e", start=DAY, finish=DAY, step="8h", cadences="6h"
        )


# -- prior-tool files ----------------------------------------------------------------------------------------------


def test_prior_tool_files(tmp_path):
    cubes, frames = _two_cubes(tmp_path)
    # start a day after the cubes begin: the prior tool's metadata keys were offset here
    result = sync_experiment(
        tmp_path / "exp.h5",
        cubes,
        experiment="exp",
        start="2010-01-02",
        finish="2010-01-02",
        step="12h",
        cadences="6h",
        prior_tool_dir=tmp_path / "prior",
    )
    names = sorted(p.name for p in result.prior_tool_paths)
    assert names == [
        "2010-01-02_to_2010-01-02_EIT195_SOHO_2products_6_12_6x5_metadata_sync.h5",
        "2010-01-02_to_2010-01-02_EIT195_SOHO_2products_6_12_6x5_times_sync.csv",
        "2010-01-02_to_2010-01-02_MDI_96m_SOHO_2products_6_12_6x5_metadata_sync.h5",
        "2010-01-02_to_2010-01-02_MDI_96m_SOHO_2products_6_12_6x5_times_sync.csv",
    ]
    assert all(":" not in name for name in names)
    h5_path = tmp_path / "prior" / names[2]
    mdi_index = result.table.source_index["MDI_96m"]
    assert list(mdi_index) == [4, 6]  # rows of the whole cube, which starts a day earlier
    with h5py.File(h5_path, "r") as f:
        data = f["MDI_96m_SOHO_6x5"]
        assert data.dtype == np.float32 and data.shape == (2, 6, 5)
        for n, k in enumerate(mdi_index):
            assert data[n].tobytes() == frames["MDI_96m"][k].tobytes()  # ~1e-10 values survive (int16 zeroed them)
        assert f.attrs["NOTE"] == "JSON serialization"
        metadata = json.loads(f["MDI_96m_SOHO_6x5_metadata"][()])
    assert metadata["FRAME_4_syncslice0"] == 4 and metadata["FRAME_6_syncslice1"] == 6
    assert metadata["COMMENT6_6_syncslice1"] == "first\nsecond"
    assert metadata["DATE-OBS_6_syncslice1"] == "2010-01-02T12:01:00"
    lines = (tmp_path / "prior" / names[3]).read_text().splitlines()
    assert lines == ["20100102000100", "20100102120100"]


def test_prior_tool_fcorona_names(tmp_path):
    obs = [_iso(BASE + pd.Timedelta(hours=h)) for h in (0, 6, 12)]
    _make_cube(tmp_path / "c3.h5", obs)
    synced = sync_experiment(
        tmp_path / "s.h5",
        {"LASCO_C3": tmp_path / "c3.h5"},
        experiment="e",
        start=DAY,
        finish=DAY,
        step="6h",
        running_difference=True,
    )
    paths = write_prior_tool_files(
        synced.path, tmp_path / "p", missions={"LASCO_C3": "SOHO"}, windows={"LASCO_C3": "90min"}
    )
    assert [p.name for p in paths] == [
        "2010-01-01_to_2010-01-01_LASCO_C3_Fcorona_SOHO_1products_90min_6_6x5_metadata_sync.h5",
        "2010-01-01_to_2010-01-01_LASCO_C3_SOHO_1products_Fcorona_90min_6_6x5_times_sync.csv",
    ]
