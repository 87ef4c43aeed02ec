"""Where the Sun is on a frame, from its header, and the registry's valid region as a pixel mask.

Both are needed for every downloaded file, so both are cached and computed without per-frame sunpy calls:

* :func:`disk_geometry` asks sunpy once per *header layout* (instrument, coordinate types and units, which geometry
  keywords are present: :mod:`.layouts`) and checks that the closed-form WCS (:mod:`.closed_form`) gives the same
  centre and radius; later frames of that layout use the closed form (~0.1 ms instead of 20-100 ms for a sunpy
  map). A layout the closed form does not reproduce keeps using sunpy. The fetch jobs keep the verdicts in a
  store under the output root (:class:`.layouts.LayoutStore`), so that only the first job to meet a layout imports
  sunpy (~1.6-1.9 s CPU).
* :func:`region_masks` computes the valid-region mask once per (geometry, shape, region), row by row from the
  circle boundaries instead of a full radius map, with the same float32 arithmetic as :func:`radius_map` so that
  the result is identical pixel for pixel.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import warnings

import cv2
import numpy as np
from astropy.io import fits

from ..registry import ValidRegion
from .closed_form import matching_rule, wcs_disk
from .layouts import UNKNOWN, LayoutStore, card_images, header_layout, remember, verdict

__all__ = ["DiskGeometry", "RegionMasks", "disk_geometry", "radius_map", "region_masks", "valid_region_mask"]

#: Nominal apparent solar radius (arcsec) when a header gives none (sunpy's default at 1 AU).
_RSUN_ARCSEC_1AU = 959.63


@dataclasses.dataclass(frozen=True)
class DiskGeometry:
    """Disk centre (0-based pixel coordinates, x = column) and solar radius in pixels; ``source``: how found.

    ``source`` is ``sunpy`` (a sunpy map), ``wcs`` (the closed form, checked against sunpy for this header layout)
    or ``header`` (plain CRPIX/CDELT/RSUN keywords when the WCS is malformed).
    """

    cx: float
    cy: float
    rsun_px: float
    source: str


def _fallback(header) -> DiskGeometry:
    cx = float(header.get("CRPIX1", (header.get("NAXIS1", 0) + 1) / 2)) - 1.0
    cy = float(header.get("CRPIX2", (header.get("NAXIS2", 0) + 1) / 2)) - 1.0
    rsun = header.get("RSUN_OBS") or header.get("RSUN_ARC") or header.get("RSUN") or _RSUN_ARCSEC_1AU
    scale = abs(float(header.get("CDELT1", 1.0)))
    if str(header.get("CUNIT1", "arcsec")).strip().lower() in ("deg", "degree", "degrees"):
        scale *= 3600.0
    return DiskGeometry(cx, cy, float(rsun) / scale, "header")


def _sunpy_geometry(header: fits.Header) -> DiskGeometry:
    try:
        import astropy.units as u
        import sunpy.map
        from astropy.coordinates import SkyCoord
        from sunpy import log

        level = log.level
        log.setLevel("WARNING")  # "assuming the standard radius" is expected for LASCO headers
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
                smap = sunpy.map.Map(np.zeros(shape, dtype=np.float32), header)
                origin = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame)
                x, y = smap.wcs.world_to_pixel(origin)
                rpx = smap.rsun_obs.to_value(u.arcsec) / smap.scale[0].to_value(u.arcsec / u.pix)
        finally:
            log.setLevel(level)
        if not all(np.isfinite([x, y, rpx])) or rpx <= 0:
            raise ValueError("non-finite geometry")
        return DiskGeometry(float(x), float(y), float(rpx), "sunpy")
    except Exception:  # malformed WCS: the plain header keywords
        return _fallback(header)


_CACHE: collections.OrderedDict[tuple, DiskGeometry] = collections.OrderedDict()
_LOCK = threading.Lock()
_TIME_KEYS = frozenset(("DATE-OBS", "DATE_OBS", "TIME-OBS", "T_OBS"))
_OBSERVER_KEYS = frozenset(("DSUN_OBS", "RSUN_REF", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS"))
#: keywords a radius rule does not read: left out of the cache key so that a new frame of the same pointing (only
#: the time and the observer's position changed) is a cache hit
_IGNORED_BY_RULE = {
    **{rule: _TIME_KEYS | _OBSERVER_KEYS for rule in ("RSUN_OBS", "SOLAR_R*CDELT1", "SOLAR_R", "RSUN_ARC", "RSUN")},
    "dsun_obs": _TIME_KEYS | (_OBSERVER_KEYS - {"DSUN_OBS", "RSUN_REF"}),
}


def disk_geometry(header, shape: tuple[int, int] | None = None, layouts: LayoutStore | None = None) -> DiskGeometry:
    """Disk centre and radius in pixels from header geometry (sunpy; falls back to CRPIX/CDELT/RSUN_OBS).

    The first header of each layout goes through sunpy; when the closed-form WCS (:mod:`.closed_form`) reproduces
    sunpy's answer for it (to 1e-6 px), that header and every later one of the layout get the closed form's numbers
    (``source='wcs'``), so a frame's geometry does not depend on which header of its layout came first. With a
    ``layouts`` store, a layout checked by an earlier process of the same installation is not checked again: its
    headers use the closed form from the first (:mod:`.layouts`). Results are cached on the geometry keywords the
    layout's radius rule reads (a new observation time alone is a hit).
    """
    images = card_images(header)
    layout = header_layout(images)
    rule = verdict(layout, layouts)
    ignored = _IGNORED_BY_RULE.get(rule, frozenset()) if isinstance(rule, str) else frozenset()
    naxis = tuple(shape) if shape is not None else (images.get("NAXIS2"), images.get("NAXIS1"))
    key = (naxis, layout[0], tuple((k, images[k]) for k in layout[1] if k not in ignored))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    disk = wcs_disk(header, rule) if isinstance(rule, str) else None
    if disk is not None:
        geo = DiskGeometry(*disk, "wcs")
    else:
        full = fits.Header(header).copy() if not isinstance(header, fits.Header) else header.copy()
        if shape is not None:
            full["NAXIS2"], full["NAXIS1"] = int(shape[0]), int(shape[1])
        geo = _sunpy_geometry(full)
        if rule is UNKNOWN:
            found = matching_rule(header, geo.cx, geo.cy, geo.rsun_px) if geo.source == "sunpy" else None
            remember(layout, found, layouts)
            if found is not None and (disk := wcs_disk(header, found)) is not None:
                # the checked header gets the closed form's numbers too, as every later one of its layout: a
                # frame's geometry then does not depend on whether this process or an earlier job checked it
                geo = DiskGeometry(*disk, "wcs")
    with _LOCK:
        _CACHE[key] = geo
        while len(_CACHE) > 1024:
            _CACHE.popitem(last=False)
    return geo


# ---------------------------------------------------------------------------------------------- masks
def radius_map(geometry: DiskGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Distance of every pixel centre from the disk centre, in solar radii."""
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    return np.hypot(x - geometry.cx, y - geometry.cy) / geometry.rsun_px  # float32, as the archive computes it


