"""What the checks of one frame share (:class:`FrameWork`), and the small array helpers they use."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np

from .geometry import RegionMasks

__all__ = ["CV_INTS", "FrameWork", "median_sorted", "nonzero", "percentile_sorted", "row_bands"]


def median_sorted(values: np.ndarray) -> float:
    """np.median of an already sorted 1-D array."""
    n = values.size
    mid = n // 2
    return float(values[mid]) if n % 2 else 0.5 * (float(values[mid - 1]) + float(values[mid]))


def percentile_sorted(values: np.ndarray, q: float) -> float:
    """np.percentile (linear) of an already sorted 1-D array."""
    index = q / 100.0 * (values.size - 1)
    k = math.floor(index)
    a, b = float(values[k]), float(values[min(k + 1, values.size - 1)])
    return a + (b - a) * (index - k)


#: pixels per band of :func:`row_bands`: 256 kB of float32, well inside a core's L2 cache
BAND_PIXELS = 65536


def row_bands(height: int, width: int) -> list[slice]:
    """Consecutive row slices covering ``height`` rows of about :data:`BAND_PIXELS` pixels each (at least one).

    Per-pixel steps run band by band keep their intermediate images in the core's cache instead of streaming
    whole-frame temporaries through memory (on a busy shared host, most of their cost); the result is the same.
    """
    count = max(1, -(-height * width // BAND_PIXELS))
    count = min(count, max(1, height // 8))  # bands of at least 8 rows (OpenCV takes tiny arrays for scalars)
    edges = np.linspace(0, height, count + 1).astype(int).tolist()
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def nonzero(u8: np.ndarray) -> np.ndarray:
    """Flat indices of the non-zero pixels of a uint8 image (viewed as bool: numpy's fast path)."""
    return np.flatnonzero(u8.view(bool))


def _bad_pixels(data: np.ndarray, blank=None) -> np.ndarray:
    bad = data == 0
    if data.dtype.kind == "f":
        bad |= np.isnan(data)
    if blank is not None:
        bad |= data == blank
    return bad


def _all_finite(values: np.ndarray) -> bool:
    """No NaN and no infinity: ``cv2.checkRange``'s answer, a third of its time on a 1024² float32 frame."""
    return bool(np.isfinite(values).all())


#: integer types OpenCV takes directly (3x3 median exact and ~2.5x faster than on float32; compare, subtract)
CV_INTS = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16))


