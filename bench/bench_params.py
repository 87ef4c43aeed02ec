"""Timing of the ten image parameters on the 64x64 grid of a 4096² AIA frame, single core, beside the per-cell loop.

Run: ``.venv/bin/python bench/bench_params.py [repeats]`` (default 7).

The frame is the embedded archive's AIA 171 at 4096² (``SyntheticMission(frame_size=4096)``, rendered once, ~20 s),
in DN as the cubes hold it, with the AIA defaults of :mod:`heliocube.params.settings` (log10 over [1, 16383], 256
levels, thresholds 12). :func:`heliocube.params.compute.compute_parameters` (vectorised over all cells) runs
``repeats`` times; :func:`heliocube.params.reference.reference_parameters` (a Python loop over the 4096 cells with
the formulas written out) runs once, in the same process, and both results must agree. Prints the minimum and the
median wall time (``perf_counter``) and the median CPU time (``thread_time``), the ratio, and the host check
(bench_clean.host_check: ~9.5 ms on a quiet host) before and after: compare it before reading a miss as a regression.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check  # noqa: E402

from heliocube.archive.mission import DEFECT_KINDS, SyntheticMission  # noqa: E402
from heliocube.params.compute import compute_parameters  # noqa: E402
from heliocube.params.reference import reference_parameters  # noqa: E402
from heliocube.params.settings import settings_for  # noqa: E402

TARGET_S = 1.0


def aia_frame() -> np.ndarray:
    mission = SyntheticMission(seed=0, frame_size=4096, defect_rates=dict.fromkeys(DEFECT_KINDS, 0.0))
    record = mission.records("AIA171", "2012-01-01", "2012-01-01T00:01")["record_id"].iloc[0]
    with fits.open(io.BytesIO(mission.render_fits("AIA171", record))) as hdul:
        return np.asarray(hdul[0].data, dtype=np.float32)


def timed(function, repeats: int) -> tuple[float, float, float, np.ndarray]:
    """(best wall, median wall, median CPU) seconds of ``repeats`` calls, and the last call's result."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = function()
        cpus.append(time.thread_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    cv2.setNumThreads(1)
    print(f"one core: cv2 threads {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"host check (before): {host_check():.2f} ms")
    frame = aia_frame()
    settings = settings_for({"grid": 64}, "AIA171", {"name": "4096px", "image_size": 4096, "resize_method": "mean"})
    over = np.mean(np.abs(np.diff(frame, axis=1)) > 0)  # a texture check, printed for the record
    print(f"frame: AIA171 {frame.shape[0]}x{frame.shape[1]} DN, median {np.median(frame):.0f}, "
          f"{over:.0%} of horizontal neighbours differ; grid {settings.grid}x{settings.grid} cells of "
          f"{frame.shape[0] // settings.grid} px")
    compute_parameters(frame, settings)  # warm-up: tables, caches, page faults
    best, median, cpu, values = timed(lambda: compute_parameters(frame, settings), repeats)
    verdict = "meets" if median <= TARGET_S else "MISSES"
    print(f"vectorised   (all cells at once)  wall best {best * 1000:7.0f} median {median * 1000:7.0f}  "
          f"cpu median {cpu * 1000:7.0f} ms  ({verdict} {TARGET_S:.0f} s)   host check: {host_check():.2f} ms")
    loop_wall, _, loop_cpu, want = timed(lambda: reference_parameters(frame, settings), 1)
    print(f"per-cell loop (reference)         wall {loop_wall * 1000:7.0f} ms  cpu {loop_cpu * 1000:7.0f} ms   "
          f"host check: {host_check():.2f} ms")
    print(f"ratio (loop / vectorised): wall {loop_wall / median:.0f}x, cpu {loop_cpu / cpu:.0f}x")
    difference = np.nanmax(np.abs(values - want) / np.maximum(np.abs(want), 1e-6))
    print(f"largest relative difference between the two: {difference:.1e}")
    print(f"host check (after): {host_check():.2f} ms")


if __name__ == "__main__":
    main()
