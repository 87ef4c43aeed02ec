"""Tamura contrast (P9) and directionality (P10), after Tamura, Mori & Yamawaki (1978).

Contrast: ``C = sigma**2 / kurtosis**(1/4)`` as the reference gives it (Tamura's paper uses sigma, not sigma**2),
with sigma in gray levels and kurtosis the plain fourth standardised moment; 0 for a constant cell.

Directionality, per cell:

1. angles ``phi = arctan(dV / dH) + pi/2`` in ``[0, pi)`` of the pixels whose Prewitt magnitude |dG| is above
   ``direction_threshold`` (``phi = pi`` folds onto 0: directions are modulo pi; an angle on a bin boundary goes to
   the bin above it);
2. their histogram ``H_D`` over ``n = direction_bins`` bins of width pi/n, normalised to sum 1;
3. **peaks** (heliocube's rule; the reference does not give one): a bin is a peak when it is a circular local
   maximum (higher than the bin before it, not lower than the bin after it, so a plateau yields its first bin) and
   holds at least ``peak_fraction`` of the largest bin. A histogram without such a bin (all bins equal) takes its
   first largest bin as its one peak;
4. **windows**: every bin belongs to the peak nearest to it around the circle (ties: the peak of lower angle), and
   ``phi - phi_p`` is the circular difference of the bin centres, in ``[-pi/2, pi/2)``;
5. ``F_dir = sum_p sum_{phi in w_p} (phi - phi_p)**2 H_D(phi)`` and the value stored is Tamura's normalisation
   ``1 - r n_p F_dir`` with ``r = 12 / pi**2``: 1 for one sharp direction, about 0 for a flat (isotropic) histogram,
   below 0 only for spread histograms with several peaks. A cell with no pixel above the threshold has no direction:
   0.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["R_NORMALISATION", "angle_bins", "angle_bins_of_levels", "directionality", "tamura_contrast"]

#: ``r`` of ``1 - r n_p F_dir``: the mean squared circular distance of a flat histogram to its peak is pi**2 / 12.
R_NORMALISATION = 12.0 / np.pi**2
#: Largest |dH| or |dV| of 8-bit levels (three differences of at most 255).
_MAX_8BIT = 765


def tamura_contrast(variance: np.ndarray, kurtosis: np.ndarray) -> np.ndarray:
    """P9, ``sigma**2 / kurtosis**(1/4)``; 0 where the kurtosis is 0 (a constant cell)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        contrast = variance / np.sqrt(np.sqrt(kurtosis))
    return np.where(kurtosis == 0, 0.0, contrast)


def angle_bins(dh: np.ndarray, dv: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin in ``[0, n)`` of ``phi = arctan(dV / dH) + pi/2``, in float64 (``dH = 0`` gives ``phi = 0`` or pi, which
    folds onto 0). An angle on a bin boundary (``dV = 0``, ``dH = 0``, ``|dH| = |dV|``, exact with integer
    gradients) belongs to the bin above it: ``floor`` gets ``1e-9`` of slack against the float rounding of pi."""
    dh, dv = np.asarray(dh, dtype=np.float64), np.asarray(dv, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.arctan(dv / dh) + np.pi / 2
    return (np.floor(np.nan_to_num(phi) * (n_bins / np.pi) + 1e-9).astype(np.int64) % n_bins).astype(np.uint16)


@functools.lru_cache(maxsize=4)
def _bin_table(n_bins: int) -> np.ndarray:
    """:func:`angle_bins` of every (dH, dV) pair of 8-bit levels, flattened: ``[(dH + 765) * 1531 + dV + 765]``,
    plus a last entry ``n_bins`` for the pixels left out."""
    values = np.arange(-_MAX_8BIT, _MAX_8BIT + 1)
    table = np.append(angle_bins(values[:, None], values[None, :], n_bins).ravel(), np.uint16(n_bins))
    table.flags.writeable = False
    return table


def angle_bins_of_levels(gradients, mask: np.ndarray, n_bins: int) -> np.ndarray:
    """:func:`angle_bins` of the pixels in ``mask``, ``n_bins`` elsewhere (uint16, the gradients' shape). Gradients
    of 8-bit levels are looked up in a table of every pair (exact, and no arctan per pixel)."""
    if gradients.dh.dtype == np.int16:
        table = _bin_table(n_bins)
        where = np.flatnonzero(mask) if np.count_nonzero(mask) < mask.size // 4 else None
        dh, dv = (gradients.dh, gradients.dv) if where is None else (gradients.dh.ravel()[where],
                                                                     gradients.dv.ravel()[where])
        index = dh.astype(np.int32)
        index *= 2 * _MAX_8BIT + 1
        index += dv
        index += _MAX_8BIT * (2 * _MAX_8BIT + 2)
        if where is None:  # most pixels are above the threshold: look every pixel up
            index[~mask] = table.size - 1
            return np.take(table, index)
        out = np.full(mask.shape, n_bins, dtype=np.uint16)
        out.ravel()[where] = np.take(table, index)  # a few are (quiet Sun at full resolution): only those
        return out
    out = np.full(mask.shape, n_bins, dtype=np.uint16)
    out[mask] = angle_bins(gradients.dh[mask], gradients.dv[mask], n_bins)
    return out


def _circular_offsets(n_bins: int) -> np.ndarray:
    """``[b, q]``: signed bin offset of bin b from bin q around the circle, in ``[-n/2, n/2)``."""
    b = np.arange(n_bins)
    return (b[:, None] - b[None, :] + n_bins // 2) % n_bins - n_bins // 2


def peaks_of(hist: np.ndarray, peak_fraction: float) -> np.ndarray:
    """The peaks (boolean ``(..., n)``) of normalised angle histograms, by the rule in the module's text."""
    before, after = np.roll(hist, 1, axis=-1), np.roll(hist, -1, axis=-1)
    largest = hist.max(axis=-1, keepdims=True)
    peaks = (hist > before) & (hist >= after) & (hist >= peak_fraction * largest) & (hist > 0)
    none = ~peaks.any(axis=-1) & (largest[..., 0] > 0)
    first = np.argmax(hist, axis=-1)
    peaks[none, first[none]] = True
    return peaks


def directionality(counts: np.ndarray, peak_fraction: float) -> np.ndarray:
    """P10 of every cell from its angle counts ``(..., n)`` (see the module's rule), float64 ``(...)``."""
    n_bins = counts.shape[-1]
    total = counts.sum(axis=-1, keepdims=True)
    hist = counts / np.where(total > 0, total, 1)
    peaks = peaks_of(hist, peak_fraction)
    offsets = _circular_offsets(n_bins)  # [bin, peak]
    distance = np.where(peaks[..., None, :], np.abs(offsets), n_bins)  # (..., bin, peak)
    nearest = np.argmin(distance, axis=-1)  # ties: the first (lowest-angle) peak
    delta = offsets[np.arange(n_bins), nearest]  # (..., bin)
    f_dir = ((delta * (np.pi / n_bins)) ** 2 * hist).sum(axis=-1)
    n_peaks = peaks.sum(axis=-1)
    return np.where(total[..., 0] > 0, 1.0 - R_NORMALISATION * n_peaks * f_dir, 0.0)
