"""heliocube.events.sampling: per-minute stratified draws, seeded per (event, product, phase), shortfalls."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from heliocube.events.labels import seed_file_name
from heliocube.events.partition import assign_owners, read_events, read_frame_table
from heliocube.events.sampling import allocate, event_rng, sample_event

from .event_frames import event, frame_times, some_bad, write_events, write_frame_table


def _owned(tmp_path, rows, status=None, times=None):
    events = read_events(write_events(tmp_path / "events.csv", rows))
    paths = [write_frame_table(tmp_path, row, status=status, times=times, files=False) for row in rows]
    tables = [read_frame_table(path, row["event_id"]) for path, row in zip(paths, rows, strict=True)]
    frames = assign_owners(events, pd.concat(tables, ignore_index=True))
    frames["filename"] = [seed_file_name(p, r, t) for p, r, t in
                          zip(frames["product"], frames["record"], frames["time"], strict=True)]  # fmt: skip
    return events, frames


def test_allocate_spreads_over_minutes():
    rng = np.random.default_rng(0)
    full = np.full(180, 5)
    one = allocate(full, 178, rng)
    assert one.sum() == 178 and set(one) == {0, 1}
    two = allocate(full, 356, rng)
    assert two.sum() == 356 and set(two) == {1, 2} and (two == 1).sum() == 4
    sparse = allocate([1, 0, 6, 2], 6, rng)  # a sparse bin gives all it has, the others share the rest
    assert list(sparse) == [1, 0, 3, 2]
    assert list(allocate([1, 0, 2], 10, rng)) == [1, 0, 2]  # fewer frames than asked: all of them
    assert allocate([], 5, rng).sum() == 0


def test_streams_are_per_event_product_phase():
    draws = [event_rng(7, "E1", "AIA131", "pre").integers(1 << 30, size=4) for _ in range(2)]
    assert (draws[0] == draws[1]).all()
    others = [event_rng(8, "E1", "AIA131", "pre"), event_rng(7, "E2", "AIA131", "pre"),
              event_rng(7, "E1", "AIA171", "pre"), event_rng(7, "E1", "AIA131", "post")]
    assert all((rng.integers(1 << 30, size=4) != draws[0]).any() for rng in others)


def test_one_flare_frame_per_minute_and_n_pre_post(tmp_path):
    rows = [event("E1", "2014-05-01T10:00:30", "2014-05-01T10:09:40")]  # 10 minute bins 1000..1009
    events, frames = _owned(tmp_path, rows)
    samples = sample_event(frames, events.iloc[0], "AIA131", seed=3, n_pre=12, n_post=7)
    flare = frames.loc[samples["flare"].chosen]
    assert len(flare) == 10 and flare["minute"].is_unique and set(flare["phase"]) == {"flare"}
    assert [row["hhmm"] for row in samples["flare"].log] == [f"10{m:02d}" for m in range(10)]
    assert all(row["chosen_file"] in set(flare["filename"]) for row in samples["flare"].log)
    for phase, n in (("pre", 12), ("post", 7)):
        chosen = frames.loc[samples[phase].chosen]
        assert len(chosen) == n and samples[phase].shortfall == 0 and set(chosen["phase"]) == {phase}
        assert chosen["minute"].value_counts().max() <= 2  # 10 minutes of 5 frames: spread, not clumped
    # the log's place/chosen_index index the phase's time-ordered drawable frames (the notebook's columns)
    ok = frames[(frames["phase"] == "pre") & (frames["status"] == "ok")].sort_values("time")
    for row in samples["pre"].log:
        for index, name in zip(row["chosen_index"].split(";"), row["chosen_file"].split(";"), strict=True):
            if index:
                assert ok.iloc[int(index)]["filename"] == name
                assert int(index) in json.loads(row["place"])


def test_only_ok_frames_are_drawn_and_shortfall_recorded(tmp_path):
    rows = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:04:59", pre=2, post=2)]

    def status(i, t):  # minute 10:02 holds no drawable frame; pre has 10 frames of which 6 drawable
        if t.floor("min") == pd.Timestamp("2014-05-01T10:02") or i in (0, 2, 4, 6):
            return "rejected", "holes"
        return "ok", ""

    events, frames = _owned(tmp_path, rows, status=status)
    samples = sample_event(frames, events.iloc[0], "AIA131", seed=1, n_pre=50, n_post=3)
    chosen = frames.loc[[label for s in samples.values() for label in s.chosen]]
    assert set(chosen["status"]) == {"ok"}
    assert len(samples["flare"].chosen) == 4 and samples["flare"].shortfall == 1
    empty = next(row for row in samples["flare"].log if row["hhmm"] == "1002")
    assert (empty["count"], empty["chosen_index"], empty["chosen_file"], empty["place"]) == (0, "", "", "[]")
    assert len(samples["pre"].chosen) == 6 and samples["pre"].shortfall == 44  # all drawable, the rest short


def test_event_without_frames(tmp_path):
    rows = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:02:30")]
    events, frames = _owned(tmp_path, rows, times=pd.DatetimeIndex([]))
    assert frames.empty
    samples = sample_event(frames, events.iloc[0], "AIA131", seed=1, n_pre=5, n_post=5)
    assert [s.shortfall for s in samples.values()] == [5, 3, 5]
    assert [row["count"] for row in samples["flare"].log] == [0, 0, 0]


def test_same_seed_same_draws_other_seed_other_draws(tmp_path):
    rows = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:05:00")]
    events, frames = _owned(tmp_path, rows, status=some_bad)

    def draw(seed):
        samples = sample_event(frames, events.iloc[0], "AIA131", seed=seed, n_pre=8, n_post=8)
        return {phase: list(s.chosen) for phase, s in samples.items()}

    assert draw(5) == draw(5)
    other = draw(6)
    assert other != draw(5) and {p: len(c) for p, c in other.items()} == {p: len(c) for p, c in draw(5).items()}


def test_adding_an_event_keeps_other_draws(tmp_path):
    first = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:05:00")]
    both = [*first, event("E2", "2014-05-02T10:00:00", "2014-05-02T10:05:00")]
    picks = []
    for rows in (first, both):
        events, frames = _owned(tmp_path, rows)
        samples = sample_event(frames[frames["event_id"] == "E1"], events.iloc[0], "AIA131", seed=2, n_pre=8,
                               n_post=8)  # fmt: skip
        picks.append([frames.loc[s.chosen, "record"].tolist() for s in samples.values()])
    assert picks[0] == picks[1]


def test_a_frame_owned_elsewhere_is_not_drawn(tmp_path):
    rows = [event("A", "2014-05-01T10:00:00", "2014-05-01T10:10:00", post=30),
            event("B", "2014-05-01T10:30:00", "2014-05-01T10:35:00", pre=30)]
    events, frames = _owned(tmp_path, rows)
    a = sample_event(frames[frames["event_id"] == "A"], events.iloc[0], "AIA131", seed=0, n_pre=0, n_post=500)
    post = frames.loc[a["post"].chosen]
    assert post["time"].max() < pd.Timestamp("2014-05-01T10:20")  # later post frames are nearer B or in B's flare
    assert set(post["owner_event"]) == {"A"}


@pytest.mark.parametrize("cadence", [12.0, 24.0])
def test_native_cadences_fill_every_flare_minute(tmp_path, cadence):
    rows = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:09:59", pre=0, post=0)]
    times = frame_times(rows[0], cadence=cadence)
    events, frames = _owned(tmp_path, rows, times=times)
    samples = sample_event(frames, events.iloc[0], "AIA131", seed=0, n_pre=0, n_post=0)
    assert len(samples["flare"].chosen) == 10 and samples["flare"].shortfall == 0
