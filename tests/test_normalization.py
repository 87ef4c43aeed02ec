"""Two-phase normalization: statistics merged from parts equal the whole's; every preset's inverse round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from heliocube.export.normalization import (
    PRESETS,
    Normalizer,
    Settings,
    gather_statistics,
    phase1_config,
    write_year_statistics,
    year_statistics,
)
from heliocube.export.statistics import PartialStats, bin_edges, bin_index

from .synced_fixture import make_synced

#: Solar values of every scale: DN, Gauss (negative), LASCO brightness, running differences, off-disk NaN.
VALUES = hnp.arrays(
    np.float32, st.integers(1, 400),
    elements=st.one_of(st.floats(-3000, 3000, width=32),
                       st.floats(float(np.float32(1e-13)), float(np.float32(1e-8)), width=32),
                       st.just(np.float32(np.nan)), st.just(np.float32(0.0))),
)


def _assert_same(merged: PartialStats, whole: PartialStats) -> None:
    assert merged.count == whole.count
    assert (merged.min, merged.max) == (whole.min, whole.max) or merged.count == 0
    np.testing.assert_array_equal(merged.bins, whole.bins)  # histograms exactly
    np.testing.assert_array_equal(merged.counts, whole.counts)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-9, atol=1e-12 * max(1.0, abs(whole.max or 0)))
    np.testing.assert_allclose(merged.m2, whole.m2, rtol=1e-8, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(values=VALUES, cuts=st.lists(st.integers(0, 400), max_size=8), data=st.data())
def test_statistics_merged_from_random_parts_equal_the_whole(values, cuts, data):
    parts = np.split(values, sorted(c for c in cuts if c <= len(values)))
    stats = [PartialStats.of(part) for part in parts]
    # merged in a random grouping: repeatedly join two random neighbours
    while len(stats) > 1:
        i = data.draw(st.integers(0, len(stats) - 2))
        stats[i : i + 2] = [stats[i].merge(stats[i + 1])]
    whole = PartialStats.of(values)
    _assert_same(stats[0], whole)
    finite = values[np.isfinite(values)].astype(np.float64)
    assert whole.count == len(finite)
    if len(finite):
        assert (whole.min, whole.max) == (finite.min(), finite.max())
        np.testing.assert_allclose(whole.var, finite.var(), rtol=1e-9, atol=1e-12)
        # json round trip keeps every number
        again = PartialStats.from_dict(json.loads(json.dumps(whole.to_dict())))
        _assert_same(again, whole)
        assert (again.mean, again.m2) == (whole.mean, whole.m2)


@settings(max_examples=100, deadline=None)
@given(values=hnp.arrays(np.float32, st.integers(2, 300), elements=st.floats(-1e6, 1e6, width=32)),
       q=st.floats(0, 1))
def test_histogram_quantiles_lie_in_the_bins_of_the_exact_quantiles_neighbours(values, q):
    stats = PartialStats.of(values)
    ordered = np.sort(values.astype(np.float64))
    rank = q * (len(ordered) - 1)
    below, above = ordered[int(np.floor(rank))], ordered[int(np.ceil(rank))]
    lower, _ = bin_edges(bin_index(np.array([below])))
    _, upper = bin_edges(bin_index(np.array([above])))
    got = stats.quantile(q)
    assert lower[0] <= got <= upper[0]
    assert stats.min <= got <= stats.max
    if q in (0.0, 1.0):
        assert got == ordered[int(rank)]


def test_bins_have_fixed_edges_that_hold_their_values():
    values = np.array([-3e38, -1.5, -1e-12, 0.0, -0.0, 1e-45, 1e-12, 1.0, 1.5, 3e38], dtype=np.float32)
    bins = bin_index(values)
    lower, upper = bin_edges(bins)
    assert np.all(np.diff(bins) >= 0)  # bins sort like the values
    assert np.all((lower <= values) & (values < upper))
    assert bins[3] == bins[4]  # -0.0 and 0.0 share a bin


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_inverts_within_its_clip_and_keeps_nan(preset):
    rng = np.random.default_rng(0)
    values = (rng.lognormal(5, 1.5, 20000) * rng.choice([1, -1], 20000, p=[0.9, 0.1])).astype(np.float32)
    values[:50] = np.nan
    normalizer = Normalizer(Settings(preset=preset), {"AIA_0171": PartialStats.of(Settings(preset=preset)
                                                                                  .transform_values(values))})
    y = normalizer.forward(values, "AIA_0171")
    assert y.dtype == np.float32 and np.isnan(y[:50]).all() and np.isfinite(y[50:]).all()
    back = normalizer.inverse(y, "AIA_0171")
    assert np.isnan(back[:50]).all()
    lo, hi = normalizer.params["AIA_0171"]["clip"]
    t = Settings(preset=preset).transform_values(values)
    inside = (t >= lo) & (t <= hi) & ~np.isnan(values)
    if preset == "log":
        inside &= values >= 1.0  # below the floor the logarithm kept only the floor
    assert inside.sum() > 0.99 * (inside.size - 50) * (0.9 if preset == "log" else 1)
    # float32 output: y is rounded to 2**-24 of itself, so t comes back within scale * |y| * 2**-23
    p = normalizer.params["AIA_0171"]
    t_back = Settings(preset=preset).transform_values(back)
    tolerance = p["scale"] * np.maximum(1.0, np.abs(y)) * 2.0**-22 + np.abs(t) * 2.0**-22
    assert np.all(np.abs(t_back - t)[inside] <= tolerance[inside])
    # beyond the clip the inverse gives the clip's bound
    outside = (t > hi) & ~np.isnan(values)
    if outside.any():
        np.testing.assert_allclose(back[outside], Settings(preset=preset).untransform(hi), rtol=1e-4)
    if PRESETS[preset][1] == "range":
        assert np.nanmin(y) >= 0 and np.nanmax(y) <= 1
    else:
        assert abs(float(np.nanmean(y))) < 0.05 and abs(float(np.nanstd(y)) - 1) < 0.05


def test_float64_round_trip_is_exact_to_float64_rounding():
    values = np.linspace(-50, 5000, 1001)
    for preset in ("minmax", "zscore", "asinh"):
        s = Settings(preset=preset, clip_quantiles=(0.0, 1.0))
        normalizer = Normalizer(s, {"c": PartialStats.of(s.transform_values(values))})
        np.testing.assert_allclose(normalizer.inverse(normalizer.forward(values, "c"), "c"), values, rtol=1e-12,
                                   atol=1e-9)


def test_minmax_is_sdoml_lite_zero_one_scaling():
    values = np.array([2.0, 4.0, 6.0, np.nan], dtype=np.float32)
    normalizer = Normalizer(Settings(), {"c": PartialStats.of(values)})
    np.testing.assert_array_equal(normalizer.forward(values, "c"), [0.0, 0.5, 1.0, np.nan])


def test_phase_one_per_year_gathers_into_the_whole_experiment(tmp_path):
    synced = make_synced(tmp_path, difference=True)  # rows in 2010 and 2011, LASCO differences negative
    config = {"preset": "asinh", "asinh_scale": 1e-10, "clip_quantiles": [0.01, 0.99]}
    settings_ = Settings.from_config(config)
    parts = [write_year_statistics(synced, year, Settings.from_config(phase1_config(config)),
                                   tmp_path / f"{year}.json", experiment="x") for year in (2010, 2011)]
    normalizer = gather_statistics(parts, settings_, tmp_path / "normalization.json", experiment="x",
                                   config_hash="abc")
    import h5py

    with h5py.File(synced, "r") as f:
        whole = {"AIA_0171": f["AIA171"]["data"][()], "LASCO_C2": f["LASCO_C2"]["data"][()]}
    for channel, frames in whole.items():
        _assert_same(normalizer.stats[channel], PartialStats.of(settings_.transform_values(frames)))
        assert normalizer.stats[channel].count == np.isfinite(frames).sum()  # NaN pixels left out
    loaded = Normalizer.load(tmp_path / "normalization.json")
    assert loaded.meta["config_hash"] == "abc" and loaded.settings == settings_
    frame = whole["LASCO_C2"][3]
    np.testing.assert_array_equal(loaded.forward(frame, "LASCO_C2"), normalizer.forward(frame, "LASCO_C2"))
    assert np.nanmin(whole["LASCO_C2"]) < 0 and np.isnan(loaded.forward(frame, "LASCO_C2")[0, 0])
    # a year computed with another transform is refused, naming the file
    other = write_year_statistics(synced, 2011, Settings(preset="log"), tmp_path / "stale.json")
    with pytest.raises(ValueError, match=r"stale\.json was computed with"):
        gather_statistics([parts[0], other], settings_, tmp_path / "n2.json")
    # an empty year merges as nothing
    assert year_statistics(synced, 2012, settings_)["AIA_0171"].count == 0


def test_load_refuses_another_version(tmp_path):
    path = tmp_path / "n.json"
    Normalizer(Settings(), {"c": PartialStats.of(np.arange(5.0))}).save(path)
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="version 99"):
        Normalizer.load(path)
