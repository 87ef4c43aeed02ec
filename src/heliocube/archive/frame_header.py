"""The synthetic mission's served headers and the disk geometry they describe.

A product's header is a real sunpy template (:mod:`.templates`) put on its own grid, completed with the cards of
the real series and rescaled to the mission's ``frame_size`` (:func:`heliocube.header.rescale_header`); a record's
header adds its times, exposure and defect keywords. The disk centre and radius of a served frame are read back
from that header through sunpy, so the pixels are drawn where the header says the Sun is.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from astropy.io import fits

from ..header import SCALE_KEYWORD, rescale_header
from ..registry import Product
from .templates import level_value, load_template_header

__all__ = ["Geometry", "HeaderMixin"]


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the Sun is on a served frame: 0-based pixel centre, radius in pixels, valid region in solar radii."""

    cx: float
    cy: float
    rsun_px: float
    shape: str
    inner: float
    outer: float
    size: int


def _template_on_own_grid(header: fits.Header, native_keys, binning: float) -> None:
    """Map the keys a resampled template kept from its full-size image onto the template's own grid (in place).

    sunpy's test files are binned copies of real frames, and some of their geometry keys still describe the
    full-size image: the EIT files (128 px from 1024) keep the native plate scale CDELT and radius SOLAR_R, the AIA
    171 file (128 px from 4096) and the MDI header (64 px from 1024) the native R_SUN and disk centre. Served as they
    are, those keys put the Sun 8-32x too large on the frame. ``native_keys`` (simulation table,
    ``template_native_keys``) names them; ``binning`` is native pixels per template pixel (centre convention).
    """
    keys = [key for key in native_keys if isinstance(header.get(key), (int, float))]
    if not keys or binning == 1:
        return
    native = fits.Header([(key, header[key]) for key in keys])
    rescale_header(native, binning, convention="center", copy=False)
    for key in keys:
        header[key] = native[key]
    header.add_history(f"heliocube embedded archive: template {', '.join(keys)} mapped from its full-size image "
                       f"(binned {binning:g}x) onto its own grid")


def _check_template_geometry(header: fits.Header, template: str, disk_imager: bool) -> None:
    """Refuse a template whose plate scale, pixel radius and angular radius disagree (ValueError naming it).

    The pixel radius (R_SUN or SOLAR_R) times the plate scale must be the angular radius RSUN_OBS (1 %), and a
    full-disk imager's disk must lie inside its frame: a key left on the full-size grid breaks one of the two.
    """
    radius_key = next((key for key in ("R_SUN", "SOLAR_R") if isinstance(header.get(key), (int, float))), None)
    if radius_key is None or not isinstance(header.get("CDELT1"), (int, float)):
        return
    radius_px, scale = float(header[radius_key]), abs(float(header["CDELT1"]))
    rsun_obs = header.get("RSUN_OBS")
    if isinstance(rsun_obs, (int, float)) and abs(radius_px * scale / rsun_obs - 1) > 0.01:
        raise ValueError(f"template {template}: {radius_key} {radius_px:g} px x CDELT1 {scale:g} arcsec/px is not "
                         f"RSUN_OBS {rsun_obs:g} arcsec; declare its full-size keys in template_native_keys")
    if disk_imager and not 2 * radius_px < 1.2 * float(header["NAXIS1"]):
        raise ValueError(f"template {template}: a {radius_key} of {radius_px:g} px does not fit its "
                         f"{header['NAXIS1']} px frame; declare its full-size keys in template_native_keys")


def _set_cards(header: fits.Header, cards: dict, level: str) -> None:
    """Set the cards of the real series that a template (another observable, level or series) lacks or has wrong;
    a value may be given per level, and None removes the card."""
    for key, value in cards.items():
        value = level_value(value, level)
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value