_WINDOW = np.arange(-3, 4)


def _row_intervals(geometry: DiskGeometry, shape, bound: float, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the inclusive column range whose :func:`radius_map` value is <= ``bound`` (< when ``strict``).

    Along a row the float32 radius only grows with the distance from the centre column, so the range is one
    interval: its ends are located in float64 and settled by evaluating the float32 radius on 7 columns around
    each (whole rows are evaluated where that window does not bracket the end). Empty rows give lo > hi.
    """
    ny, nx = shape
    cx, rs, b = np.float32(geometry.cx), np.float32(geometry.rsun_px), np.float32(bound)
    dy = np.arange(ny, dtype=np.float32) - np.float32(geometry.cy)

    def inside(cols: np.ndarray, rows_dy: np.ndarray) -> np.ndarray:
        r = np.hypot(cols.astype(np.float32) - cx, rows_dy[:, None]) / rs
        return r < b if strict else r <= b

    half = np.sqrt(np.maximum((float(b) * float(rs)) ** 2 - dy.astype(np.float64) ** 2, 0.0))
    right = np.floor(float(cx) + half).astype(np.int64)[:, None] + _WINDOW
    left = np.ceil(float(cx) - half).astype(np.int64)[:, None] + _WINDOW
    in_right, in_left = inside(right, dy), inside(left, dy)
    hi = np.where(in_right.any(axis=1), np.max(np.where(in_right, right, np.iinfo(np.int64).min), axis=1), -1)
    lo = np.where(in_left.any(axis=1), np.min(np.where(in_left, left, np.iinfo(np.int64).max), axis=1), 0)
    empty = ~in_right.any(axis=1) & ~in_left.any(axis=1)
    # the window must see the transition: inside at its inner end and outside at its outer end (or be empty far
    # from the circle); anything else is settled on the whole row
    unsure = (in_right[:, -1] | in_left[:, 0]) | (empty & (half > 2.0)) | (in_right.any(axis=1) != in_left.any(axis=1))
    for row in np.flatnonzero(unsure):
        cols = np.flatnonzero(inside(np.arange(nx), dy[row : row + 1])[0])
        lo[row], hi[row] = (cols[0], cols[-1]) if cols.size else (0, -1)
    lo[empty & ~unsure], hi[empty & ~unsure] = 0, -1
    return np.maximum(lo, 0), np.minimum(hi, nx - 1)


def _region_mask(geometry: DiskGeometry, shape, region: ValidRegion) -> np.ndarray:
    """``(r >= inner) & (r <= outer)`` of :func:`radius_map`, pixel for pixel, without the full radius map."""
    mask = np.zeros(shape, dtype=bool)
    lo, hi = _row_intervals(geometry, shape, region.outer, strict=False)
    for row in np.flatnonzero(hi >= lo):
        mask[row, lo[row] : hi[row] + 1] = True
    if region.inner > 0:
        ilo, ihi = _row_intervals(geometry, shape, region.inner, strict=True)
        for row in np.flatnonzero(ihi >= ilo):
            mask[row, ilo[row] : ihi[row] + 1] = False
    return mask


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class RegionMasks:
    """The valid region of one (geometry, shape, region) and what the checks derive from it, computed once.

    Attributes
    ----------
    mask : numpy.ndarray
        Read-only boolean mask of the valid region.
    n : int
        Number of valid pixels.
    """

    #: statistics (noise level, percentiles) are taken on a regular sub-grid of at most about this many pixels
    SAMPLE_SIZE = 65536

    def __init__(self, geometry: DiskGeometry, shape: tuple[int, int], region: ValidRegion):
        self.geometry, self.shape, self.region = geometry, tuple(shape), region
        self.mask = _readonly(_region_mask(geometry, self.shape, region))
        self.n = int(np.count_nonzero(self.mask))
        self._u8 = self._u8_inverse = self._sample = self._box = self._sample_in_box = None
        self._keep: dict[int, np.ndarray] = {}

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> RegionMasks:
        """Wrap a caller's mask (no geometry; nothing cached beyond this object)."""
        self = cls.__new__(cls)
        self.geometry, self.shape, self.region = None, tuple(mask.shape), None
        self.mask = np.asarray(mask, dtype=bool)
        self.n = int(np.count_nonzero(self.mask))
        self._u8 = self._u8_inverse = self._sample = self._box = self._sample_in_box = None
        self._keep = {}
        return self

    @property
    def u8(self) -> np.ndarray:
        """The mask as uint8 0/255 (for OpenCV)."""
        if self._u8 is None:
            self._u8 = _readonly(self.mask.view(np.uint8) * np.uint8(255))
        return self._u8

    @property
    def u8_inverse(self) -> np.ndarray:
        """255 outside the region, 0 inside."""
        if self._u8_inverse is None:
            self._u8_inverse = _readonly(cv2.bitwise_not(self.u8))
        return self._u8_inverse

    @property
    def sample(self) -> np.ndarray:
        """Flat indices of the valid pixels on a regular sub-grid (every pixel while n <= SAMPLE_SIZE).

        Robust statistics of a frame (noise sigma, percentiles) are estimated on these pixels: a regular 1-in-s²
        sub-grid estimates a median or a 0.5 % percentile to well under 1 %, while every pixel is still tested.
        """
        if self._sample is None:
            step = max(1, math.ceil(math.sqrt(self.n / self.SAMPLE_SIZE)))
            sub = self.mask[::step, ::step]
            flat = np.flatnonzero(sub)
            rows, cols = np.divmod(flat, sub.shape[1])
            self._sample = _readonly((rows * step) * self.shape[1] + cols * step)
        return self._sample

    @property
    def box(self) -> tuple[slice, slice]:
        """Row and column slices of the region's bounding box, one pixel wider on each side (inside the frame).

        Checks that only look at valid pixels and 3x3 neighbourhoods run on this view (a disk fills ~60 % of an
        AIA or EIT frame); the extra pixel keeps their border handling that of the whole frame.
        """
        if self._box is None:
            rows, cols = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
            if rows.size == 0:
                self._box = (slice(0, 0), slice(0, 0))
            else:
                h, w = self.shape
                self._box = (
                    slice(max(rows[0] - 1, 0), min(rows[-1] + 2, h)),
                    slice(max(cols[0] - 1, 0), min(cols[-1] + 2, w)),
                )
        return self._box

    @property
    def sample_in_box(self) -> np.ndarray:
        """:attr:`sample` as flat indices into an array of the :attr:`box`'s shape."""
        if self._sample_in_box is None:
            rows, cols = np.divmod(self.sample, self.shape[1])
            box_rows, box_cols = self.box
            width = box_cols.stop - box_cols.start
            self._sample_in_box = _readonly((rows - box_rows.start) * width + (cols - box_cols.start))
        return self._sample_in_box

    def keep(self, margin: int) -> np.ndarray:
        """uint8 0/255: valid pixels farther than ``margin`` px from the region's edges and the frame border."""
        if margin not in self._keep:
            keep = self.u8.copy()
            if margin > 0:
                keep[:margin, :] = keep[-margin:, :] = keep[:, :margin] = keep[:, -margin:] = 0
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
                keep = cv2.erode(keep, kernel)
            self._keep[margin] = _readonly(keep)
        return self._keep[margin]


_REGIONS: collections.OrderedDict[tuple, RegionMasks] = collections.OrderedDict()


def region_masks(
    header, shape: tuple[int, int], region: ValidRegion, layouts: LayoutStore | None = None
) -> RegionMasks:
    """The cached :class:`RegionMasks` of a frame (keyed by geometry, shape and region; 16 kept); ``layouts``: as
    for :func:`disk_geometry`."""
    geometry = disk_geometry(header, shape, layouts)
    key = (geometry.cx, geometry.cy, geometry.rsun_px, tuple(shape), region.shape, region.inner, region.outer)
    with _LOCK:
        if key in _REGIONS:
            _REGIONS.move_to_end(key)
            return _REGIONS[key]
    masks = RegionMasks(geometry, shape, region)
    with _LOCK:
        _REGIONS[key] = masks
        while len(_REGIONS) > 16:
            _REGIONS.popitem(last=False)
    return masks


def valid_region_mask(header, shape: tuple[int, int], region: ValidRegion) -> np.ndarray:
    """Pixels whose centres lie in ``region`` (solar radii from the disk centre, bounds included); read-only."""
    return region_masks(header, shape, region).mask
