"""JSOC keywords of the embedded archive's records: the series' declared keywords and each record's values as JSOC
prints them (``rs_list``), mapped back to the native grid (see :mod:`heliocube.archive.jsoc`)."""

from __future__ import annotations

import collections
import math
import re
import threading
import weakref

import numpy as np
import pandas as pd
from astropy.io import fits

from ..header import FILE_CARDS, SCALE_KEYWORD, rescale_header

__all__ = ["KEYWORDS", "RecordSetError", "canonical_series", "keyword_value", "record_keywords", "series_keywords"]

#: Keywords every served series declares: (name, JSOC type, units, note).
KEYWORDS = (
    ("T_REC", "time", "TAI", "[TAI|UTC] Slot time"),
    ("T_OBS", "time", "TAI", "[TAI|UTC] Observation time"),
    ("DATE__OBS", "string", "ISO", "[ISO] Observation time (UTC)"),
    ("WAVELNTH", "int", "Angstrom", "Wavelength"),
    ("QUALITY", "int", "none", "Quality bits; 0 = no known problems"),
    ("EXPTIME", "double", "s", "Exposure time"),
    ("INSTRUME", "string", "none", "Instrument"),
    ("TELESCOP", "string", "none", "Telescope"),
)
#: Keywords ``keyword_value`` answers from the record row itself (the served header may spell them differently).
_SPECIAL_KEYS = frozenset(name for name, *_ in KEYWORDS) | {"*recnum*"}
#: Header cards that describe the FITS file, not the record (and blank cards): never JSOC keywords.
_NOT_KEYWORDS = FILE_CARDS | {""}
#: Cards ``SyntheticMission._record_header`` sets per record (everything else is the product's base header): only
#: these need the record's own header, the rest come from a per-product table. The product's quality keyword is
#: per record too. tests/test_seeding.py checks this list against the full per-record header.
_PER_RECORD_CARDS = ("DATE-OBS", "TIME-OBS", "DATE_OBS", "T_REC", "T_OBS", "EXPTIME", "N_MISSING_BLOCKS", "MISSVALS",
                     "NMISSING", "FILENAME")
_PER_RECORD_NAMES = frozenset(card.replace("-", "__") for card in _PER_RECORD_CARDS)
#: Records whose per-record keywords are kept (per mission, least recently used dropped first).
_RECORD_CACHE_SIZE = 4096
_record_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_record_cache_lock = threading.Lock()


class RecordSetError(ValueError):
    """A record-set specification the embedded archive cannot evaluate."""


def canonical_series(mission, name: str) -> str:
    for series in mission.jsoc_series:
        if series.lower() == name.lower():
            return series
    raise RecordSetError(f"unknown series {name!r}")


def _jsoc_name(fits_keyword: str) -> str:
    """JSOC's spelling of a FITS keyword (``DATE-OBS`` -> ``DATE__OBS``)."""
    return fits_keyword.replace("-", "__")


def _jsoc_text(value) -> str:
    """A header value as JSOC prints it in rs_list: numbers as text (floats round-trip), strings stripped."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "NaN" if math.isnan(value) else repr(float(value))
    if isinstance(value, str):
        return value.strip()
    return ""  # an undefined (blank) value


def _jsoc_type(value) -> str:
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "double"
    return "string"


def _units_and_note(comment: str) -> tuple[str, str]:
    match = re.match(r"^\s*\[([^\]]*)\]\s*(.*)$", comment or "")
    if match:
        return match.group(1).strip() or "none", match.group(2).strip()
    return "none", (comment or "").strip()


def _header_keywords(header: fits.Header) -> dict[str, tuple]:
    """JSOC name -> (value, JSOC type, units, note) of every record keyword of a header (first card wins)."""
    out: dict[str, tuple] = {}
    for card in header.cards:
        keyword = card.keyword
        if keyword in _NOT_KEYWORDS:
            continue
        name = _jsoc_name(keyword)
        if name not in out:
            units, note = _units_and_note(card.comment)
            out[name] = (card.value, _jsoc_type(card.value), units, note)
    return out


def _native_keywords(mission, name: str, level: str) -> dict[str, tuple]:
    """Keywords of a product's base header mapped back to the native grid (memoized per product and level)."""

    def build():
        base = mission.base_header(name, level)
        served_scale = float(base.get(SCALE_KEYWORD, 1.0) or 1.0)
        native_size = mission.registry[name].native_size
        native = rescale_header(base, 1.0 / served_scale, convention="center", naxis=(native_size, native_size),
                                history="heliocube embedded archive: keywords at the native resolution")
        return _header_keywords(native)

    return mission._memoize(("jsoc_native_keywords", name, level), build)


