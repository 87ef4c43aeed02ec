"""Timing of the QC gate (read + every check) per frame, single core, as figures for a note.

Run: ``.venv/bin/python bench/bench_qc.py [frames] [repeats]`` (defaults 8 and 10).

Cases:

* EIT195 and LASCO C2/C3, 1024x1024 int16, from the embedded archive (``SyntheticMission(frame_size=1024)``),
  clean so that every check runs to the end (LASCO: streak detection included). ``frames`` different records
  are cycled ``repeats`` times, so per-frame work (header parsing, geometry from a header never seen) is paid as
  in the fetch stage; the valid-region mask is computed once per geometry, as it is there.
* AIA171 4096x4096 int16 in a RICE_1 tile-compressed extension (a ``CompImageHDU``, one row per tile, cfitsio's
  default tiling; JSOC serves aia.lev1 Rice-compressed), rendered by the embedded archive at 4096 (~10 s). The
  astropy read alone and ``read_frame`` alone (:mod:`heliocube.rice` decodes the tiles) are timed too.

Each case prints the minimum and the median over all runs of wall time (``perf_counter``) and of the process's
CPU time (``thread_time``): on a shared machine the CPU time is the steadier figure of the two.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402

from heliocube.archive.mission import DEFECT_KINDS, SyntheticMission  # noqa: E402
from heliocube.frameio import read_frame  # noqa: E402
from heliocube.qc import FrameQC  # noqa: E402

cv2.setNumThreads(1)
CLEAN = dict.fromkeys(DEFECT_KINDS, 0.0)


def _timed(function, runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.thread_time()
        function()
        cpus.append(time.thread_time() - c0)
        walls.append(time.perf_counter() - w0)
    return walls, cpus


def _line(label: str, walls: list[float], cpus: list[float], extra: str = "") -> None:
    ms = [1000 * min(walls), 1000 * statistics.median(walls), 1000 * min(cpus), 1000 * statistics.median(cpus)]
    print(f"{label:44s} wall min {ms[0]:7.2f}  median {ms[1]:7.2f}   cpu min {ms[2]:7.2f}  median {ms[3]:7.2f}  ms"
          f"{extra}")  # fmt: skip


def bench_1024(products: tuple[str, ...], workdir: Path, frames: int, repeats: int) -> None:
    """read+QC of ``frames`` records per product; products alternate so that load bursts hit all alike."""
    mission = SyntheticMission(seed=0, frame_size=1024, defect_rates=CLEAN)
    cases = {}
    for product in products:
        records = mission.records(product, "2005-01-01", "2005-01-03")["record_id"].iloc[:frames]
        paths = []
        for i, record in enumerate(records):
            path = workdir / f"{product}_{i}.fits"
            path.write_bytes(mission.render_fits(product, record))
            paths.append(path)
        gate = FrameQC(product)
        first = gate.inspect(paths[0])  # warm-up: imports, the layout's one sunpy geometry, the mask
        cases[product] = (gate, paths, first, [], [])
    for _ in range(repeats):  # a block of consecutive frames per product (as a fetch job), products alternating
        for gate, paths, _, walls, cpus in cases.values():
            for path in paths:
                w, c = _timed(lambda gate=gate, path=path: gate.after_download(None, path), 1)
                walls += w
                cpus += c
    for product, (gate, paths, (verdict, metrics), walls, cpus) in cases.items():
        what = "streak detection on" if gate.detect_streaks else "no streak detection"
        _line(f"{product} 1024x1024 read+QC ({what})", walls, cpus, f"  n={len(walls)} verdict={verdict} {metrics}")
        _line(f"{product} 1024x1024 read only", *_timed(lambda paths=paths: read_frame(paths[0]), len(walls)))


def _aia_rice(workdir: Path) -> Path:
    mission = SyntheticMission(seed=0, frame_size=4096, defect_rates=CLEAN)
    record = mission.records("AIA171", "2012-01-01", "2012-01-01T00:01")["record_id"].iloc[0]
    with fits.open(io.BytesIO(mission.render_fits("AIA171", record))) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data
    # aia.lev1 is int16 with BLANK for missing pixels
    blank = -32768
    image = np.where(np.isfinite(data), np.clip(np.rint(data), -32767, 32767), blank).astype(np.int16)
    for key in ("BITPIX", "BZERO", "BSCALE", "SIMPLE", "EXTEND"):
        header.remove(key, ignore_missing=True)
    header["BLANK"] = blank
    path = workdir / "aia171_4096_rice.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdu = fits.CompImageHDU(data=image, header=header, compression_type="RICE_1", tile_shape=(1, 4096))
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _decompress(path: Path) -> np.ndarray:
    with fits.open(path, memmap=False) as hdul:
        return hdul[1].data


def bench_aia(workdir: Path, repeats: int) -> None:
    path = _aia_rice(workdir)
    gate = FrameQC("AIA171")
    verdict, metrics = gate.inspect(path)
    _line("AIA171 4096x4096 RICE_1 read+QC", *_timed(lambda: gate.after_download(None, path), repeats),
          f"  n={repeats} {path.stat().st_size / 2**20:.1f} MiB verdict={verdict} {metrics}")  # fmt: skip
    _line("AIA171 4096x4096 RICE_1 astropy read only", *_timed(lambda: _decompress(path), repeats))
    _line("AIA171 4096x4096 RICE_1 read_frame (heliocube.rice)", *_timed(lambda: read_frame(path), repeats))


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(f"single core: cv2 threads {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_1024(("EIT195", "LASCO_C2", "LASCO_C3"), Path(tmp), frames, repeats)
        bench_aia(Path(tmp), max(3, repeats // 2))


if __name__ == "__main__":
    main()
