"""Select-and-fetch against the embedded archive: fills, resume, faults, fallback, receipts."""

import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import sunpy.map

from heliocube.archive.mission import SyntheticMission
from heliocube.archive.server import ArchiveServer, FaultConfig
from heliocube.fetch import Rejection, fetch_days, sha256_of
from heliocube.frameio import read_frame
from heliocube.header import with_record_keywords
from heliocube.paths import day_receipt_path
from heliocube.qc import FrameQC
from heliocube.query import write_day_manifests

from .conftest import FRAME, make_context
from .corrupt import CORRUPTIONS, corrupt

DAY = dt.date(2010, 10, 15)
SIX_HOURS = {"cadence": dt.timedelta(hours=6), "tolerance": dt.timedelta(hours=3), "anchor": DAY}


def query_and_fetch(name, config, context, days=(DAY,), gate=None):
    root = config["output_root"]
    listed = sorted({d + dt.timedelta(days=k) for d in days for k in (-1, 0, 1)})
    write_day_manifests(name, listed, context, root, Path(root) / f"{name}.index.csv")
    return fetch_days(name, list(days), context, root, gate=gate, **SIX_HOURS)


@pytest.mark.parametrize("name", ["EIT195", "LASCO_C2", "MDI_96m", "AIA171", "HMI_720s"])
def test_every_slot_filled_with_a_readable_verified_file(name, clean_context_for):
    config, context = clean_context_for(products=[name])
    slots, ledger = query_and_fetch(name, config, context)
    assert list(slots["status"]) == ["ok"] * 4 and ledger.empty
    for row in slots.itertuples():
        path = Path(config["output_root"], row.path)
        assert sha256_of(path) == row.sha256 and path.stat().st_size == row.size
        data, header = read_frame(path)  # an as-is JSOC file places nothing on the Sun: its record's keywords do
        frame = sunpy.map.Map(data, with_record_keywords(header, row.keywords if isinstance(row.keywords, str)
                                                         else None))  # fmt: skip
        assert frame.data.shape == (FRAME, FRAME)
        assert abs(row.dt_seconds) < 3 * 3600
    receipt = json.loads(day_receipt_path(config["output_root"], name, DAY).read_text())
    assert [s["record_id"] for s in receipt["slots"]] == list(slots["record_id"])
    assert not [p for p in Path(config["output_root"]).rglob(".*") if p.name.endswith((".part", ".partial"))]


@pytest.mark.parametrize("name", ["MDI_96m", "AIA171", "HMI_720s"])
def test_as_is_files_get_their_geometry_from_the_record(name, clean_mission, clean_context_for):
    """JSOC as-is segment files carry no geometry (the prior tool then put the disk at the array centre). The
    record's keywords from the manifest, mapped onto the served grid, give the header of a full ``fits`` export."""
    from astropy.io import fits

    from heliocube.qc.geometry import disk_geometry

    config, context = clean_context_for(products=[name])
    slots, _ = query_and_fetch(name, config, context)
    for row in slots.itertuples():
        _, raw = read_frame(Path(config["output_root"], row.path))
        assert "CDELT1" not in raw and "CRPIX1" not in raw and "DATE-OBS" not in raw
        merged = with_record_keywords(raw.copy(), row.keywords)
        full = fits.Header.fromstring(clean_mission.render_fits(name, row.record_id)[:2880 * 10].decode("ascii",
                                                                                                        "replace"))
        for key in ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "RSUN_OBS", "DSUN_OBS", "X0", "Y0", "R_SUN"):
            if key in full:
                assert merged[key] == pytest.approx(full[key], rel=1e-9, abs=1e-9), key
        same_time = abs(pd.Timestamp(merged["DATE-OBS"].rstrip("Z")) - pd.Timestamp(full["DATE-OBS"].rstrip("Z")))
        assert same_time < pd.Timedelta("1ms") and merged["EXPTIME"] == full["EXPTIME"]
        ours, theirs = disk_geometry(merged, (FRAME, FRAME)), disk_geometry(full, (FRAME, FRAME))
        assert (ours.cx, ours.cy, ours.rsun_px) == pytest.approx((theirs.cx, theirs.cy, theirs.rsun_px), rel=1e-9)


