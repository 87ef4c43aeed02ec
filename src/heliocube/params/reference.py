"""The ten parameters computed cell by cell with the formulas written out: the yardstick of
:mod:`heliocube.params.compute` in the tests and in ``bench/bench_params.py``, never used by the workflow.

Only the mapping to gray levels (:func:`heliocube.params.grid.to_levels`) is shared; every formula is coded again
here the way the reference states it, for one cell at a time.
"""

from __future__ import annotations

import math

import numpy as np

from . import PARAMETER_NAMES
from .fractal import box_sizes
from .grid import to_levels
from .settings import ParamSettings, cell_shape

__all__ = ["cell_parameters", "reference_parameters"]


def _prewitt_window(window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dH, dV of the inner pixels of a window padded by one pixel on each side."""
    w = window.astype(np.float64)
    dh = sum(w[r:r + w.shape[0] - 2, 2:] - w[r:r + w.shape[0] - 2, :-2] for r in range(3))
    dv = sum(w[2:, c:c + w.shape[1] - 2] - w[:-2, c:c + w.shape[1] - 2] for c in range(3))
    return dh, dv


def _fractal(edges: np.ndarray) -> float:
    sizes = box_sizes(*edges.shape)
    if len(sizes) < 2:
        return math.nan
    h, w = edges.shape
    counts = [int(edges.reshape(h // s, s, w // s, s).any(axis=(1, 3)).sum()) for s in sizes]
    if counts[0] == 0:
        return 0.0
    x = np.log(1.0 / np.asarray(sizes, dtype=float))
    return float(np.polyfit(x, np.log(counts), 1)[0])


def _directionality(dh: np.ndarray, dv: np.ndarray, keep: np.ndarray, n: int, peak_fraction: float) -> float:
    if not keep.any():
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.arctan(dv[keep] / dh[keep]) + math.pi / 2
    bins = np.floor(phi * n / math.pi + 1e-9).astype(int) % n
    hist = np.bincount(bins, minlength=n) / bins.size
    peaks = [b for b in range(n) if hist[b] > hist[b - 1] and hist[b] >= hist[(b + 1) % n]
             and hist[b] >= peak_fraction * hist.max() and hist[b] > 0]
    if not peaks:
        peaks = [int(np.argmax(hist))]
    f_dir = 0.0
    for b in range(n):
        offsets = [(b - p + n // 2) % n - n // 2 for p in peaks]
        nearest = min(range(len(peaks)), key=lambda i: (abs(offsets[i]), peaks[i]))
        f_dir += (offsets[nearest] * math.pi / n) ** 2 * hist[b]
    return 1.0 - 12.0 / math.pi**2 * len(peaks) * f_dir


def cell_parameters(z: np.ndarray, window: np.ndarray, window_ok: np.ndarray, settings: ParamSettings) -> list:
    """The ten parameters of one cell.

    Parameters
    ----------
    z : numpy.ndarray
        The cell's gray levels as floats, NaN where excluded.
    window, window_ok : numpy.ndarray
        The cell's levels with a one-pixel ring of neighbours (the frame's edge replicated), and where they are
        not excluded.
    """
    values = z[~np.isnan(z)]
    if values.size == 0:
        return [math.nan] * len(PARAMETER_NAMES)
    n_levels = settings.levels
    p = np.bincount(values.astype(int), minlength=n_levels) / values.size
    levels = np.arange(n_levels)
    nonzero = p[p > 0]
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    mean = float(values.sum() / values.size)
    std = math.sqrt(float(((values - mean) ** 2).sum() / values.size))
    if std**2 <= 1e-12:
        skewness = kurtosis = contrast = 0.0
        std = 0.0
    else:
        skewness = float(((levels - mean) ** 3 * p).sum() / std**3)
        kurtosis = float(((levels - mean) ** 4 * p).sum() / std**4)
        contrast = std**2 / kurtosis**0.25
    uniformity = float((p**2).sum())
    scaled = std**2 / (n_levels - 1) ** 2 if settings.smoothness_scaled else std**2
    smoothness = 1 - 1 / (1 + scaled)
    dh, dv = _prewitt_window(window)
    ok = np.ones(dh.shape, bool)  # a gradient needs its whole 3x3 neighbourhood
    for dy in range(3):
        for dx in range(3):
            ok &= window_ok[dy:dy + dh.shape[0], dx:dx + dh.shape[1]]
    magnitude = np.where(ok, (np.abs(dh) + np.abs(dv)) / 2, -1.0)
    fractal = _fractal(magnitude > settings.edge_threshold)
    direction = _directionality(dh, dv, magnitude > settings.direction_threshold, settings.direction_bins,
                                settings.peak_fraction)
    return [entropy, mean, std, fractal, skewness, kurtosis, uniformity, smoothness, contrast, direction]


def reference_parameters(frame: np.ndarray, settings: ParamSettings) -> np.ndarray:
    """:func:`heliocube.params.compute.compute_parameters` by a Python loop over the cells (slow)."""
    grid = settings.grid
    h, w = cell_shape(frame.shape, grid)
    levels, excluded = to_levels(frame, settings)
    z = levels.astype(np.float64)
    ok = np.ones(z.shape, bool) if excluded is None else ~excluded
    z[~ok] = np.nan
    padded, padded_ok = np.pad(levels, 1, mode="edge"), np.pad(ok, 1, mode="edge")
    out = np.empty((grid, grid, len(PARAMETER_NAMES)), dtype=np.float32)
    for i in range(grid):
        for j in range(grid):
            rows, cols = slice(i * h, (i + 1) * h), slice(j * w, (j + 1) * w)
            out[i, j] = cell_parameters(z[rows, cols], padded[i * h:(i + 1) * h + 2, j * w:(j + 1) * w + 2],
                                        padded_ok[i * h:(i + 1) * h + 2, j * w:(j + 1) * w + 2], settings)
    return out
