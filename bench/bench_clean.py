"""Per-frame cost of the clean path on one core: QC (fetch stage) + read, resize, header update and FITS write.

Run: ``.venv/bin/python bench/bench_clean.py [frames] [repeats]``. Frames come from the embedded archive at full
resolution without defects (every check runs to the end): EIT 195 and LASCO C2 at 1024² (LASCO with streak
detection), AIA 171 at 4096² as a RICE_1-compressed int16 file like ``aia.lev1``. Targets (issue 3): 15 ms/frame
at 1024², 150 ms/frame for AIA 4096² Rice.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import datetime as dt  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
from astropy.io import fits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_qc import CLEAN, _aia_rice  # noqa: E402

from heliocube.archive.mission import SyntheticMission  # noqa: E402
from heliocube.clean import clean_frame  # noqa: E402
from heliocube.qc import FrameQC  # noqa: E402
from heliocube.qc.gate import read_frame  # noqa: E402
from heliocube.variants import Variant  # noqa: E402

cv2.setNumThreads(1)


def clean_one(gate: FrameQC, path: Path, variant: Variant, out: Path) -> None:
    """What the workflow does per frame: QC at fetch time, then read, clean and write at clean time."""
    gate.after_download(None, path)
    data, header = read_frame(path)
    frame, header = clean_frame(data, header, gate.product.name, variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(frame, header=header)]).writeto(out, overwrite=True,
                                                                                      output_verify="silentfix")


def report(label: str, seconds: list[float], target_ms: float) -> None:
    best, median = 1000 * min(seconds), 1000 * statistics.median(seconds)
    verdict = "meets" if median <= target_ms else "MISSES"
    print(f"{label:40s} min {best:8.2f} ms  median {median:8.2f} ms  ({verdict} {target_ms:.0f} ms)")


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    variant = Variant("256px-mean-6h", 256, "mean", dt.timedelta(hours=6), {})
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        mission = SyntheticMission(seed=0, frame_size=1024, defect_rates=CLEAN)
        for product in ("EIT195", "LASCO_C2"):
            records = mission.records(product, "2005-01-01", "2005-01-03")["record_id"].iloc[:frames]
            paths = []
            for i, record in enumerate(records):
                paths.append(workdir / f"{product}_{i}.fits")
                paths[-1].write_bytes(mission.render_fits(product, record))
            gate = FrameQC(product)
            clean_one(gate, paths[0], variant, workdir / "out.fits")  # warm-up
            seconds = []
            for _ in range(repeats):
                for path in paths:
                    start = time.perf_counter()
                    clean_one(gate, path, variant, workdir / "out.fits")
                    seconds.append(time.perf_counter() - start)
            report(f"{product} 1024² QC+clean -> 256²", seconds, 15)
        aia = _aia_rice(workdir)
        gate = FrameQC("AIA171")
        variant_aia = Variant("512px-mean-6h", 512, "mean", dt.timedelta(hours=6), {})
        clean_one(gate, aia, variant_aia, workdir / "out.fits")
        seconds = []
        for _ in range(max(3, repeats)):
            start = time.perf_counter()
            clean_one(gate, aia, variant_aia, workdir / "out.fits")
            seconds.append(time.perf_counter() - start)
        report("AIA171 4096² RICE_1 QC+clean -> 512²", seconds, 150)


if __name__ == "__main__":
    main()
