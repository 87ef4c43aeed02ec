"""The deterministic synthetic mission the embedded archive serves.

Every registry product has records at its native cadence on any date. Nothing is tabulated: a record is a pure
function of (seed, product, grid index k), so listing a day of AIA (7200 records per channel) or fifteen years of it
costs arithmetic only. Frames are rendered on demand from real sunpy headers and images, rescaled to the mission's
``frame_size`` with :func:`heliocube.header.rescale_header`, with each record's defects injected.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import warnings
import zlib

import numpy as np
import pandas as pd
from astropy.io import fits

from ..header import SCALE_KEYWORD, rescale_header
from ..registry import Product, load_registry
from .templates import level_value, load_template_header, load_template_image, sim_params
from .timefmt import (
    ANCHOR_MS,
    format_iso,
    format_iso_z,
    format_tai,
    parse_jsoc_time,
    tai_to_utc_ms,
    to_utc_ms,
    utc_to_tai_ms,
)

__all__ = ["DEFECT_KINDS", "QUALITY_BITS", "RECORD_COLUMNS", "Geometry", "SyntheticMission"]

#: Defect kinds whose per-record rates ``defect_rates`` may override.
DEFECT_KINDS = ("quality", "hole", "missing_blocks", "streak", "cosmic_rays", "corrupt", "truncated")
#: Columns of :meth:`SyntheticMission.records` and :meth:`SyntheticMission.ground_truth`.
RECORD_COLUMNS = (
    "product",
    "level",
    "record_id",
    "filename",
    "time_utc",
    "t_rec",
    "t_obs",
    "wavelength",
    "quality",
    "exptime",
    "size",
    "hole_fraction",
    "missing_blocks",
    "streak",
    "cosmic_rays",
    "nan_offdisk",
    "corrupt",
    "truncated",
    "grid_index",
)
#: QUALITY values a flagged JSOC record carries (one bit each, as JSOC's status summary).
QUALITY_BITS = (0x00000200, 0x00000400, 0x00001000, 0x00010000, 0x00020000, 0x40000000)

# hash streams, one per random quantity of a record
_S_TOBS, _S_GAP, _S_JIT, _S_EXP = 1, 2, 3, 4
_S_Q, _S_QV, _S_MB, _S_MBN, _S_HOLE, _S_HOLEF, _S_STREAK, _S_CR, _S_CRN, _S_CORRUPT, _S_TRUNC = range(10, 21)
_HOLE_FRACTION = (0.01, 0.05)


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


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


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


#: The cards of an as-is JSOC segment file: its structure and encoding (and the archive's resampling factor).
_SEGMENT_FILE_CARDS = frozenset({"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BSCALE", "BZERO",
                                 "BLANK", SCALE_KEYWORD})


class SyntheticMission:
    """A deterministic synthetic SoHO/SDO mission.

    Parameters
    ----------
    seed : int
        Everything (times, gaps, defects, noise) is a function of the seed.
    frame_size : int
        Edge of the served square frames (native: 1024 SoHO, 4096 SDO); headers are rescaled to match.
    defect_rates : dict, optional
        Overrides of the per-record defect rates: ``{kind: rate}`` for every product, or
        ``{product_name: {kind: rate}}``; kinds are :data:`DEFECT_KINDS`.
    cache_size : int
        Number of rendered files kept (LRU).
    """

    def __init__(self, seed: int = 0, frame_size: int = 256, defect_rates: dict | None = None, cache_size: int = 256):
        self.seed = int(seed)
        self.frame_size = int(frame_size)
        self.registry: dict[str, Product] = dict(load_registry())
        self.params = {name: sim_params(p) for name, p in self.registry.items()}
        for name, prm in self.params.items():
            rates = dict(prm["defects"])
            for key, value in (defect_rates or {}).items():
                if isinstance(value, dict):
                    if key == name:
                        rates.update(value)
                elif key in DEFECT_KINDS:
                    rates[key] = float(value)
                else:
                    if key not in self.registry:
                        raise ValueError(f"unknown defect kind or product {key!r}")
            prm["rates"] = rates
        self._pid = {name: zlib.crc32(name.encode()) for name in self.registry}
        self._cache: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.RLock()
        self._memo: dict[tuple, object] = {}
        self._series = self._index_jsoc_series()

    # ------------------------------------------------------------------ basics
    def product(self, name: str) -> Product:
        """Registry entry of ``name`` (KeyError naming the known products otherwise)."""
        if name not in self.registry:
            raise KeyError(f"unknown product {name!r}; known: {', '.join(self.registry)}")
        return self.registry[name]

    def _level(self, product: Product, level) -> str:
        level = product.level if level is None else str(level)
        if level not in product.series:
            raise KeyError(f"product {product.name} has no level {level!r}")
        return level

    def _memoize(self, key, build):
        with self._lock:
            if key not in self._memo:
                self._memo[key] = build()
            return self._memo[key]

    def _uniform(self, name: str, k: np.ndarray, stream: int) -> np.ndarray:
        """Uniform [0, 1) numbers keyed by (seed, product, grid index, stream)."""
        k = np.asarray(k, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            base = _mix(
                np.array([self.seed * 0x9E3779B97F4A7C15 % 2**64 ^ self._pid[name] << 20 ^ stream], dtype=np.uint64)
            )
            x = _mix(_mix(k + base))
        return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def _rng(self, name: str, k: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._pid[name], int(k) & 0xFFFFFFFFFFFF, stream])

    # ------------------------------------------------------------------ JSOC series index
    def _index_jsoc_series(self) -> dict:
        series: dict[str, dict] = {}
        for name, product in self.registry.items():
            if not product.is_jsoc:
                continue
            prm = self.params[name]
            for level, sname in product.series.items():
                entry = series.setdefault(
                    sname,
                    {
                        "name": sname,
                        "products": [],
                        "scale": prm["trec_scale"],
                        "cadence_ms": int(product.cadence.total_seconds() * 1000),
                        "primekeys": list(prm["primekeys"]),
                        "segment": product.segment,
                        "sums_file": prm["sums_file"],
                        "level": level,
                    },
                )
                entry["products"].append(name)
        return series

    @property
    def jsoc_series(self) -> dict:
        """JSOC series served: name -> {products, scale, cadence_ms, primekeys, segment, sums_file, level}."""
        return self._series

    def jsoc_product(self, series: str, wavelength: int | None) -> str | None:
        """Product name holding ``series`` records at ``wavelength`` (None when no product matches)."""
        entry = self._series.get(series)
        if entry is None:
            return None
        for name in entry["products"]:
            if (
                "WAVELNTH" not in entry["primekeys"]
                or wavelength is None
                or self.registry[name].wavelength == int(wavelength)
            ):
                return name
        return None

    # ------------------------------------------------------------------ headers and geometry
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

    def _placement(self, name: str, level: str) -> dict:
        """Cached facts for defect placement: valid pixel count, integral image, block cells, largest hole."""

        def build():
            mask = self.valid_mask(name, level)
            n = mask.shape[0]
            integral = np.zeros((n + 1, n + 1), dtype=np.int64)
            integral[1:, 1:] = mask.cumsum(0).cumsum(1)
            prm, product = self.params[name], self.product(name)

            def fits_side(side):
                total = integral[side:, side:] - integral[:-side, side:]
                total = total - integral[side:, :-side] + integral[:-side, :-side]
                return total == side * side

            lo, hi = 1, n
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits_side(mid).any():
                    lo = mid
                else:
                    hi = mid - 1
            block = 0
            cells = np.zeros((0, 2), dtype=int)
            if prm.get("block_native"):
                block = max(1, round(prm["block_native"] * self.frame_size / product.native_size))
                nb = n // block
                view = mask[: nb * block, : nb * block].reshape(nb, block, nb, block).all(axis=(1, 3))
                cells = np.argwhere(view) * block  # (row, col) of the top-left pixel
            return {
                "n_valid": int(mask.sum()),
                "max_side": int(lo),
                "fits_side": fits_side,
                "block": block,
                "cells": cells,
                "valid_index": np.flatnonzero(mask),
            }

        return self._memoize(("placement", name, level, self.frame_size), build)

    # ------------------------------------------------------------------ records
    def _rows(self, name: str, level: str, k) -> pd.DataFrame:
        """Records of grid indices ``k`` (gaps dropped), with every column of :data:`RECORD_COLUMNS`."""
        product, prm = self.product(name), self.params[name]
        k = np.atleast_1d(np.asarray(k, dtype=np.int64))
        cad_ms = int(product.cadence.total_seconds() * 1000)
        grid = ANCHOR_MS + k * cad_ms
        if product.is_jsoc:
            off = np.round((self._uniform(name, k, _S_TOBS) * 2 - 1) * prm["tobs_offset_s"] * 100).astype(np.int64)
            tobs = grid + off * 10
            utc = tai_to_utc_ms(tobs) if prm["trec_scale"] == "tai" else tobs
        else:
            keep = self._uniform(name, k, _S_GAP) >= prm["gap_rate"]
            k, grid = k[keep], grid[keep]
            jit = np.round((self._uniform(name, k, _S_JIT) * 2 - 1) * prm["jitter_s"] * 1000).astype(np.int64)
            utc = grid + int(prm["offset_s"] * 1000) + jit
            tobs = utc
        rates, place = prm["rates"], self._placement(name, level)
        u = functools.partial(self._uniform, name, k)
        quality = np.zeros(k.size, dtype=np.int64)
        if product.quality_keyword:
            flagged = u(_S_Q) < rates["quality"]
            quality = np.where(flagged, np.array(QUALITY_BITS)[(u(_S_QV) * len(QUALITY_BITS)).astype(int)], 0)
        blocks = np.zeros(k.size, dtype=np.int64)
        if place["block"]:
            blocks = np.where(u(_S_MB) < rates["missing_blocks"], 1 + (u(_S_MBN) * 6).astype(np.int64), 0)
            blocks = np.minimum(blocks, len(place["cells"]))
        hole = (u(_S_HOLE) < rates["hole"]) & (blocks == 0)
        frac = _HOLE_FRACTION[0] + u(_S_HOLEF) * (_HOLE_FRACTION[1] - _HOLE_FRACTION[0])
        side = np.clip(np.round(np.sqrt(frac * place["n_valid"])), 2, place["max_side"]).astype(np.int64)
        hole_px = np.where(hole, side * side, 0) + blocks * place["block"] ** 2
        streak = u(_S_STREAK) < rates["streak"]
        cosmic = np.where(u(_S_CR) < rates["cosmic_rays"], 20 + (u(_S_CRN) * 180).astype(np.int64), 0)
        corrupt = u(_S_CORRUPT) < rates["corrupt"]
        truncated = (u(_S_TRUNC) < rates["truncated"]) & ~corrupt
        exptime = np.round(prm["exptime"] * (1 + 0.02 * (2 * u(_S_EXP) - 1)), 4)
        full, broken = self.file_sizes(name, level)
        if product.is_jsoc:
            entry = self._series[product.series_for(level)]
            if entry["scale"] == "tai":
                t_rec, t_obs = format_tai(grid), format_tai(tobs, 2)
            else:
                t_rec, t_obs = format_iso_z(grid), format_iso_z(tobs, 2)
            suffix = f"[{product.wavelength}]" if "WAVELNTH" in entry["primekeys"] else ""
            record_id = [f"{entry['name']}[{t}]{suffix}" for t in t_rec]
            filename = [entry["sums_file"]] * k.size
        else:
            t_rec = [None] * k.size
            t_obs = format_iso(tobs, 3)
            record_id = self._sdac_paths(product, level, utc, k)
            filename = [path.rsplit("/", 1)[-1] for path in record_id]
        frame = pd.DataFrame(
            {
                "product": name,
                "level": level,
                "record_id": pd.Series(record_id, dtype=object),
                "filename": pd.Series(filename, dtype=object),
                "time_utc": pd.to_datetime(utc, unit="ms", utc=True),
                "t_rec": pd.Series(t_rec, dtype=object),
                "t_obs": pd.Series(t_obs, dtype=object),
                "wavelength": pd.array([product.wavelength] * k.size, dtype="Int64"),
                "quality": quality.astype(np.int64),
                "exptime": exptime,
                "size": np.where(corrupt, broken, full).astype(np.int64),
                "hole_fraction": hole_px / max(place["n_valid"], 1),
                "missing_blocks": blocks,
                "streak": streak,
                "cosmic_rays": cosmic,
                "nan_offdisk": prm["model"] == "magnetogram",
                "corrupt": corrupt,
                "truncated": truncated,
                "grid_index": k,
            }
        )
        frame.attrs["hole_side"] = dict(zip(k.tolist(), np.where(hole, side, 0).tolist(), strict=True))
        return frame

    def _sdac_paths(self, product: Product, level: str, utc: np.ndarray, k: np.ndarray) -> list[str]:
        prm = self.params[product.name]
        pattern = product.series_for(level)
        if prm.get("filename"):
            pattern = pattern + "/" + prm["filename"]
        prefix = int(prm.get("id_prefix", 0)) * 10**7
        out = []
        for t, kk in zip(pd.to_datetime(utc, unit="ms"), k, strict=True):
            out.append(
                pattern.format(
                    year=t.year,
                    month=t.month,
                    day=t.day,
                    hour=t.hour,
                    minute=t.minute,
                    second=t.second,
                    yymmdd=f"{t.year % 100:02d}{t.month:02d}{t.day:02d}",
                    file_id=prefix + int(kk) % 10**7,
                )
            )
        return out

    def _margin_ms(self, name: str) -> int:
        prm = self.params[name]
        return int((abs(prm["offset_s"]) + prm["jitter_s"] + prm["tobs_offset_s"] + 40) * 1000)

    def records(self, product: str, start, end, level: str | None = None) -> pd.DataFrame:
        """Every record of ``product`` observed in [start, end) (UTC; naive values are UTC).

        Returns
        -------
        pandas.DataFrame
            One row per record, sorted by time, columns :data:`RECORD_COLUMNS`: ``record_id`` (JSOC record spec
            ``series[T_REC][wavelength]`` or SDAC path below the SDAC base), ``filename``, ``time_utc`` (tz-aware
            observation time), ``t_rec`` and ``t_obs`` (JSOC spellings; SDAC: t_rec None, t_obs ISO), ``wavelength``,
            ``level``, ``quality``, ``exptime``, ``size`` (bytes served), ground-truth defects ``hole_fraction``,
            ``missing_blocks``, ``streak``, ``cosmic_rays``, ``nan_offdisk``, ``corrupt``, ``truncated``, and the
            grid index ``grid_index``.
        """
        prod = self.product(product)
        level = self._level(prod, level)
        s_ms, e_ms = to_utc_ms(start), to_utc_ms(end)
        cad_ms = int(prod.cadence.total_seconds() * 1000)
        margin = self._margin_ms(product)
        if prod.is_jsoc and self.params[product]["trec_scale"] == "tai":
            margin += 40_000
        k0 = (s_ms - margin - ANCHOR_MS) // cad_ms
        k1 = (e_ms + margin - ANCHOR_MS) // cad_ms + 1
        rows = self._rows(product, level, np.arange(k0, k1 + 1, dtype=np.int64))
        ms = rows["time_utc"].dt.tz_convert(None).to_numpy().astype("datetime64[ms]").astype(np.int64)
        keep = (ms >= s_ms) & (ms < e_ms)
        out = rows[keep].sort_values(["time_utc", "record_id"]).reset_index(drop=True)
        out.attrs = rows.attrs
        return out

    def ground_truth(self, product: str, start_day, finish_day, level: str | None = None) -> pd.DataFrame:
        """Records (with their defect columns) of the UTC days ``start_day`` .. ``finish_day``, both included."""
        start = pd.Timestamp(str(start_day)[:10], tz="UTC")
        end = pd.Timestamp(str(finish_day)[:10], tz="UTC") + pd.Timedelta(days=1)
        return self.records(product, start, end, level=level)

    def jsoc_rows(self, series: str, t0_ms: int, t1_ms: int, wavelengths=None) -> pd.DataFrame:
        """Records of a JSOC series with T_REC in [t0_ms, t1_ms] (series scale, inclusive), sorted like JSOC."""
        entry = self._series[series]
        cad = entry["cadence_ms"]
        k0 = -((ANCHOR_MS - t0_ms) // cad)
        k1 = (t1_ms - ANCHOR_MS) // cad
        if k1 < k0:
            return self._rows(entry["products"][0], entry["level"], np.array([], dtype=np.int64))
        if (k1 - k0 + 1) * len(entry["products"]) > 2_000_000:
            raise ValueError(f"record set too large ({k1 - k0 + 1} time slots); narrow it or use @step")
        names = [
            n
            for n in entry["products"]
            if wavelengths is None or self.registry[n].wavelength in {int(w) for w in wavelengths}
        ]
        frames = [self._rows(n, entry["level"], np.arange(k0, k1 + 1, dtype=np.int64)) for n in names]
        if not frames:
            return self._rows(entry["products"][0], entry["level"], np.array([], dtype=np.int64))
        rows = pd.concat(frames, ignore_index=True)
        return rows.sort_values(["grid_index", "wavelength"]).reset_index(drop=True)

    def trec_index(self, series: str, t_ms: int) -> float:
        """Grid index (possibly fractional) of a T_REC in the series' scale."""
        return (t_ms - ANCHOR_MS) / self._series[series]["cadence_ms"]

    # ------------------------------------------------------------------ record lookup
    def lookup(self, record_id: str, product: str | None = None, level: str | None = None) -> dict:
        """The record row (as a dict) of a JSOC record spec or an SDAC path; KeyError when it does not exist."""
        key = ("lookup", record_id, product, level)
        with self._lock:
            if key in self._memo:
                return self._memo[key]
        row = self._lookup(record_id, product, level)
        with self._lock:
            if len(self._memo) > 50_000:
                self._memo = {k: v for k, v in self._memo.items() if k[0] != "lookup"}
            self._memo[key] = row
        return row

    def _lookup(self, record_id: str, product: str | None, level: str | None) -> dict:
        import re

        match = re.match(r"^([\w.]+)\[([^\]]+)\](?:\[(\d+)\])?", record_id)
        if match and match.group(1) in self._series:
            series, trec, wav = match.groups()
            entry = self._series[series]
            name = self.jsoc_product(series, int(wav) if wav else None)
            if name is None or (product is not None and name != product):
                raise KeyError(record_id)
            k = self.trec_index(series, parse_jsoc_time(trec, entry["scale"]))
            if k != int(k):
                raise KeyError(record_id)
            rows = self._rows(name, entry["level"], np.array([int(k)]))
        else:
            from .sdac import locate

            rows = None
            for name, lvl, start, end in locate(self, record_id):
                if (product is not None and name != product) or (level is not None and lvl != str(level)):
                    continue
                candidates = self.records(name, start, end, level=lvl)
                candidates = candidates[candidates["record_id"] == record_id]
                if not candidates.empty:
                    rows = candidates
                    break
            if rows is None:
                raise KeyError(record_id)
        if rows.empty or rows.iloc[0]["record_id"] != record_id:
            raise KeyError(record_id)
        row = rows.iloc[0].to_dict()
        row["hole_side"] = rows.attrs["hole_side"].get(int(row["grid_index"]), 0)
        return row

    # ------------------------------------------------------------------ rendering
    def file_sizes(self, name: str, level: str | None = None) -> tuple[int, int]:
        """Bytes of a served file of ``name`` (all records have the same size) and of a corrupt one.

        For a JSOC product, the archive's own (as-is) segment file; a ``fits`` export's header is longer.
        """
        product = self.product(name)
        level = self._level(product, level)

        def build():
            row = {
                "grid_index": 0,
                "time_utc": pd.Timestamp("2000-01-01", tz="UTC"),
                "t_rec": "x",
                "t_obs": "x",
                "quality": 0,
                "exptime": 1.0,
                "missing_blocks": 0,
                "hole_fraction": 0.0,
                "hole_side": 0,
                "streak": False,
                "cosmic_rays": 0,
                "corrupt": False,
                "record_id": "x/x",
            }
            if product.is_jsoc:
                entry = self._series[product.series_for(level)]
                row["t_rec"] = format_tai([0])[0] if entry["scale"] == "tai" else format_iso_z([0])[0]
                row["t_obs"] = format_tai([0], 2)[0] if entry["scale"] == "tai" else format_iso_z([0], 2)[0]
            blob = self._encode(name, level, row, minimal_header=product.is_jsoc)  # JSOC: its as-is segment file
            return len(blob), len(self._break(blob))

        return self._memoize(("sizes", name, level), build)

    def render_fits(self, product: str, record_id: str, level: str | None = None, *,
                    minimal_header: bool = False) -> bytes:
        """The FITS bytes served for a record (deterministic; corrupt records give a broken file).

        ``minimal_header`` gives what JSOC's ``as-is`` export serves, the archive's own segment file: the FITS
        structure and nothing of the record (its keywords are in the record, see :mod:`.jsoc`), except
        ``HC_SCALE``, which tells a reader that the file was resampled from the native grid (a real JSOC file is
        native and has no such card).

        Raises
        ------
        KeyError
            When the record does not exist.
        """
        key = (product, level, record_id, minimal_header)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        row = self.lookup(record_id, product=product, level=level)
        blob = self._encode(row["product"], row["level"], row, minimal_header)
        if row["corrupt"]:
            blob = self._break(blob)
        with self._lock:
            self._cache[key] = blob
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return blob

    @staticmethod
    def _break(blob: bytes) -> bytes:
        """A corrupt file: the header intact, then only half of the data (so the data cannot be read)."""
        end = 0
        while end < len(blob):
            if blob[end : end + 8] == b"END     ":
                break
            end += 80
        header_len = -(-(end + 80) // 2880) * 2880
        return blob[: header_len + (len(blob) - header_len) // 2]

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

    def _base_image(self, name: str, level: str) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free image of a product at frame_size and its noise amplitude (both read-only)."""

        def build():
            prm, geo = self.params[name], self.geometry(name, level)
            r = self.radius_map(name, level)
            n = self.frame_size
            model = prm["model"]
            if model == "euv":
                from scipy import ndimage

                src = load_template_image(prm["image"])
                img = ndimage.zoom(src, n / src.shape[0], order=1, grid_mode=True, mode="nearest")[:n, :n]
                img = np.maximum(img * float(prm.get("image_gain", 1.0)), 0) + 2.0
                noise = 0.3 * np.sqrt(img)
            elif model == "magnetogram":
                rng = np.random.default_rng([self.seed, self._pid[name], 777])
                y, x = np.mgrid[0:n, 0:n].astype(np.float32)
                img = np.zeros((n, n), dtype=np.float32)
                for _ in range(8):
                    rr, th = rng.uniform(0, 0.85), rng.uniform(0, 2 * np.pi)
                    px, py = geo.cx + rr * geo.rsun_px * np.cos(th), geo.cy + rr * geo.rsun_px * np.sin(th)
                    sep, width, amp = rng.uniform(0.03, 0.08), rng.uniform(0.015, 0.04), rng.uniform(300, 1500)
                    for sign in (1, -1):
                        dx = x - (px + sign * sep * geo.rsun_px)
                        img += sign * amp * np.exp(-((dx**2 + (y - py) ** 2) / (width * geo.rsun_px) ** 2))
                img[r > self._offdisk_radius(name, level)] = np.nan
                noise = np.full((n, n), 8.0, dtype=np.float32)
            elif model == "coronagraph":
                theta = np.arctan2(
                    *np.mgrid[0:n, 0:n][::-1].astype(np.float32) - np.array([geo.cx, geo.cy])[:, None, None]
                )
                rs = np.maximum(r, geo.inner * 0.5)
                bright = float(prm.get("streamer_brightness", 2000))
                img = (
                    bright
                    * (rs / geo.inner) ** -2.5
                    * (0.4 + 0.6 * np.cos(theta - 0.3) ** 8 + 0.4 * np.cos(2 * theta + 1.0) ** 16)
                    + 400.0
                )
                img[r < geo.inner * 0.95] = 200.0
                img[r > geo.outer * 1.03] = 0.0
                noise = np.sqrt(img)
            else:
                raise ValueError(f"unknown image model {model!r} for {name}")
            img, noise = img.astype(np.float32), noise.astype(np.float32)
            img.setflags(write=False)
            noise.setflags(write=False)
            return img, noise

        return self._memoize(("image", name, level), build)

    def _render_data(self, name: str, level: str, row: dict) -> np.ndarray:
        prm, geo = self.params[name], self.geometry(name, level)
        k = int(row["grid_index"])
        base, noise = self._base_image(name, level)
        rng = self._rng(name, k, 1)
        data = base + noise * rng.standard_normal(base.shape, dtype=np.float32)
        data *= np.float32(1 + 0.05 * np.sin(k * 0.37))
        place = self._placement(name, level)
        mask = self.valid_mask(name, level)
        bright = float(np.nanmax(base)) * 3.0
        if row["streak"]:
            srng = self._rng(name, k, 2)
            radius = geo.outer * geo.rsun_px
            a = srng.uniform(0, 2 * np.pi)
            b = a + np.pi + srng.uniform(-0.6, 0.6)
            x0, y0 = geo.cx + radius * np.cos(a), geo.cy + radius * np.sin(a)
            x1, y1 = geo.cx + radius * np.cos(b), geo.cy + radius * np.sin(b)
            steps = int(np.hypot(x1 - x0, y1 - y0) * 2) + 2
            xs = np.rint(np.linspace(x0, x1, steps)).astype(int)
            ys = np.rint(np.linspace(y0, y1, steps)).astype(int)
            inside = (xs >= 0) & (xs < geo.size) & (ys >= 0) & (ys < geo.size)
            xs, ys = xs[inside], ys[inside]
            on = mask[ys, xs]
            data[ys[on], xs[on]] = bright
        if row["cosmic_rays"]:
            crng = self._rng(name, k, 3)
            idx = crng.choice(place["valid_index"], size=int(row["cosmic_rays"]), replace=False)
            ys, xs = np.unravel_index(idx, data.shape)
            data[ys, xs] = bright
            big = crng.random(idx.size) < 0.5
            xs2 = np.minimum(xs[big] + 1, geo.size - 1)
            data[ys[big], xs2] = np.where(mask[ys[big], xs2], bright, data[ys[big], xs2])
        hole_value = level_value(prm["hole_value"], level)
        holes = np.zeros(data.shape, dtype=bool)
        if row.get("hole_side"):
            side = int(row["hole_side"])
            hrng = self._rng(name, k, 4)
            ok = np.argwhere(place["fits_side"](side))
            y0, x0 = ok[hrng.integers(len(ok))]
            holes[y0 : y0 + side, x0 : x0 + side] = True
        if row["missing_blocks"]:
            brng = self._rng(name, k, 5)
            cells = place["cells"][brng.choice(len(place["cells"]), int(row["missing_blocks"]), replace=False)]
            b = place["block"]
            for y0, x0 in cells:
                holes[y0 : y0 + b, x0 : x0 + b] = True
        bitpix = int(level_value(prm["bitpix"], level))
        if bitpix > 0:
            out = np.clip(np.rint(data), 1, 32000)
            out[base == 0] = 0
            out = out.astype(np.int16)
            out[holes] = 0
            return out
        if prm["model"] == "coronagraph":
            data = np.maximum(data, 1.0) * np.float32(1e-12)
            data[base == 0] = 0
        data = data.astype(np.float32)
        data[holes] = np.nan if hole_value == "nan" else 0.0
        return data

    def _encode(self, name: str, level: str, row: dict, minimal_header: bool = False) -> bytes:
        header = self._record_header(name, level, row)
        data = self._render_data(name, level, row)
        if minimal_header:
            header = fits.Header([card for card in header.cards if card.keyword in _SEGMENT_FILE_CARDS])
        hdu = fits.PrimaryHDU(data=data, header=header)
        # written by hand: astropy's writeto verifies every card (~75 % of the render time); the header was
        # verified once when the template was cleaned and only well-formed keywords are set per record
        head = hdu.header.tostring(endcard=True, padding=True).encode("ascii")
        raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder(">")).tobytes()
        return head + raw + b"\0" * (-len(raw) % 2880)

    # ------------------------------------------------------------------ convenience
    def utc_to_series_ms(self, series: str, utc_ms: int) -> int:
        """A UTC time in a JSOC series' own scale."""
        return int(utc_to_tai_ms(utc_ms)[0]) if self._series[series]["scale"] == "tai" else int(utc_ms)