class FrameWork:
    """What the checks of one frame share, each computed on first use.

    Parameters
    ----------
    data : numpy.ndarray
        The 2-D image as read (any byte order; NaN allowed).
    mask : numpy.ndarray or RegionMasks
        The valid region.
    blank : int, optional
        BLANK value of integer data.
    saturation : float, optional
        Level at and above which a pixel is saturated (:func:`heliocube.qc.frame_region.saturation_level`);
        None when unknown (no bloom search).
    """

    def __init__(self, data: np.ndarray, mask, blank=None, saturation: float | None = None):
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
        self.data, self.blank, self.saturation = data, blank, saturation
        self.region = mask if isinstance(mask, RegionMasks) else RegionMasks.from_mask(mask)
        self._img = self._bad = self._bad_in_mask = self._range = self._sorted_sample = None

    @classmethod
    def of(cls, data, mask, blank=None, saturation: float | None = None) -> FrameWork:
        return data if isinstance(data, FrameWork) else cls(data, mask, blank, saturation)

    @property
    def img(self) -> np.ndarray:
        """float32 image with NaN, infinities and BLANK at 0 (how the detectors see holes)."""
        if self._img is None:
            data = self.data
            if data.dtype != np.float32:
                img = data.astype(np.float32)
                if self.blank is not None and data.dtype.kind in "iu":
                    np.putmask(img, data == self.blank, 0)
            else:  # the checks never write into it: no copy unless NaN or infinities must become 0
                img = data if _all_finite(data) else data.copy()
            # (a float32 copy is one of a frame with NaN or infinities: no second test)
            if data.dtype.kind == "f" and img is not data and (data.dtype == np.float32 or not _all_finite(img)):
                cv2.patchNaNs(img, 0)  # in place, ~10x numpy's isfinite + mask (level-1 LASCO: BLANK -> NaN)
                if not _all_finite(img):  # infinities too
                    img[~np.isfinite(img)] = 0
            self._img = img
        return self._img

    @property
    def region_range(self) -> tuple[float, float]:
        """Lowest and highest value of :attr:`img` over the valid region (0, 0 when it is empty)."""
        if self._range is None:
            self._range = (0.0, 0.0) if self.region.n == 0 else tuple(cv2.minMaxLoc(self.img, self.region.u8)[:2])
        return self._range

    @property
    def sorted_sample(self) -> np.ndarray:
        """:attr:`img` on the region's statistics sub-grid (``region.sample``), sorted: the fill search and the log
        image's percentiles share one gather and one sort."""
        if self._sorted_sample is None:
            self._sorted_sample = np.sort(self.img.ravel()[self.region.sample])  # numpy's SIMD sort
        return self._sorted_sample

    def bad(self, with_blank: bool = True) -> np.ndarray:
        """NaN, 0 (and BLANK) pixels of the whole frame."""
        if not with_blank or self.blank is None:
            if self._bad is None:
                self._bad = _bad_pixels(self.data)
            return self._bad
        return _bad_pixels(self.data, self.blank)

    def _bad_in_bands(self, with_blank: bool):
        """Per band of rows of the region's box (:func:`row_bands`): the band, and the mask of its valid-region
        pixels that are NaN or 0 (or BLANK). OpenCV on the box, a fifth of numpy's time on a full frame, band by
        band so that the masks stay in the cache. For :data:`CV_INTS` and float32 frames."""
        box = self.region.box
        data, inside = self.data[box], self.region.u8[box]
        blank = (with_blank and data.dtype.kind != "f" and self.blank is not None
                 and np.iinfo(data.dtype).min <= self.blank <= np.iinfo(data.dtype).max)  # fmt: skip
        for band in row_bands(*data.shape):
            part = data[band]
            bad = cv2.compare(part, 0, cv2.CMP_EQ)
            if data.dtype.kind == "f":  # NaN: outside every range (compare(x, x, NE) misses it with SIMD)
                cv2.bitwise_or(bad, cv2.bitwise_not(cv2.inRange(part, -np.inf, np.inf)), dst=bad)
            elif blank:
                cv2.bitwise_or(bad, cv2.compare(part, float(self.blank), cv2.CMP_EQ), dst=bad)
            yield band, cv2.bitwise_and(bad, inside[band], dst=bad)

    def holes_in_mask(self) -> np.ndarray:
        """Flat indices (sorted) of the valid-region pixels that are NaN or 0: :meth:`bad` without BLANK, inside
        the region (a few tens on a real frame, where the whole frame's are ~100k: the corners outside)."""
        region, data = self.region, self.data
        if region.n == 0:
            return np.zeros(0, dtype=np.intp)
        if data.dtype not in CV_INTS and data.dtype != np.float32:
            return np.flatnonzero(self.bad(with_blank=False) & region.mask)
        rows, cols = region.box
        width = data[rows, cols].shape[1]
        found = [idx + band.start * width for band, bad in self._bad_in_bands(with_blank=False)
                 if (idx := nonzero(bad)).size]
        if not found:
            return np.zeros(0, dtype=np.intp)
        box_rows, box_cols = np.divmod(np.concatenate(found), width)
        return (box_rows + rows.start) * region.shape[1] + (box_cols + cols.start)

    def bad_in_mask(self) -> int:
        """Number of valid-region pixels that are NaN, 0 or BLANK."""
        if self._bad_in_mask is None:
            if self.region.n == 0:
                self._bad_in_mask = 0
            elif self.data.dtype in CV_INTS or self.data.dtype == np.float32:
                self._bad_in_mask = sum(cv2.countNonZero(bad) for _, bad in self._bad_in_bands(with_blank=True))
            else:
                bad = self.bad(with_blank=True)
                self._bad_in_mask = int(np.count_nonzero(bad & self.region.mask))
        return self._bad_in_mask
