"""The clean stage's frame index: its columns, the digest of a frame, and reading it without pandas.

A month index (``frames/{variant}/{product}/{YYYY-MM}.index.csv``) has one row per cleaned frame
(:data:`INDEX_COLUMNS`). The clean stage writes it (:func:`heliocube.clean.clean_days`); the cube job reads it
with :func:`read_index_rows`, plain ``csv`` into dicts, so that the cube job imports neither pandas nor astropy
(:func:`heliocube.clean.read_index` gives the same table as a pandas DataFrame).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os

import numpy as np

from .fetch.gate import QC_METRICS

__all__ = ["FLOAT_COLUMNS", "INDEX_COLUMNS", "STRING_COLUMNS", "WCS_KEYS", "frame_digest", "read_index_rows"]

#: Header keywords copied (after calibration and resize) into every frame row; NaN when absent.
WCS_KEYS = ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2", "CROTA2", "RSUN_OBS", "R_SUN", "EXPTIME",
            "HC_SCALE")
STRING_COLUMNS = ("slot_time", "obs_time", "record_id", "url", "sha256", "raw_path", "frame_file", "frame_sha256")
FLOAT_COLUMNS = ("dt_seconds", "abs_dt_seconds", *(f"qc_{m}" for m in QC_METRICS), *WCS_KEYS)
#: One row per frame written: where it is (``frame_file`` relative to the output root, ``hdu``), where it came
#: from, how far from its slot, its QC metrics and its rescaled WCS keywords.
INDEX_COLUMNS = ("slot_time", "obs_time", "dt_seconds", "abs_dt_seconds", "record_id", "url", "sha256", "raw_path",
                 "frame_file", "hdu", "frame_sha256", *(f"qc_{m}" for m in QC_METRICS), *WCS_KEYS)


def frame_digest(frame: np.ndarray) -> str:
    """SHA-256 of a frame's float32 bytes (big-endian, as FITS stores them), to check a cube copies it exactly."""
    return hashlib.sha256(np.ascontiguousarray(frame, dtype=">f4").tobytes()).hexdigest()


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # empty (NaN as written) or not a number
        return math.nan


def read_index_rows(path: str | os.PathLike) -> list[dict]:
    """The rows of a frame index as dicts of :data:`INDEX_COLUMNS`: strings as written ('' when empty), floats
    (NaN when empty), ``hdu`` an int; the types :func:`heliocube.clean.read_index` gives."""
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = set(INDEX_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: frame index lacks columns {sorted(missing)}")
        rows = []
        for row in reader:
            out = {name: row[name] for name in STRING_COLUMNS}
            out.update({name: _float(row[name]) for name in FLOAT_COLUMNS})
            out["hdu"] = int(row["hdu"])
            rows.append({name: out[name] for name in INDEX_COLUMNS})
    return rows
