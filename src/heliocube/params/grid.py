"""The grid of cells over a frame, and the frame's gray levels.

A frame of H x W pixels is cut into ``G x G`` cells of ``h x w = H/G x W/G`` pixels. Two views of the same memory
serve the vectorised code: :func:`cells` (``(G, G, h, w)``, cell ``[i, j]`` covering rows ``i*h:(i+1)*h`` and
columns ``j*w:(j+1)*w``) and :func:`blocked` (``(G, h, G, w)``, a plain reshape: reductions over axes ``(1, 3)``
walk memory in order).
"""

from __future__ import annotations

import functools

import numpy as np

from .settings import ParamSettings, cell_shape

__all__ = ["blocked", "cell_ids", "cells", "to_levels"]


def blocked(frame: np.ndarray, grid: int, rows: int | None = None) -> np.ndarray:
    """The frame (or a band of ``rows`` whole cell rows of it) as a ``(rows, h, G, w)`` view."""
    h, w = cell_shape(frame.shape if rows is None else (grid * frame.shape[0] // rows, frame.shape[1]), grid)
    return frame.reshape(grid if rows is None else rows, h, grid, w)


def cells(frame: np.ndarray, grid: int) -> np.ndarray:
    """The frame as a ``(G, G, h, w)`` strided view: ``cells(frame, G)[i, j]`` is cell (i, j)."""
    return blocked(frame, grid).swapaxes(1, 2)


@functools.lru_cache(maxsize=8)
def cell_ids(shape: tuple[int, int], grid: int) -> np.ndarray:
    """Index ``i * G + j`` of the cell holding each pixel, a uint16 ``(H, W)`` array (read-only, cached)."""
    h, w = cell_shape(shape, grid)
    rows = np.arange(shape[0], dtype=np.int32) // h
    cols = np.arange(shape[1], dtype=np.int32) // w
    ids = (rows[:, None] * grid + cols[None, :]).astype(np.uint16)
    ids.flags.writeable = False
    return ids


def to_levels(frame: np.ndarray, settings: ParamSettings) -> tuple[np.ndarray, np.ndarray | None]:
    """The frame's gray levels: integers in ``[0, L - 1]`` (see :mod:`heliocube.params.settings`).

    Returns
    -------
    levels : numpy.ndarray
        uint8 (``L <= 256``) or uint16, ``round((L - 1) * (s(clip(x)) - s(lo)) / (s(hi) - s(lo)))``.
    excluded : numpy.ndarray or None
        Boolean mask of the pixels every parameter leaves out (NaN or infinite; with ``clip`` false, also those
        outside the range), their level set to 0; None when there is none.
    """
    x = np.array(frame, dtype=np.float32)  # a copy: worked on in place
    lo, hi = settings.range
    excluded = ~np.isfinite(x)
    if not settings.clip:
        with np.errstate(invalid="ignore"):
            excluded |= (x < lo) | (x > hi)
    np.clip(x, np.float32(lo), np.float32(hi), out=x)
    if settings.scale == "log10":
        np.log10(x, out=x)
        lo, hi = np.log10(lo), np.log10(hi)
    x -= np.float32(lo)
    x *= np.float32((settings.levels - 1) / (hi - lo))
    x += np.float32(0.5)
    np.clip(x, 0, settings.levels - 1, out=x)  # float rounding at the bounds
    if excluded.any():
        x[excluded] = 0
    else:
        excluded = None
    return x.astype(np.uint8 if settings.levels <= 256 else np.uint16), excluded
