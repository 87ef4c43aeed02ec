"""Prewitt gradients of a frame's gray levels, shared by the fractal dimension's edges and Tamura's directionality.

The gradients are taken over the whole frame, then cut into cells: whether a pixel is an edge does not depend on
where the grid falls, and a cell's border pixels see their neighbours in the next cell. At the frame's border the
frame is extended by replicating its edge pixels. A pixel with an excluded pixel (NaN, or out of range without
clipping) in its 3x3 neighbourhood has no gradient: it is neither an edge nor counted in the angle histogram.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

__all__ = ["PREWITT_H", "PREWITT_V", "Gradients", "prewitt"]

#: 3x3 Prewitt kernels, unnormalised, applied as correlations: dH = z[:, x+1] - z[:, x-1] summed over three rows,
#: dV = z[y+1, :] - z[y-1, :] summed over three columns (y is the row index).
PREWITT_H = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float32)
PREWITT_V = PREWITT_H.T.copy()
_ONES = np.ones(3, dtype=np.float32)
_DIFF = np.array([-1, 0, 1], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Gradients:
    """dH and dV (int16 for 8-bit levels, else float32) and ``twice_magnitude`` = ``|dH| + |dV|`` (twice the
    reference's |dG|, kept whole), with -1 where a pixel has no gradient."""

    dh: np.ndarray
    dv: np.ndarray
    twice_magnitude: np.ndarray

    def above(self, threshold: float) -> np.ndarray:
        """Pixels whose |dG| = (|dH| + |dV|) / 2 is above ``threshold``."""
        return self.twice_magnitude > 2 * threshold


def prewitt(levels: np.ndarray, excluded: np.ndarray | None = None) -> Gradients:
    """Prewitt gradients of an integer gray-level frame (border: replicated edge pixels).

    Parameters
    ----------
    levels : numpy.ndarray
        uint8 or uint16 ``(H, W)`` gray levels.
    excluded : numpy.ndarray, optional
        Pixels without a value; every pixel within one of them (3x3) gets no gradient.
    """
    depth = cv2.CV_16S if levels.dtype == np.uint8 else cv2.CV_32F  # 8-bit: |dH| <= 765, exact in int16
    # Prewitt is separable: a [-1, 0, 1] difference along one axis times a [1, 1, 1] sum along the other
    dh = cv2.sepFilter2D(levels, depth, _DIFF, _ONES, borderType=cv2.BORDER_REPLICATE)
    dv = cv2.sepFilter2D(levels, depth, _ONES, _DIFF, borderType=cv2.BORDER_REPLICATE)
    twice = np.abs(dh)
    twice += np.abs(dv)
    if excluded is not None:
        near = cv2.dilate(excluded.view(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
        twice[near.view(bool)] = -1
    return Gradients(dh, dv, twice)
