"""The deterministic synthetic mission the embedded archive serves.

Every registry product has records at its native cadence on any date. Nothing is tabulated: a record is a pure
function of (seed, product, grid index k), so listing a day of AIA (7200 records per channel) or fifteen years of it
costs arithmetic only. Frames are rendered on demand from real sunpy headers and images, rescaled to the mission's
``frame_size`` with :func:`heliocube.header.rescale_header`, with each record's defects injected.

This module holds the mission's catalogue (its products, JSOC series, records and record lookup); the served
headers and disk geometry are in :mod:`.frame_header`, the pixels and FITS bytes in :mod:`.frame_render`, the
random streams and defect placement in :mod:`.defects` (mixins of :class:`SyntheticMission`).
"""

from __future__ import annotations

import collections
import functools
import threading
import zlib

import numpy as np
import pandas as pd

from ..registry import Product, load_registry
from .defects import DEFECT_KINDS, QUALITY_BITS, DefectsMixin
from .frame_header import Geometry, HeaderMixin
from .frame_render import RenderMixin
from .templates import sim_params
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

# hash streams, one per random quantity of a record
_S_TOBS, _S_GAP, _S_JIT, _S_EXP = 1, 2, 3, 4
_S_Q, _S_QV, _S_MB, _S_MBN, _S_HOLE, _S_HOLEF, _S_STREAK, _S_CR, _S_CRN, _S_CORRUPT, _S_TRUNC = range(10, 21)
_HOLE_FRACTION = (0.01, 0.05)


class SyntheticMission(HeaderMixin, RenderMixin, DefectsMixin):
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

    # ------------------------------------------------------------------ convenience
    def utc_to_series_ms(self, series: str, utc_ms: int) -> int:
        """A UTC time in a JSOC series' own scale."""
        return int(utc_to_tai_ms(utc_ms)[0]) if self._series[series]["scale"] == "tai" else int(utc_ms)
