"""The embedded archive's network model and the fetch against it: the connection cap (server-side count), 429 with
Retry-After slowing the client down, pipelined JSOC exports in flight, exports failing or expiring while staging or
while their files download, and the receipts' digests taken from the downloads' own streams.

Nothing here is timed: the figures are in bench/bench_fetch.py. Waits are lower bounds the client must respect.
"""

import concurrent.futures
import datetime as dt
import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from heliocube.archive.jsoc import ExportRules
from heliocube.archive.mission import SyntheticMission
from heliocube.archive.network import NetworkModel
from heliocube.archive.server import ArchiveServer
from heliocube.fetch import cache, fetch_days
from heliocube.fetch.download import partial_path
from heliocube.query import write_day_manifests

from .conftest import FRAME, demo_config, free_port, make_context

DAY = dt.date(2010, 10, 15)


@pytest.fixture(scope="module")
def quiet_mission():
    """No broken files: every rejection here comes from the network or an export."""
    return SyntheticMission(seed=3, frame_size=FRAME, defect_rates={"corrupt": 0.0, "truncated": 0.0, "quality": 0.0})


@pytest.fixture
def server_for(quiet_mission, tmp_path):
    servers = []

    def start(rules=None, **model):
        servers.append(ArchiveServer(quiet_mission, access_log_path=tmp_path / "access.jsonl",
                                     export_rules=ExportRules(**(rules or {})), network=NetworkModel(**model)).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def fetch(name, server, root, cadence, **overrides):
    """Query ``name`` from an archive without the model (the same mission: manifests hold archive-relative
    locations), then fetch it from ``server``: only the fetch meets the model and its meter."""
    with ArchiveServer(server.mission) as plain:
        config, context = make_context(plain, root, products=[name], **overrides)
        write_day_manifests(name, [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)], context,
                            config["output_root"], Path(root) / f"{name}.index.csv")
    config, context = make_context(server, root, products=[name], **overrides)
    return fetch_days(name, [DAY], context, config["output_root"], cadence=cadence, tolerance=cadence / 2, anchor=DAY)


def test_the_model_is_off_by_default(quiet_mission, tmp_path):
    """Defaults: no model, no meter, the health answer as before, and the config's block null."""
    assert demo_config("http://127.0.0.1:1/", tmp_path)["archive"]["network"] is None
    with ArchiveServer(quiet_mission) as server:
        assert server.network is None and server.meter is None
        with urllib.request.urlopen(server.url + "health") as answer:
            assert "network" not in json.loads(answer.read())
        with urllib.request.urlopen(server.url + "network") as answer:
            assert json.loads(answer.read()) == {"model": None}


def test_the_connection_cap_holds_server_side_and_a_429_slows_the_client_down(server_for, tmp_path):
    """The client opens 4 connections, the archive serves 2 at once: the archive's count never passes 2, every
    refused request is asked again no sooner than its Retry-After, and the job adapts instead of bouncing: far
    fewer refusals than files, and no file is ledgered (a refusal spends fetch.refusals, not its 2 retries)."""
    retry_after = 0.3
    server = server_for(latency_ms=20, connection_mb_per_s=2.0, max_connections=2, retry_after_seconds=retry_after)
    slots, ledger = fetch("HMI_720s", server, tmp_path / "out", dt.timedelta(hours=1),
                          fetch={"connections_per_archive": 4, "retries": 2, "backoff_seconds": 0.01,
                                 "max_backoff_seconds": 5, "timeout_seconds": 10})
    assert (slots["status"] == "ok").all() and ledger.empty
    meter = server.meter
    assert meter.peak_connections == 2  # the cap was reached, never passed
    assert 0 < meter.refused < len(slots) / 2
    lines = [json.loads(line) for line in (tmp_path / "access.jsonl").read_text().splitlines()]
    files = [line for line in lines if line["path"].startswith("/SUM")]
    for k, line in enumerate(files):
        if line["status"] == 429:
            again = next(later for later in files[k + 1 :] if later["path"] == line["path"])
            assert again["time"] - line["time"] >= retry_after * 0.95  # the log's time is the refusal's arrival


