"""The ten parameters of every cell of a frame at once: :func:`compute_parameters`.

No Python loop runs per cell. The frame is processed in bands of whole cell rows (about a million pixels each, so
the temporaries stay in the processor's cache and no 4096² scratch array is allocated per step); within a band
every step covers all its cells at once: gray levels, one 2-D histogram of (cell, level), two separable 3x3
filters, an OR pyramid of box counts and one 2-D histogram of (cell, angle bin). The moments, entropy,
uniformity and directionality then come from the ``G x G`` histograms. :mod:`heliocube.params.reference`
computes the same formulas cell by cell (tests, and ``bench/bench_params.py``).
"""

from __future__ import annotations

import functools

import numpy as np

from . import PARAMETER_NAMES
from .fractal import box_counts, box_sizes, slope
from .gradients import Gradients, prewitt
from .grid import blocked, to_levels
from .histogram import entropy, pair_counts, probabilities, uniformity
from .moments import histogram_moments
from .settings import ParamSettings, cell_shape
from .tamura import angle_bins_of_levels, directionality, tamura_contrast

__all__ = ["BAND_PIXELS", "compute_parameters", "relative_smoothness"]

#: Pixels per band (rounded to whole cell rows, at least one).
BAND_PIXELS = 2**20


def relative_smoothness(variance: np.ndarray, settings: ParamSettings) -> np.ndarray:
    """P8, ``R = 1 - 1/(1 + s2)`` with ``s2 = sigma**2 / (L - 1)**2`` (or sigma**2 when ``smoothness_scaled`` is
    false)."""
    scaled = variance / (settings.levels - 1) ** 2 if settings.smoothness_scaled else variance
    return 1.0 - 1.0 / (1.0 + scaled)


@functools.lru_cache(maxsize=8)
def _band_ids(rows: int, cell_h: int, width: int, grid: int) -> np.ndarray:
    """Cell index within a band (``row * G + column``) of each pixel of a band of ``rows`` cell rows, uint16."""
    r = np.arange(rows * cell_h, dtype=np.int32) // cell_h
    c = np.arange(width, dtype=np.int32) // (width // grid)
    ids = (r[:, None] * grid + c[None, :]).astype(np.uint16)
    ids.flags.writeable = False
    return ids


def compute_parameters(frame: np.ndarray, settings: ParamSettings, *, band_pixels: int = BAND_PIXELS) -> np.ndarray:
    """All ten parameters of every cell of one frame.

    Parameters
    ----------
    frame : numpy.ndarray
        ``(H, W)`` pixel values in the cube's units; the grid must divide both edges.
    settings : ParamSettings
        Grid, gray-level mapping and thresholds (:func:`heliocube.params.settings.settings_for`).
    band_pixels : int
        Pixels processed at once (whole cell rows); changes the speed, never the values.

    Returns
    -------
    numpy.ndarray
        float32 ``(G, G, 10)``, the last axis in :data:`heliocube.params.PARAMETER_NAMES` order; a cell without
        a counted pixel is NaN throughout.

    Examples
    --------
    >>> import numpy as np
    >>> from heliocube.params.settings import ParamSettings
    >>> settings = ParamSettings(grid=2, scale="linear", range=(0.0, 255.0))
    >>> values = compute_parameters(np.full((8, 8), 10.0), settings)
    >>> values.shape, float(values[0, 0, 1]), float(values[0, 0, 0])
    ((2, 2, 10), 10.0, 0.0)
    """
    frame = np.asarray(frame)
    grid, (height, width) = settings.grid, frame.shape
    cell_h, _ = cell_shape(frame.shape, grid)
    n_levels, n_bins = settings.levels, settings.direction_bins
    # as many cell rows as keep a band's (value, cell) codes within 16 bits (pair_counts' fast path)
    rows = max(1, min(grid, band_pixels // (cell_h * width), 2**16 // ((max(n_levels, n_bins) + 1) * grid)))
    level_counts = np.empty((grid * grid, n_levels), dtype=np.int64)
    angle_counts = np.empty((grid * grid, n_bins), dtype=np.int64)
    boxes = []
    sizes = box_sizes(cell_h, width // grid)
    for first in range(0, grid, rows):
        last = min(grid, first + rows)
        top, bottom = first * cell_h, last * cell_h
        above, below = min(top, 1), min(height - bottom, 1)  # one row of neighbours for the gradients
        levels, excluded = to_levels(frame[top - above:bottom + below], settings)
        whole = prewitt(levels, excluded)
        core = slice(above, levels.shape[0] - below)
        gradients = Gradients(whole.dh[core], whole.dv[core], whole.twice_magnitude[core])
        levels = levels[core]
        if excluded is not None:
            levels = levels.astype(np.uint16)
            levels[excluded[core]] = n_levels  # not counted
        ids, n_ids = _band_ids(last - first, cell_h, width, grid), (last - first) * grid
        cells = slice(first * grid, last * grid)
        level_counts[cells] = pair_counts(levels, ids, n_levels, n_ids)
        edges = gradients.above(settings.edge_threshold)
        boxes.append(box_counts(blocked(edges, grid, last - first), sizes))
        bins = angle_bins_of_levels(gradients, gradients.above(settings.direction_threshold), n_bins)
        angle_counts[cells] = pair_counts(bins, ids, n_bins, n_ids)
    p = probabilities(level_counts.reshape(grid, grid, n_levels))
    moments = histogram_moments(p)
    out = np.empty((grid, grid, len(PARAMETER_NAMES)), dtype=np.float32)
    out[..., 0] = entropy(p)
    out[..., 1] = moments.mean
    out[..., 2] = moments.std
    out[..., 3] = slope(sizes, np.concatenate(boxes, axis=0))
    out[..., 4] = moments.skewness
    out[..., 5] = moments.kurtosis
    out[..., 6] = uniformity(p)
    out[..., 7] = relative_smoothness(moments.variance, settings)
    out[..., 8] = tamura_contrast(moments.variance, moments.kurtosis)
    out[..., 9] = directionality(angle_counts.reshape(grid, grid, n_bins), settings.peak_fraction)
    out[np.isnan(moments.mean)] = np.nan
    return out