class HeaderMixin:
    """Headers and geometry of :class:`heliocube.archive.mission.SyntheticMission`.

    Uses the mission's ``frame_size``, ``params``, ``product``, ``_level``, ``_memoize`` and ``_placement``.
    """

    def base_header(self, name: str, level: str | None = None) -> fits.Header:
        """The served header of a product before per-record keywords: real template rescaled to frame_size."""
        product = self.product(name)
        level = self._level(product, level)
        return self._memoize(("header", name, level), lambda: self._build_base_header(product, level)).copy()

    def _build_base_header(self, product: Product, level: str) -> fits.Header:
        prm = self.params[product.name]
        header = load_template_header(prm["header"])
        if prm.get("header_extra"):
            extra = load_template_header(prm["header_extra"])
            for key in prm.get("copy_keys", []):
                if key in extra:
                    header[key] = extra[key]
        _template_on_own_grid(header, prm.get("template_native_keys", ()), product.native_size / header["NAXIS1"])
        _set_cards(header, prm.get("header_cards", {}), level)
        _check_template_geometry(header, prm["header"], product.valid_region.shape == "disk")
        factor = header["NAXIS1"] / self.frame_size
        header = rescale_header(
            header,
            factor,
            convention="center",
            naxis=(self.frame_size, self.frame_size),
            history=f"heliocube embedded archive: template {prm['header']} resampled to {self.frame_size} px",
        )
        # the sunpy templates are themselves resampled copies: record the scale relative to the native size
        header[SCALE_KEYWORD] = (product.native_size / self.frame_size, "native pixels per served pixel")
        if product.wavelength is not None:
            header["WAVELNTH"] = int(product.wavelength)
        if product.detector is not None:
            header["DETECTOR"] = product.detector
        if "RSUN_OBS" not in header:
            header["RSUN_OBS"] = (round(self._sunpy_geometry(header)[2], 4), "[arcsec] apparent solar radius")
        if prm.get("level_keyword"):
            header[prm["level_keyword"]] = level
        if prm.get("block_native"):
            header["HIERARCH N_MISSING_BLOCKS"] = (0, "missing 32x32 telemetry blocks")
        if product.quality_keyword:
            header[product.quality_keyword] = 0
        return header

    @staticmethod
    def _sunpy_geometry(header: fits.Header) -> tuple[float, float, float]:
        import astropy.units as u
        import sunpy.map
        from astropy.coordinates import SkyCoord

        size = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        hdr = header.copy()
        from sunpy import log

        level = log.level
        log.setLevel("WARNING")  # "assuming the standard radius" is expected for LASCO templates
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            smap = sunpy.map.Map(np.zeros(size, dtype=np.float32), hdr)
            x, y = smap.wcs.world_to_pixel(SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=smap.coordinate_frame))
            rsun = smap.rsun_obs.to_value(u.arcsec)
            scale = smap.scale[0].to_value(u.arcsec / u.pix)
        log.setLevel(level)
        return float(x), float(y), float(rsun), float(rsun / scale)

    def geometry(self, name: str, level: str | None = None) -> Geometry:
        """Disk centre (0-based pixels), radius (pixels, via sunpy from the served header) and valid region."""
        product = self.product(name)
        level = self._level(product, level)

        def build():
            cx, cy, _, rpx = self._sunpy_geometry(self.base_header(name, level))
            region = product.valid_region
            return Geometry(cx, cy, rpx, region.shape, region.inner, region.outer, self.frame_size)

        return self._memoize(("geometry", name, level), build)

    def radius_map(self, name: str, level: str | None = None) -> np.ndarray:
        """Distance of every pixel centre from the disk centre, in solar radii (read-only)."""
        geo = self.geometry(name, level)

        def build():
            y, x = np.mgrid[0 : geo.size, 0 : geo.size].astype(np.float32)
            r = np.hypot(x - geo.cx, y - geo.cy) / geo.rsun_px
            r.setflags(write=False)
            return r

        return self._memoize(("radius", name, geo), build)

    def valid_mask(self, name: str, level: str | None = None) -> np.ndarray:
        """Pixels of the registry ``valid_region`` (solar radii from disk centre, pixel centres, bounds included)."""
        geo = self.geometry(name, level)

        def build():
            r = self.radius_map(name, level)
            mask = (r >= geo.inner) & (r <= geo.outer)
            mask.setflags(write=False)
            return mask

        return self._memoize(("valid", name, geo), build)

    def _record_header(self, name: str, level: str, row: dict) -> fits.Header:
        product, prm = self.product(name), self.params[name]
        header = self.base_header(name, level)
        utc = pd.Timestamp(row["time_utc"])
        iso = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"
        style = level_value(prm["time_style"], level)
        if style == "split":
            header["DATE-OBS"] = utc.strftime("%Y/%m/%d")
            header["TIME-OBS"] = utc.strftime("%H:%M:%S.") + f"{utc.microsecond // 1000:03d}"
        else:
            header["DATE-OBS"] = iso
            if header.get("TIME-OBS"):
                header["TIME-OBS"] = utc.strftime("%H:%M:%S")
        if "DATE_OBS" in header:
            header["DATE_OBS"] = iso + "Z"
        if style == "jsoc":
            header["T_REC"] = row["t_rec"]
            header["T_OBS"] = row["t_obs"]
        header["EXPTIME"] = float(row["exptime"])
        if product.quality_keyword:
            header[product.quality_keyword] = int(row["quality"])
        if prm.get("block_native"):
            header["HIERARCH N_MISSING_BLOCKS"] = int(row["missing_blocks"])
            for card in header.cards:
                if card.keyword == "COMMENT" and "N_MISSING_BLOCKS" in str(card.value):
                    idx = next(i for i, c in enumerate(header.cards) if c is card)
                    header[idx] = f"  N_MISSING_BLOCKS = {int(row['missing_blocks']):4d}"
                    break
        holes = round(row["hole_fraction"] * self._placement(name, level)["n_valid"])
        for key in ("MISSVALS", "NMISSING"):
            if key in header:
                header[key] = holes
        if "FILENAME" in header and not product.is_jsoc:
            header["FILENAME"] = row["record_id"].rsplit("/", 1)[-1]
        for key in ("NAXIS1", "NAXIS2"):
            del header[key]
        return header

    def _offdisk_radius(self, name: str, level: str) -> float:
        """Solar radii beyond which a magnetogram holds NaN: ``offdisk_nan_radius``, else the header's crop radius
        CROP_RAD (MDI: 504 of 489 native pixels), else the limb."""
        prm = self.params[name]
        if prm.get("offdisk_nan_radius") is not None:
            return float(prm["offdisk_nan_radius"])
        crop = self.base_header(name, level).get("CROP_RAD")
        return float(crop) / self.geometry(name, level).rsun_px if isinstance(crop, (int, float)) else 1.0

