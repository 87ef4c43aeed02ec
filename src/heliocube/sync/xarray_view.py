"""An :class:`xarray.Dataset` view of a synced file, through h5py (``h5netcdf`` is not a dependency)."""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from ..cube import lazy_array
from .times import to_utc_times

__all__ = ["open_synced_xarray"]


def _strings(dataset: h5py.Dataset) -> np.ndarray:
    return np.asarray(dataset.asstr()[()], dtype=object)


def _naive_times(dataset: h5py.Dataset) -> np.ndarray:
    # xarray coordinates hold naive datetime64; every time in the file is UTC
    return to_utc_times(_strings(dataset)).tz_localize(None).to_numpy()


def _attr_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value


def open_synced_xarray(path: str | os.PathLike, *, load: bool = False):
    """Open a synced file as an :class:`xarray.Dataset`.

    Parameters
    ----------
    path : path-like
        A file written by :func:`~heliocube.sync.writer.write_synced`.
    load : bool
        Read every frame now and close the file; otherwise frames are read lazily (per indexed slice) and the
        file stays open until ``Dataset.close()`` (or the end of a ``with`` block).

    Returns
    -------
    xarray.Dataset
        One data variable per product, dims ``(time, y, x)`` (``(time, y_<product>, x_<product>)`` when frame
        shapes differ); coordinate ``time`` (UTC, naive datetime64) and per product ``<product>_obs_time``,
        ``<product>_dt_seconds``, ``<product>_source_index``, ``<product>_present`` and every
        ``<product>/frames/<col>`` as ``<product>_<col>`` (``previous_time`` and ``<product>_previous_*`` for
        running differences). Root attributes become ``Dataset.attrs``; header text is left in the file.
    """
    import xarray as xr

    f = h5py.File(path, "r")
    try:
        products = [str(p) for p in _attr_value(f.attrs["products"])]
        shapes = {f[p]["data"].shape[1:] for p in products}
        coords: dict[str, Any] = {"time": ("time", _naive_times(f["time"]))}
        if "previous_time" in f:
            coords["previous_time"] = ("time", _naive_times(f["previous_time"]))
        variables = {}
        for product in products:
            group = f[product]
            data = group["data"]
            dims = ("time", "y", "x") if len(shapes) == 1 else ("time", f"y_{product}", f"x_{product}")
            values = data[()] if load else lazy_array(data)
            variables[product] = xr.Variable(dims, values, attrs=dict(data.attrs))
            coords[f"{product}_obs_time"] = ("time", _naive_times(group["obs_time"]))
            for name in ("dt_seconds", "source_index", "present"):
                coords[f"{product}_{name}"] = ("time", group[name][()])
            _add_columns(coords, group["frames"], f"{product}_")
            if "previous" in group:
                prev = group["previous"]
                coords[f"{product}_previous_obs_time"] = ("time", _naive_times(prev["obs_time"]))
                coords[f"{product}_previous_source_index"] = ("time", prev["source_index"][()])
                _add_columns(coords, prev["frames"], f"{product}_previous_")
        attrs = {key: _attr_value(value) for key, value in f.attrs.items()}
        dataset = xr.Dataset(variables, coords=coords, attrs=attrs)
    except BaseException:
        f.close()
        raise
    if load:
        f.close()
    else:
        dataset.set_close(f.close)
    return dataset


def _add_columns(coords: dict[str, Any], frames: h5py.Group, prefix: str) -> None:
    for name, column in frames.items():
        key = f"{prefix}{name}"
        if key in coords:  # the parsed top-level obs_time wins over the cube's text column of the same name
            continue
        values = _strings(column) if h5py.check_string_dtype(column.dtype) else column[()]
        coords[key] = ("time", values)
