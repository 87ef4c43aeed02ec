"""Where the Sun is on a frame, from its header, and the registry's valid region as a pixel mask."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from astropy.io import fits

from ..registry import ValidRegion

__all__ = ["DiskGeometry", "disk_geometry", "valid_region_mask"]

#: Nominal apparent solar radius (arcsec) when a header gives none (sunpy's default at 1 AU).
_RSUN_ARCSEC_1AU = 959.63
#: Header keywords the geometry depends on (the cache key).
_GEOMETRY_KEYS = (
    "NAXIS1", "NAXIS2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CUNIT1", "CUNIT2",
    "CTYPE1", "CTYPE2", "CROTA1", "CROTA2", "CROTA", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RSUN_OBS", "RSUN_ARC",
    "RSUN", "SOLAR_R", "WAVELNTH", "DSUN_OBS", "RSUN_REF", "DATE-OBS", "DATE_OBS", "TIME-OBS", "T_OBS", "TELESCOP",
    "INSTRUME", "DETECTOR", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class DiskGeometry:
    """Disk centre (0-based pixel coordinates, x = column) and solar radius in pixels; ``source``: how found."""

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


_CACHE: dict[tuple, DiskGeometry] = {}


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


def disk_geometry(header, shape: tuple[int, int] | None = None) -> DiskGeometry:
    """Disk centre and radius in pixels from header geometry (sunpy; falls back to CRPIX/CDELT/RSUN_OBS)."""
    items = {key: header[key] for key in _GEOMETRY_KEYS if key in header and header[key] is not None}
    if shape is not None:
        items["NAXIS2"], items["NAXIS1"] = int(shape[0]), int(shape[1])
    key = tuple((k, v) for k, v in items.items() if isinstance(v, str | int | float | bool))
    if key not in _CACHE:
        full = fits.Header(header).copy() if not isinstance(header, fits.Header) else header.copy()
        full["NAXIS2"], full["NAXIS1"] = items.get("NAXIS2", 0), items.get("NAXIS1", 0)
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = _sunpy_geometry(full)
    return _CACHE[key]


def radius_map(geometry: DiskGeometry, shape: tuple[int, int]) -> np.ndarray:
    """Distance of every pixel centre from the disk centre, in solar radii."""
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    return np.hypot(x - geometry.cx, y - geometry.cy) / geometry.rsun_px  # float32, as the archive computes it


def valid_region_mask(header, shape: tuple[int, int], region: ValidRegion) -> np.ndarray:
    """Pixels whose centres lie in ``region`` (solar radii from the disk centre, bounds included)."""
    r = radius_map(disk_geometry(header, shape), shape)
    return (r >= region.inner) & (r <= region.outer)
