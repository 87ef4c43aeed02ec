"""Benchmark the fetch stage against the embedded archive's network model: achieved throughput against the ideal.

Usage: ``python bench/bench_fetch.py [--quick] [--only PRODUCT:CONNECTIONS[:STAGING]] [--frame-size 1536] [--out DIR]``

A month of one JSOC product (HMI_720s, 2011-02, staged ``fits`` exports, 2 exports at once) and one SDAC product
(LASCO_C2, 2005-02) is fetched from an embedded archive that answers each request after 100 ms, sends 5 MB/s per
connection and serves as many connections as the job opens (4 or 8; beyond that it would answer 429). JSOC exports
stage 5 s or 60 s each. Each setting starts from an empty raw directory (the manifests are queried once, from an
archive without the model). The archive runs in a process of its own, as a remote archive would (in the fetch's
process its threads would take the client's interpreter lock), and the files it serves are rendered once
beforehand by an unmodelled run, so the server's CPU is not what is measured.

Scaled to keep the run near 10 minutes (``--quick``: the 5 s settings only, ~4 minutes): frames of 1536² px
(JSOC fits exports 9.4 MB, LASCO C2 4.7 MB, at least 2 MB so that 100 ms of latency per file costs < 20 %: 6 % and
10 % of the ideal here), slots every 3 h (HMI, 5 s staging: 224 files, 2.1 GB), 12 h (HMI, 60 s staging: 56 files,
530 MB, 4 exports) and 6 h (LASCO C2: 112 files, 530 MB).

Figures, each with the host check beside it:

- achieved throughput (bytes of the files fetched / wall time of ``fetch_days``);
- the ideal: connections x 5 MB/s (bounded by the server's limit) for the transfer, and with staging the exports
  back to back ``concurrent_exports`` at a time, overlapped with the transfer: ideal time =
  max(ceil(exports / concurrent) x staging, bytes / ideal rate); ideal throughput = bytes / ideal time;
- their ratio (goal >= 0.80) and, with staging, wall / ideal time (goal <= 1.20);
- the server's side (:class:`heliocube.archive.network.NetworkMeter`): peak and mean connections in use, mean and
  peak bytes per second, refusals, most exports pending at once and most in flight (staging or downloading).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_clean import host_check

from heliocube.archive.mission import SyntheticMission
from heliocube.archive.network import NetworkModel
from heliocube.archive.server import ArchiveServer
from heliocube.config import validate_config
from heliocube.fetch import fetch_days
from heliocube.query import ArchiveContext, write_day_manifests

LATENCY_MS, MB_PER_S = 100, 5.0
CONCURRENT_EXPORTS = 2
CLEAN = {"corrupt": 0.0, "truncated": 0.0, "quality": 0.0}
MONTHS = {"HMI_720s": dt.date(2011, 2, 1), "LASCO_C2": dt.date(2005, 2, 1)}

#: (product, connections, staging seconds per export or None, slot cadence in hours, exports per month or None)
SETTINGS = [
    ("LASCO_C2", 4, None, 6, None),
    ("LASCO_C2", 8, None, 6, None),
    ("HMI_720s", 4, 5.0, 3, 8),
    ("HMI_720s", 8, 5.0, 3, 8),
    ("HMI_720s", 4, 60.0, 12, 4),
    ("HMI_720s", 8, 60.0, 12, 4),
]


def serve(pipe, frame_size: int) -> None:
    """The archive's process: one mission (its rendered files cached across settings) and, on each request from
    ``pipe``, a server with the given network model (or none): ``("start", model or None)`` answers its URL,
    ``("stop",)`` its meter summary, exports asked for and most pending at once; ``("exit",)`` ends."""
    mission = SyntheticMission(seed=0, frame_size=frame_size, defect_rates=CLEAN, cache_size=1000)
    server = None
    while True:
        message = pipe.recv()
        if message[0] == "start":
            model = NetworkModel(**message[1]) if message[1] else None
            server = ArchiveServer(mission, network=model).start()
            pipe.send(server.url)
        elif message[0] == "stop":
            meter = server.meter.summary(timeline=False) if server.meter else None
            requested = sum(entry["op"] == "exp_request" for entry in server.export_log)
            pending = server.peak_pending_exports
            server.stop()
            pipe.send((meter, requested, pending))
        else:
            return


class RemoteArchive:
    """An archive served by :func:`serve` in a child process; ``url`` while started."""

    def __init__(self, frame_size: int):
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=serve, args=(child, frame_size),
                                                                     daemon=True)
        self.process.start()
        self.url = None

    def start(self, model: dict | None = None) -> RemoteArchive:
        self.pipe.send(("start", model))
        self.url = self.pipe.recv()
        return self

    def stop(self) -> tuple[dict | None, int, int]:
        """The server's meter summary, the exports asked for and the most pending at once."""
        self.pipe.send(("stop",))
        return self.pipe.recv()

    def close(self) -> None:
        self.pipe.send(("exit",))
        self.process.join(timeout=30)


def month_days(first: dt.date) -> list[dt.date]:
    days, day = [], first
    while day.month == first.month:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def config_for(url: str, root: Path, product: str, connections: int, records_per_export: int, frame: int) -> dict:
    days = month_days(MONTHS[product])
    return validate_config({
        "products": [product], "date_start": days[0].isoformat(), "date_finish": days[-1].isoformat(),
        "image_size": frame, "output_root": str(root),
        "archive": {"embedded_url": url, "embedded_frame_size": frame},
        "fetch": {"connections_per_archive": connections, "retries": 4, "backoff_seconds": 0.5,
                  "max_backoff_seconds": 10, "timeout_seconds": 120},
        "jsoc": {"protocol": "fits", "poll_seconds": 1.0, "concurrent_exports": CONCURRENT_EXPORTS,
                 "max_export_records": records_per_export, "export_wait_seconds": 600},
    })


