"""The streak check on the ten real LASCO frames of ``tests/data/lasco``, scored against their labels.

Run: ``.venv/bin/python bench/bench_lasco_real.py [repeats]`` (default 5), on one core.

For each frame: the gate's verdict, the streak segments inside / outside the labelled boxes
(``tests/data/lasco/labels.yaml``: a segment outside every box is a false positive) and the QC time per frame
(``FrameQC.after_download``: read, decode and every check, as ``bench_qc.py``/``bench_clean.py`` measure it;
median and best of ``repeats`` runs, wall clock, and the median CPU time of this thread, which a busy shared host
inflates less) on the frame gunzipped first, as the archive serves it (gzip is only how
the repository stores them: 25-75 ms more per frame). Then recall, three ways:

* by object: each labelled object (a frame may hold two: Mercury and Saturn) is found when the gate rejects its
  frame for ``streak`` and a segment lies inside the object's box;
* comets among those that bloom or show a tail (the label's ``signs``): the comets a single frame can tell from a
  star (the others are saturated heads as short as the field stars', without a straight tail);
* by file class (the file names' ``planet_``/``comet_``, as the folder's README lists them): detected when the
  gate rejects the frame for ``streak`` with a segment inside any box.

The ``host check`` lines (bench_clean's fixed workload, before and after) tell a slow shared host from a slow gate.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses  # noqa: E402
import gzip  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check  # noqa: E402

from heliocube.frameio import read_frame  # noqa: E402
from heliocube.qc import FrameQC, checks, region_masks  # noqa: E402
from heliocube.qc.frame_region import saturation_level  # noqa: E402

cv2.setNumThreads(1)
DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "lasco"


def load_labels(path: Path = DATA / "labels.yaml") -> dict[str, list[dict]]:
    """Frame name -> its labelled objects (``kind``, ``name``, ``box`` [x0, y0, x1, y1])."""
    return yaml.safe_load(path.read_text())


def in_box(segment, obj: dict) -> bool:
    """Both ends of the segment (x0, y0, x1, y1) inside the object's box."""
    x0, y0, x1, y1 = segment
    return all(obj["box"][0] <= x <= obj["box"][2] and obj["box"][1] <= y <= obj["box"][3]
               for x, y in ((x0, y0), (x1, y1)))  # fmt: skip


def segment_kinds(segments: np.ndarray, labels: list[dict]) -> list[str | None]:
    """The kind of the box holding each segment (both ends inside it), None when no box holds it."""
    kinds = []
    for segment in segments.tolist():
        inside = [obj["kind"] for obj in labels if in_box(segment, obj)]
        kinds.append(inside[0] if inside else None)
    return kinds


def found_objects(segments: np.ndarray, labels: list[dict], rejected: bool) -> list[bool]:
    """Per labelled object: found (its frame rejected for a streak and a segment inside its box)."""
    return [rejected and any(in_box(segment, obj) for segment in segments.tolist()) for obj in labels]


def frame_segments(path: Path, gate: FrameQC) -> np.ndarray:
    """Every streak segment the gate's search finds on a frame (blooms and Hough segments)."""
    data, header = read_frame(path)
    region = region_masks(header, data.shape, gate.product.valid_region)
    # every segment: no early stop once the blooms alone reach the rejection count
    every = dataclasses.replace(gate.thresholds, streak_segments=10**9)
    work = checks.FrameWork(data, region, None, saturation_level(data.dtype, header, every,
                                                                      gate.product.full_scale_dn))
    return checks.streak_segments(work, region, every)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    labels = load_labels()
    print(f"one core: cv2 threads {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"{repeats} runs per frame")  # fmt: skip
    print(f"host check (before): {host_check():.2f} ms")
    by_object: dict[str, list[bool]] = {"planet": [], "comet": []}
    signs: list[bool] = []  # comets that bloom or show a tail
    by_class: dict[str, list[bool]] = {"planet": [], "comet": []}
    outside_total, times, cpu_times = 0, [], []
    print(f"{'frame':29s} {'verdict':7s} {'inside':>6s} {'outside':>7s} {'objects found':22s} {'ms median':>9s} "
          f"{'best':>6s} {'cpu ms':>6s}")  # fmt: skip
    tmp = tempfile.mkdtemp()
    for path in sorted(DATA.glob("*.fts.gz")):
        name = path.name.removesuffix(".fts.gz")
        objects = labels.get(name, [])
        detector = read_frame(path)[1]["DETECTOR"].strip()
        gate = FrameQC(f"LASCO_{detector}")
        plain = Path(tmp) / f"{name}.fts"
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        gate.after_download(None, plain)  # warm-up: the layout's geometry and mask
        runs, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.thread_time()
            rejection = gate.after_download(None, plain)
            runs.append(1000 * (time.perf_counter() - start))
            cpu.append(1000 * (time.thread_time() - start_cpu))
        times.append(statistics.median(runs))
        cpu_times.append(statistics.median(cpu))
        segments = frame_segments(path, gate)
        kinds = segment_kinds(segments, objects)
        outside = kinds.count(None)
        outside_total += outside
        streak = rejection is not None and rejection.reason == "streak"
        found = found_objects(segments, objects, streak)
        for obj, hit in zip(objects, found, strict=True):
            by_object[obj["kind"]].append(hit)
            if obj["kind"] == "comet" and obj.get("signs"):
                signs.append(hit)
        by_class[name.split("_")[0]].append(streak and any(kind is not None for kind in kinds))
        shown = " ".join(f"{obj['kind'][0]}{'+' if hit else '-'}" for obj, hit in zip(objects, found, strict=True))
        verdict = "-" if rejection is None else rejection.reason
        print(f"{name[:29]:29s} {verdict:7s} {len(kinds) - outside:6d} {outside:7d} {shown:22s} "
              f"{statistics.median(runs):9.2f} {min(runs):6.2f} {statistics.median(cpu):6.2f}")  # fmt: skip
    print("objects found: p/c = planet/comet, + found, - missed")
    print(f"segments outside the labelled boxes: {outside_total}")
    tables = (("by object", by_object), ("by file class", by_class))
    for what, table in tables:
        parts = [f"{kind} {sum(v)}/{len(v)} = {sum(v) / max(len(v), 1):.2f}" for kind, v in table.items()]
        print(f"recall {what}: " + ", ".join(parts))
    print(f"recall of comets that bloom or show a tail: {sum(signs)}/{len(signs)} = "
          f"{sum(signs) / max(len(signs), 1):.2f}")  # fmt: skip
    print(f"QC ms/frame (read + every check, 1024²): median {statistics.median(times):.2f}, worst {max(times):.2f}"
          f" (goal <= 15); CPU (this thread's) median {statistics.median(cpu_times):.2f}, worst {max(cpu_times):.2f}")
    print(f"host check (after):  {host_check():.2f} ms")


if __name__ == "__main__":
    main()
