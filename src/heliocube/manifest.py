"""Per-day query manifests: every candidate record an archive lists for one product and one UTC day.

A manifest is a Parquet file with the columns of `MANIFEST_COLUMNS`, sorted by time then record id. It is
written atomically, so a file that exists is complete. Its ``url`` is the file's location relative to the archive's
base URL (:mod:`heliocube.locations`; empty for JSOC, whose locations come from exports at fetch time), so the
archive may move without a new query; manifests of earlier versions hold absolute URLs, which the fetch maps back
to locations when they lie on the configured archive.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd

from .header import record_keywords  # here too, where the manifest's readers look for it
from .paths import atomic_path

__all__ = ["MANIFEST_COLUMNS", "empty_manifest", "normalize_manifest", "read_manifest", "record_keywords",
           "write_manifest"]

#: Column name -> pandas dtype. ``keywords`` holds the remaining archive keywords as a JSON object.
MANIFEST_COLUMNS = {
    "product": "string",
    "record_id": "string",
    "url": "string",
    "time_utc": "datetime64[us, UTC]",
    "t_rec": "string",
    "size": "Int64",
    "level": "string",
    "wavelength": "Float64",
    "quality": "Int64",
    "exptime": "Float64",
    "keywords": "string",
}


def empty_manifest() -> pd.DataFrame:
    """A manifest with no rows and the right column types."""
    return normalize_manifest(pd.DataFrame({name: [] for name in MANIFEST_COLUMNS}))


def normalize_manifest(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill missing columns, cast every column to its manifest type, and sort rows by time then record id."""
    frame = frame.copy()
    for name in MANIFEST_COLUMNS:
        if name not in frame:
            frame[name] = pd.NA
    frame["time_utc"] = pd.to_datetime(frame["time_utc"], utc=True)
    frame = frame[list(MANIFEST_COLUMNS)].astype(MANIFEST_COLUMNS)
    return frame.sort_values(["time_utc", "record_id"], kind="stable").reset_index(drop=True)


def keywords_json(values: dict) -> str:
    """Archive keywords as a compact, key-sorted JSON string (NaN and NA become null)."""
    clean = {key: (None if pd.isna(value) else value) for key, value in values.items()}
    return json.dumps(clean, sort_keys=True, default=str)


def write_manifest(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` (normalized first) to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        normalize_manifest(frame).to_parquet(tmp, index=False)
    return path


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read one manifest back with its column types."""
    return normalize_manifest(pd.read_parquet(path))


def manifest_day(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Rows of ``frame`` whose UTC time falls on ``day``."""
    start = pd.Timestamp(day, tz="UTC")
    mask = (frame["time_utc"] >= start) & (frame["time_utc"] < start + pd.Timedelta(days=1))
    return frame.loc[mask].reset_index(drop=True)

