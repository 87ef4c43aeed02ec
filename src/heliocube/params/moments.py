"""Per-cell moments of the gray levels: mean (P2), standard deviation (P3), skewness (P5), kurtosis (P6).

With integer gray levels the reference's formulas over pixels (``m = (1/N) sum z``) and over the histogram
(``mu_k = sum_i (z_i - m)**k p(z_i)``) are the same sums, so all four come from the cell's histogram: exact, and
cheap (``G x G x L`` values instead of every pixel). Kurtosis is the plain fourth standardised moment (3 for a
Gaussian), not the excess. A cell of one level has no spread: its skewness and kurtosis are 0 by convention (the
formulas give 0/0), which keeps the dataset free of NaN where the Sun is flat.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["CellMoments", "histogram_moments"]


@dataclasses.dataclass(frozen=True)
class CellMoments:
    """Per-cell float64 arrays; NaN where a cell has no counted pixel."""

    mean: np.ndarray
    variance: np.ndarray
    skewness: np.ndarray
    kurtosis: np.ndarray

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.variance)


def histogram_moments(p: np.ndarray) -> CellMoments:
    """Moments of every cell from its normalised histogram ``p`` (``(..., L)``, bins at levels 0 .. L-1)."""
    z = np.arange(p.shape[-1], dtype=np.float64)
    mean = p @ z
    d = z - mean[..., None]  # centred first: raw moments of levels up to 255**4 would cancel
    d2 = d * d
    variance = np.einsum("...i,...i->...", d2, p)
    m3 = np.einsum("...i,...i,...i->...", d2, d, p)
    m4 = np.einsum("...i,...i,...i->...", d2, d2, p)
    flat = variance <= 1e-12  # one level: exactly 0 up to rounding
    spread = np.where(flat, 1.0, variance)
    with np.errstate(invalid="ignore"):
        skewness = np.where(flat, 0.0, m3 / spread**1.5)
        kurtosis = np.where(flat, 0.0, m4 / spread**2)
    variance = np.where(flat, 0.0, variance)
    empty = np.isnan(mean)
    skewness[empty] = kurtosis[empty] = variance[empty] = np.nan
    return CellMoments(mean, variance, skewness, kurtosis)
