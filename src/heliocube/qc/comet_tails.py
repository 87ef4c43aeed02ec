"""Comet tails: a saturated head with a straight bright ridge leaving it away from the Sun.

A comet bright enough to matter saturates its head, but a head whose saturated core is only a few pixels (no
bloom) looks like a bright star's in a single frame: on the real C3 frames of ``tests/data/lasco``, field stars
saturate and bloom 2-7 px along a row, as the heads of comets ASAS (6 px) and 96P (3 px, 5 s exposure) do. What a
star never has is a tail. The solar wind blows a comet's ion tail straight away from the Sun (aberrated by a few
degrees by the comet's motion), and its dust tail leaves the head in about the same direction before it curves.
So a saturated group that is not a bloom is a comet head when a straight ridge brighter than the sky on both of
its sides runs from it within ``streak_tail_angle`` of the anti-solar direction, over ``streak_tail_length`` of
the frame edge.

The ridge is measured as the relative excess of the line over the mean of two parallel lines ``streak_tail_width``
to either side, sample by sample; its noise is the robust spread (1.4826 MAD) of that excess over every direction
tried around the head, so the test is the same on raw DN and on calibrated frames. Streamer rays are radial too,
but they start at the occulter, not at a saturated point source, and are wider than a tail.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .framework import FrameWork
from .thresholds import Thresholds

__all__ = ["tail_segments"]

_NONE = np.zeros((0, 4), dtype=np.int32)
#: at most this many saturated groups (the largest) are examined per frame: a cosmic-ray storm's saturated hits
#: must not make the check slow (a real frame has a few: stars and the transients)
_MAX_HEADS = 32


def tail_segments(work: FrameWork, saturated: np.ndarray, keep: np.ndarray, thresholds: Thresholds,
                  bloom_length: int) -> np.ndarray:
    """One segment (head centre to the tail's last significant sample) per saturated head with a tail.

    Parameters
    ----------
    work : FrameWork
        The frame; its region's geometry gives the Sun's centre (no geometry: no tails).
    saturated : numpy.ndarray
        uint8 0/255 of the saturated pixels inside the search region.
    keep : numpy.ndarray
        uint8 0/255 search region: tail samples outside it do not count.
    thresholds : Thresholds
        ``streak_tail_*``.
    bloom_length : int
        Groups at least this long along a row or column are blooms (found by the bloom search): skipped.
    """
    geometry = work.region.geometry
    length = round(thresholds.streak_tail_length * max(work.data.shape))
    if geometry is None or length < 5 or thresholds.streak_tail_sigma <= 0:
        return _NONE
    x, y, w, h = cv2.boundingRect(saturated)
    if w == 0:
        return _NONE
    # the 8-connected groups by their outer contours: ~20x cheaper than labelling the sparse box's pixels
    contours, _ = cv2.findContours(saturated[y : y + h, x : x + w], cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = [cv2.boundingRect(c) for c in contours]
    heads = [b for b in boxes if b[2] < bloom_length and b[3] < bloom_length]
    heads = sorted(heads, key=lambda b: -b[2] * b[3])[:_MAX_HEADS]  # the largest first
    if not heads:
        return _NONE
    width = max(2.0, thresholds.streak_tail_width * max(work.data.shape))
    spread = np.arange(-thresholds.streak_tail_angle, thresholds.streak_tail_angle + 1e-9, 1.0)
    img = work.img
    segments = []
    for left, top, bw, bh in heads:
        hx, hy = x + left + 0.5 * (bw - 1), y + top + 0.5 * (bh - 1)  # the centre of the saturated core
        # start past the head's own saturated core and its PSF wings (which make every direction look bright)
        start = 0.5 * max(bw, bh) + 2 * width
        t = start + np.arange(length, dtype=np.float64)
        angles = math.atan2(hy - geometry.cy, hx - geometry.cx) + np.radians(spread)
        ux, uy = np.cos(angles)[:, None], np.sin(angles)[:, None]
        cx, cy = hx + t[None, :] * ux, hy + t[None, :] * uy
        lines = [(cx + off * -uy, cy + off * ux) for off in (0.0, -width, width)]
        mx = np.concatenate([p[0] for p in lines]).astype(np.float32)
        my = np.concatenate([p[1] for p in lines]).astype(np.float32)
        values = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        centre, left, right = np.split(values.astype(np.float64), 3)
        side = 0.5 * (left + right)
        rows, cols = np.rint(cy).astype(np.int64), np.rint(cx).astype(np.int64)
        inside = (rows >= 0) & (rows < img.shape[0]) & (cols >= 0) & (cols < img.shape[1])
        inside[inside] = keep[rows[inside], cols[inside]] > 0
        inside &= side > 0
        if inside.sum() < length:  # fewer samples than one tail's worth: no noise estimate
            continue
        excess = np.zeros_like(side)
        excess[inside] = centre[inside] / side[inside] - 1.0
        valid = excess[inside]
        sigma = 1.4826 * float(np.median(np.abs(valid - np.median(valid))))
        if not sigma > 0:
            continue
        hits = inside & (excess > thresholds.streak_tail_sigma * sigma)
        counted = inside.sum(axis=1)
        score = np.where(counted >= length // 2, hits.sum(axis=1) / np.maximum(counted, 1), 0.0)
        best = int(np.argmax(score))
        if score[best] < thresholds.streak_tail_fraction:
            continue
        end = t[np.flatnonzero(hits[best])[-1]]
        segments.append((round(hx), round(hy), round(hx + end * ux[best, 0]), round(hy + end * uy[best, 0])))
    return np.array(segments, dtype=np.int32).reshape(-1, 4)
