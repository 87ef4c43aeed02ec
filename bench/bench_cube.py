"""Stream a synthetic 5,000-frame 512x512 float32 cube through heliocube.cube.CubeWriter; print wall time and peak RSS.

Usage: ``python bench/bench_cube.py [--frames 5000] [--size 512] [--out DIR] [--compression gzip|lzf|none] [--keep]``

Frames are a fixed coronagraph-like image (bright disk, radial falloff, NaN occulter) plus fresh sigma=10 noise each,
so compression ratios are realistic. Target: peak RSS <= 300 MB whatever the number of frames.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

from heliocube.cube import CubeWriter


def _base_frame(size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(xx - size / 2, yy - size / 2) / (size / 8)
    frame = (1000.0 / np.maximum(r, 1.0) ** 3).astype(np.float32)
    frame[r < 1.0] = np.nan  # occulter
    return frame


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", default=None, help="directory for the cube (default: a temporary directory)")
    parser.add_argument("--compression", default="gzip", choices=("gzip", "lzf", "none"))
    parser.add_argument("--keep", action="store_true", help="keep the cube instead of deleting it")
    args = parser.parse_args(argv)

    out_dir = args.out or tempfile.mkdtemp(prefix="bench_cube_")
    path = os.path.join(out_dir, "bench_cube.h5")
    compression = None if args.compression == "none" else args.compression
    rng = np.random.default_rng(0)
    base = _base_frame(args.size)
    rss_start = _rss_mb()
    start = time.perf_counter()
    with CubeWriter(
        path, (args.size, args.size), compression=compression, attrs={"variant": "bench", "units": "DN/s"}
    ) as writer:
        for i in range(args.frames):
            frame = base + rng.normal(0.0, 10.0, size=base.shape).astype(np.float32)
            slot = np.datetime64("2010-01-01T00:00:00") + np.timedelta64(6 * i, "m")
            row = {
                "slot_time": str(slot),
                "obs_time": str(slot + np.timedelta64(7, "s")),
                "dt": 7.0,
                "record_id": i,
                "url": f"https://example.org/frames/{i}.fits",
                "sha256": f"{i:064x}",
                "qc_holes": 0.0,
            }
            writer.append(frame, row, f"SIMPLE  = T\nNAXIS1  = {args.size}\nFRAME   = {i}")
            if (i + 1) % 1000 == 0:
                elapsed = time.perf_counter() - start
                print(f"{i + 1:6d} frames  {elapsed:7.1f} s  peak RSS {_rss_mb():6.1f} MB", flush=True)
    wall = time.perf_counter() - start
    size_mb = os.path.getsize(path) / 2**20
    raw_mb = args.frames * args.size * args.size * 4 / 2**20
    print(
        f"frames={args.frames} size={args.size} compression={args.compression}: wall {wall:.1f} s "
        f"({1000 * wall / max(args.frames, 1):.1f} ms/frame), file {size_mb:.0f} MiB (ratio {raw_mb / size_mb:.2f}), "
        f"peak RSS {_rss_mb():.1f} MB (at start {rss_start:.1f} MB)"
    )
    if not args.keep:
        if args.out:
            os.remove(path)
            os.remove(os.path.join(out_dir, "bench_cube_times.csv"))
        else:
            shutil.rmtree(out_dir)
    return 0 if _rss_mb() <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
