"""heliocube.events.partition: phases, minute bins across midnight and month ends, owners of overlapping frames."""

from __future__ import annotations

import pandas as pd
import pytest

from heliocube.events.partition import (
    assign_owners,
    flare_minute_bins,
    hhmm,
    phase_minute_bins,
    phase_of,
    read_events,
    read_frame_table,
)

from .event_frames import event, frame_times, record_of, write_events, write_frame_table


def _events(tmp_path, *rows):
    return read_events(write_events(tmp_path / "events.csv", list(rows)))


def test_phase_boundaries_follow_the_notebook(tmp_path):
    """pre [window_start, start), flare [start, end] (both ends), post (end, window_end], else outside."""
    ev = _events(tmp_path, event("E1", "2014-02-20T08:00:00", "2014-02-20T08:30:00")).iloc[0]
    times = pd.to_datetime(["2014-02-20T07:49:59.999", "2014-02-20T07:50:00", "2014-02-20T07:59:59.999",
                            "2014-02-20T08:00:00", "2014-02-20T08:30:00", "2014-02-20T08:30:00.001",
                            "2014-02-20T08:40:00", "2014-02-20T08:40:00.001"], format="ISO8601")
    assert list(phase_of(times, ev)) == ["outside", "pre", "pre", "flare", "flare", "post", "post", "outside"]


def test_minute_bins_across_midnight_and_month_end(tmp_path):
    """A flare from 23:58:30 on 31 January to 00:02:10 on 1 February: five distinct minute bins, pre bins in
    January, post bins in February; hhmm repeats nothing because bins are full UTC minutes."""
    ev = _events(tmp_path, event("E1", "2014-01-31T23:58:30", "2014-02-01T00:02:10", pre=3, post=2)).iloc[0]
    flare = flare_minute_bins(ev)
    assert hhmm(flare) == ["2358", "2359", "0000", "0001", "0002"]
    assert [str(m.date()) for m in flare] == ["2014-01-31"] * 2 + ["2014-02-01"] * 3
    pre = phase_minute_bins(ev, "pre")  # 23:55:30 to 23:58:29.999
    assert list(pre.strftime("%Y-%m-%dT%H%M")) == ["2014-01-31T2355", "2014-01-31T2356", "2014-01-31T2357",
                                                   "2014-01-31T2358"]
    post = phase_minute_bins(ev, "post")  # 00:02:10.000001 to 00:04:10
    assert list(post.strftime("%d%H%M")) == ["010002", "010003", "010004"]
    # frames of the window land in the bins of their own day
    times = frame_times(ev)
    phases = phase_of(times, ev)
    minutes = pd.Series(times).dt.floor("min")
    flare_minutes = set(minutes[phases == "flare"])
    assert flare_minutes == set(flare)
    assert pd.Timestamp("2014-02-01T00:00") in flare_minutes and pd.Timestamp("2014-01-31T23:59") in flare_minutes


def test_year_end_window(tmp_path):
    ev = _events(tmp_path, event("E1", "2014-12-31T23:59:50", "2015-01-01T00:00:20", pre=1, post=1)).iloc[0]
    assert list(flare_minute_bins(ev).strftime("%Y-%m-%dT%H:%M")) == ["2014-12-31T23:59", "2015-01-01T00:00"]
    assert list(phase_minute_bins(ev, "pre").strftime("%H%M")) == ["2358", "2359"]


def test_flare_shorter_than_a_minute(tmp_path):
    """Inside one minute: one bin; across a minute boundary: two (the notebook's unique hhmm count)."""
    inside = _events(tmp_path, event("E1", "2014-03-01T12:00:10", "2014-03-01T12:00:40")).iloc[0]
    assert hhmm(flare_minute_bins(inside)) == ["1200"]
    across = _events(tmp_path, event("E1", "2014-03-01T12:00:50", "2014-03-01T12:01:05")).iloc[0]
    assert hhmm(flare_minute_bins(across)) == ["1200", "1201"]
    instant = _events(tmp_path, event("E1", "2014-03-01T12:00:50", "2014-03-01T12:00:50")).iloc[0]
    assert len(flare_minute_bins(instant)) == 1


def test_no_buffer_means_no_pre_or_post_bins(tmp_path):
    ev = _events(tmp_path, event("E1", "2014-03-01T12:00:00", "2014-03-01T12:05:00", pre=0, post=0)).iloc[0]
    assert len(phase_minute_bins(ev, "pre")) == 0 and len(phase_minute_bins(ev, "post")) == 0


def _frames(tmp_path, events):
    tables = [read_frame_table(write_frame_table(tmp_path, row, files=False), row["event_id"]) for row in events]
    return pd.concat(tables, ignore_index=True)


