"""JSOC export requests: sized by bytes, records and request length; JSOC's statuses through the real drms client.

The embedded archive answers as ``jsoc_fetch`` does under load (:class:`heliocube.archive.jsoc.ExportRules`):
status 3 over a byte cap, 7 while the address has its pending export, 4 for a failed export, 1 while processing.
"""

import datetime as dt
import logging
import re
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

import pandas as pd
import pytest

from heliocube.archive.jsoc import ExportRules
from heliocube.archive.mission import SyntheticMission
from heliocube.archive.server import ArchiveServer
from heliocube.fetch import fetch_days
from heliocube.fetch.export_batches import ExportLimits, export_batches, record_bytes, recordset_item
from heliocube.fetch.jsoc_urls import ExportBusy, ExportTimeout
from heliocube.query import write_day_manifests
from heliocube.registry import get_product

from .conftest import FRAME, make_context

DAY = dt.date(2010, 10, 15)
AIA = get_product("AIA171")
#: What the fetch estimates for one AIA record (JSOC's listings give no file sizes).
AIA_BYTES = 4096**2 * 4


@pytest.fixture(scope="module")
def quiet_mission():
    """A mission without broken files: every ledger row of these tests comes from an export."""
    return SyntheticMission(seed=0, frame_size=FRAME, defect_rates={"corrupt": 0.0, "truncated": 0.0, "quality": 0.0})


