"""Building an event dataset at the prior notebook's scale: partition, sampling and the labelled cubes.

Run: ``.venv/bin/python bench/bench_events.py [size] [events]`` (defaults 256 and 5).

``events`` flare events like the notebook's (180-minute buffers, flares of 20 to 100 minutes, one AIA channel at
12 s, every 7th frame rejected and every 11th missing, 178 pre and 178 post frames), about 2,100 frame-table rows
per event. Every ``ok`` frame's file is a symbolic link to one of 64 real cleaned FITS files of ``size``² float32
(the reads are real FITS reads from the page cache; the disk holds 64 files, not 10,000).

Printed: the time of the tables (reading, partition, sampling, labels, logs, summary, accounting: no frame is
read), the time of the cubes (each sampled frame read once, written into ``events.h5`` and its event's file), the
frames per second of the whole build, and the peak RSS of the process. The ``host check`` lines (bench_clean's fixed
single-core workload) tell a busy shared host from a slow build.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check

from heliocube.events import dataset as event_dataset
from heliocube.events.dataset import build_event_dataset

FLARES = [("2014-01-07T18:04:00", "2014-01-07T18:58:00"), ("2014-02-25T00:39:00", "2014-02-25T01:03:00"),
          ("2014-04-18T12:31:00", "2014-04-18T13:20:00"), ("2014-09-10T17:21:00", "2014-09-10T18:20:00"),
          ("2014-10-24T21:07:00", "2014-10-24T22:13:00")]


def write_inputs(root: Path, size: int, n_events: int) -> tuple[Path, dict]:
    sources = []
    for number in range(64):
        path = root / "frames" / "src" / f"{number:02d}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = np.random.default_rng(number).normal(100, 10, (size, size)).astype(np.float32)
        fits.PrimaryHDU(data, fits.Header({"BUNIT": "DN/s"})).writeto(path)
        sources.append(path)
    rows, tables = [], {}
    for number in range(n_events):
        start, end = (pd.Timestamp(t) + pd.DateOffset(years=number // len(FLARES))
                      for t in FLARES[number % len(FLARES)])  # fmt: skip
        event_id = f"E{number:03d}"
        first, last = start - pd.Timedelta(minutes=180), end + pd.Timedelta(minutes=180)
        rows.append({"event_id": event_id, "start": start.isoformat(), "end": end.isoformat(),
                     "window_start": first.isoformat(), "window_end": last.isoformat(), "goes_class": "X1.0"})
        frames = []
        for i, t in enumerate(pd.date_range(first + pd.Timedelta(seconds=2.57), last, freq="12s")):
            status = "rejected" if i % 7 == 3 else "missing" if i % 11 == 5 else "ok"
            file = ""
            if status == "ok":
                file = f"frames/{event_id}/{t:%Y%m%dT%H%M%S}.fits"
                (root / file).parent.mkdir(parents=True, exist_ok=True)
                (root / file).symlink_to(sources[i % len(sources)])
            frames.append({"product": "AIA131", "time": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                           "record": f"aia.lev1_euv_12s[{t:%Y-%m-%dT%H:%M:%S}Z][131]", "status": status,
                           "reason": "" if status == "ok" else "holes", "file": file, "sha256": ""})
        tables[event_id] = root / f"{event_id}.csv"
        pd.DataFrame(frames).to_csv(tables[event_id], index=False)
    events = root / "events.csv"
    pd.DataFrame(rows).to_csv(events, index=False)
    return events, tables


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    n_events = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(f"host check (before): {host_check():.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events, tables = write_inputs(root, size, n_events)
        rows = sum(len(pd.read_csv(path)) for path in tables.values())
        timings = {}
        original = event_dataset._write_cubes

        def timed_cubes(*args, **kwargs):
            timings["tables"] = time.perf_counter() - timings["start"]
            began = time.perf_counter()
            original(*args, **kwargs)
            timings["cubes"] = time.perf_counter() - began

        event_dataset._write_cubes = timed_cubes  # the bench's own split of the build, the code is unchanged
        timings["start"] = time.perf_counter()
        build_event_dataset(events, tables, root, "bench", {"seed": 0})
        total = time.perf_counter() - timings["start"]
        sampled = len(pd.read_csv(root / "events" / "bench" / "dataset" / "labels.csv"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cube_mb = (root / "events" / "bench" / "dataset" / "events.h5").stat().st_size / 2**20
    print(f"{n_events} events, {rows} frame-table rows, {sampled} frames sampled, {size}² float32")
    print(f"tables (partition, sampling, labels, logs, summary, accounting): {timings['tables']:.2f} s   "
          f"host check: {host_check():.2f} ms")  # fmt: skip
    print(f"cubes (read each sampled frame, write events.h5 + per_event): {timings['cubes']:.2f} s "
          f"({sampled / timings['cubes']:.0f} frames/s, events.h5 {cube_mb:.0f} MB)   "
          f"host check: {host_check():.2f} ms")
    print(f"whole build: {total:.2f} s, {sampled / total:.0f} frames/s; peak RSS {peak:.0f} MB")
    print(f"host check (after):  {host_check():.2f} ms")


if __name__ == "__main__":
    main()