def series_keywords(mission, series: str) -> dict[str, tuple[str, str, str]]:
    """Every keyword of a JSOC series (union over its products' headers): JSOC name -> (type, units, note)."""
    series = canonical_series(mission, series)
    entry = mission.jsoc_series[series]

    def build():
        out: dict[str, tuple[str, str, str]] = {}
        for name in entry["products"]:
            for key, (_value, kind, units, note) in _native_keywords(mission, name, entry["level"]).items():
                out.setdefault(key, (kind, units, note))
        return out

    return mission._memoize(("jsoc_series_keywords", series), build)


def _per_record_cards(mission, row) -> dict[str, str]:
    """JSOC-printed values of the cards the mission sets per record, from the record's full header (cached)."""
    with _record_cache_lock:
        cache = _record_caches.setdefault(mission, collections.OrderedDict())
        key = (row["product"], row["level"], row["record_id"])
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    header = mission._record_header(row["product"], row["level"], row)
    values = {}
    for keyword in (*_PER_RECORD_CARDS, mission.registry[row["product"]].quality_keyword):
        if keyword and keyword in header:
            values[_jsoc_name(keyword)] = _jsoc_text(header[keyword])
    with _record_cache_lock:
        cache[key] = values
        while len(cache) > _RECORD_CACHE_SIZE:
            cache.popitem(last=False)
    return values


def keyword_value(mission, row, key: str) -> str:
    """A keyword of a record as JSOC prints it in rs_list (QUALITY as a ``0x%08x`` hex string).

    The keywords of :data:`KEYWORDS` come from the record row; any other keyword of the record's FITS header is
    answered at the native resolution (see the module notes); a keyword of the series that this record's product
    lacks prints empty (JSOC's default value); anything else is ``Invalid KeyLink``.
    """
    product = mission.registry[row["product"]]
    if key == "T_REC":
        return row["t_rec"]
    if key == "T_OBS":
        return row["t_obs"]
    if key == "DATE__OBS":
        return pd.Timestamp(row["time_utc"]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-4] + "Z"
    if key == "WAVELNTH":
        return str(product.wavelength)
    if key == "QUALITY":
        return f"0x{int(row['quality']):08x}"
    if key == "EXPTIME":
        return f"{float(row['exptime']):.6f}"
    if key in ("INSTRUME", "TELESCOP"):
        return str(mission.base_header(row["product"], row["level"]).get(key, "")).strip()
    if key == "*recnum*":
        return str(int(row["grid_index"]))
    if key in _PER_RECORD_NAMES or key == product.quality_keyword:
        per_record = _per_record_cards(mission, row)
        if key in per_record:
            return per_record[key]
    native = _native_keywords(mission, row["product"], row["level"])
    if key in native:
        return _jsoc_text(native[key][0])
    series = product.series_for(row["level"])
    if key in series_keywords(mission, series):
        return ""
    return "Invalid KeyLink"


def record_keywords(mission, row) -> dict[str, str]:
    """Every keyword of a record (JSOC name -> printed value), as ``rs_list`` answers ``key=**ALL**``."""
    series = mission.registry[row["product"]].series_for(row["level"])
    names = [name for name, *_ in KEYWORDS] + [k for k in series_keywords(mission, series) if k not in _SPECIAL_KEYS]
    return {name: keyword_value(mission, row, name) for name in names}