def test_a_client_at_the_servers_cap_that_reads_whole_answers_is_never_refused(tmp_path):
    """Two clients, each asking again (on a new connection) as soon as it has read a whole answer, against a
    spawned archive's cap of 2: the archive counts a request as over before its last bytes leave, so no request
    finds its predecessor still counted. (At equal client and server caps that race cost a 429 and a Retry-After
    pause for the whole job.)"""
    from heliocube.archive.cli import ensure_running

    url = ensure_running(f"http://127.0.0.1:{free_port()}/", frame_size=FRAME, seed=0, workdir=tmp_path,
                         network={"max_connections": 2}, idle_timeout=60)
    pidfile = next(tmp_path.glob("*.pid"))

    def ask_back_to_back(count):
        statuses = []
        for _ in range(count):
            try:
                urllib.request.urlopen(url + "no/such/file", timeout=10).close()
            except urllib.error.HTTPError as answer:
                answer.read()  # the whole answer, as a download reads its body
                statuses.append(answer.code)
        return statuses

    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            clients = [pool.submit(ask_back_to_back, 200) for _ in range(2)]
            answers = [code for client in clients for code in client.result()]
        with urllib.request.urlopen(url + "network") as answer:
            summary = json.loads(answer.read())
    finally:
        subprocess.run([sys.executable, "-m", "heliocube.archive", "stop", "--pidfile", str(pidfile)], check=True,
                       capture_output=True, timeout=60)
    assert answers == [404] * 400
    assert summary["refused"] == 0 and summary["peak_connections"] == 2


@pytest.mark.parametrize("concurrent", [1, 2])
def test_pipelined_exports_stay_within_the_configured_number(concurrent, server_for, tmp_path):
    """Staged (fits) exports of 2 records each: while one export's files download the next is staging, yet JSOC
    never has more than ``concurrent_exports`` pending, and at most twice as many are staging or downloading.
    (Connections enough for both exports' files and the export requests: the overlap does not wait for a slot.)"""
    server = server_for(latency_ms=30, connection_mb_per_s=1.0, jsoc_staging_seconds_per_request=0.2)
    slots, ledger = fetch("HMI_720s", server, tmp_path / "out", dt.timedelta(hours=2),
                          jsoc={"protocol": "fits", "poll_seconds": 0.05, "max_export_records": 2,
                                "concurrent_exports": concurrent},
                          fetch={"connections_per_archive": 3 * concurrent, "retries": 2, "timeout_seconds": 10})
    assert (slots["status"] == "ok").all() and ledger.empty
    asked = [e for e in server.export_log if e["op"] == "exp_request"]
    assert len(asked) == len(slots) / 2
    assert server.peak_pending_exports == concurrent
    assert concurrent < server.meter.peak_open_exports <= 2 * concurrent  # staging while the previous downloads
    assert server.meter.open_exports == 0  # every export's files were all downloaded


@pytest.mark.parametrize("retries", [2, 0])
def test_an_export_failing_or_expiring_while_staging_is_asked_again_and_its_records_accounted(retries, server_for,
                                                                                              tmp_path):
    """The first export fails while staging (status 4), the next expires while staging (5): each is requested
    again (``jsoc.export_retries``); with no retries left, each of their records is an ``export_failed`` row. Either
    way every slot's records are accounted for: a file or a ledger row."""
    server = server_for(rules={"fail_first": 1, "expire_first": 1}, jsoc_staging_seconds_per_request=0.1)
    slots, ledger = fetch("HMI_720s", server, tmp_path / "out", dt.timedelta(hours=3),
                          jsoc={"protocol": "fits", "poll_seconds": 0.03, "max_export_records": 2,
                                "concurrent_exports": 2, "export_retries": retries})
    finished = [e["status"] for e in server.export_log if e["op"] == "exp_status" and e["status"] != 1]
    assert 4 in finished and 5 in finished
    requests = [e for e in server.export_log if e["op"] == "exp_request"]
    failed_ds = {requests[0]["ds"], requests[1]["ds"]}
    ledgered = set(ledger["record_id"])
    if retries:
        assert (slots["status"] == "ok").all() and ledger.empty
        assert all(sum(e["ds"] == ds for e in requests) == 2 for ds in failed_ds)  # asked again, once
    else:
        assert set(ledger["reason"]) == {"export_failed"} and set(ledger["value"]) == {4, 5}
        assert ledgered == {item.rsplit("{", 1)[0] for ds in failed_ds for item in ds.split(",")}
    for _, slot in slots.iterrows():  # a file, or every candidate it tried in the ledger
        assert slot["status"] == "ok" or slot["n_rejected"] == (ledger["slot"] == slot["slot"]).sum() > 0


def test_the_config_block_reaches_the_spawned_archive_and_its_stats_file(tmp_path):
    """``archive.network`` goes to the archive the workflow starts; the meter's summary is in its log directory."""
    from heliocube.archive.cli import ensure_running

    network = {"latency_ms": 5, "max_connections": 3}
    url = ensure_running(f"http://127.0.0.1:{free_port()}/", frame_size=FRAME, seed=0, workdir=tmp_path,
                         network=network, idle_timeout=30)
    pidfile = next(tmp_path.glob("*.pid"))
    try:
        urllib.request.urlopen(url + "sdac/").close()  # one metered request (/health and /network are not)
        with urllib.request.urlopen(url + "network") as answer:
            summary = json.loads(answer.read())
        assert summary["model"] == NetworkModel.from_config(network).as_json()
        with pytest.raises(RuntimeError, match="network model"):
            ensure_running(url, frame_size=FRAME, seed=0, workdir=tmp_path)  # the running one has another model
    finally:
        subprocess.run([sys.executable, "-m", "heliocube.archive", "stop", "--pidfile", str(pidfile)], check=True,
                       capture_output=True, timeout=60)
    stats = json.loads(next(tmp_path.glob("*.network.json")).read_text())
    assert stats["model"]["max_connections"] == 3 and stats["requests"] == stats["peak_connections"] == 1


