"""The JSOC side of the embedded archive: record-set parsing and the JSON answers of jsoc_info / jsoc_fetch.

Answers follow what the ``drms`` 0.9 client reads (see the reference notes on drms <-> JSOC). Keywords: besides the
special ones of :data:`KEYWORDS`, ``rs_list`` answers every keyword of the record's FITS header (JSOC spelling:
``-`` becomes ``__``, so ``DATE-OBS`` is ``DATE__OBS``) with its value *at the native resolution*, as the real JSOC
does: the served files are resampled to the mission's ``frame_size`` (their ``HC_SCALE`` says by how much), so the
geometry keywords (CRPIX, CDELT, R_SUN, X0...) are mapped back to the native grid with
:func:`heliocube.header.rescale_header` (``HC_SCALE`` itself is no JSOC keyword and is not listed).

Segment files live at SUMS-like paths ``/SUM{p}/D{k}/S00000/{file}`` (p: 1 + the product's index in the registry,
k: the record's grid index), export files at
``/SUM0/D{request}/S00000/{series}.{T_REC compact}[.{wavelength}].{segment}.fits``; both are decoded statelessly, so a
download works whichever server process answers it.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import re
import threading
import weakref

import numpy as np
import pandas as pd
from astropy.io import fits

from ..header import FILE_CARDS, SCALE_KEYWORD, rescale_header
from .timefmt import ANCHOR_MS, parse_jsoc_duration, parse_jsoc_time

__all__ = [
    "KEYWORDS",
    "ExportRules",
    "RecordSetError",
    "export_filename",
    "keyword_value",
    "parse_recordset",
    "record_keywords",
    "resolve_sums_path",
    "rs_list",
    "rs_summary",
    "series_keywords",
    "series_struct",
    "sums_path",
]

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


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_RECSET = re.compile(r"^([\w.]+)((?:\[[^\]]*\])*)(?:\{([^}]*)\})?$")
_TIMESPEC = re.compile(
    r"^(?P<t0>[^/@]+?)(?:-(?P<t1>\d{4}[.\-/]\d[^/@]*))?(?:/(?P<dur>[\d.]+[smhdSMHD]?))?(?:@(?P<step>[\d.]+[smhdSMHD]?))?$"
)


def _canonical_series(mission, name: str) -> str:
    for series in mission.jsoc_series:
        if series.lower() == name.lower():
            return series
    raise RecordSetError(f"unknown series {name!r}")


def parse_recordset(mission, ds: str) -> list[tuple[str, pd.DataFrame, list[str]]]:
    """Evaluate a (comma-joined) record-set specification.

    Each part is ``series[time][wavelength]{segments}``; time is ``t``, ``t0-t1`` (inclusive) or ``t0/duration``,
    each with an optional ``@step`` (records whose grid index from the first match is a multiple of
    step/cadence). Times take ``_TAI``, ``_UTC`` or ``Z`` (none: the series' own scale).

    Returns
    -------
    list of (series, rows, segments)
    """
    out = []
    for part in _split_top(ds):
        match = _RECSET.match(part)
        if not match:
            raise RecordSetError(f"cannot parse record set {part!r}")
        series = _canonical_series(mission, match.group(1))
        entry = mission.jsoc_series[series]
        brackets = re.findall(r"\[([^\]]*)\]", match.group(2) or "")
        segments = [s.strip() for s in (match.group(3) or "").split(",") if s.strip()]
        if not brackets or not brackets[0].strip() or brackets[0].strip() in ("$", "^"):
            raise RecordSetError(f"record set {part!r} needs a time range (the whole series is too large)")
        time_spec = _TIMESPEC.match(brackets[0].strip())
        if not time_spec:
            raise RecordSetError(f"cannot parse time selection {brackets[0]!r}")
        scale, cad = entry["scale"], entry["cadence_ms"]
        try:
            t0 = parse_jsoc_time(time_spec["t0"], scale)
            if time_spec["t1"]:
                t1 = parse_jsoc_time(time_spec["t1"], scale)
            elif time_spec["dur"]:
                t1 = t0 + parse_jsoc_duration(time_spec["dur"]) - 1
            else:  # a single time names the slot it falls in
                t0 = t1 = ANCHOR_MS + round((t0 - ANCHOR_MS) / cad) * cad
            step = parse_jsoc_duration(time_spec["step"]) if time_spec["step"] else None
        except ValueError as err:
            raise RecordSetError(str(err)) from err
        waves = None
        if len(brackets) > 1 and brackets[1].strip() and "WAVELNTH" in entry["primekeys"]:
            try:
                waves = [int(float(w)) for w in brackets[1].split(",") if w.strip()]
            except ValueError as err:
                raise RecordSetError(f"cannot parse wavelength selection {brackets[1]!r}") from err
        try:
            rows = mission.jsoc_rows(series, t0, t1, waves)
        except ValueError as err:
            raise RecordSetError(str(err)) from err
        if step and not rows.empty:
            every = max(1, round(step / cad))
            first = int(rows["grid_index"].min())
            rows = rows[(rows["grid_index"] - first) % every == 0].reset_index(drop=True)
        out.append((series, rows, segments))
    return out


def series_struct(mission, series: str) -> dict:
    """The ``jsoc_info?op=series_struct`` answer."""
    series = _canonical_series(mission, series)
    entry = mission.jsoc_series[series]
    keywords = [
        {
            "name": name,
            "type": kind,
            "recscope": "ts_eq" if name == "T_REC" else "variable",
            "defval": "",
            "units": ("UTC" if entry["scale"] == "utc" else "TAI") if kind == "time" else units,
            "note": note,
        }
        for name, kind, units, note in KEYWORDS
    ]
    keywords += [
        {"name": name, "type": kind, "recscope": "variable", "defval": "", "units": units, "note": note}
        for name, (kind, units, note) in series_keywords(mission, series).items()
        if name not in _SPECIAL_KEYS
    ]
    product = mission.registry[entry["products"][0]]
    size = mission.frame_size
    return {
        "name": series,
        "primekeys": list(entry["primekeys"]),
        "dbindex": list(entry["primekeys"]),
        "keywords": keywords,
        "links": [],
        "segments": [
            {
                "name": entry["segment"],
                "type": "float",
                "units": "none",
                "protocol": "fits",
                "dims": f"{size}x{size}",
                "note": f"{product.instrument} image",
            }
        ],
        "note": f"heliocube embedded archive: synthetic {series}",
        "retention": 10000,
        "unitsize": 32,
        "archive": 1,
        "tapegroup": 1,
        "status": 0,
    }


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
    series = _canonical_series(mission, series)
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


def sums_path(mission, row) -> str:
    """SUMS-like path of a record's segment file."""
    index = list(mission.registry).index(row["product"]) + 1
    entry = mission.jsoc_series[mission.registry[row["product"]].series_for(row["level"])]
    return f"/SUM{index}/D{int(row['grid_index'])}/S00000/{entry['sums_file']}"


def export_filename(mission, row, segment: str) -> str:
    """Name of a url/fits export file: ``{series}.{T_REC compact}[.{wavelength}].{segment}.fits``."""
    product = mission.registry[row["product"]]
    entry = mission.jsoc_series[product.series_for(row["level"])]
    trec = row["t_rec"].replace(".", "").replace(":", "") if entry["scale"] == "tai" else row["t_rec"].replace(":", "")
    wav = f".{product.wavelength}" if "WAVELNTH" in entry["primekeys"] else ""
    return f"{entry['name']}.{trec}{wav}.{segment}.fits"


_SUMS = re.compile(r"^/SUM(\d+)/D(\d+)/S00000/([\w.\-]+)$")
_EXPORT = re.compile(r"^([\w.]+?)\.(\d{8}_\d{6}_TAI|\d{4}-\d{2}-\d{2}T\d{6}Z)(?:\.(\d+))?\.(\w+)\.fits$")


def resolve_sums_path(mission, path: str) -> tuple[str, str, str] | None:
    """(product, level, record_id) of a SUMS or export file path, or None when the path names no record."""
    match = _SUMS.match(path)
    if not match:
        return None
    sum_index, dnum, filename = int(match.group(1)), int(match.group(2)), match.group(3)
    names = list(mission.registry)
    if sum_index == 0:
        exp = _EXPORT.match(filename)
        if not exp or exp.group(1) not in mission.jsoc_series:
            return None
        series, compact, wav, _segment = exp.groups()
        if compact.endswith("_TAI"):
            trec = f"{compact[0:4]}.{compact[4:6]}.{compact[6:8]}_{compact[9:11]}:{compact[11:13]}:{compact[13:15]}_TAI"
        else:
            trec = f"{compact[:13]}:{compact[13:15]}:{compact[15:17]}Z"
        record_id = f"{series}[{trec}]" + (f"[{wav}]" if wav else "")
        try:
            row = mission.lookup(record_id)
        except (KeyError, ValueError):
            return None
        return row["product"], row["level"], record_id
    if sum_index > len(names):
        return None
    name = names[sum_index - 1]
    product = mission.registry[name]
    if not product.is_jsoc:
        return None
    entry = mission.jsoc_series[product.series_for()]
    if filename != entry["sums_file"]:
        return None
    rows = mission._rows(name, product.level, np.array([dnum], dtype=np.int64))
    if rows.empty:
        return None
    return name, product.level, rows.iloc[0]["record_id"]


def rs_list(mission, query: dict) -> dict:
    """The ``jsoc_info?op=rs_list`` answer (keys, segments, optional recinfo, n limit)."""
    ds = query.get("ds", "")
    parsed = parse_recordset(mission, ds)
    rows = pd.concat([r for _, r, _ in parsed], ignore_index=True) if parsed else pd.DataFrame()
    n = query.get("n")
    if n not in (None, "") and not rows.empty:
        n = int(n)
        rows = rows.head(n) if n >= 0 else rows.tail(-n)
    records = rows.to_dict("records")
    answer: dict = {"count": len(records), "runtime": 0.01, "status": 0}
    keys = [k for k in re.split(r"[\s,]+", query.get("key", "") or "") if k]
    if keys == ["**ALL**"] or "**ALL**" in keys:
        series_names = list(dict.fromkeys(series for series, _, _ in parsed))
        extra = [k for series in series_names for k in series_keywords(mission, series) if k not in _SPECIAL_KEYS]
        keys = [k[0] for k in KEYWORDS] + list(dict.fromkeys(extra))
    if keys:
        answer["keywords"] = [{"name": k, "values": [keyword_value(mission, r, k) for r in records]} for k in keys]
    segs = [s for s in re.split(r"[\s,]+", query.get("seg", "") or "") if s]
    if segs:
        answer["segments"] = [
            {
                "name": s,
                "values": [sums_path(mission, r) for r in records],
                "dims": [f"{mission.frame_size}x{mission.frame_size}"] * len(records),
            }
            for s in segs
        ]
    if query.get("R") == "1":
        answer["recinfo"] = [{"name": r["record_id"], "online": 1} for r in records]
    return answer


def rs_summary(mission, query: dict) -> dict:
    """The ``jsoc_info?op=rs_summary`` answer."""
    parsed = parse_recordset(mission, query.get("ds", ""))
    return {"count": int(sum(len(r) for _, r, _ in parsed)), "runtime": 0.01, "status": 0}


# ---------------------------------------------------------------------------------------------------- exports
@dataclasses.dataclass
class ExportRules:
    """How the embedded JSOC answers export requests; the defaults accept every request, as JSOC does for an
    address exempt from its pending limit with every file online.

    The statuses and messages are those of JSOC's ``jsoc_fetch``: 3 when a request exceeds the byte cap, 7 when the
    address already has too many pending exports, 4 when an export fails, 1 while one is processed.

    Parameters
    ----------
    max_bytes : int, optional
        A request whose files (as served) hold more bytes is refused with status 3; None: no cap.
    pending_polls : int
        Status checks of a url export answered "processing" (status 1) before it is done.
    fail_first : int
        The first ``fail_first`` export requests fail (status 4): url_quick at once, url at the status check that
        would have finished it.
    fail_match : str, optional
        Every request whose record set contains this text fails the same way, however often it is made.
    expire_first : int
        The url export requests after those ``fail_first`` fails, ``expire_first`` of them, expire while staging
        (status 5 at the status check that would have finished them).
    max_pending : int, optional
        url exports one address (``notify``) may have pending; the next one is refused with status 7 (JSOC allows
        one unless the address is exempted); None: no limit.
    """

    max_bytes: int | None = None
    pending_polls: int = 1
    fail_first: int = 0
    fail_match: str | None = None
    expire_first: int = 0
    max_pending: int | None = None


def too_large_answer(method: str, protocol: str, count: int, size: int, max_bytes: int) -> dict:
    """jsoc_fetch's answer to a request over its byte cap (sizes in MB, as JSOC prints them)."""
    return {"status": 3, "requestid": "VOID", "method": method, "protocol": protocol, "wait": 0, "count": count,
            "size": size // 2**20, "error": f"Request exceeds max byte limit of {max_bytes / 2**20:g}MB"}


def busy_answer(notify: str, pending: list[str]) -> dict:
    """jsoc_fetch's answer to an address that already has as many pending exports as it may."""
    return {"status": 7, "error": f"User {notify} has {len(pending)} pending export requests ({','.join(pending)}); "
                                  "please wait until at least one request has completed before submitting a new one."}


def failed_answer(requestid: str = "") -> dict:
    """An export that failed (status 4), with a message as JSOC gives one."""
    return {"status": 4, "requestid": requestid, "error": "Export failed (embedded archive: ExportRules)"}


def expired_answer(requestid: str = "") -> dict:
    """An export that expired before it was staged (status 5), with a message as JSOC gives one."""
    return {"status": 5, "requestid": requestid, "error": "Request expired (embedded archive: ExportRules)"}
