"""The demo workflow survives SIGKILLs and a faulty archive: same data as an undisturbed run, nothing lost."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from heliocube.archive.mission import SyntheticMission
from heliocube.archive.server import FAULT_KINDS, ArchiveServer, FaultConfig

from .checksums import data_checksums
from .test_workflow import ranked_candidates
from .workflow_runs import DIALECT_PRODUCTS, REPO, VARIANT_NAMES, VARIANTS

pytestmark = [pytest.mark.workflow, pytest.mark.timeout(1800)]

DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
DATA_FILE = re.compile(r"(\.fits|\.fts|/efz\d{8}\.\d{6})$")
CONNECTIONS = 2


def write_config(workdir: Path, server: ArchiveServer, **overrides) -> Path:
    config = {
        "mode": "demo", "products": DIALECT_PRODUCTS, "date_start": "2010-10-15", "date_finish": "2010-10-16",
        "cadence": "6h", "image_size": 32, "variants": VARIANTS, "output_root": "out",
        "archive": {"embedded_url": server.url, "embedded_frame_size": 64},
        "experiments": DEMO["experiments"],
        "metadata_seeding": DEMO["metadata_seeding"],
        "jsoc": {"poll_seconds": 0.05},
        "fetch": {"connections_per_archive": CONNECTIONS, "retries": 4, "backoff_seconds": 0.05,
                  "max_backoff_seconds": 0.5, "timeout_seconds": 5},
    }
    config.update(overrides)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_command(workdir: Path, config: Path, *extra: str) -> list[str]:
    # one job per archive at a time: the server can then check the connection cap exactly
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--profile", str(REPO / "profiles" / "local"), "--cores", "2", "--configfile", str(config),
            "--resources", f"jsoc_connections={CONNECTIONS}", f"sdac_connections={CONNECTIONS}", *extra]


def run(command: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def start_killable(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)  # its own process group: the kill takes every job with it


@pytest.fixture(scope="module")
def mission():
    return SyntheticMission(seed=0, frame_size=64)


@pytest.fixture(scope="module")
def shared_server(mission):
    """One archive for the undisturbed and the killed run: URLs (with the port) are part of the outputs."""
    with ArchiveServer(mission) as server:
        yield server


@pytest.fixture(scope="module")
def reference(shared_server, tmp_path_factory):
    """An undisturbed run: its data checksums."""
    workdir = tmp_path_factory.mktemp("reference")
    result = run(snakemake_command(workdir, write_config(workdir, shared_server)))
    assert result.returncode == 0, result.stderr[-3000:]
    return data_checksums(workdir / "out")


def test_three_sigkills_then_resume_give_the_same_data_and_no_byte_twice(shared_server, reference, tmp_path):
    rng = random.Random(20261121)
    server, first_request = shared_server, len(shared_server.access_log)
    config = write_config(tmp_path, server)
    command = snakemake_command(tmp_path, config)
    kill_times = []  # wall clock, as the archive's access log
    for _ in range(3):
        process = start_killable(command)
        deadline = time.monotonic() + rng.uniform(4.0, 30.0)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kill_times.append(time.time())
        process.wait(timeout=60)
        unlock = run(snakemake_command(tmp_path, config, "--unlock"))
        assert unlock.returncode == 0, unlock.stderr[-2000:]
    assert kill_times  # the run is long enough that the kills land mid-way
    final = run(command)
    assert final.returncode == 0, final.stderr[-3000:]
    access = list(server.access_log[first_request:])  # the killed run's requests only
    assert data_checksums(tmp_path / "out") == reference
    requests = collections.defaultdict(list)
    for entry in access:
        if entry["method"] == "GET" and DATA_FILE.search(entry["path"]) and entry["status"] in (200, 206):
            requests[entry["path"]].append((entry.get("range"), entry["time"]))
    assert requests
    for path, asked in requests.items():
        ranges = [r for r, _ in asked]
        # a file is asked for whole once; a killed download is continued from where it stopped, never restarted.
        # The one exception: a request made in the seconds before a SIGKILL, whose bytes may not have reached the
        # disk yet (a small frame arrives in one block): then nothing was kept and the next run asks again.
        whole = [t for r, t in asked if r is None]
        in_flight = [t for t in whole[:-1] if any(0 <= kill - t < 5.0 for kill in kill_times)]
        assert len(whole) - len(in_flight) <= 1, (path, asked, kill_times)
        offsets = [0 if r is None else int(r.removeprefix("bytes=").split("-")[0]) for r in ranges]
        assert offsets == sorted(offsets), (path, ranges)


def test_ten_percent_faults_complete_with_bounded_retries_and_connections(mission, tmp_path):
    faults = FaultConfig(rate=0.10, kinds=FAULT_KINDS, slow_seconds=3.0, retry_after=1, seed=7)
    with ArchiveServer(mission, faults=faults) as server:
        config = write_config(tmp_path, server, fetch={
            "connections_per_archive": CONNECTIONS, "retries": 5, "backoff_seconds": 0.05,
            "max_backoff_seconds": 1.0, "timeout_seconds": 1.5})
        result = run(snakemake_command(tmp_path, config))
        access = list(server.access_log)
    assert result.returncode == 0, result.stderr[-3000:]
    injected = [e for e in access if e["status"] in (429, 500)] + [e for e in access if e["duration_s"] >= 3.0]
    assert len(injected) >= 5  # the faults really happened
    root = tmp_path / "out"
    for product in DIALECT_PRODUCTS:
        slots = pd.read_csv(root / "raw" / product / "2010-10.slots.csv")
        ledger = pd.read_csv(root / "raw" / product / "2010-10.ledger.csv")
        assert ledger["reason"].notna().all() and (ledger["reason"] != "").all()
        with h5py.File(root / "cubes" / VARIANT_NAMES[0] / f"{product}.h5", "r") as cube:
            in_cube = {r.decode() for r in cube["frames"]["record_id"][()]}
        assert in_cube == set(slots.loc[slots["status"] == "ok", "record_id"])
        for slot, ranked in ranked_candidates(root, product, slots).items():
            row = slots.loc[slots["slot"] == slot].iloc[0]
            tried = ranked if row["status"] != "ok" else ranked[: ranked.index(row["record_id"]) + 1]
            ledgered = set(ledger.loc[ledger["slot"] == slot, "record_id"])
            assert set(tried) - {row["record_id"]} <= ledgered, (product, slot)
    per_request = collections.Counter((e["path"], e["query"], e.get("range")) for e in access
                                      if DATA_FILE.search(e["path"]) and e["status"] != 429)
    assert max(per_request.values()) <= 5 + 1  # retries are bounded by fetch.retries (429s by fetch.refusals)
    # one job per archive at a time, each with at most CONNECTIONS downloads plus its one API connection
    assert max(e["open_connections"] for e in access) <= 2 * (CONNECTIONS + 1)


def planned_jobs(workdir: Path, config: Path) -> collections.Counter:
    """(rule, wildcards) of every job a dry run plans."""
    result = run(snakemake_command(workdir, config, "-n"))
    assert result.returncode == 0, result.stderr[-3000:]
    jobs, rule = collections.Counter(), None
    for line in (result.stdout + result.stderr).splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = match.group(1)
            if rule == "all":
                jobs[("all", "")] += 1
        elif line.startswith("wildcards:") and rule:
            jobs[(rule, line.removeprefix("wildcards:").strip())] += 1
    return jobs


def test_extending_the_range_by_a_week_rebuilds_only_the_new_days_year_cube_masters_and_syncs(mission, tmp_path):
    with ArchiveServer(mission) as server:
        config = write_config(tmp_path, server, date_start="2010-09-30", date_finish="2010-10-01")
        first = run(snakemake_command(tmp_path, config))
        assert first.returncode == 0, first.stderr[-3000:]
        downloaded = {e["path"] for e in server.access_log if DATA_FILE.search(e["path"]) and e["status"] == 200}
        config = write_config(tmp_path, server, date_start="2010-09-30", date_finish="2010-10-08")
        jobs = planned_jobs(tmp_path, config)
        by_rule = collections.Counter(rule for rule, _ in jobs.elements())
        n_products, n_variants = len(DIALECT_PRODUCTS), len(VARIANTS)
        # only October's month jobs: September's query, fetch and clean are untouched
        assert all("month=2010-10" in wildcards for rule, wildcards in jobs if rule in ("query", "fetch", "clean"))
        assert by_rule["query"] == by_rule["fetch"] == n_products and by_rule["clean"] == n_products * n_variants
        assert all("year=2010" in wildcards for rule, wildcards in jobs if rule == "cube")
        assert by_rule["cube"] == by_rule["cube_master"] == n_products * n_variants
        assert by_rule["sync"] == 2 and by_rule["seed_metadata"] == 2 * n_variants
        before = len(server.access_log)
        cached = _raw_files(tmp_path / "out")
        second = run(snakemake_command(tmp_path, config))
        assert second.returncode == 0, second.stderr[-3000:]
        again = [e["path"] for e in server.access_log[before:] if DATA_FILE.search(e["path"])]
    assert again and not set(again) & downloaded  # the new days only: nothing fetched before is fetched again
    # and QC inspects only the files the rerun downloaded: the receipts' verdicts stand for those it had
    inspected = reused = 0
    for log in (tmp_path / "out" / "logs" / "fetch").glob("*/2010-10.log"):
        counts = re.findall(r"QC: (\d+) files inspected, (\d+) verdicts reused", log.read_text())[-1]
        inspected, reused = inspected + int(counts[0]), reused + int(counts[1])
    assert inspected == len(_raw_files(tmp_path / "out") - cached)
    assert reused >= n_products * 4  # at least the frames of each product's four slots of October 1st


def _raw_files(root: Path) -> set[Path]:
    """The fetch stage's cache: raw/{product}/{YYYY}/{YYYY-MM-DD}/<file> (not receipts, not partial files)."""
    return {path for path in root.glob("raw/*/*/*/*") if path.is_file() and not path.name.startswith(".")}