def test_an_export_expiring_while_its_files_download_is_asked_for_again(server_for, tmp_path):
    """The first export's files vanish (404) after 2 of its 4 were downloaded: its other records are exported again,
    together, in one new export, and downloaded from it; no slot falls back to another candidate."""
    server = server_for(rules={"expire_downloading_first": 1, "files_before_expiry": 2})
    slots, ledger = fetch("HMI_720s", server, tmp_path / "out", dt.timedelta(hours=6),
                          jsoc={"protocol": "fits", "poll_seconds": 0.02, "max_export_records": 4,
                                "concurrent_exports": 1, "export_retries": 1},
                          fetch={"connections_per_archive": 1, "retries": 1, "timeout_seconds": 10})
    assert (slots["status"] == "ok").all() and ledger.empty and (slots["n_rejected"] == 0).all()
    lines = [json.loads(line) for line in (tmp_path / "access.jsonl").read_text().splitlines()]
    gone = {line["path"] for line in lines if line["path"].startswith("/SUM0/D1/") and line["status"] == 404}
    assert len(gone) == 2
    requests = [e["ds"].split(",") for e in server.export_log if e["op"] == "exp_request"]
    assert len(requests) == len(slots) // 4 + 1 and len(requests[-1]) == 2  # one export more: the two gone files
    assert sorted(requests[-1]) == sorted(set(requests[-1]) & set(requests[0]))


def test_records_whose_export_expires_again_are_ledgered_as_expired(server_for, tmp_path):
    """With no export retries left, the records an expired export did not deliver become ``export_expired`` ledger
    rows naming the 404, and only then do their slots move on to their next candidates."""
    server = server_for(rules={"expire_downloading_first": 1, "files_before_expiry": 2})
    slots, ledger = fetch("HMI_720s", server, tmp_path / "out", dt.timedelta(hours=6),
                          jsoc={"protocol": "fits", "poll_seconds": 0.02, "max_export_records": 4,
                                "concurrent_exports": 1, "export_retries": 0},
                          fetch={"connections_per_archive": 1, "retries": 1, "timeout_seconds": 10})
    assert (slots["status"] == "ok").all()
    assert list(ledger["reason"]) == ["export_expired"] * 2 and ledger["detail"].str.contains("404").all()
    first = [item.rsplit("{", 1)[0] for item in server.export_log[0]["ds"].split(",")]
    assert set(ledger["record_id"]) < set(first)


def test_receipts_carry_the_downloads_own_digest_also_after_a_resumed_download(server_for, tmp_path, monkeypatch):
    """A receipt's SHA-256 is the one computed from the download's stream as it was written: a fetch hashes no
    downloaded file again, and a file resumed with a Range request (the prefix of an interrupted download on disk)
    has the digest of the whole file. A rerun still checks each cached file it reuses against its receipt, once."""
    hashed = []
    real = cache.sha256_of
    monkeypatch.setattr(cache, "sha256_of", lambda path: hashed.append(Path(path).name) or real(path))
    server, root = server_for(), tmp_path / "out"
    slots, _ = fetch("LASCO_C2", server, root, dt.timedelta(hours=6))
    assert (slots["status"] == "ok").all() and hashed == []
    for row in slots.itertuples():
        assert row.sha256 == hashlib.sha256((root / row.path).read_bytes()).hexdigest()

    victim = root / slots["path"].iloc[1]
    body = victim.read_bytes()
    victim.unlink()
    partial_path(victim).write_bytes(body[: len(body) // 2])  # an interrupted download's prefix
    slots, _ = fetch("LASCO_C2", server, root, dt.timedelta(hours=6))
    again = slots.set_index("path")
    assert again.loc[slots["path"].iloc[1], "sha256"] == hashlib.sha256(body).hexdigest()
    assert victim.read_bytes() == body
    lines = [json.loads(line) for line in (tmp_path / "access.jsonl").read_text().splitlines()]
    assert [line["range"] for line in lines if line["path"].endswith(victim.name)][-1] == f"bytes={len(body) // 2}-"
    assert sorted(hashed) == sorted(Path(path).name for path in slots["path"] if Path(path).name != victim.name)
