"""Job logs: a full disk is named in the failing job's log and on its stderr; warnings are summed up, not dumped.

The disk-full tests put the job's outputs and its log on a real, tiny tmpfs (so the errors are the kernel's own
ENOSPC, not a simulation); mounting one needs root, so they skip elsewhere, except in CI (HELIOCUBE_REQUIRE_TMPFS).
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import random
import shutil
import socket
import subprocess

import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive.cli import ensure_running
from heliocube.archive.server import ArchiveServer, FaultConfig
from heliocube.jobs import fetch_job, query_job
from heliocube.logs import LOG_RESERVE, job_log, storage_message
from heliocube.manifest import read_manifest
from heliocube.paths import manifest_path

from .conftest import demo_config

DAYS = [dt.date(2010, 10, 15), dt.date(2010, 10, 16)]
EIT_FILES = "/sdac/eit/lz/2010/10/efz"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs mounted for the test (unmounted after).

    A developer machine without root may skip; CI (which sets ``HELIOCUBE_REQUIRE_TMPFS``, and runs as root) fails
    instead, so the full-disk tests never pass there by skipping.
    """
    cannot = pytest.fail if os.environ.get("HELIOCUBE_REQUIRE_TMPFS") else pytest.skip
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        cannot("mounting a tmpfs (a real small disk that fills up) needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:
        cannot(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(disk, leave: int) -> None:
    """Write a ballast file so that only about ``leave`` bytes stay free on ``disk``."""
    with open(disk / "ballast", "wb") as stream:
        stream.write(b"\1" * max(shutil.disk_usage(disk).free - leave, 0))


def days() -> list[str]:
    return [day.isoformat() for day in DAYS]


def test_a_full_disk_is_named_in_the_job_log_and_on_stderr(archive, tiny_disk, capsys):
    root = tiny_disk / "out"
    config = demo_config(archive.url, root)
    query_job(config, "EIT195", days(), str(root / "manifests" / "EIT195" / "2010-10.index.csv"))
    log = root / "logs" / "fetch" / "EIT195" / "2010-10.log"
    fill(tiny_disk, leave=LOG_RESERVE + 8192)  # the log's reserve, and then room for less than one raw file
    with pytest.raises(SystemExit) as stop, job_log(log):
        fetch_job(config, "EIT195", days(), str(root / "raw" / "EIT195" / "2010-10.slots.csv"),
                  str(root / "raw" / "EIT195" / "2010-10.ledger.csv"))
    assert stop.value.code == 1
    lines = log.read_text().splitlines()
    assert "Traceback" in log.read_text()
    assert f"heliocube: No space left on device while writing {root}/raw/EIT195/" in lines[-1]
    assert "free space there and run the same command again" in lines[-1]
    assert capsys.readouterr().err.strip().splitlines()[-1] == lines[-1].split(": ", 1)[1]


def test_a_read_only_disk_is_named_even_behind_another_exception(tiny_disk, tmp_path, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    target = tiny_disk / "out" / "frame.fits"
    with pytest.raises(SystemExit), job_log(tmp_path / "job.log"):
        try:
            target.parent.mkdir()
        except OSError as err:
            raise RuntimeError("could not write the frame") from err  # the storage error is the cause
    line = f"heliocube: Read-only file system while writing {target.parent}"
    assert tmp_path.joinpath("job.log").read_text().splitlines()[-1].split(": ", 1)[1].startswith(line)
    assert "make it writable and run the same command again" in capsys.readouterr().err


def test_the_embedded_archive_reports_its_own_full_disk_to_the_client_job(mission, tiny_disk, tmp_path, capsys):
    access_log = tiny_disk / "archive.access.jsonl"
    with ArchiveServer(mission, access_log_path=access_log) as server:
        config = demo_config(server.url, tmp_path / "out")  # the job's own disk has room; the archive's has none
        fill(tiny_disk, leave=0)
        log = tmp_path / "query.log"
        with pytest.raises(SystemExit), job_log(log):
            query_job(config, "EIT195", days(), str(tmp_path / "index.csv"))
    last = log.read_text().splitlines()[-1]
    assert "HTTP 507 Insufficient Storage (embedded archive: No space left on device" in last
    assert str(access_log) in last
    assert "ArchiveStorageFull" in capsys.readouterr().err


def test_an_embedded_archive_that_cannot_write_its_files_is_named_as_a_full_disk(tiny_disk):
    workdir = tiny_disk / "embedded-archive"
    workdir.mkdir()
    with socket.socket() as probe:  # a free port for the archive to start on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fill(tiny_disk, leave=0)
    with pytest.raises(OSError) as failure:
        ensure_running(f"http://127.0.0.1:{port}/", frame_size=64, seed=0, workdir=workdir, start_timeout=30)
    assert failure.value.errno == errno.ENOSPC
    assert storage_message(failure.value).startswith(f"heliocube: No space left on device while writing {workdir}")


def test_a_query_over_garbled_headers_keeps_a_short_log_and_lists_every_file(mission, tmp_path):
    faults = FaultConfig(rate=0.3, kinds=("corrupt",), match=EIT_FILES, seed=3)
    log = tmp_path / "query.log"
    with ArchiveServer(mission, faults=faults) as server, job_log(log):
        config = demo_config(server.url, tmp_path / "out", fetch={"retries": 5, "backoff_seconds": 0.01})
        query_job(config, "EIT195", days(), str(tmp_path / "index.csv"))
    text = log.read_text()
    assert len(text) < 200_000, f"{len(text)} characters of log"  # 6 MB of astropy warnings before
    assert text.isascii() and "\ufffd" not in text
    # A garbled answer is retried like a failed request, not parsed into a header that names no wavelength.
    listed = set(pd.concat(read_manifest(manifest_path(tmp_path / "out", "EIT195", day)) for day in DAYS)["record_id"])
    truth = mission.ground_truth("EIT195", DAYS[0], DAYS[-1])
    assert set(truth.loc[~(truth["corrupt"] | truth["truncated"]), "record_id"]) <= listed


def test_warnings_are_logged_once_per_kind_printable_and_counted_at_the_end(tmp_path):
    log = tmp_path / "job.log"
    garbage = [bytes(random.Random(i).randrange(256) for _ in range(2880)) for i in range(300)]
    with job_log(log):
        for blob in garbage:  # what a garbled answer gave astropy: one warning per card, binary in each
            fits.Header.fromstring(blob.decode("ascii", "replace"))
    text = log.read_text()
    lines = text.splitlines()
    assert len(text) < 5_000 and all(" " <= ch <= "~" for line in lines for ch in line)
    shown = [line for line in lines if "further ones of this kind are counted" in line]
    counted = [line for line in lines if "warnings of this kind in this job" in line]
    assert len(shown) == len(counted) >= 1 and "AstropyUserWarning" in shown[0]
    assert int(counted[0].rsplit(": ", 1)[1].split()[0]) >= 50  # many counted, one shown
