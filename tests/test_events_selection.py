"""Which candidate events are kept, each with its reason; the CSV input and its errors."""

from __future__ import annotations

import pandas as pd
import pytest

from heliocube.config import ConfigError, validate_config
from heliocube.events.selection import CANDIDATE_COLUMNS, goes_flux, kept_events, select_events
from heliocube.events.table import EventTableError, read_event_table

SPEC = {"date_start": "2014-01-01", "date_finish": "2014-12-31", "event_type": "FL", "exclude": []}


def candidate(event_id, start, goes_class="M1.0", x=0.0, y=0.0, minutes=20, event_type="FL"):
    start = pd.Timestamp(start, tz="UTC")
    return {"event_id": event_id, "event_type": event_type, "start": start, "peak": start + pd.Timedelta(minutes=5),
            "end": start + pd.Timedelta(minutes=minutes), "goes_class": goes_class,
            "goes_flux": goes_flux(goes_class) if goes_class else float("nan"), "active_region": 12036,
            "hpc_x": x, "hpc_y": y}


def reasons(table) -> dict[str, tuple[bool, str]]:
    return {row.event_id: (row.kept, row.reason) for row in table.itertuples()}


def test_goes_classes():
    assert goes_flux("M1.2") == pytest.approx(1.2e-5) and goes_flux("X11") == pytest.approx(1.1e-3)
    assert goes_flux("c5") == pytest.approx(5e-6) and goes_flux("Z1") is None and goes_flux("") is None


def test_each_rule_gives_its_reason_and_the_kept_say_why():
    table = pd.DataFrame([
        candidate("early", "2013-12-31T23:00"), candidate("cme", "2014-02-01T10:00", event_type="CE"),
        candidate("day", "2014-01-07T10:00", "X1.2"), candidate("byid", "2014-02-02T10:00", "X2.0"),
        candidate("weak", "2014-03-01T10:00", "C9.9"), candidate("noclass", "2014-03-02T10:00", ""),
        candidate("limb", "2014-04-01T10:00", "M5.0", x=-940.0), candidate("off", "2014-04-02T10:00", "M5.0", x=1500.0),
        candidate("nopos", "2014-04-03T10:00", "M2.0", x=float("nan"), y=float("nan")),
        candidate("centre", "2014-04-04T10:00", "M1.0", x=100.0, y=-200.0),
    ])
    spec = {**SPEC, "exclude": ["2014-01-07", "byid"], "min_goes_class": "M1.0", "max_longitude": 70}
    got = reasons(select_events(table, spec))
    assert got["early"] == (False, "starts outside 2014-01-01..2014-12-31")
    assert got["cme"] == (False, "event type CE, not FL")
    assert got["day"] == (False, "excluded by config (2014-01-07)")
    assert got["byid"] == (False, "excluded by config (byid)")
    assert got["weak"] == (False, "class C9.9 below M1.0") and got["noclass"] == (False, "no GOES class (minimum M1.0)")
    assert got["limb"][0] is False and got["limb"][1].startswith("longitude -") and "beyond 70 deg" in got["limb"][1]
    assert got["off"] == (False, "position (1500, 0) arcsec is off the disk")
    assert got["nopos"] == (True, "kept: M2.0 >= M1.0, no position: longitude limit not applied")
    assert got["centre"][0] and got["centre"][1].startswith("kept: M1.0 >= M1.0, |longitude| ")


def test_the_strongest_per_period_after_exclusions():
    table = pd.DataFrame([
        candidate("a", "2014-01-05T10:00", "M1.0"), candidate("b", "2014-01-06T10:00", "X1.0"),
        candidate("c", "2014-01-07T10:00", "X9.0"), candidate("d", "2014-01-08T10:00", "M1.0"),
        candidate("e", "2014-02-01T10:00", "C1.0"),
    ])
    selected = select_events(table, {**SPEC, "exclude": ["2014-01-07"], "strongest": {"n": 2, "per": "month"}})
    got = reasons(selected)
    assert got["c"] == (False, "excluded by config (2014-01-07)")  # its place goes to the next strongest
    assert got["b"] == (True, "kept: rank 1 of 2014-01")
    assert got["a"] == (True, "kept: rank 2 of 2014-01")  # ties: the earlier start wins
    assert got["d"] == (False, "not among the 2 strongest of 2014-01 (rank 3)")
    assert got["e"] == (True, "kept: rank 1 of 2014-02")
    assert list(selected.columns[:len(CANDIDATE_COLUMNS)]) == list(CANDIDATE_COLUMNS)
    events = kept_events(selected, "180min", "1h")
    assert list(events["event_id"]) == ["a", "b", "e"]
    assert (events["window_start"] == events["start"] - pd.Timedelta(minutes=180)).all()
    assert (events["window_end"] == events["end"] + pd.Timedelta(hours=1)).all()


