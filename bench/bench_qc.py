"""Timing of FrameQC.after_download on full-resolution (1024²) EIT and LASCO frames, single core.

Run: ``.venv/bin/python bench/bench_qc.py [repeats]``. Frames come from the embedded archive
(``SyntheticMission(frame_size=1024)``), clean (no defects) so that every check runs to the end.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

from heliocube.archive.mission import DEFECT_KINDS, SyntheticMission  # noqa: E402
from heliocube.qc import FrameQC  # noqa: E402
from heliocube.qc.gate import read_frame  # noqa: E402

cv2.setNumThreads(1)


def bench(mission: SyntheticMission, product: str, workdir: Path, repeats: int) -> None:
    record = mission.records(product, "2005-01-01", "2005-01-01T06:00")["record_id"].iloc[0]
    path = workdir / f"{product}.fits"
    path.write_bytes(mission.render_fits(product, record))
    gate = FrameQC(product)
    verdict = gate.after_download(None, path)  # warm-up: imports, sunpy geometry cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gate.after_download(None, path)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    read_frame(path)
    read_ms = (time.perf_counter() - t0) * 1000
    best, mean = min(times) * 1000, sum(times) / len(times) * 1000
    streaks = "with streak detection" if gate.detect_streaks else "no streak detection"
    print(
        f"{product:9s} 1024x1024 {streaks:22s}: {best:7.1f} ms/frame best, {mean:7.1f} mean "
        f"(read {read_ms:.1f} ms) verdict={verdict}"
    )


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    mission = SyntheticMission(seed=0, frame_size=1024, defect_rates=dict.fromkeys(DEFECT_KINDS, 0.0))
    with tempfile.TemporaryDirectory() as tmp:
        for product in ("EIT195", "LASCO_C2", "LASCO_C3"):
            bench(mission, product, Path(tmp), repeats)


if __name__ == "__main__":
    main()
