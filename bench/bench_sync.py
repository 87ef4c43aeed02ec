"""Benchmark the sync stage: nearest matching at mission scale, and the streamed synced-file write.

Usage: ``python bench/bench_sync.py [--products 7] [--frames 2000] [--size 256] [--out DIR] [--keep]``

1. Matching: 7 products x 17,532 axis times (1999-01-01..2010-12-31 at 6 h) on synthetic frame tables (ISO text
   times as read from cubes, normal jitter of 8 min, ~8 % random holes plus multi-day outages). Times
   ``match_products`` (vectorised ``searchsorted``) and, for comparison, the per-slot loop of
   ``heliocube.slots.rank_candidates``, and checks both choose the same frames. Target: <= 5 s.
2. Write: two cubes of ``--frames`` 256² float32 frames are built with ``CubeWriter``; ``sync_experiment`` then
   writes the synced file in a child process (so its peak RSS is its own): once with the cubes' filters (frames
   copied as compressed chunks) and once with a running difference (every frame decoded and re-encoded).
   Target: peak RSS <= 300 MB whatever the number of frames.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from heliocube.cube import CubeWriter
from heliocube.slots import rank_candidates
from heliocube.sync import MISSING_FRAME, build_time_axis, match_products, sync_experiment
from heliocube.sync.times import to_utc_times

START, FINISH, STEP = "1999-01-01", "2010-12-31", "6h"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic_frame_table(axis: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """One frame per kept axis time, jittered, with random holes and a few multi-day outages."""
    keep = rng.random(len(axis)) > 0.08
    for first in rng.integers(0, len(axis), size=6):
        keep[first : first + rng.integers(4, 80)] = False  # outages of 1 to 20 days
    jitter = pd.to_timedelta(np.clip(rng.normal(0.0, 480.0, size=keep.sum()), -10_000, 10_000), unit="s")
    times = (axis[keep] + jitter).tz_localize(None)
    text = times.strftime("%Y-%m-%dT%H:%M:%S.%f").str.rstrip("0").str.rstrip(".")
    return pd.DataFrame({"obs_time": np.asarray(text, dtype=object), "record_id": [f"r{i}" for i in range(len(text))]})


def bench_matching(n_products: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    axis = build_time_axis(START, FINISH, STEP)
    tables = {f"P{j}": synthetic_frame_table(axis, rng) for j in range(n_products)}
    start = time.perf_counter()
    table = match_products(tables, START, FINISH, STEP, cadences=dict.fromkeys(tables, "6h"))
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    looped = {}
    for product, frames in tables.items():
        candidates = pd.DataFrame({"time_utc": to_utc_times(frames["obs_time"]), "record_id": frames["record_id"]})
        ranked = rank_candidates(axis, candidates, table.tolerance)
        looped[product] = np.array([r[0] if r else MISSING_FRAME for r in ranked], dtype=np.int64)
    loop = time.perf_counter() - start
    complete = np.logical_and.reduce([looped[p] != MISSING_FRAME for p in tables])
    same = all(np.array_equal(looped[p][complete], table.source_index[p]) for p in tables)
    print(
        f"matching: {n_products} products x {len(axis)} axis times -> {len(table)} complete rows; "
        f"match_products {vectorised:.2f} s (target <= 5 s); rank_candidates loop {loop:.2f} s; "
        f"identical choices: {same}; dropped per product {table.dropped_counts().to_dict()}"
    )
    if not same:
        raise SystemExit("vectorised and rank_candidates matching disagree")
    return {"match_s": vectorised, "rank_candidates_s": loop}


def build_cubes(out_dir: str, n_frames: int, size: int) -> dict[str, str]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(xx - size / 2, yy - size / 2) / (size / 8)
    base = (1000.0 / np.maximum(r, 1.0) ** 3).astype(np.float32)
    base[r < 1.0] = np.nan  # occulter
    rng = np.random.default_rng(0)
    paths = {}
    for product, minutes in (("LASCO_C2", 3), ("EIT195", -5)):
        path = os.path.join(out_dir, f"{product}.h5")
        with CubeWriter(path, (size, size), attrs={"units": "DN/s", "cadence": "6h", "variant": "bench"}) as w:
            for i in range(n_frames):
                slot = pd.Timestamp(START) + pd.Timedelta(hours=6 * i)
                obs = slot + pd.Timedelta(minutes=minutes)
                row = {
                    "slot_time": slot.isoformat(),
                    "obs_time": obs.isoformat(),
                    "record_id": f"{product}-{i}",
                    "sha256": f"{i:064x}",
                }
                frame = base + rng.normal(0.0, 10.0, size=base.shape).astype(np.float32)
                w.append(frame, row, f"SIMPLE  = T\nNAXIS1  = {size}\nFRAME   = {i}")
        paths[product] = path
    return paths


def write_child(spec: str) -> None:
    """Run one synced write (in a fresh process) and print its figures as JSON."""
    args = json.loads(spec)
    rss_imports = _rss_mb()  # interpreter + numpy/pandas/h5py/astropy, before any frame is touched
    start = time.perf_counter()
    result = sync_experiment(
        args["out"],
        args["cubes"],
        experiment="bench",
        start=START,
        finish=args["finish"],
        step=STEP,
        cadences="6h",
        running_difference=args["difference"],
    )
    wall = time.perf_counter() - start
    size_mb = os.path.getsize(result.path) / 2**20
    print(
        json.dumps(
            {
                "rows": len(result.table),
                "wall_s": wall,
                "rss_mb": _rss_mb(),
                "rss_imports_mb": rss_imports,
                "file_mb": size_mb,
            }
        )
    )


def bench_write(out_dir: str, n_frames: int, size: int) -> None:
    start = time.perf_counter()
    cubes = build_cubes(out_dir, n_frames, size)
    last = pd.Timestamp(START) + pd.Timedelta(hours=6 * (n_frames - 1))
    print(f"built 2 cubes of {n_frames} {size}x{size} frames in {time.perf_counter() - start:.1f} s")
    for label, difference in (("chunk copy", False), ("running difference (decode+encode)", True)):
        spec = {
            "out": os.path.join(out_dir, f"synced_{int(difference)}.h5"),
            "cubes": cubes,
            "finish": last.date().isoformat(),
            "difference": difference,
        }
        child = subprocess.run(
            [sys.executable, __file__, "--write-child", json.dumps(spec)], capture_output=True, text=True, check=True
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"write ({label}): 2 products x {figures['rows']} rows of {size}x{size}: wall {figures['wall_s']:.1f} s "
            f"({1000 * figures['wall_s'] / max(2 * figures['rows'], 1):.2f} ms/frame), file {figures['file_mb']:.0f} "
            f"MiB, peak RSS {figures['rss_mb']:.1f} MB (target <= 300 MB; "
            f"{figures['rss_imports_mb']:.1f} MB after imports)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=7)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--out", default=None, help="parent directory for the cubes (default: the system temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the cubes and synced files")
    parser.add_argument("--write-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_child:
        write_child(args.write_child)
        return 0
    bench_matching(args.products)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    out_dir = tempfile.mkdtemp(prefix="bench_sync_", dir=args.out)  # a fresh folder: removing it removes only ours
    try:
        bench_write(out_dir, args.frames, args.size)
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
