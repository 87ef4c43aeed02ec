"""Cost of the QC verdicts' code digest (:func:`heliocube.qc.gate.qc_code_digest`), paid once per fetch job process.

Run: ``.venv/bin/python bench/bench_qc_digest.py [repeats]`` (default 15).

The digest scans the imports of every module of ``heliocube.qc`` and of every heliocube module they reach (an AST
parse of each file), hashes those files and looks up the versions of the libraries they import
(:mod:`heliocube.codedigest`). The QC modules are imported first, as in a fetch job (OpenCV, astropy, numpy are
then loaded already). Prints the first computation in the process, then the median and best of ``repeats`` more,
split into the scan (parse and hash) and the version look-ups, with the host check (bench_clean.host_check: ~9.5 ms
on a quiet host) before and after: compare it before reading a slow figure as a regression.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check  # noqa: E402

import heliocube.qc.gate  # noqa: E402  (a fetch job has the QC loaded when it asks for the fingerprint)
from heliocube import codedigest  # noqa: E402


def once() -> tuple[float, float, int, int]:
    """(scan ms, versions ms, files, bytes) of one computation of the QC's code inputs."""
    start = time.perf_counter()
    modules, libraries = codedigest._scan(codedigest.package_modules("heliocube.qc"), codedigest.SOURCE_ROOT)
    scanned = time.perf_counter()
    for library in sorted(libraries):
        codedigest._version(library)
    done = time.perf_counter()
    return 1000 * (scanned - start), 1000 * (done - scanned), len(modules), sum(len(m.source) for m in modules.values())


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    print(f"host check (before): {host_check():.2f} ms")
    start = time.perf_counter()
    heliocube.qc.gate.qc_code_digest()
    print(f"first qc_code_digest() in the process: {1000 * (time.perf_counter() - start):.1f} ms "
          f"(then cached: {_cached_us():.1f} us a call)")  # fmt: skip
    runs = [once() for _ in range(repeats)]
    scan, versions = [r[0] for r in runs], [r[1] for r in runs]
    total = [a + b for a, b in zip(scan, versions, strict=True)]
    print(f"{runs[0][2]} modules, {runs[0][3] / 1024:.0f} KiB of source")
    for what, values in (("scan (parse + hash)", scan), ("library versions", versions), ("total", total)):
        print(f"{what:20s} median {statistics.median(values):6.1f} ms  best {min(values):6.1f} ms")
    print(f"host check (after): {host_check():.2f} ms")


def _cached_us() -> float:
    start = time.perf_counter()
    for _ in range(1000):
        heliocube.qc.gate.qc_code_digest()
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main()