@pytest.fixture
def server_for(quiet_mission):
    servers = []

    def start(**rules):
        servers.append(ArchiveServer(quiet_mission, export_rules=ExportRules(**rules)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def fetch(name, server, root, *, cadence=dt.timedelta(hours=6), days=(DAY,), **overrides):
    config, context = make_context(server, root, products=[name], **overrides)
    listed = sorted({d + dt.timedelta(days=k) for d in days for k in (-1, 0, 1)})
    write_day_manifests(name, listed, context, config["output_root"], Path(root) / f"{name}.index.csv")
    slots, ledger = fetch_days(name, list(days), context, config["output_root"], cadence=cadence,
                               tolerance=cadence / 2, anchor=DAY)
    return config, slots, ledger


def requests(server, status=None):
    return [e for e in server.export_log if e["op"] == "exp_request" and status in (None, e["status"])]


def jsoc(**settings):
    return {"poll_seconds": 0.01, **settings}


FAST = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "retries": 2, "timeout_seconds": 10}


# ---------------------------------------------------------------------------------------------- batch sizing
def test_batches_close_at_the_byte_cap_in_time_order():
    items = [(f"a[{k}]{{image}}", nbytes) for k, nbytes in enumerate([40e9, 40e9, 40e9, 150e9, 10e9, 90e9, 5e9])]
    batches = export_batches(items, ExportLimits(max_bytes=100e9))
    # greedy: 40+40 (a third 40 would pass 100), 40 alone before the 150 GB record, which is a request of its own
    assert [[item.split("]")[0][2:] for item in batch] for batch in batches] == [
        ["0", "1"], ["2"], ["3"], ["4", "5"], ["6"]]
    assert [item for batch in batches for item in batch] == [item for item, _ in items]


def test_batches_close_at_the_record_count_and_the_request_length():
    items = [(recordset_item(AIA, f"aia.lev1_euv_12s[2011-02-15T{h:02d}:{m:02d}:00Z][171]"), 1.0)
             for h in range(24) for m in range(0, 60, 2)]
    assert [len(b) for b in export_batches(items[:7], ExportLimits(max_records=3))] == [3, 3, 1]
    batches = export_batches(items, ExportLimits())
    encoded = [len(quote_plus(",".join(batch))) for batch in batches]
    assert max(encoded) <= ExportLimits().max_encoded_chars
    # each request but the last is full: the next record would have taken it past the limit
    assert all(length + len(quote_plus("," + nxt[0])) > ExportLimits().max_encoded_chars
               for length, nxt in zip(encoded, batches[1:], strict=False))
    assert 60 < len(batches[0]) < 120  # ~90 AIA records per request, not a fixed 50


def test_record_bytes_uses_the_manifest_size_else_a_bound_from_the_registry():
    assert record_bytes(AIA, 12_345) == 12_345
    assert record_bytes(AIA, None) == record_bytes(AIA, float("nan")) == record_bytes(AIA, pd.NA) == AIA_BYTES


@pytest.mark.parametrize(("settings", "largest"), [
    ({"max_export_records": 3}, 3),
    ({"max_export_bytes": 2.5 * AIA_BYTES}, 2),
])
def test_requests_reaching_jsoc_respect_the_configured_limits(settings, largest, server_for, tmp_path):
    server = server_for()
    _, slots, ledger = fetch("AIA171", server, tmp_path / "out", cadence=dt.timedelta(hours=1), jsoc=jsoc(**settings))
    assert (slots["status"] == "ok").all() and ledger.empty
    sizes = [e["records"] for e in requests(server)]
    assert max(sizes) == largest and sum(sizes) == len(slots)  # 24 slots, one request per `largest` of them


# ---------------------------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("concurrent", [1, 3])
def test_concurrent_exports_cap_is_what_the_server_sees(concurrent, server_for, tmp_path):
    """Staged (fits) exports stay pending for a few status checks; the server counts how many one address has
    pending at once: exactly the configured number when there are more requests than that."""
    server = server_for(pending_polls=4)
    _, slots, ledger = fetch("HMI_720s", server, tmp_path / "out", cadence=dt.timedelta(hours=1),
                             jsoc=jsoc(protocol="fits", poll_seconds=0.05, max_export_records=2,
                                       concurrent_exports=concurrent))
    assert (slots["status"] == "ok").all() and ledger.empty
    assert len(requests(server)) >= 3 * concurrent
    assert server.peak_pending_exports == concurrent


def test_an_address_with_a_pending_export_waits_for_it(server_for, tmp_path, caplog):
    """JSOC allows one pending export per address (status 7 for the next): the fetch asks again after a backoff
    instead of failing, and JSOC's message, which names the address, never reaches the log."""
    server = server_for(pending_polls=3, max_pending=1)
    caplog.set_level(logging.DEBUG)
    _, slots, ledger = fetch("HMI_720s", server, tmp_path / "out", cadence=dt.timedelta(hours=2),
                             jsoc=jsoc(protocol="fits", poll_seconds=0.02, max_export_records=2, concurrent_exports=3),
                             fetch={**FAST, "max_backoff_seconds": 0.1})
    assert (slots["status"] == "ok").all() and ledger.empty
    assert requests(server, status=7) and server.peak_pending_exports == 1
    assert "User " not in caplog.text and "pending export requests" not in caplog.text


# ---------------------------------------------------------------------------------------------- too large
def test_a_request_jsoc_finds_too_large_is_split_in_halves(quiet_mission, server_for, tmp_path):
    row_bytes = int(quiet_mission.ground_truth("MDI_96m", DAY, DAY)["size"].iloc[0])
    server = server_for(max_bytes=int(2.5 * row_bytes))  # JSOC takes two records at a time, the client asks for 8
    _, slots, ledger = fetch("MDI_96m", server, tmp_path / "out", days=(DAY, DAY + dt.timedelta(days=1)),
                             jsoc=jsoc())
    assert (slots["status"] == "ok").all() and ledger.empty
    asked = [e["records"] for e in requests(server)]
    assert asked[:3] == [8, 4, 2]  # refused, halved, halved again
    assert {e["records"] for e in requests(server, status=3)} == {8, 4}
    assert {e["records"] for e in requests(server, status=0)} == {2}


def test_a_record_jsoc_refuses_alone_is_one_ledger_row_each(quiet_mission, server_for, tmp_path, caplog):
    row_bytes = int(quiet_mission.ground_truth("MDI_96m", DAY, DAY)["size"].iloc[0])
    server = server_for(max_bytes=row_bytes // 2)
    caplog.set_level(logging.ERROR)
    _, slots, ledger = fetch("MDI_96m", server, tmp_path / "out", jsoc=jsoc())
    assert (slots["status"] == "failed").all()  # every candidate refused, the month still completes
    assert len(ledger) == slots["n_rejected"].sum() > len(slots)
    assert set(ledger["reason"]) == {"export_too_large"}
    assert (ledger["value"] == record_bytes(get_product("MDI_96m"), None)).all()
    assert ledger["detail"].str.contains("exceeds max byte limit").all()
    assert "export_too_large" in caplog.text
    singles = {e["ds"] for e in requests(server, status=3) if e["records"] == 1}
    assert len(singles) == len(ledger)  # each record was asked for alone once before it was ledgered


# ---------------------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("protocol", ["as-is", "fits"])
def test_a_failed_export_is_retried_with_backoff(protocol, server_for, tmp_path):
    """The first two exports fail (as-is: in the request's answer, fits: at the status check that would finish
    it); export retries are their own budget, apart from the download retries (none here)."""
    server = server_for(fail_first=2)
    _, slots, ledger = fetch("MDI_96m", server, tmp_path / "out", jsoc=jsoc(protocol=protocol, export_retries=2),
                             fetch={**FAST, "retries": 0})
    assert (slots["status"] == "ok").all() and ledger.empty
    statuses = [e["status"] for e in server.export_log if e["status"] != 1]
    assert statuses.count(4) == 2 and statuses[-1] == 0
    assert len({e["ds"] for e in requests(server)}) == 1  # the same request, asked for three times


def test_an_export_failing_every_time_becomes_ledger_rows_not_a_failed_month(server_for, tmp_path):
    """Every request naming a record of 00:00-09:59 fails: after ``export_retries`` more attempts, each record of
    such a request is an ``export_failed`` row; the slots fall back, and the afternoon slots fill."""
    server = server_for(fail_match="[2010.10.15_0")
    retries = 1
    _, slots, ledger = fetch("MDI_96m", server, tmp_path / "out",
                             jsoc=jsoc(export_retries=retries, max_export_records=2))
    assert not ledger.empty and set(ledger["reason"]) == {"export_failed"}
    assert ledger["detail"].str.contains("status 4").all() and (ledger["value"] == 4).all()
    failing = Counter(e["ds"] for e in requests(server) if "[2010.10.15_0" in e["ds"])
    assert set(failing.values()) == {retries + 1}
    ledgered = {re.sub(r"\{\w+\}$", "", item) for ds in failing for item in ds.split(",")}
    assert ledgered == set(ledger["record_id"])  # every record of every failing request, and no other
    afternoon = slots[slots["slot"].str[11:13].isin(["12", "18"])]
    assert (afternoon["status"] == "ok").all()


@pytest.mark.parametrize(("rules", "error"), [
    ({"max_pending": 0}, ExportBusy),  # the address's pending export never finishes (status 7 every time)
    ({"pending_polls": 10**6}, ExportTimeout),  # the export never leaves "processing"
])
def test_an_archive_that_keeps_the_job_waiting_stops_it_with_the_reason(rules, error, server_for, tmp_path):
    """Not a ledger row: the records are fine and a later attempt (Snakemake's retries) may get them."""
    server = server_for(**rules)
    with pytest.raises(error, match=r"jsoc\.export_wait_seconds") as raised:
        fetch("HMI_720s", server, tmp_path / "out", jsoc=jsoc(protocol="fits", export_wait_seconds=0.3),
              fetch={**FAST, "max_backoff_seconds": 0.05})
    email = make_context(server, tmp_path / "any", products=["HMI_720s"])[1].email
    assert email and email not in str(raised.value)  # JSOC's status-7 message names the address: it is masked
