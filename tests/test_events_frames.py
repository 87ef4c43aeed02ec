"""Every frame of an event window, through the real query, fetch and clean code against the embedded archive."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive.server import FaultConfig
from heliocube.events.frames import FRAME_COLUMNS, event_frames, iso_ms
from heliocube.events.run import read_events
from heliocube.events.settings import event_variant
from heliocube.fetch import sha256_of
from heliocube.jobs import quality_gate

AIA = "AIA131"


def event(event_id: str, window_start: str, window_end: str) -> pd.Series:
    return pd.Series({"event_id": event_id, "window_start": pd.Timestamp(window_start, tz="UTC"),
                      "window_end": pd.Timestamp(window_end, tz="UTC")})


def frames_of(config, context, row: pd.Series) -> pd.DataFrame:
    root = config["output_root"]
    spec = {"image_size": 16, "resize_method": "mean"}
    return event_frames(row, [AIA], event_variant(config, spec), context, root,
                        directory=f"{root}/events/test/frames/{row['event_id']}",
                        gate_of=lambda product: quality_gate(config, product))


def check_accounts_for_every_record(table, mission, row, root):
    """One row per record the archive has in the window, in time order; ok rows name a readable cleaned file."""
    truth = mission.records(AIA, row["window_start"], row["window_end"] + pd.Timedelta(milliseconds=1))
    assert list(table["record"]) == list(truth["record_id"])
    assert list(table["time"]) == [iso_ms(t) for t in truth["time_utc"]]
    assert list(table.columns) == list(FRAME_COLUMNS) and set(table["status"]) <= {"ok", "rejected", "missing"}
    for frame in table[table["status"] == "ok"].itertuples():
        path = f"{root}/{frame.file}"
        assert sha256_of(path) == frame.sha256
        with fits.open(path) as hdus:
            assert hdus[0].data.shape == (16, 16) and hdus[0].header["HC_RECID"] == frame.record
    assert (table.loc[table["status"] != "ok", "reason"] != "").all()
    assert (table.loc[table["status"] != "ok", "file"] == "").all()


@pytest.mark.parametrize(("start", "end"), [("2010-10-15T23:58:30", "2010-10-16T00:01:30"),  # midnight
                                             ("2010-10-31T23:59:00", "2010-11-01T00:01:00")])  # month and day end
def test_a_window_across_midnight_and_month_end(mission, context_for, start, end):
    config, context = context_for(products=[AIA])
    row = event("FL1", start, end)
    table = frames_of(config, context, row)
    check_accounts_for_every_record(table, mission, row, config["output_root"])
    days = {t[:10] for t in table["time"]}
    assert len(days) == 2 and len(table) >= 10
    raw = {p.parent.name for p in Path(config["output_root"], "raw", AIA).rglob("*.fits")}
    assert raw == days  # the shared day folders of the raw cache


def test_rejected_and_missing_frames_keep_their_ledger_reason(mission, archive, context_for):
    """Quality-flagged records are rejected with QC's reason code; downloads the archive never completes are
    missing with the download's."""
    config, context = context_for(products=[AIA])
    row = event("FL2", "2010-10-16T03:00:00", "2010-10-16T03:20:00")
    truth = mission.records(AIA, row["window_start"], row["window_end"])
    flagged = set(truth.loc[truth["quality"] != 0, "record_id"])
    failing = int(truth["grid_index"].iloc[len(truth) // 2]) // 10  # ten records in a row: D{failing}0..9
    archive.faults = FaultConfig(rate=1.0, kinds=("http500",), match=f"/D{failing}")
    table = frames_of(config, context, row)
    check_accounts_for_every_record(table, mission, row, config["output_root"])
    assert flagged and set(table.loc[table["record"].isin(flagged), "reason"]) == {"quality"}
    assert set(table.loc[table["record"].isin(flagged), "status"]) == {"rejected"}
    failed = set(truth.loc[(truth["grid_index"] // 10 == failing) & (truth["quality"] == 0), "record_id"])
    assert failed and set(table.loc[table["record"].isin(failed), "status"]) == {"missing"}
    assert set(table.loc[table["record"].isin(failed), "reason"]) == {"http"}
    missing = table[table["status"] == "missing"]  # the archive's own truncated files too, as the fetch ledgers them
    assert set(missing["reason"]) <= {"http", "truncated", "missing"}


def test_an_event_without_frames(mission, context_for):
    config, context = context_for(products=[AIA])
    row = event("FL3", "2010-10-16T05:00:03", "2010-10-16T05:00:05")  # shorter than the 12 s cadence
    assert mission.records(AIA, row["window_start"], row["window_end"]).empty
    table = frames_of(config, context, row)
    assert table.empty and list(table.columns) == list(FRAME_COLUMNS)


def test_overlapping_events_share_their_downloads(clean_archive, clean_context_for):
    """The second event downloads only the frames the first did not have; exports ask for image segments only."""
    archive = clean_archive
    config, context = clean_context_for(products=[AIA])
    first, second = (event("FLa", "2010-10-16T06:00:00", "2010-10-16T06:03:00"),
                     event("FLb", "2010-10-16T06:02:00", "2010-10-16T06:05:00"))
    tables = [frames_of(config, context, row) for row in (first, second)]
    assert len(set(tables[0]["record"]) & set(tables[1]["record"])) >= 4
    union = pd.concat(tables).drop_duplicates("record")
    fetched = union[union["reason"] != "quality"]  # flagged records are refused before any download
    downloads = [e["path"] for e in archive.access_log if e["path"].startswith("/SUM") and e["status"] == 200]
    assert len(downloads) == len(set(downloads)) == len(fetched)  # each file once, whichever event asked first
    exports = [e["query"] for e in archive.access_log if "jsoc_fetch" in e["path"] and "exp_request" in e["query"]]
    assert exports and all("%7Bimage%7D" in q and "spikes" not in q for q in exports)
    for table in tables:  # each event has its own cleaned copy of the shared frames
        assert table.loc[table["status"] == "ok", "file"].str.contains(f"/{AIA}/").all()
    seen = len(archive.access_log)  # a rerun (a retried job) downloads nothing and gives the same table
    assert frames_of(config, context, first).equals(tables[0])
    assert not [e for e in archive.access_log[seen:] if e["path"].startswith("/SUM")]


def test_the_demo_built_its_event_dataset(demo_run):
    """The demo's flares-demo dataset, from the embedded archive's flare list through HEKClient and drms."""
    import yaml

    workdir, config_file, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    config = yaml.safe_load(config_file.read_text())
    name = config["events"][0]["name"]
    root = workdir / "out" / "events" / name
    candidates, events = read_events(root / "candidates.csv"), read_events(root / "events.csv")
    assert len(candidates) > len(events) >= 1 and (candidates["reason"] != "").all()
    assert list(events["event_id"]) == list(candidates.loc[candidates["kept"], "event_id"])
    for event_id in events["event_id"]:
        table = pd.read_csv(root / "frames" / f"{event_id}.csv")
        assert (table["status"] == "ok").sum() > 10
    buffer = pd.Timedelta(minutes=int(config["events"][0]["post_buffer"].removesuffix("min")))
    assert (events["window_end"] - events["end"] == buffer).all()
    access = (workdir / "out" / "embedded-archive").glob("*.access.jsonl")
    assert any('"/hek/her"' in path.read_text() for path in access)  # asked through the HEK endpoint
    assert (root / "dataset" / "labels.csv").exists()