def test_the_nearest_candidate_is_taken(clean_mission, clean_context_for):
    config, context = clean_context_for(products=["HMI_720s"])
    slots, _ = query_and_fetch("HMI_720s", config, context)
    truth = clean_mission.ground_truth("HMI_720s", DAY - dt.timedelta(days=1), DAY)
    for row in slots.itertuples():
        slot = pd.Timestamp(row.slot)
        best = truth.iloc[(pd.to_datetime(truth["time_utc"], utc=True) - slot).abs().argmin()]
        assert row.record_id == best["record_id"]
    # HMI's TAI grid puts the nearest frame to 00:00 UTC at 23:59:26 UTC the day before: it must be found.
    assert slots.iloc[0]["record_id"] == "hmi.M_720s[2010.10.15_00:00:00_TAI]"


def test_second_run_downloads_nothing(clean_archive, clean_context_for):
    config, context = clean_context_for(products=["AIA171"])
    first, _ = query_and_fetch("AIA171", config, context)
    before = len(clean_archive.access_log)
    again, _ = query_and_fetch("AIA171", config, context)
    assert len(clean_archive.access_log) == before  # not even a query or an export
    assert list(again["sha256"]) == list(first["sha256"])


def test_permanently_broken_files_are_retried_then_ledgered_and_the_slot_falls_back(tmp_path):
    broken = SyntheticMission(seed=3, frame_size=FRAME, defect_rates={"corrupt": 0.25, "truncated": 0.25})
    with ArchiveServer(broken) as server:
        config, context = make_context(server, tmp_path / "out", products=["MDI_96m"])
        slots, ledger = query_and_fetch("MDI_96m", config, context, days=(DAY, DAY + dt.timedelta(days=1)))
    truth = broken.ground_truth("MDI_96m", DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=2))
    bad = set(truth.loc[truth["corrupt"] | truth["truncated"], "record_id"])
    assert len(ledger) > 0 and set(ledger["record_id"]) <= bad
    assert set(ledger["reason"]) <= {"unreadable", "truncated"}
    assert not (set(slots["record_id"].dropna()) & bad)
    assert (slots["status"] == "ok").all()  # each bad slot found a whole neighbour
    # bounded retries: each bad file was asked for at most retries + 1 times
    asked = Counter(e["path"] for e in server.access_log if e["path"].startswith("/SUM"))
    assert max(asked.values()) <= config["fetch"]["retries"] + 1
    assert not [p for p in Path(config["output_root"]).rglob(".*") if p.name.endswith((".part", ".partial"))]


