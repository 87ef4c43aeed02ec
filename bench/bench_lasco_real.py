"""The streak check on the ten real LASCO frames of ``tests/data/lasco``, scored against their labels.

Run: ``.venv/bin/python bench/bench_lasco_real.py [repeats] [--glibc-malloc]`` (default 5), on one core.

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

The ``host check`` lines (bench_clean's fixed workload, before and after) and the ``host ms`` column (the same,
measured just before each frame's runs) tell a slow shared host from a slow gate.

The QC runs with glibc's malloc thresholds fixed, as the fetch job runs it
(:func:`heliocube.allocator.fix_malloc_thresholds`); ``--glibc-malloc`` leaves glibc's adaptive thresholds, under
which whether a frame's large temporaries reuse memory or are page-faulted in afresh (3-8 ms per frame in some
processes) depends on the process's history (the ``faults`` column: page faults per run).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses  # noqa: E402
import gzip  # noqa: E402
import resource  # noqa: E402
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heliocube.allocator import fix_malloc_thresholds  # noqa: E402
from heliocube.frameio import read_frame  # noqa: E402
from heliocube.qc import FrameQC, checks, region_masks  # noqa: E402
from heliocube.qc.frame_region import saturation_level  # noqa: E402
from tests.lasco_frames import without_transients  # noqa: E402

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




def timed(gate: FrameQC, path: Path, repeats: int) -> tuple:
    """(last verdict, wall ms runs, CPU ms runs, page faults per run) of ``gate.after_download`` on a file, after
    one warm-up. The faults show the C allocator's lottery (module docstring)."""
    gate.after_download(None, path)  # warm-up: the layout's geometry and mask
    runs, cpu, rejection = [], [], None
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        rejection = gate.after_download(None, path)
        runs.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.thread_time() - start_cpu))
    return rejection, runs, cpu, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--glibc-malloc"]
    repeats = int(args[0]) if args else 5
    fixed = "--glibc-malloc" not in sys.argv[1:] and fix_malloc_thresholds()
    malloc = "fixed as in the fetch job (mmap 32 MB, trim 128 MB)" if fixed else "glibc default"
    labels = load_labels()
    print(f"one core: cv2 threads {cv2.getNumThreads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"{repeats} runs per frame, malloc thresholds: {malloc}")  # fmt: skip
    print(f"host check (before): {host_check():.2f} ms")
    by_object: dict[str, list[bool]] = {"planet": [], "comet": []}
    signs: list[bool] = []  # comets that bloom or show a tail
    by_class: dict[str, list[bool]] = {"planet": [], "comet": []}
    outside_total, times, cpu_times, hosts = 0, [], [], []
    print(f"{'frame':29s} {'verdict':7s} {'inside':>6s} {'outside':>7s} {'objects found':22s} {'ms median':>9s} "
          f"{'best':>6s} {'cpu ms':>6s} {'host ms':>7s} {'faults':>6s}")  # fmt: skip
    tmp = tempfile.mkdtemp()
    for path in sorted(DATA.glob("*.fts.gz")):
        name = path.name.removesuffix(".fts.gz")
        objects = labels.get(name, [])
        detector = read_frame(path)[1]["DETECTOR"].strip()
        gate = FrameQC(f"LASCO_{detector}")
        plain = Path(tmp) / f"{name}.fts"
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        host = host_check(5)  # beside this frame's figures: a busy shared host shows here
        hosts.append(host)
        rejection, runs, cpu, faults = timed(gate, plain, repeats)
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
              f"{statistics.median(runs):9.2f} {min(runs):6.2f} {statistics.median(cpu):6.2f} {host:7.2f} "
              f"{faults:6.0f}")  # fmt: skip
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
    print("\nthe same frames without their transients (boxes interpolated away): the whole search a clean frame "
          "costs, and no rejection")
    clean_times, clean_cpu = [], []
    for path in sorted(DATA.glob("*.fts.gz")):
        name = path.name.removesuffix(".fts.gz")
        gate = FrameQC(f"LASCO_{read_frame(path)[1]['DETECTOR'].strip()}")
        clean = without_transients(path, labels.get(name, []), Path(tmp) / f"{name}_clean.fts")
        host = host_check(5)
        hosts.append(host)
        rejection, runs, cpu, faults = timed(gate, clean, repeats)
        clean_times.append(statistics.median(runs))
        clean_cpu.append(statistics.median(cpu))
        verdict = "-" if rejection is None else rejection.reason
        print(f"{name[:29]:29s} {verdict:7s} {'':6s} {'':7s} {'':22s} {statistics.median(runs):9.2f} "
              f"{min(runs):6.2f} {statistics.median(cpu):6.2f} {host:7.2f} {faults:6.0f}")  # fmt: skip
    print(f"clean QC ms/frame: median {statistics.median(clean_times):.2f}, worst {max(clean_times):.2f} (goal <= 15); "
          f"CPU median {statistics.median(clean_cpu):.2f}, worst {max(clean_cpu):.2f}")
    print(f"host check (after):  {host_check():.2f} ms; beside the frames {min(hosts):.2f}-{max(hosts):.2f} ms "
          f"(quiet: ~6)")


if __name__ == "__main__":
    main()
