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

The keywords live in :mod:`heliocube.archive.jsoc_keywords`, the export requests' rules and failure answers in
:mod:`heliocube.archive.export_rules` (their names are importable from here too).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .export_rules import ExportRules
from .jsoc_keywords import (
    _SPECIAL_KEYS,
    KEYWORDS,
    RecordSetError,
    canonical_series,
    keyword_value,
    record_keywords,
    series_keywords,
)
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
        series = canonical_series(mission, match.group(1))
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
    series = canonical_series(mission, series)
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

