"""The seeded cube's files: what seeding reads from the source cube, and the atomic write of the seeded copy."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..header import JSOC_NUMERIC_TYPES, SCALE_KEYWORD
from ..paths import atomic_path
from ..resize import HEADER_CONVENTION
from .jsoc import _jsoc_type

_STR = h5py.string_dtype(encoding="utf-8")
#: Headers built and written per block (memory does not grow with the number of frames).
_HEADER_BLOCK = 1024


@dataclasses.dataclass(frozen=True)
class _Cube:
    """What seeding needs from the source cube."""

    record_ids: list[str]
    scales: np.ndarray
    frame_shape: tuple[int, int]
    attrs: dict


# ------------------------------------------------------------------------------------------------------ source cube
def _read_column(group: h5py.Group, name: str) -> np.ndarray:
    ds = group[name]
    return np.asarray(ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()])


def _read_cube(path: Path, product) -> _Cube:
    with h5py.File(path, "r") as f:
        if "frames" not in f or "record_id" not in f["frames"]:
            raise ValueError(f"{path}: no frames/record_id column; only cubes of JSOC records can be seeded")
        record_ids = [str(r) for r in _read_column(f["frames"], "record_id")]
        n, height, width = f["data"].shape
        if SCALE_KEYWORD in f["frames"]:
            scales = np.asarray(_read_column(f["frames"], SCALE_KEYWORD), dtype=float)
        else:  # a cube without the column: its frames were resized once from the native grid
            scales = np.full(n, product.native_size / width, dtype=float)
        attrs = dict(f.attrs)
    bad = [i for i, s in enumerate(scales) if not (math.isfinite(s) and s > 0)]
    if bad:
        raise ValueError(f"{path}: rows {bad[:10]} have no valid {SCALE_KEYWORD}; their grid is unknown")
    return _Cube(record_ids, scales, (int(height), int(width)), attrs)


def _convention(attrs: Mapping, resize_method: str | None, path: Path) -> str:
    method = resize_method or attrs.get("resize_method")
    if isinstance(method, bytes):
        method = method.decode()
    if not method:
        raise ValueError(f"{path}: no resize_method attribute; pass resize_method= to name how the cube was resized")
    if method not in HEADER_CONVENTION:
        raise ValueError(f"unknown resize method {method!r}; choose one of {sorted(HEADER_CONVENTION)}")
    return HEADER_CONVENTION[method]


def _refuse_resampling_calibration(attrs: Mapping, path: Path) -> None:
    """Archive keywords describe the unrotated, unzoomed image: a cube resampled by calibration cannot be seeded."""
    text = attrs.get("calibration")
    if text is None:
        return
    calibration = json.loads(text.decode() if isinstance(text, bytes) else str(text) or "{}") or {}
    if calibration.get("north_up") or calibration.get("fixed_rsun_arcsec"):
        raise ValueError(f"{path}: its frames were rotated or zoomed by calibration ({calibration}); archive keywords "
                         "describe the original image, so seeding would give the frames a wrong WCS")


# ----------------------------------------------------------------------------------------------------------- output
def _copy_dataset(source: h5py.Dataset, group: h5py.Group, name: str) -> None:
    """Copy a dataset; a virtual one (a master's) is materialised, frame by frame for 3-D data."""
    if not source.is_virtual:
        group.copy(source, name)
        return
    if source.ndim == 3:
        n, height, width = source.shape
        target = group.create_dataset(name, shape=source.shape, maxshape=(None, height, width), dtype=source.dtype,
                                      chunks=(1, height, width), compression="gzip", compression_opts=4,
                                      shuffle=True)
        for i in range(n):
            target[i] = source[i]
    else:
        target = group.create_dataset(name, data=source[()], dtype=source.dtype)
    for key, value in source.attrs.items():
        target.attrs[key] = value


def _keyword_column(values: list[str | None], jsoc_type: str) -> tuple[np.ndarray, object]:
    if jsoc_type in JSOC_NUMERIC_TYPES:
        numbers = []
        for value in values:
            if value is None or str(value).strip() in ("", "MISSING", "Invalid KeyLink"):
                numbers.append(np.nan)
                continue
            try:
                numbers.append(float(value))
            except ValueError:
                break
        else:
            return np.asarray(numbers, dtype=np.float64), np.float64
    return np.asarray(["" if v is None else str(v) for v in values], dtype=object), _STR


def _write(out_path: Path, source_path: Path, cube: _Cube, rows_keywords: list[dict[str, str] | None],
           header_for, keys: list[str], info_keywords: pd.DataFrame, attrs: dict) -> None:
    """Write the seeded cube atomically; ``header_for(row, source_header_text)`` gives each row's header text."""
    n = len(cube.record_ids)
    with (
        atomic_path(out_path) as tmp,
        h5py.File(source_path, "r") as src,
        h5py.File(tmp, "w", libver="latest") as out,
    ):
        _copy_dataset(src["data"], out, "data")
        frames = out.create_group("frames")
        for name in src["frames"]:
            _copy_dataset(src["frames"][name], frames, name)
        headers = out.create_dataset("headers", shape=(n,), maxshape=(None,), dtype=_STR, chunks=(256,))
        source_headers = src["headers"].asstr() if "headers" in src else None
        for start in range(0, n, _HEADER_BLOCK):  # a block of headers in memory at a time
            stop = min(n, start + _HEADER_BLOCK)
            texts = source_headers[start:stop] if source_headers is not None else [""] * (stop - start)
            headers[start:stop] = np.asarray([header_for(start + i, str(text)) for i, text in enumerate(texts)],
                                             dtype=object)
        group = out.create_group("keywords")
        for key in keys:
            jsoc_type = _jsoc_type(info_keywords, key)
            values, dtype = _keyword_column([None if r is None else r.get(key) for r in rows_keywords],
                                            jsoc_type)
            ds = group.create_dataset(key, data=values, dtype=dtype)
            ds.attrs["jsoc_type"] = jsoc_type
            if key in info_keywords.index and "units" in info_keywords.columns:
                ds.attrs["units"] = str(info_keywords.loc[key, "units"])
        out.create_dataset("seeded", data=np.asarray([r is not None for r in rows_keywords], dtype=bool))
        for key, value in cube.attrs.items():
            out.attrs[key] = value
        for key, value in attrs.items():
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                out.attrs.create(key, data=np.asarray(value, dtype=object), dtype=_STR)
            else:
                out.attrs[key] = value
