"""The QC checks: small pure functions returning a Rejection (reason code, measured value) or None.

Each check has a matching measurement function (``hole_fraction``, ``streak_segments``, ...) so the same numbers
can be tabulated for accepted frames. ``mask`` arguments take a boolean array or a
:class:`~heliocube.qc.geometry.RegionMasks` (which caches what the checks derive from the region); the gate shares
one :class:`FrameWork` between the checks of a file so that the float32 image and the bad-pixel map are built once.

Everything runs on the full-resolution frame. The only reduced work: robust statistics (noise sigma, log-image
percentiles) are estimated on a regular sub-grid of at most ~65k valid pixels (:attr:`RegionMasks.sample`), which
changes nothing for frames up to 256x256 and estimates the same numbers to well under 1 % above that.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from ..fetch.gate import Rejection
from .framework import CV_INTS, FrameWork, median_sorted, nonzero, row_bands
from .thresholds import Thresholds

__all__ = [
    "REASONS",
    "FrameWork",
    "cosmic_ray_count",
    "cosmic_ray_limit",
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
    "cosmic_rays": "more sharp bright hits (cosmic-ray 'snow') in the valid region than the threshold",
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
    if "COMMENT" not in header:
        return None
    for comment in header["COMMENT"]:
        match = _BLOCKS_COMMENT.search(str(comment))
        if match:
            return int(match.group(1))
    return None


def header_flags(
    header, quality_keyword: str | None, thresholds: Thresholds = _DEFAULT, metrics: dict | None = None
) -> Rejection | None:
    """Quality keyword non-zero, N_MISSING_BLOCKS above threshold, or MISSVALS above threshold.

    ``metrics``, when given, receives ``quality``, ``missing_blocks`` and ``missvals`` as far as they were read.
    """
    metrics = {} if metrics is None else metrics
    if quality_keyword and quality_keyword in header:
        value = header[quality_keyword]
        metrics["quality"] = plain(value)
        try:
            flagged = int(value) != 0
        except (TypeError, ValueError):
            flagged = bool(str(value).strip() not in ("", "0", "0x00000000"))
        if flagged:
            return Rejection("quality", plain(value), quality_keyword)
    blocks = missing_blocks(header)
    if blocks is not None:
        metrics["missing_blocks"] = blocks
        if blocks > thresholds.missing_blocks:
            return Rejection("missing_blocks", blocks, f"N_MISSING_BLOCKS > {thresholds.missing_blocks}")
    if header.get("MISSVALS") is not None:
        npix = int(header.get("NAXIS1", 0) or 0) * int(header.get("NAXIS2", 0) or 0)
        missvals = int(header["MISSVALS"])
        metrics["missvals"] = missvals
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
def hole_fraction(data: np.ndarray, mask, blank=None) -> float:
    """Fraction of the ``mask`` pixels that are NaN, 0 or ``blank`` (pixels outside the mask never count)."""
    work = FrameWork.of(data, mask, blank)
    if work.region.n == 0:
        return 0.0
    return work.bad_in_mask() / work.region.n


def holes(data: np.ndarray, mask, blank=None, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Reject when more than ``thresholds.hole_fraction`` of the valid region is NaN, 0 or BLANK."""
    frac = hole_fraction(data, mask, blank)
    if frac > thresholds.hole_fraction:
        return Rejection("holes", round(frac, 6), f"> {thresholds.hole_fraction:g} of the valid region")
    return None


# ---------------------------------------------------------------------------------------------- cosmic rays
_WINDOW7 = np.array([(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)])
_NEIGHBOURS4 = np.array([(0, -1), (0, 1), (-1, 0), (1, 0)])


