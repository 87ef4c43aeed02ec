"""Steady memory reuse for a job that handles one large frame after another (the fetch job's QC).

glibc's malloc adapts its mmap and trim thresholds to the sizes freed so far (mallopt(3): "dynamic mmap
threshold"), so whether a frame's large temporaries (OpenCV's ~6 MB Hough accumulator, Canny's and the blur's
buffers, the decoded frame's copies) reuse freed heap memory or are mapped afresh, their pages zeroed by the kernel
on first touch, depends on what the process did before: a few thousand page faults, 3-8 ms per 1024² LASCO frame
in some processes and none in others (``bench/bench_lasco_real.py`` prints the faults; it measures with these
thresholds, ``--glibc-malloc`` without). :func:`fix_malloc_thresholds` sets both thresholds once, as
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...`` would at process start: blocks under 32 MB then come from the
heap and are reused, and up to 128 MB of free heap top is kept instead of being returned to the kernel after every
frame. Larger blocks (4096² AIA frames) are still
mapped; :mod:`heliocube.frameio` reuses its decode buffer for those.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "fix_malloc_thresholds"]

#: blocks from this size up are mapped (glibc's own upper bound for its dynamic threshold on 64-bit systems)
MMAP_THRESHOLD = 32 << 20
#: free memory at the top of the heap kept for reuse, up to this much
TRIM_THRESHOLD = 128 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def fix_malloc_thresholds() -> bool:
    """Fix this process's malloc mmap and trim thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`).

    Returns True when set; False where the C library is not glibc (musl, macOS), which is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: another libc's mallopt may mean something else
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
