"""A product-variant's master cube: its per-year cubes concatenated along time with HDF5 virtual datasets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .files import partial_path, utc_now

__all__ = ["build_master"]

_STR = h5py.string_dtype(encoding="utf-8")


def build_master(master_path: str | os.PathLike, year_paths: Sequence[str | os.PathLike]) -> Path:
    """Write an HDF5 master concatenating per-year cubes along T with virtual datasets.

    ``data``, ``headers`` and every ``frames/<column>`` become virtual datasets over the year files (in the order
    given), referenced by paths relative to the master's directory so the set of files can be moved together. All
    years must have the same frame shape and columns (ValueError otherwise); years with zero frames are skipped.
    The master's root attributes are those of the first year plus ``n_frames``, ``sources`` and ``created``. The
    master is written to a temporary file and renamed, like a cube.
    """
    master_path = Path(master_path)
    if not year_paths:
        raise ValueError("build_master needs at least one per-year cube")
    master_dir = master_path.parent.resolve()
    specs = []  # (relative path, n_frames)
    frame_shape = None
    columns: dict[str, np.dtype] | None = None
    root_attrs: dict[str, Any] = {}
    for year in year_paths:
        year = Path(year)
        with h5py.File(year, "r") as f:
            shape = f["data"].shape
            cols = {name: f["frames"][name].dtype for name in f["frames"]}
            if frame_shape is None:
                frame_shape, columns = shape[1:], cols
                root_attrs = dict(f.attrs)
            elif shape[1:] != frame_shape:
                raise ValueError(f"{year}: frame shape {shape[1:]} differs from {frame_shape}")
            elif cols.keys() != columns.keys():
                raise ValueError(f"{year}: metadata columns {sorted(cols)} differ from {sorted(columns)}")
        if shape[0]:
            specs.append((os.path.relpath(year.resolve(), master_dir), shape[0]))
    total = sum(n for _, n in specs)
    h, w = frame_shape

    def layout(name: str, dtype: Any, item_shape: tuple[int, ...]) -> h5py.VirtualLayout:
        lay = h5py.VirtualLayout(shape=(total, *item_shape), dtype=dtype)
        offset = 0
        for rel, n in specs:
            lay[offset : offset + n] = h5py.VirtualSource(rel, name, shape=(n, *item_shape))
            offset += n
        return lay

    def fill(dtype: Any) -> Any:
        return np.nan if np.dtype(dtype).kind == "f" else None  # vlen strings accept no fill value

    tmp = partial_path(master_path)
    master_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with h5py.File(tmp, "w", libver="latest") as f:
            if total:
                f.create_virtual_dataset("data", layout("data", np.float32, (h, w)), fillvalue=np.nan)
                f.create_virtual_dataset("headers", layout("headers", _STR, ()))
                group = f.create_group("frames")
                for name, dtype in columns.items():
                    group.create_virtual_dataset(name, layout(f"frames/{name}", dtype, ()), fillvalue=fill(dtype))
            else:  # nothing to point at: an empty but well-formed cube
                f.create_dataset("data", shape=(0, h, w), maxshape=(None, h, w), dtype=np.float32, chunks=(1, h, w))
                f.create_dataset("headers", shape=(0,), dtype=_STR)
                group = f.create_group("frames")
                for name, dtype in columns.items():
                    group.create_dataset(name, shape=(0,), dtype=dtype)
            for key, value in root_attrs.items():
                f.attrs[key] = value
            f["data"].attrs["units"] = str(root_attrs.get("units", "unknown"))
            f["data"].attrs["dims"] = "time,y,x"
            f.attrs["n_frames"] = total
            f.attrs["sources"] = [rel for rel, _ in specs]
            f.attrs["created"] = utc_now()
        os.replace(tmp, master_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return master_path