def test_overlapping_windows_flare_wins(tmp_path):
    """A's post window covers B's pre phase and B's flare: B's flare frames belong to B (flare wins), the frames
    between the two flares to the nearer flare; each shared frame has one owner, recorded in the other event."""
    rows = [event("A", "2014-05-01T10:00:00", "2014-05-01T10:10:00", post=30),
            event("B", "2014-05-01T10:30:00", "2014-05-01T10:35:00", pre=30)]
    events = read_events(write_events(tmp_path / "events.csv", rows))
    owners = assign_owners(events, _frames(tmp_path, rows))
    a, b = owners[owners["event_id"] == "A"], owners[owners["event_id"] == "B"]
    # a frame of B's flare is in A's post window: B owns it as flare
    t = pd.Timestamp("2014-05-01T10:31:00.57")
    row_a, row_b = a[a["time"] == t].iloc[0], b[b["time"] == t].iloc[0]
    assert (row_a["phase"], row_b["phase"]) == ("post", "flare")
    assert (row_a["owner_event"], row_a["owner_phase"]) == ("B", "flare")
    assert row_a["overlap"] == "flare of event B wins" and row_b["overlap"] == ""
    # A frame of A's flare inside B's pre window (B's window starts at 10:00): A owns it
    t = pd.Timestamp("2014-05-01T10:05:00.57")
    assert set(owners.loc[owners["time"] == t, "owner_event"]) == {"A"}
    assert owners.loc[(owners["time"] == t) & (owners["event_id"] == "B"), "phase"].iloc[0] == "pre"
    # between the flares (A post and B pre): the nearer flare; 10:18 is nearer A's end, 10:22 nearer B's start
    for t, owner, phase in (("10:18:00.57", "A", "post"), ("10:22:00.57", "B", "pre")):
        shared = owners[owners["time"] == pd.Timestamp(f"2014-05-01T{t}")]
        assert len(shared) == 2 and set(shared["owner_event"]) == {owner}
        assert set(shared["owner_phase"]) == {phase}
    # each frame (product, record) has exactly one owner
    assert (owners.groupby(["product", "record"])["owner_event"].nunique() == 1).all()


def test_two_flares_share_a_frame_nearest_peak(tmp_path):
    rows = [event("A", "2014-05-01T10:00:00", "2014-05-01T10:20:00", peak="2014-05-01T10:05:00"),
            event("B", "2014-05-01T10:10:00", "2014-05-01T10:30:00", peak="2014-05-01T10:25:00")]
    events = read_events(write_events(tmp_path / "events.csv", rows))
    owners = assign_owners(events, _frames(tmp_path, rows))
    at = owners[owners["time"] == pd.Timestamp("2014-05-01T10:12:00.57")]
    assert set(at["phase"]) == {"flare"} and set(at["owner_event"]) == {"A"}  # 7 min from A's peak, 13 from B's
    at = owners[owners["time"] == pd.Timestamp("2014-05-01T10:17:00.57")]
    assert set(at["owner_event"]) == {"B"}


def test_exclude_rule_drops_shared_frames(tmp_path):
    rows = [event("A", "2014-05-01T10:00:00", "2014-05-01T10:10:00", post=30),
            event("B", "2014-05-01T10:30:00", "2014-05-01T10:35:00", pre=30)]
    events = read_events(write_events(tmp_path / "events.csv", rows))
    owners = assign_owners(events, _frames(tmp_path, rows), "exclude")
    shared = owners[owners["time"] == pd.Timestamp("2014-05-01T10:31:00.57")]
    assert set(shared["owner_event"]) == {""} and all("excluded" in why for why in shared["overlap"])
    alone = owners[owners["time"] == pd.Timestamp("2014-05-01T09:55:00.57")]
    assert list(alone["owner_event"]) == ["A"]
    with pytest.raises(ValueError, match="label_overlap"):
        assign_owners(events, owners, "nearest")


def test_malformed_event_row_is_named(tmp_path):
    rows = [event("E1", "2014-05-01T10:00:00", "2014-05-01T10:10:00"),
            event("E2", "2014-05-02T10:00:00", "2014-05-02T10:10:00")]
    rows[1]["start"] = "2014-05-02 25:00"
    with pytest.raises(ValueError, match=r"row 2: '2014-05-02 25:00' is not an ISO 8601"):
        _events(tmp_path, *rows)
    rows[1]["start"] = "2014-05-02T10:20:00"  # after its end
    with pytest.raises(ValueError, match=r"row 2 \(event 'E2'\): times out of order"):
        _events(tmp_path, *rows)
    rows[1] = event("../x", "2014-05-02T10:00:00", "2014-05-02T10:10:00")
    with pytest.raises(ValueError, match="plain file name"):
        _events(tmp_path, *rows)


def test_malformed_frame_row_is_named(tmp_path):
    row = event("E1", "2014-05-01T10:00:00", "2014-05-01T10:01:00", pre=0, post=0)
    path = write_frame_table(tmp_path, row, times=pd.DatetimeIndex(["2014-05-01T10:00:30"]))
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[0, "status"] = "fine"
    table.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"E1.csv, row 1: status 'fine'"):
        read_frame_table(path, "E1")
    table.loc[0, ["status", "file"]] = ["ok", ""]
    table.to_csv(path, index=False)
    with pytest.raises(ValueError, match="row 1: status ok without a file"):
        read_frame_table(path, "E1")
    assert record_of(pd.Timestamp("2014-05-01T10:00:30")) == "aia.lev1_euv_12s[2014-05-01T10:00:30Z][131]"


def test_without_a_peak_the_flare_midpoint_decides(tmp_path):
    rows = [event("A", "2014-05-01T10:00:00", "2014-05-01T10:20:00"),  # midpoint 10:10
            event("B", "2014-05-01T10:10:00", "2014-05-01T10:30:00")]  # midpoint 10:20
    for row in rows:
        row["peak"] = ""
    events = read_events(write_events(tmp_path / "events.csv", rows))
    assert events["peak"].isna().all()
    owners = assign_owners(events, _frames(tmp_path, rows))
    assert set(owners.loc[owners["time"] == pd.Timestamp("2014-05-01T10:14:00.57"), "owner_event"]) == {"A"}
    assert set(owners.loc[owners["time"] == pd.Timestamp("2014-05-01T10:16:00.57"), "owner_event"]) == {"B"}
