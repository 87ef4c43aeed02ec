"""Exact block means of small-integer frames in one compiled pass (the fetch job's handoff, :mod:`heliocube.handoff`).

The handoff keeps a QC-accepted 4096² int16 frame as its 4x4 block means. Through :func:`heliocube.resize.resize`
that is a float32 conversion of the frame in bands and OpenCV's area resize, after a pass that looks for ``BLANK``
pixels: ~15 ms a frame. Here one pass adds the rows of each block row in int32 (exact: the caller allows only sums
below ``2**24``) and finds the frame's lowest and highest values on the way, then the columns: ~5 ms. The means are
the same float32 values bit for bit: an exact integer sum times the exact ``1 / f**2`` of a power-of-two factor is
the exact mean, which is also what the float32 path computes (its sums are exact below ``2**24``); the tests
compare both.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["block_means"]


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _block_means(data, f, out):  # pragma: no cover - compiled
    """Write the means of the ``f x f`` blocks of ``data`` into ``out`` (float32); the lowest and highest value."""
    ny, nx = data.shape
    rows = np.empty(nx, dtype=np.int32)
    half = np.empty(nx // 2, dtype=np.int32)
    scale = np.float32(1.0 / (f * f))
    low = high = data[0, 0]
    for i in range(ny // f):
        first = data[i * f]
        for x in range(nx):  # simple loops over a row: the compiler vectorises them
            value = first[x]
            rows[x] = value
            low = min(low, value)
            high = max(high, value)
        for y in range(i * f + 1, (i + 1) * f):
            row = data[y]
            for x in range(nx):
                value = row[x]
                rows[x] += value
                low = min(low, value)
                high = max(high, value)
        width = nx
        while width > 2 * (nx // f):  # columns in pairs, log2(f) - 1 times, then the last pair into out
            width //= 2
            for x in range(width):
                half[x] = rows[2 * x] + rows[2 * x + 1]
            rows[:width] = half[:width]
        target = out[i]
        for j in range(nx // f):
            target[j] = np.float32(rows[2 * j] + rows[2 * j + 1]) * scale
    return low, high


def block_means(data: np.ndarray, factor: int) -> tuple[np.ndarray, int, int]:
    """The float32 means of the ``factor x factor`` blocks of a square 8- or 16-bit integer frame, exact (``factor``
    a power of two of at least 2, block sums below ``2**24``), and the frame's lowest and highest value."""
    info = np.iinfo(data.dtype) if data.dtype.kind in "iu" else None
    if (info is None or data.dtype.itemsize > 2 or data.ndim != 2 or data.shape[0] != data.shape[1]
            or factor < 2 or factor & (factor - 1) or data.shape[0] % factor
            or max(-int(info.min), int(info.max)) * factor * factor >= 2**24):
        raise ValueError(f"exact block means need a square 8- or 16-bit integer frame, a power-of-two factor that "
                         f"divides it and sums below 2**24: {data.dtype} {data.shape}, factor {factor}")
    out = np.empty((data.shape[0] // factor, data.shape[1] // factor), dtype=np.float32)
    low, high = _block_means(np.ascontiguousarray(data), int(factor), out)
    return out, int(low), int(high)
