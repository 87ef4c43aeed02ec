"""The read API's answer time for a 100-frame parameter range from a warm dataset (issue 16: <= 200 ms).

Run: ``.venv/bin/python bench/bench_serve.py [frames] [repeats]`` (defaults 300 and 7).

A temporary output root holds one AIA171 cube of ``frames`` 64² frames at a 6-minute cadence and its parameter
file, laid out as the issue 16 contract says: ``params`` (T, 64, 64, 10) float32, one gzip chunk per frame (random
values, so compression does not flatter the read). ``heliocube serve`` runs in its own process on 127.0.0.1;
after one warm-up request (the dataset opened and indexed, the file in the page cache), each figure is the median
wall time over ``repeats`` requests of different pages, from sending the request to holding the whole body:

- ``/params/range``, 100 frames (the goal), as JSON (40 MB), as numpy's npz (16 MB of float32) and as the seed's
  XML (4096 cells x 12 elements per frame);
- ``/params`` JSON and XML, one frame;
- ``/header/range``, 100 frames.

The ``host check`` (bench_clean's fixed single-core workload) is printed beside every figure: a busy shared host
shows there, not as a slow API.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))
from bench_clean import host_check  # noqa: E402

from tests.serve_tree import six_minute_times, write_cube, write_params  # noqa: E402
from tests.workflow_runs import free_port  # noqa: E402

GOAL_MS = 200.0
GRID = 64


def build_tree(root: Path, frames: int) -> list[str]:
    times = six_minute_times("2012-02-13T00:00:00", frames)
    cube = root / "cubes" / "64px-bench-6min" / "AIA171" / "2012.h5"
    write_cube(cube, times, 64)
    params = write_params(cube, root, GRID)
    with h5py.File(params, "r+") as f:  # random values: compression must not flatter the reads
        rng = np.random.default_rng(0)
        for i in range(frames):
            f["params"][i] = rng.random((GRID, GRID, 10), dtype=np.float32) * 100
    return times


def serve(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "heliocube.cli", "serve", str(root), "--port", str(port),
                                "--log-level", "warning"], env={**os.environ, "NO_PROXY": "127.0.0.1"})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(base, timeout=5)
            return process, base
        except requests.ConnectionError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("heliocube serve did not start")


def timed(base: str, path: str, params_of_run, repeats: int) -> tuple[float, int]:
    """Median ms and body size of ``repeats`` requests (``params_of_run(i)`` gives the query of run i)."""
    runs, size = [], 0
    for i in range(repeats):
        start = time.perf_counter()
        response = requests.get(f"{base}{path}", params=params_of_run(i), timeout=120, stream=True)
        response.raise_for_status()
        size = len(b"".join(response.iter_content(2**20)))  # as the package's client reads
        runs.append(1000 * (time.perf_counter() - start))
    return statistics.median(runs), size


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    print(f"{frames} frames of {GRID}x{GRID}x10 parameters, {repeats} requests per figure (median)")
    print(f"host check (before): {host_check():.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        times = build_tree(root, frames)
        process, base = serve(root)
        try:
            span = {"channel": "AIA171", "start": times[0], "end": times[-1]}
            requests.get(f"{base}/params/range", params=span, timeout=120).raise_for_status()  # warm-up
            pages = max(1, (frames - 100) // 10)

            def page(i, **extra):
                return {**span, "limit": 100, "offset": (i % pages) * 10, **extra}

            cases = [
                ("/params/range JSON, 100 frames", "/params/range", page, True),
                ("/params/range npz, 100 frames", "/params/range", lambda i: page(i, format="npz"), True),
                ("/params/range XML, 100 frames", "/params/range", lambda i: page(i, format="xml"), True),
                ("/params JSON, one frame", "/params", lambda i: {"channel": "AIA171", "time": times[i * 7]}, False),
                ("/params XML, one frame", "/params",
                 lambda i: {"channel": "AIA171", "time": times[i * 7], "format": "xml"}, False),
                ("/header/range JSON, 100 frames", "/header/range", page, False),
            ]
            for label, path, params_of_run, goal in cases:
                median, size = timed(base, path, params_of_run, repeats)
                verdict = f"  ({'meets' if median <= GOAL_MS else 'MISSES'} {GOAL_MS:.0f} ms)" if goal else ""
                print(f"{label:<34} {median:8.1f} ms  {size / 1e6:7.2f} MB{verdict}   "
                      f"host check: {host_check():.2f} ms")  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"host check (after):  {host_check():.2f} ms")


if __name__ == "__main__":
    main()
