"""Candidate events from a CSV table with the prior notebook's columns.

Required: ``event_starttime``, ``event_peaktime``, ``event_endtime`` (UTC, any ISO 8601 form, e.g.
``2014-04-18 12:31:00``) and a GOES class column (``class``, ``goes_class`` or ``fl_goescls``; may be empty).
Optional: ``event_id``, ``event_type``, ``active_region`` (or ``ar_noaanum``), ``hpc_x`` / ``hpc_y`` (arcsec), and
per-event buffers ``pre_buffer`` / ``post_buffer`` (durations such as ``180min``, or minutes) or the notebook's
``jsoc_start_time`` / ``jsoc_end_time`` (the window itself). A row that cannot be read raises
:class:`EventTableError` naming its line and what is wrong with it.
"""

from __future__ import annotations

import os

import pandas as pd

from ..timegrid import parse_duration
from .selection import goes_flux

__all__ = ["EventTableError", "event_id_of", "read_event_table"]

_CLASS_COLUMNS = ("class", "goes_class", "fl_goescls")


class EventTableError(ValueError):
    """An event table (or one of its rows) that cannot be read; the message names the file and the line."""


def event_id_of(event_type: str, start: pd.Timestamp) -> str:
    """An event id usable as a file name: the type and the start, e.g. ``FL20101015T212100``."""
    return f"{event_type}{start:%Y%m%dT%H%M%S}"


def unique_ids(ids: list[str]) -> list[str]:
    """``ids`` with a ``-2``, ``-3``... suffix on repeats (in order), so every event has its own files."""
    seen: dict[str, int] = {}
    out = []
    for value in ids:
        seen[value] = seen.get(value, 0) + 1
        out.append(value if seen[value] == 1 else f"{value}-{seen[value]}")
    return out


def _time(value, column: str) -> pd.Timestamp:
    if pd.isna(value) or str(value).strip() == "":
        raise ValueError(f"{column} is empty")
    try:
        stamp = pd.Timestamp(str(value).strip())
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a time") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _buffer(value, column: str) -> pd.Timedelta | None:
    if pd.isna(value) or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        return pd.Timedelta(minutes=float(text))
    except ValueError:
        pass
    try:
        return pd.Timedelta(parse_duration(text))
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a duration (e.g. 180min, or minutes)") from None


def _number(value, column: str) -> float:
    if pd.isna(value) or str(value).strip() == "":
        return float("nan")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a number") from None


def read_event_table(path: str | os.PathLike, event_type: str = "FL") -> pd.DataFrame:
    """The candidates of an event CSV: :data:`heliocube.events.selection.CANDIDATE_COLUMNS` but ``kept`` and
    ``reason``, plus ``pre_buffer`` and ``post_buffer`` (NaT where the row gives none).

    Raises
    ------
    EventTableError
        A missing required column, or a row whose times, class, numbers or buffers cannot be read, or whose times
        are out of order (the message names the file's line number, counting the header as line 1).
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise EventTableError(f"{path}: cannot read the event table ({err})") from err
    raw.columns = [column.strip() for column in raw.columns]
    missing = [c for c in ("event_starttime", "event_peaktime", "event_endtime") if c not in raw]
    class_column = next((c for c in _CLASS_COLUMNS if c in raw), None)
    if missing or class_column is None:
        needed = missing + ([] if class_column else ["class (or goes_class, fl_goescls)"])
        raise EventTableError(f"{path}: missing column(s) {', '.join(needed)}; found {', '.join(raw.columns)}")
    rows = []
    for index, row in raw.iterrows():
        line = index + 2
        try:
            start, end = _time(row["event_starttime"], "event_starttime"), _time(row["event_endtime"], "event_endtime")
            peak = _time(row["event_peaktime"], "event_peaktime") if row["event_peaktime"].strip() else pd.NaT
            if end < start or (peak is not pd.NaT and not start <= peak <= end):
                raise ValueError(f"times out of order (start {start}, peak {peak}, end {end})")
            goes_class = row[class_column].strip()
            flux = goes_flux(goes_class) if goes_class else None
            if goes_class and flux is None:
                raise ValueError(f"{class_column} {goes_class!r} is not a GOES class (e.g. M1.2)")
            pre, post = _buffer(row.get("pre_buffer"), "pre_buffer"), _buffer(row.get("post_buffer"), "post_buffer")
            if row.get("jsoc_start_time", "").strip():
                pre = start - _time(row["jsoc_start_time"], "jsoc_start_time")
            if row.get("jsoc_end_time", "").strip():
                post = _time(row["jsoc_end_time"], "jsoc_end_time") - end
            if (pre is not None and pre < pd.Timedelta(0)) or (post is not None and post < pd.Timedelta(0)):
                raise ValueError("the window does not contain the event (negative buffer)")
            region = row.get("active_region", row.get("ar_noaanum", ""))
            kind = row.get("event_type", "").strip() or event_type
            rows.append({
                "event_id": row.get("event_id", "").strip() or event_id_of(kind, start), "event_type": kind,
                "start": start, "peak": peak, "end": end, "goes_class": goes_class,
                "goes_flux": float("nan") if flux is None else flux,
                "active_region": _number(region, "active_region"),
                "hpc_x": _number(row.get("hpc_x", ""), "hpc_x"), "hpc_y": _number(row.get("hpc_y", ""), "hpc_y"),
                "pre_buffer": pre, "post_buffer": post,
            })
        except ValueError as err:
            raise EventTableError(f"{path}, line {line} (event row {index + 1}): {err}") from None
    table = pd.DataFrame(rows, columns=["event_id", "event_type", "start", "peak", "end", "goes_class", "goes_flux",
                                        "active_region", "hpc_x", "hpc_y", "pre_buffer", "post_buffer"])
    table["event_id"] = unique_ids(list(table["event_id"]))
    bad = [value for value in table["event_id"] if not _safe_id(value)]
    if bad:
        raise EventTableError(f"{path}: event_id {bad[0]!r} cannot name a file (letters, digits, . _ + - only)")
    return table


def _safe_id(value: str) -> bool:
    from ..paths import safe_component

    try:
        safe_component(value)
    except ValueError:
        return False
    return True
