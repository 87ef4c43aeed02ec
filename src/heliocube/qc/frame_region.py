"""The streak search's valid region, built from the frame itself, and its saturation level.

The registry's valid region is a fixed annulus (e.g. 2.2-6 R☉ for LASCO C2). On real frames that is not enough:

* the scattered-light **halo** around the occulter is saturated or nearly so on long exposures and reaches past a
  fixed inner edge; its jagged outline gives straight edge segments of 110-130 px;
* calibrated (level-1) LASCO frames **fill** the occulter, the pylon and the corners with one constant value: the
  fill's outline (the pylon's straight sides) is an edge no different from a streak's.

So the search region is the registry's annulus minus the halo (the bright region connected to the occulter) and
minus any fill, each with a margin. Nothing here changes the hole or cosmic-ray checks.

References
----------
Brueckner, G. E. et al. 1995, "The Large Angle Spectroscopic Coronagraph (LASCO)", Sol. Phys. 162, 357 (14-bit
camera, occulter and pylon geometry); Morrill, J. S. et al. 2006, Sol. Phys. 233, 331 (level-1 calibration, DSATVAL).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .framework import FrameWork
from .thresholds import Thresholds

__all__ = ["fill_mask", "halo_mask", "saturation_level", "search_region"]

def saturation_level(dtype, header, thresholds: Thresholds, full_scale_dn: int | None = None) -> float | None:
    """The value at and above which a pixel of this frame is saturated, or None when unknown.

    Raw (integer) frames: ``streak_saturation`` x ``full_scale_dn``, the camera's full scale (the registry's
    ``full_scale_dn``; None: unknown). Calibrated (float) frames: the same fraction of the header's DSATVAL (the
    saturation value in the frame's units) when it gives one.
    """
    fraction = float(thresholds.streak_saturation)
    if fraction <= 0:
        return None
    if np.dtype(dtype).kind in "iu":
        return fraction * full_scale_dn if full_scale_dn else None
    try:
        dsat = float(header.get("DSATVAL")) if header is not None and header.get("DSATVAL") is not None else None
    except (TypeError, ValueError):
        dsat = None
    return fraction * dsat if dsat and math.isfinite(dsat) and dsat > 0 else None


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def fill_mask(work: FrameWork, thresholds: Thresholds) -> np.ndarray | None:
    """uint8 0/255 of the pixels holding a float frame's fill value, or None when it has none.

    The fill is one exact value held by more than ``streak_fill_fraction`` of the valid region's statistics
    sub-grid: measured data never repeat one float that often. Integer (raw) frames are quantised, so a repeated
    value says nothing there: they are not searched for a fill (their fills are 0, a hole).
    """
    if work.data.dtype.kind != "f" or work.region.n == 0:
        return None
    values = work.sorted_sample  # the most repeated value: the longest run of equal neighbours once sorted
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    counts = np.diff(np.append(starts, values.size))
    top = int(np.argmax(counts))
    value = values[starts[top]]
    if counts[top] <= thresholds.streak_fill_fraction * values.size or value == 0:
        return None
    return cv2.compare(work.img, float(value), cv2.CMP_EQ)


def halo_mask(work: FrameWork, thresholds: Thresholds) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """The occulter's halo: (box, uint8 0/255 mask on that box), or None when there is none to remove.

    The halo is the 8-connected region brighter than ``streak_halo`` x the saturation level that holds the
    occulter (the registry's inner disk), within ``streak_halo_reach`` x the inner radius. The bright mask is
    opened with a vertical and a horizontal line first, so that a thin bloom crossing the occulter (Venus on
    C3, 2010-01-05) does not join the halo: only regions thick in both directions do; the bright pixels within
    the opening's width of that core (the halo's jagged rim) are added back.
    """
    region, sat = work.region, work.saturation
    geometry = region.geometry
    if sat is None or geometry is None or region.region is None or region.region.inner <= 0:
        return None
    if work.region_range[1] < thresholds.streak_halo * sat:  # nothing bright in the valid region: no halo reaches it
        return None
    inner = region.region.inner * geometry.rsun_px
    reach = thresholds.streak_halo_reach * inner
    h, w = region.shape
    rows = slice(max(int(geometry.cy - reach), 0), min(int(geometry.cy + reach) + 2, h))
    cols = slice(max(int(geometry.cx - reach), 0), min(int(geometry.cx + reach) + 2, w))
    if rows.stop - rows.start < 3 or cols.stop - cols.start < 3:
        return None
    img = work.img[rows, cols]
    bright = cv2.compare(img, thresholds.streak_halo * sat, cv2.CMP_GE)
    if cv2.countNonZero(bright) == 0:  # the common case (short exposures): no halo, nothing to trace
        return None
    centre = (round(geometry.cx) - cols.start, round(geometry.cy) - rows.start)
    # occulter: the registry's inner disk; outside the reach: nothing
    cv2.circle(bright, centre, max(int(inner) - 1, 1), 255, -1)
    limit = np.zeros_like(bright)
    cv2.circle(limit, centre, int(reach), 255, -1)
    cv2.bitwise_and(bright, limit, dst=bright)
    k = max(3, round(thresholds.streak_ridge_width * max(h, w)) | 1)
    margin = 2 * int(thresholds.streak_margin)
    # from here on, on the bright pixels' own box widened by `pad` (a C2 halo's is half the search box): every
    # step gives 0 far from a bright pixel (an opening, the flood and the rim never exceed the bright mask), and
    # within `pad` of the narrower box's edges its result depends only on pixels inside it (the openings read
    # k // 2 px along a line, where all is dark near that edge; the rim's dilation reads core pixels, all inside)
    pad = k + margin + 2
    x, y, bw, bh = cv2.boundingRect(bright)
    sub = (slice(max(y - pad, 0), min(y + bh + pad, bright.shape[0])),
           slice(max(x - pad, 0), min(x + bw + pad, bright.shape[1])))
    bright = bright[sub]
    centre = (centre[0] - sub[1].start, centre[1] - sub[0].start)
    rows, cols = slice(rows.start + sub[0].start, rows.start + sub[0].stop), \
        slice(cols.start + sub[1].start, cols.start + sub[1].stop)
    core = cv2.morphologyEx(bright, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    core = cv2.morphologyEx(core, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 1)))
    if not (0 <= centre[1] < core.shape[0] and 0 <= centre[0] < core.shape[1]) or not core[centre[1], centre[0]]:
        return None
    flood = np.zeros((core.shape[0] + 2, core.shape[1] + 2), dtype=np.uint8)
    cv2.floodFill(core, flood, centre, 128, flags=8)
    core = cv2.compare(core, 128, cv2.CMP_EQ)
    # the halo's jagged rim (thinner than the opening) is the bright pixels near the core: within k px along
    # both axes (a square, which OpenCV dilates with two 1-D passes: a disk cost 2 ms on a C2 halo's box)
    rim = cv2.bitwise_and(cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * k + 1, 2 * k + 1))), bright)
    halo = cv2.bitwise_or(core, rim)
    if margin > 0:  # on the halo's own box widened by the margin (a disk is dilated row by row: ~0.7 ms on the
        # search box of a C2 halo); outside that box the dilation is empty anyway
        x, y, w, h = cv2.boundingRect(halo)
        near = (slice(max(y - margin, 0), y + h + margin), slice(max(x - margin, 0), x + w + margin))
        halo[near] = cv2.dilate(halo[near], _disk(margin))
    return (rows, cols), halo


def search_region(work: FrameWork, keep: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """``keep`` (uint8 0/255, the registry's region less its margins) minus the frame's fill and halo."""
    fill = fill_mask(work, thresholds)
    halo = halo_mask(work, thresholds)
    if fill is None and halo is None:
        return keep
    # every mask here is 0/255: keep & ~other is the saturating keep - other (one pass, no copy, no inverse)
    if fill is not None:
        margin = int(thresholds.streak_margin)
        if margin > 0:  # a square: OpenCV's two 1-D passes, not a disk's row by row (1 ms on a full frame)
            fill = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1)))
        keep = cv2.subtract(keep, fill)
    else:
        keep = keep.copy()
    if halo is not None:
        box, mask = halo
        cv2.subtract(keep[box], mask, dst=keep[box])
    return keep
