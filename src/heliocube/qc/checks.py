"""The QC checks: small pure functions returning a Rejection (reason code, measured value) or None.

Each check has a matching measurement function (``hole_fraction``, ``streak_segments``, ...) so the same numbers
can be tabulated for accepted frames.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from ..fetch.gate import Rejection
from .thresholds import Thresholds

__all__ = [
    "REASONS",
    "cosmic_ray_count",
    "cosmic_rays",
    "header_flags",
    "hole_fraction",
    "holes",
    "missing_blocks",
    "shape",
    "streak_segments",
    "streaks",
]

#: Every reason code a QC rejection may carry, with what it means.
REASONS = {
    "quality": "archive/header quality keyword is non-zero",
    "missing_blocks": "EIT header N_MISSING_BLOCKS above threshold",
    "missvals": "header MISSVALS above threshold (fraction of the frame)",
    "unreadable": "the file cannot be opened or holds no image data",
    "shape": "the image is not a 2-D square of the expected size",
    "holes": "fraction of the valid region that is NaN, 0 or BLANK above threshold",
    "streak": "long straight line(s) in the valid region (planet/comet blooming)",
    "cosmic_rays": "more small bright blobs in the valid region than the threshold",
}

_DEFAULT = Thresholds()
_BLOCKS_COMMENT = re.compile(r"N_MISSING_BLOCKS\s*=\s*(-?\d+)")


# ---------------------------------------------------------------------------------------------- header flags
def plain(value) -> float | int | str:
    """A measured value as a plain Python number (numpy scalars included), else its string."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return str(value)


def missing_blocks(header) -> int | None:
    """N_MISSING_BLOCKS from a keyword or, as in EIT level-0 headers, a COMMENT card (None when absent)."""
    if "N_MISSING_BLOCKS" in header:
        return int(header["N_MISSING_BLOCKS"])
    for card in header.cards:
        if card.keyword == "COMMENT":
            match = _BLOCKS_COMMENT.search(str(card.value))
            if match:
                return int(match.group(1))
    return None