def fetch_month(url: str, root: Path, product: str, connections: int, cadence_h: int, exports: int | None,
                frame: int) -> tuple[float, int, int]:
    """Fetch the month from an empty raw directory: (wall seconds, bytes fetched, files)."""
    shutil.rmtree(root / "raw", ignore_errors=True)
    days = month_days(MONTHS[product])
    slots_per_month = len(days) * 24 // cadence_h
    per_export = math.ceil(slots_per_month / exports) if exports else 1000
    config = config_for(url, root, product, connections, per_export, frame)
    context = ArchiveContext.from_config(config, url)
    cadence = dt.timedelta(hours=cadence_h)
    start = time.perf_counter()
    slots, _ = fetch_days(product, days, context, root, cadence=cadence, tolerance=cadence / 2, anchor=days[0])
    wall = time.perf_counter() - start
    ok = slots[slots["status"] == "ok"]
    if len(ok) != len(slots):
        print(f"  warning: {len(slots) - len(ok)} of {len(slots)} slots not filled")
    return wall, int(ok["size"].sum()), len(ok)


def _named(setting, names: list[str]) -> bool:
    """Whether ``setting`` is one of ``names`` (``PRODUCT:CONNECTIONS[:STAGING]``)."""
    product, connections, staging = setting[:3]
    label = f"{product}:{connections}" + (f":{staging:g}" if staging else "")
    return label in names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the settings without 60 s staging")
    parser.add_argument("--frame-size", type=int, default=1536)
    parser.add_argument("--out", default=None, help="work directory (default: a temporary one, removed)")
    parser.add_argument("--only", action="append", default=[], metavar="PRODUCT:CONNECTIONS[:STAGING]",
                        help="run only this setting, e.g. HMI_720s:8:5 (repeatable), to remeasure one on a quiet host")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = [s for s in SETTINGS if not (args.quick and s[2] == 60.0) and (not args.only or _named(s, args.only))]
    print(f"host check (before): {host_check():.2f} ms")
    print(f"load average (before): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    work = Path(args.out or tempfile.mkdtemp(prefix="bench-fetch-"))
    archive = RemoteArchive(args.frame_size)
    try:
        archive.start()  # manifests once; every served file rendered once (the server's cache)
        for product in MONTHS:
            root = work / product
            days = month_days(MONTHS[product])
            config = config_for(archive.url, root, product, 8, 1000, args.frame_size)
            context = ArchiveContext.from_config(config, archive.url)
            write_day_manifests(product, [days[0] - dt.timedelta(days=1), *days, days[-1] + dt.timedelta(days=1)],
                                context, root, root / "index.csv")
        warmed = set()
        for product, _, _, cadence_h, exports in settings:
            if (product, cadence_h) in warmed:
                continue
            warmed.add((product, cadence_h))
            wall, nbytes, files = fetch_month(archive.url, work / product, product, 8, cadence_h, exports,
                                              args.frame_size)
            print(f"{product:9s} every {cadence_h:2d} h, no network model: {files} files, {nbytes / 1e6:7.0f} MB "
                  f"in {wall:6.1f} s = {nbytes / 1e6 / wall:6.1f} MB/s (loopback and CPU: the host's ceiling)   "
                  f"host check: {host_check():.2f} ms")
        archive.stop()
        for product, connections, staging, cadence_h, exports in settings:
            archive.start({"latency_ms": LATENCY_MS, "connection_mb_per_s": MB_PER_S, "max_connections": connections,
                           "jsoc_staging_seconds_per_request": staging or 0.0})
            wall, nbytes, files = fetch_month(archive.url, work / product, product, connections, cadence_h, exports,
                                              args.frame_size)
            meter, requested, pending = archive.stop()
            rate = connections * MB_PER_S * 1e6  # the server serves as many connections as the job opens
            transfer = nbytes / rate
            staged = math.ceil(requested / CONCURRENT_EXPORTS) * staging if staging else 0.0
            ideal_time = max(staged, transfer)
            achieved, ideal = nbytes / wall, nbytes / ideal_time
            what = f"{product:9s} {connections} conn" + (f", {staging:2.0f} s staging" if staging else " " * 16)
            line = (f"{what}: {files:3d} files {nbytes / 1e6:6.0f} MB in {wall:6.1f} s = {achieved / 1e6:5.1f} MB/s, "
                    f"ideal {ideal / 1e6:5.1f} MB/s, ratio {achieved / ideal:4.2f} "
                    f"({'meets' if achieved / ideal >= 0.8 else 'MISSES'} 0.80)")
            if staging:
                line += (f"; {requested} exports, ideal time max({staged:.0f} s staging, {transfer:.0f} s transfer) = "
                         f"{ideal_time:.0f} s, wall/ideal {wall / ideal_time:4.2f} "
                         f"({'meets' if wall / ideal_time <= 1.2 else 'MISSES'} 1.20)")
            print(line)
            print(f"    server: peak {meter['peak_connections']} connections (mean {meter['mean_connections']:.2f}), "
                  f"{meter['mean_bytes_per_second'] / 1e6:5.1f} MB/s mean, {meter['peak_bytes_per_second'] / 1e6:5.1f}"
                  f" MB/s peak second, {meter['refused']} refused, exports pending at once <= "
                  f"{pending}, in flight <= {meter['peak_open_exports']}   "
                  f"host check: {host_check():.2f} ms", flush=True)
    finally:
        archive.close()
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"host check (after):  {host_check():.2f} ms")
    print(f"load average (after): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