SEED_CSV = """event_starttime,event_peaktime,event_endtime,fl_goescls,jsoc_start_time,jsoc_end_time,hpc_x,hpc_y
2014-04-18 12:31:00,2014-04-18 13:03:00,2014-04-18 13:20:00,M7.3,2014-04-18 09:31:00,2014-04-18 16:20:00,-500,-200
2014-01-07 18:04:00,2014-01-07 18:32:00,2014-01-07 18:58:00,X1.2,,,,
"""


def test_the_notebook_csv_with_its_windows(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(SEED_CSV)
    table = read_event_table(path)
    assert list(table["event_id"]) == ["FL20140418T123100", "FL20140107T180400"]
    assert table.loc[0, "pre_buffer"] == pd.Timedelta(hours=3) and pd.isna(table.loc[1, "pre_buffer"])
    selected = select_events(table, {**SPEC, "exclude": ["2014-01-07"]})
    events = kept_events(selected, "10min", "10min")
    assert list(events["event_id"]) == ["FL20140418T123100"]
    assert events.loc[0, "window_start"] == pd.Timestamp("2014-04-18T09:31:00", tz="UTC")
    assert events.loc[0, "window_end"] == pd.Timestamp("2014-04-18T16:20:00", tz="UTC")


@pytest.mark.parametrize(("row", "message"), [
    ("2014-04-18 12:31:00,2014-04-18 13:03:00,yesterday,M7.3", "line 3 (event row 2): event_endtime 'yesterday'"),
    ("2014-04-18 12:31:00,2014-04-18 13:03:00,2014-04-18 12:00:00,M7.3", "line 3 (event row 2): times out of order"),
    ("2014-04-18 12:31:00,2014-04-18 13:03:00,2014-04-18 13:20:00,Q7", "line 3 (event row 2): fl_goescls 'Q7' is"),
    (",2014-04-18 13:03:00,2014-04-18 13:20:00,M1", "line 3 (event row 2): event_starttime is empty"),
])
def test_a_malformed_row_is_named(tmp_path, row, message):
    path = tmp_path / "events.csv"
    path.write_text("event_starttime,event_peaktime,event_endtime,fl_goescls\n"
                    "2014-04-18 12:31:00,2014-04-18 13:03:00,2014-04-18 13:20:00,M7.3\n" + row + "\n")
    with pytest.raises(EventTableError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        read_event_table(path)
    assert str(path) in str(err.value)


def test_a_table_without_the_columns_says_which(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("start,end\n2014-01-01,2014-01-02\n")
    with pytest.raises(EventTableError, match=r"missing column.*event_starttime.*class"):
        read_event_table(path)


def test_the_config_checks_event_datasets():
    base = {"products": ["AIA171"], "date_start": "2010-10-15", "date_finish": "2010-10-16"}
    config = validate_config({**base, "events": [{"name": "f", "products": ["AIA131"]}]})
    event = config["events"][0]
    assert (event["source"], event["pre_buffer"], event["sampling"]["n_pre"]) == ("hek", "180min", 178)
    for entry, key in [({"name": "f", "products": ["EIT195"]}, "events[0].products[0]"),
                       ({"name": "f", "products": ["AIA131"], "min_goes_class": "big"}, "events[0].min_goes_class"),
                       ({"name": "f", "products": ["AIA131"], "source": "csv"}, "events[0].csv"),
                       ({"name": "f", "products": ["AIA131"], "image_size": 100}, "events[0].image_size")]:
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            validate_config({**base, "events": [entry]})