def test_transient_faults_are_retried_until_whole(clean_archive, clean_context_for):
    config, context = clean_context_for(products=["LASCO_C2"], fetch={
        "backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "retries": 6, "timeout_seconds": 10})
    clean_archive.faults = FaultConfig(rate=0.4, kinds=("http500", "http429", "truncate", "corrupt"), seed=1,
                                       retry_after=0)
    slots, ledger = query_and_fetch("LASCO_C2", config, context)
    assert (slots["status"] == "ok").all() and ledger.empty
    statuses = Counter(e["status"] for e in clean_archive.access_log)
    assert statuses[500] + statuses[429] > 0


class RejectFlagged:
    """A gate like the QC stage's: QUALITY != 0 is refused before download."""

    def before_download(self, candidate):
        return Rejection("quality", int(candidate["quality"])) if candidate["quality"] else None

    def after_download(self, candidate, path):
        return None


def test_quality_gate_steers_fallback_without_downloading(tmp_path):
    flagged = SyntheticMission(seed=5, frame_size=FRAME, defect_rates={"quality": 0.5, "corrupt": 0.0,
                                                                       "truncated": 0.0})
    with ArchiveServer(flagged) as server:
        config, context = make_context(server, tmp_path / "out", products=["AIA171"])
        slots, ledger = query_and_fetch("AIA171", config, context, gate=RejectFlagged())
    assert (ledger["reason"] == "quality").sum() > 0
    truth = flagged.ground_truth("AIA171", DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=1))
    quality = dict(zip(truth["record_id"], truth["quality"], strict=True))
    assert all(quality[r] == 0 for r in slots["record_id"])
    exported = " ".join(e["query"] for e in server.access_log if "jsoc_fetch" in e["path"])
    for record in ledger["record_id"]:
        assert record.split("[", 1)[1] not in exported  # a flagged record was never even exported


def test_fits_protocol_polls_the_export(clean_archive, clean_context_for):
    config, context = clean_context_for(products=["HMI_720s"], jsoc={"protocol": "fits", "poll_seconds": 0.01})
    slots, _ = query_and_fetch("HMI_720s", config, context)
    assert (slots["status"] == "ok").all()
    ops = [e["query"] for e in clean_archive.access_log if "jsoc_fetch" in e["path"]]
    assert any("exp_request" in q and "method=url&" in q for q in ops) and any("exp_status" in q for q in ops)


class CountingQC(FrameQC):
    """The QC gate, remembering which files it inspected."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inspected = []

    def inspect(self, path, keywords=None):
        self.inspected.append(Path(path).name)
        return super().inspect(path, keywords)


def test_a_rerun_reuses_the_qc_verdicts_of_unchanged_files(tmp_path):
    """The receipts keep each QC verdict under the gate's fingerprint: a rerun (the last month's job when the range
    grows) inspects no file again and gives the same slots and ledger; a file changed since is inspected again,
    and other thresholds (another fingerprint) inspect everything."""
    holey = SyntheticMission(seed=4, frame_size=FRAME, defect_rates={"hole": 0.5, "corrupt": 0.0, "truncated": 0.0})
    days = (DAY, DAY + dt.timedelta(days=1))
    with ArchiveServer(holey) as server:
        config, context = make_context(server, tmp_path / "out", products=["EIT195"])
        first_gate = CountingQC("EIT195")
        first, first_ledger = query_and_fetch("EIT195", config, context, days=days, gate=first_gate)
        assert (first_ledger["reason"] == "holes").sum() > 0 and (first["status"] == "ok").all()
        assert len(first_gate.inspected) == len(set(first_gate.inspected)) == len(first) + len(first_ledger)

        again_gate = CountingQC("EIT195")
        again, again_ledger = query_and_fetch("EIT195", config, context, days=days, gate=again_gate)
        assert again_gate.inspected == []
        pd.testing.assert_frame_equal(again, first)
        pd.testing.assert_frame_equal(again_ledger, first_ledger)

        changed = Path(config["output_root"], first["path"].iloc[2])
        stat = changed.stat()
        os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # e.g. replaced by hand
        touched_gate = CountingQC("EIT195")
        touched, _ = query_and_fetch("EIT195", config, context, days=days, gate=touched_gate)
        assert touched_gate.inspected == [changed.name]
        pd.testing.assert_frame_equal(touched, first)

        looser_gate = CountingQC("EIT195", {"hole_fraction": 0.9})
        looser, looser_ledger = query_and_fetch("EIT195", config, context, days=days, gate=looser_gate)
        assert len(looser_gate.inspected) == len(looser) and looser_ledger.empty  # each slot's nearest, inspected


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_cached_file_changed_since_its_receipt_is_downloaded_again(how, clean_archive, clean_context_for):
    """A rerun (QC verdicts reused) never uses a cached file whose bytes differ from the sha256 its receipt
    recorded: it is noted in the ledger and receipt as ``cache_mismatch``, downloaded again and judged afresh, and
    the slot keeps the same record with the original bytes (not a frame farther away, not the changed bytes)."""
    config, context = clean_context_for(products=["EIT195"])
    root = Path(config["output_root"])
    first, first_ledger = query_and_fetch("EIT195", config, context, gate=CountingQC("EIT195"))
    assert (first["status"] == "ok").all()
    victim, donor = root / first["path"].iloc[1], root / first["path"].iloc[2]
    original = victim.read_bytes()
    corrupt(victim, how, donor)
    downloads = len(clean_archive.access_log)

    gate = CountingQC("EIT195")
    again, ledger = query_and_fetch("EIT195", config, context, gate=gate)
    pd.testing.assert_frame_equal(again, first)  # same records, same sha256, same QC metrics
    assert victim.read_bytes() == original
    assert gate.inspected == [victim.name]  # the new download is judged; the other files' verdicts reused
    whole = [e["path"].rsplit("/", 1)[-1] for e in clean_archive.access_log[downloads:]
             if e["range"] is None and not e["path"].endswith("/")]  # not listings, not the query's header reads
    assert whole == [victim.name]  # that file alone is downloaded again
    notes = ledger[ledger["reason"] == "cache_mismatch"]
    assert list(notes["record_id"]) == [first["record_id"].iloc[1]] and len(ledger) == len(first_ledger) + 1
    assert notes["value"].iloc[0] != first["sha256"].iloc[1] and first["sha256"].iloc[1] in notes["detail"].iloc[0]
    receipt = json.loads(day_receipt_path(root, "EIT195", DAY).read_text())
    noted = [r["record_id"] for r in receipt["rejections"] if r["reason"] == "cache_mismatch"]
    assert noted == list(notes["record_id"])
