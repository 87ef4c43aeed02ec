"""Temporal and spatiotemporal queries over the event tables (``events/{name}/events.csv``), like the seed's HEK
clone: the events of a type whose [start, end] overlaps a time range, optionally with their helioprojective
position (``hpc_x``, ``hpc_y``, arcsec) inside a box."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["EventTables", "query_events"]

#: Columns parsed as times (ISO 8601 UTC in the tables).
TIME_COLUMNS = ("start", "peak", "end", "window_start", "window_end")


class EventTables:
    """The event tables, each read once and again only when its file changes."""

    def __init__(self) -> None:
        self._tables: dict[Path, tuple[tuple, pd.DataFrame]] = {}
        self._lock = threading.Lock()

    def table(self, path: Path) -> pd.DataFrame:
        stat = path.stat()
        signature = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._tables.get(path)
            if cached is None or cached[0] != signature:
                frame = pd.read_csv(path, dtype={"event_id": str, "event_type": str, "goes_class": str,
                                                 "active_region": str})
                for column in TIME_COLUMNS:
                    if column in frame:
                        frame[f"_{column}"] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
                cached = (signature, frame)
                self._tables[path] = cached
            return cached[1]


def query_events(tables: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp, *,
                 event_type: str | None = None, box: tuple[float, float, float, float] | None = None) -> pd.DataFrame:
    """The events overlapping [start, end] (UTC) of ``event_type`` (any case; None: all), inside ``box``
    (x_min, x_max, y_min, y_max in arcsec; None: anywhere), from every table, sorted by start.

    A ``dataset`` column names the table each row comes from.
    """
    parts = []
    for name, frame in tables.items():
        if frame.empty or "_start" not in frame:
            continue
        ends = frame["_end"] if "_end" in frame else frame["_start"]
        keep = (frame["_start"] <= end) & (ends >= start)
        if event_type is not None:
            keep &= frame["event_type"].str.lower() == event_type.lower()
        if box is not None:
            x_min, x_max, y_min, y_max = box
            keep &= frame["hpc_x"].between(x_min, x_max) & frame["hpc_y"].between(y_min, y_max)
        parts.append(frame[keep].assign(dataset=name))
    if not parts:
        return pd.DataFrame()
    found = pd.concat(parts, ignore_index=True).sort_values(["_start", "dataset"], kind="stable")
    return found.drop(columns=[c for c in found if c.startswith("_")]).replace({np.nan: None})