def header_flags(header, quality_keyword: str | None, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Quality keyword non-zero, N_MISSING_BLOCKS above threshold, or MISSVALS above threshold."""
    if quality_keyword and quality_keyword in header:
        value = header[quality_keyword]
        try:
            flagged = int(value) != 0
        except (TypeError, ValueError):
            flagged = bool(str(value).strip() not in ("", "0", "0x00000000"))
        if flagged:
            return Rejection("quality", plain(value), quality_keyword)
    blocks = missing_blocks(header)
    if blocks is not None and blocks > thresholds.missing_blocks:
        return Rejection("missing_blocks", blocks, f"N_MISSING_BLOCKS > {thresholds.missing_blocks}")
    if header.get("MISSVALS") is not None:
        npix = int(header.get("NAXIS1", 0) or 0) * int(header.get("NAXIS2", 0) or 0)
        missvals = int(header["MISSVALS"])
        if npix and missvals / npix > thresholds.missvals_fraction:
            return Rejection("missvals", missvals, f"MISSVALS > {thresholds.missvals_fraction:g} of {npix} pixels")
    return None


# ---------------------------------------------------------------------------------------------- shape
def shape(data: np.ndarray, expected_size: int | None = None) -> Rejection | None:
    """The image must be 2-D, square and (when given) ``expected_size`` pixels on a side."""
    dims = "x".join(str(n) for n in data.shape)
    if data.ndim != 2 or data.shape[0] != data.shape[1]:
        return Rejection("shape", dims, "not a 2-D square image")
    if expected_size is not None and data.shape[0] != int(expected_size):
        return Rejection("shape", dims, f"expected {expected_size}x{expected_size}")
    return None


# ---------------------------------------------------------------------------------------------- holes
def _bad_pixels(data: np.ndarray, blank=None) -> np.ndarray:
    bad = data == 0
    if data.dtype.kind == "f":
        bad |= np.isnan(data)
    if blank is not None:
        bad |= data == blank
    return bad


def hole_fraction(data: np.ndarray, mask: np.ndarray, blank=None) -> float:
    """Fraction of the ``mask`` pixels that are NaN, 0 or ``blank`` (pixels outside the mask never count)."""
    n = int(np.count_nonzero(mask))
    if n == 0:
        return 0.0
    return float(np.count_nonzero(_bad_pixels(data, blank) & mask)) / n


def holes(data: np.ndarray, mask: np.ndarray, blank=None, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Reject when more than ``thresholds.hole_fraction`` of the valid region is NaN, 0 or BLANK."""
    frac = hole_fraction(data, mask, blank)
    if frac > thresholds.hole_fraction:
        return Rejection("holes", round(frac, 6), f"> {thresholds.hole_fraction:g} of the valid region")
    return None


# ---------------------------------------------------------------------------------------------- streaks
def _log_image(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log10 of the data scaled to uint8 over the valid region's robust range (invalid pixels at the median)."""
    img = np.asarray(data, dtype=np.float32)
    ok = mask & np.isfinite(img) & (img > 0)
    if not ok.any():
        return np.zeros(img.shape, dtype=np.uint8)
    logs = np.log10(img[ok])
    lo, hi = float(np.percentile(logs, 0.5)), float(logs.max())  # streaks are the brightest pixels
    out = np.full(img.shape, np.median(logs), dtype=np.float32)
    out[ok] = logs
    scale = 255.0 / max(hi - lo, 1e-6)
    return np.clip((out - lo) * scale, 0, 255).astype(np.uint8)


def streak_segments(data: np.ndarray, mask: np.ndarray, thresholds: Thresholds = _DEFAULT) -> np.ndarray:
    """Straight segments (x0, y0, x1, y1) found by Canny + probabilistic Hough on the log image.

    Runs on the full-resolution frame. The Hough transform sees the Canny edges of the log image together with its
    thin bright ridges (white top-hat above ``streak_ridge_contrast``), so that thick, tapered blooming streaks,
    whose edges are not straight, are found as well as thin ones. Pixels within ``streak_margin`` pixels of the
    occulter, of the valid region's outer edge, of holes (NaN/0) and of the frame border are removed first, so
    outlines never count.
    """
    size = max(data.shape)
    log = _log_image(data, mask)
    edges = cv2.Canny(cv2.GaussianBlur(log, (0, 0), 1.0), 40, 100)
    if thresholds.streak_ridge_contrast > 0:
        k = max(3, round(thresholds.streak_ridge_width * size) | 1)
        ridges = cv2.morphologyEx(log, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        edges[ridges > thresholds.streak_ridge_contrast] = 255
    keep = (mask & ~_bad_pixels(data)).astype(np.uint8)  # hole outlines are not streaks
    m = int(thresholds.streak_margin)
    if m > 0:
        keep[:m, :] = keep[-m:, :] = keep[:, :m] = keep[:, -m:] = 0
        keep = cv2.erode(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * m + 1, 2 * m + 1)))
    edges[keep == 0] = 0
    cv2.setRNGSeed(1)  # the probabilistic Hough samples edge points at random: make verdicts reproducible
    lines = cv2.HoughLinesP(
        edges,
        rho=thresholds.streak_rho,
        theta=math.pi / 360,
        threshold=max(5, round(thresholds.streak_votes * size)),
        minLineLength=max(5, round(thresholds.streak_min_length * size)),
        maxLineGap=max(1, round(thresholds.streak_max_gap * size)),
    )
    return np.zeros((0, 4), dtype=np.int32) if lines is None else lines.reshape(-1, 4)


def streaks(data: np.ndarray, mask: np.ndarray, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Reject when at least ``streak_segments`` long straight segments cross the valid region."""
    segments = streak_segments(data, mask, thresholds)
    if len(segments) >= thresholds.streak_segments:
        longest = float(np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1]).max())
        return Rejection("streak", len(segments), f"{len(segments)} segments, longest {longest:.0f} px")
    return None


# ---------------------------------------------------------------------------------------------- cosmic rays
def _bright_hits(data: np.ndarray, mask: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Pixels far above their 3x3 median (by ``cosmic_ray_sigma`` robust sigmas and ``cosmic_ray_ratio``)."""
    img = np.asarray(data, dtype=np.float32)
    img = np.where(np.isfinite(img), img, 0).astype(np.float32)
    med = cv2.medianBlur(img, 3)
    resid = img - med
    valid = mask & (img != 0)
    if not valid.any():
        return np.zeros(img.shape, dtype=bool), med
    r = resid[valid]
    sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if sigma <= 0:
        sigma = float(np.std(r)) or 1.0
    hits = valid & (resid > thresholds.cosmic_ray_sigma * sigma)
    hits &= (med <= 0) | (img > thresholds.cosmic_ray_ratio * med)
    return hits, med


def cosmic_ray_count(data: np.ndarray, mask: np.ndarray, thresholds: Thresholds = _DEFAULT) -> int:
    """Small bright blobs in the valid region: pixels far above their 3x3 median, grouped 8-connected."""
    hits, _ = _bright_hits(data, mask, thresholds)
    if not hits.any():
        return 0
    n, _ = cv2.connectedComponents(hits.astype(np.uint8), connectivity=8)
    return int(n - 1)


def cosmic_rays(data: np.ndarray, mask: np.ndarray, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Reject when more than ``cosmic_ray_count`` small bright blobs are found in the valid region."""
    count = cosmic_ray_count(data, mask, thresholds)
    if count > thresholds.cosmic_ray_count:
        return Rejection("cosmic_rays", count, f"> {thresholds.cosmic_ray_count} bright blobs")
    return None