def _counted_median2(values: np.ndarray) -> int:
    """Twice the median of integer ``values`` (int64), from their histogram: exact, and a fifth of a sort's time."""
    low = int(values.min())
    cumulative = np.cumsum(np.bincount(values - low))
    n = values.size
    a, b = np.searchsorted(cumulative, [(n - 1) // 2, n // 2], side="right")  # the two middle values (0-based)
    return int(a) + int(b) + 2 * low


def _robust_sigma(values: np.ndarray, integer: bool = False) -> float:
    """1.4826 x MAD; mean absolute deviation (Gaussian-scaled) when quantised data make the MAD 0.

    ``integer``: every value is an integer (residuals of integer frames, exact in float32): the medians come from
    histograms, as exact as sorting twice (0.8 ms of a 1024² frame's 65k samples).
    """
    if values.size == 0:
        return 1.0
    if integer:
        counts = values.astype(np.int64)
        if int(counts.max()) - int(counts.min()) < 4 * counts.size:  # a histogram no larger than a sort's work
            twice = _counted_median2(counts)
            mad4 = _counted_median2(np.abs(2 * counts - twice))  # 4 x MAD: |2v - 2 median| is an integer
            if mad4 > 0:
                return 1.4826 * (mad4 / 4)
    values = np.sort(values)  # numpy's SIMD sort: cheaper than np.median
    dev = np.sort(np.abs(values - median_sorted(values)))
    sigma = 1.4826 * median_sorted(dev)
    if sigma <= 0:
        sigma = 1.2533 * float(np.mean(dev))
    return sigma if sigma > 0 else 1.0


def _pixels(work: FrameWork) -> np.ndarray:
    """The image the cosmic-ray detector reads: the data when integer (no NaN), else the float32 image."""
    return work.data if work.data.dtype in CV_INTS else work.img


def _candidates(work: FrameWork, thresholds: Thresholds) -> np.ndarray:
    """Flat indices (sorted) of valid pixels far above their 3x3 median.

    Far above: by ``cosmic_ray_sigma`` robust sigmas of (image - 3x3 median) over the valid region and, for
    positive data, by the factor ``cosmic_ray_ratio``. Integer data stay integer (OpenCV's saturating subtraction
    cannot hide a pixel above a positive threshold), which halves the memory traffic on 4096x4096 frames.
    """
    region = work.region
    if region.n == 0 or min(region.shape) < 3:  # no 3x3 neighbourhood (and OpenCV takes 1x1 arrays for scalars)
        return np.zeros(0, dtype=np.intp)
    rows, cols = region.box  # the region's bounding box (+1 px: 3x3 medians as on the whole frame)
    if rows.stop - rows.start < 3 or cols.stop - cols.start < 3:
        rows, cols = slice(0, region.shape[0]), slice(0, region.shape[1])
    img = _pixels(work)[rows, cols]
    med = cv2.medianBlur(img, 3)
    width = img.shape[1]
    # flat gathers: from the whole (contiguous) frame and from the median of the box (ravel of the box would copy)
    values = _pixels(work).ravel()[region.sample].astype(np.float32)
    local = med.ravel()[region.sample_in_box if (rows, cols) == region.box else region.sample].astype(np.float32)
    sigma = _robust_sigma((values - local)[values != 0], integer=img.dtype.kind in "iu")
    threshold = thresholds.cosmic_ray_sigma * sigma
    if img.dtype.kind != "f":  # integer residuals: resid > t  <=>  resid > floor(t)
        if threshold >= np.iinfo(img.dtype).max:
            return np.zeros(0, dtype=np.intp)
        threshold = float(math.floor(threshold))
    # band by band: the residual and its test stay in the cache (row_bands); few pixels pass
    found = [nonzero(cv2.compare(cv2.subtract(img[band], med[band]), threshold, cv2.CMP_GT)) + band.start * width
             for band in row_bands(*img.shape)]
    idx = np.concatenate(found)  # few: the rest of the work is per candidate
    if idx.size == 0:
        return idx
    box_rows, box_cols = np.divmod(idx, width)
    value, local = img[box_rows, box_cols].astype(np.float64), med[box_rows, box_cols].astype(np.float64)
    idx = (box_rows + rows.start) * region.shape[1] + (box_cols + cols.start)  # back to whole-frame indices
    keep = region.mask.ravel()[idx] & (value != 0) & ((local <= 0) | (value > thresholds.cosmic_ray_ratio * local))
    return idx[keep]


def _components(idx: np.ndarray, width: int) -> np.ndarray:
    """8-connected component label of each flat index in sorted ``idx`` (hits are sparse: a sparse graph)."""
    n = idx.size
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    col = idx % width
    src, dst = [], []
    for offset, ok_col in ((1, col < width - 1), (width - 1, col > 0), (width, None), (width + 1, col < width - 1)):
        target = idx + offset
        pos = np.minimum(np.searchsorted(idx, target), n - 1)
        found = idx[pos] == target
        if ok_col is not None:
            found &= ok_col
        src.append(np.flatnonzero(found))
        dst.append(pos[found])
    src, dst = np.concatenate(src), np.concatenate(dst)
    # min-label propagation with pointer jumping (scipy's sparse graph cost 0.2 ms to build for the tens of hits
    # of a 1024² frame): a label is always a pixel of the same group, so groups never merge wrongly
    label = np.arange(n)
    while src.size and not np.array_equal(label[src], label[dst]):
        low = np.minimum(label[src], label[dst])
        np.minimum.at(label, src, low)
        np.minimum.at(label, dst, low)
        label = label[label]
    return np.unique(label, return_inverse=True)[1]


def _sharp_peaks(work: FrameWork, idx: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Which 8-connected groups of candidate pixels are sharp hits rather than point-spread-function sources.

    At each group's brightest pixel, its excess over the local background (median of the 7x7 window) is compared
    with that of its 4-neighbours: a star's PSF spreads light to the left or right *and* up or down, while a
    cosmic-ray hit (a single pixel, or a short track along one direction) leaves at least one of the two axes dark.
    A group is sharp when, along the row or along the column, both neighbours hold at most
    ``cosmic_ray_psf_fraction`` of the peak's excess. Returns a boolean per group (label order).
    """
    img = _pixels(work)
    h, w = img.shape
    labels = _components(idx, w)
    values = img.ravel()[idx]
    order = np.lexsort((-values, labels))
    first = np.ones(order.size, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    peaks = idx[order][first]
    py, px = np.divmod(peaks, w)
    win_y = np.clip(py[:, None] + _WINDOW7[:, 0], 0, h - 1)
    win_x = np.clip(px[:, None] + _WINDOW7[:, 1], 0, w - 1)
    background = np.partition(img[win_y, win_x].astype(np.float64), 24, axis=1)[:, 24]  # median of 49
    excess = img[py, px] - background
    ny, nx = py[:, None] + _NEIGHBOURS4[:, 0], px[:, None] + _NEIGHBOURS4[:, 1]
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    neighbour = img[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)].astype(np.float64) - background[:, None]
    neighbour = np.where(inside, neighbour, 0.0)
    spread = np.minimum(neighbour[:, :2].max(axis=1), neighbour[:, 2:].max(axis=1))
    return spread <= thresholds.cosmic_ray_psf_fraction * excess


def _cosmic_ray_count(work: FrameWork, thresholds: Thresholds) -> int:
    idx = _candidates(work, thresholds)
    if idx.size == 0:
        return 0
    return int(np.count_nonzero(_sharp_peaks(work, idx, thresholds)))


def cosmic_ray_count(data: np.ndarray, mask, thresholds: Thresholds = _DEFAULT) -> int:
    """Sharp bright hits in the valid region: groups of pixels far above their 3x3 median, minus PSF sources.

    Candidate pixels exceed their 3x3 median by ``cosmic_ray_sigma`` robust sigmas and by the factor
    ``cosmic_ray_ratio``; 8-connected candidates form a group; groups whose peak spreads like a point-spread
    function (stars, planets, comet nuclei) are not counted (see ``cosmic_ray_psf_fraction``).
    """
    return _cosmic_ray_count(FrameWork.of(data, mask), thresholds)


def cosmic_ray_limit(valid_pixels: int, thresholds: Thresholds = _DEFAULT) -> float:
    """Most hits a frame may hold: ``cosmic_ray_count``, or ``cosmic_ray_density`` x valid pixels if larger.

    A full-resolution frame carries a natural load of cosmic-ray hits that grows with its area (tens on a
    1024x1024 LASCO frame); "snow" is many times that. The fixed count keeps small (resampled) frames strict.
    """
    return max(float(thresholds.cosmic_ray_count), thresholds.cosmic_ray_density * valid_pixels)


def _cosmic_ray_rejection(count: int, valid_pixels: int, thresholds: Thresholds) -> Rejection | None:
    limit = cosmic_ray_limit(valid_pixels, thresholds)
    if count > limit:
        return Rejection("cosmic_rays", count, f"> {limit:g} sharp hits")
    return None


def cosmic_rays(data: np.ndarray, mask, thresholds: Thresholds = _DEFAULT) -> Rejection | None:
    """Reject when more sharp hits than :func:`cosmic_ray_limit` are found in the valid region."""
    work = FrameWork.of(data, mask)
    return _cosmic_ray_rejection(_cosmic_ray_count(work, thresholds), work.region.n, thresholds)


from .streaks import _streak_rejection, streak_segments, streaks  # noqa: E402, F401  (re-exported)
