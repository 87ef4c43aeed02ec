"""The EIT header cache: a query killed part way and run again reads no header twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from astropy.io import fits

from heliocube.archive.server import ArchiveServer, FaultConfig
from heliocube.manifest import read_manifest
from heliocube.paths import manifest_path
from heliocube.query import write_day_manifests
from heliocube.query.header_cache import HeaderCache, header_cache_path

from .conftest import demo_config, make_context

DAYS = [dt.date(2010, 10, 15), dt.date(2010, 10, 16)]
EIT_FILES = "/sdac/eit/lz/2010/10/efz"


def test_cache_keeps_entries_ignores_a_torn_line_and_appends_on_a_new_line(tmp_path):
    path = tmp_path / "2010-10.headers.jsonl"
    cache = HeaderCache(path, ("WAVELNTH", "DATE_OBS"))
    cards = cache.put("eit/lz/2010/10/a", 100, fits.Header({"WAVELNTH": 195, "EXPTIME": 2.0}), 100)
    assert cards == {"WAVELNTH": 195}  # only the kept keywords
    with open(path, "ab") as stream:
        stream.write(b'{"path": "eit/lz/2010/10/b", "si')  # a writer killed mid-line
    reread = HeaderCache(path, ("WAVELNTH", "DATE_OBS"))
    assert len(reread) == 1 and reread.get("eit/lz/2010/10/a", 100) == ({"WAVELNTH": 195}, 100)
    assert reread.get("eit/lz/2010/10/a", 101) is None  # another size: another file
    reread.put("eit/lz/2010/10/c", 7, {"WAVELNTH": 304}, 7)
    assert HeaderCache(path, ("WAVELNTH", "DATE_OBS")).get("eit/lz/2010/10/c", 7) == ({"WAVELNTH": 304}, 7)
    assert HeaderCache(path, ("WAVELNTH",)).get("eit/lz/2010/10/a", 100) is None  # kept for other keywords


def _header_reads(server: ArchiveServer) -> list[str]:
    return [entry["path"] for entry in server.access_log if entry["range"] and entry["path"].startswith(EIT_FILES)]


def _query_process(server: ArchiveServer, root, index) -> subprocess.Popen:
    config = demo_config(server.url, root)
    code = ("import json, sys; from heliocube.jobs import query_job; "
            "query_job(json.loads(sys.argv[1]), 'EIT195', sys.argv[2].split(','), sys.argv[3])")
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(config, default=str), ",".join(map(str, DAYS)), str(index)],
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_query_reads_no_cached_header_again(mission, tmp_path):
    root = tmp_path / "out"
    # Slow header answers, so the kill lands in the middle of the month's header reads.
    slow = FaultConfig(rate=1.0, kinds=("slow",), slow_seconds=0.02, match=EIT_FILES)
    with ArchiveServer(mission, faults=slow) as first:
        process = _query_process(first, root, tmp_path / "index.csv")
        deadline = time.time() + 120
        while len(_header_reads(first)) < 60 and process.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        read_before = set(_header_reads(first))
    assert not manifest_path(root, "EIT195", DAYS[0]).exists(), "the kill came too late to test anything"
    cached = {(entry["path"]) for entry in map(json.loads, header_cache_path(root, "eit/lz/2010/10").open())}
    assert 0 < len(cached) <= len(read_before)

    # The rerun talks to an archive on another port: the cache is keyed by the archive-relative path.
    with ArchiveServer(mission) as second:
        _, context = make_context(second, root)
        write_day_manifests("EIT195", DAYS, context, root, tmp_path / "index.csv")
        read_again = _header_reads(second)
        undisturbed_root = tmp_path / "undisturbed"
        _, fresh = make_context(second, undisturbed_root)
        write_day_manifests("EIT195", DAYS, fresh, undisturbed_root, tmp_path / "undisturbed.csv")
        every_file = set(_header_reads(second)[len(read_again):])
    assert not {path for path in read_again if path.removeprefix("/sdac/") in cached}
    assert len(read_again) == len(every_file) - len(cached)  # each header not cached read once, no more
    for day in DAYS:
        pd.testing.assert_frame_equal(read_manifest(manifest_path(root, "EIT195", day)),
                                      read_manifest(manifest_path(undisturbed_root, "EIT195", day)))


def test_the_wavelengths_of_one_month_share_its_header_cache(clean_archive, tmp_path):
    """EIT's wavelengths share one month directory and every query reads every file's header: after EIT 195's
    query, EIT 304's reads none, and lists what it would list alone."""
    root = tmp_path / "out"
    _, context = make_context(clean_archive, root)
    write_day_manifests("EIT195", DAYS[:1], context, root, tmp_path / "195.csv")
    read = len(_header_reads(clean_archive))
    write_day_manifests("EIT304", DAYS[:1], context, root, tmp_path / "304.csv")
    assert read > 0 and len(_header_reads(clean_archive)) == read
    assert sorted(p.name for p in (root / "manifests").rglob("*.headers.jsonl")) == ["10.headers.jsonl"]

    alone = tmp_path / "alone"
    _, fresh = make_context(clean_archive, alone)
    write_day_manifests("EIT304", DAYS[:1], fresh, alone, tmp_path / "alone.csv")
    pd.testing.assert_frame_equal(read_manifest(manifest_path(root, "EIT304", DAYS[0])),
                                  read_manifest(manifest_path(alone, "EIT304", DAYS[0])))
