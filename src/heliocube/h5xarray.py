"""The parts shared by the xarray views of cubes and synced files: lazy h5py arrays, columns, times, open/close.

xarray has no h5py backend installed here (``h5netcdf`` is not a dependency, so
``xarray.open_dataset(path, engine="h5netcdf")`` is unavailable): the views build an :class:`xarray.Dataset` from
h5py objects themselves, with :func:`open_h5_view` owning the file's lifetime.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import h5py
import numpy as np

from .helioprojective import LINEAR_KEYS, HelioprojectiveAxes, helioprojective_axes

__all__ = [
    "attr_value",
    "file_attrs",
    "hpc_coords",
    "lazy_array",
    "open_h5_view",
    "read_column",
    "read_hpc_axes",
    "time_attrs",
    "utc_times",
]


def lazy_array(dataset: h5py.Dataset):
    """An xarray-indexable view of an h5py dataset that reads only the slices indexed (for lazy Datasets)."""
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class _H5Array(BackendArray):
        def __init__(self, ds: h5py.Dataset) -> None:
            self.ds = ds
            self.shape = ds.shape
            self.dtype = ds.dtype

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR,
                                                      self._raw)

        def _raw(self, key):
            return np.asarray(self.ds[key])

    return indexing.LazilyIndexedArray(_H5Array(dataset))


def read_column(dataset: h5py.Dataset) -> np.ndarray:
    """A whole 1-D dataset: variable-length strings as an object array of ``str``, anything else as stored."""
    if h5py.check_string_dtype(dataset.dtype) is not None:
        return np.asarray(dataset.asstr()[()], dtype=object)
    return np.asarray(dataset[()])


def utc_times(values: np.ndarray) -> np.ndarray:
    """ISO strings (UTC, with or without ``Z``/``+00:00``) as naive ``datetime64[ns]``; empty or invalid -> NaT.

    xarray indexes only naive datetime64, so the UTC zone is dropped here and stated in :func:`time_attrs`.
    """
    from .sync.times import to_utc_times

    return to_utc_times(np.asarray(values, dtype=object)).tz_localize(None).to_numpy()


def time_attrs(description: str) -> dict[str, str]:
    """Attributes of a ``time`` coordinate: what the time is, and that it is UTC (datetime64 has no zone)."""
    return {"long_name": description, "time_zone": "UTC"}


def attr_value(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (arrays become lists, bytes become ``str``)."""
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value.decode() if isinstance(value, bytes) else value


def file_attrs(obj: h5py.File | h5py.Group | h5py.Dataset) -> dict[str, Any]:
    """Every attribute of ``obj`` through :func:`attr_value`."""
    return {key: attr_value(value) for key, value in obj.attrs.items()}


def read_hpc_axes(frames: h5py.Group, headers: h5py.Dataset, frame_shape: tuple[int, int], *,
                  present: np.ndarray | None = None) -> HelioprojectiveAxes:
    """:func:`~heliocube.helioprojective.helioprojective_axes` of frames stored as ``frames/<KEY>`` + ``headers``.

    Only the WCS columns and the first present frame's header are read.
    """
    columns = {key: frames[key][()] for key in (*LINEAR_KEYS, "CROTA2") if key in frames}
    rows = np.ones(len(headers), dtype=bool) if present is None else np.asarray(present, dtype=bool)
    header = headers.asstr()[int(np.argmax(rows))] if rows.any() else None
    return helioprojective_axes(columns, frame_shape, present=present, first_header=header)


def hpc_coords(axes: HelioprojectiveAxes, pixel_dims: tuple[str, str], prefix: str = "") -> dict[str, Any]:
    """xarray coordinates ``{prefix}x``/``{prefix}y`` (arcsec) of ``axes`` along ``pixel_dims`` (y dim, x dim),
    with ``time`` first when they are per frame; empty when there are none."""
    if axes.x is None:
        return {}
    lead = ("time",) if axes.per_frame else ()
    ydim, xdim = pixel_dims
    what = "of the pixel centres (linear from the frame WCS)"
    return {
        f"{prefix}x": ((*lead, xdim), axes.x, {"units": "arcsec", "long_name": f"helioprojective Tx {what}"}),
        f"{prefix}y": ((*lead, ydim), axes.y, {"units": "arcsec", "long_name": f"helioprojective Ty {what}"}),
    }


def open_h5_view(path: str | os.PathLike, build: Callable[[h5py.File, bool], Any], *, load: bool):
    """Open ``path`` read-only and return ``build(file, load)`` (an :class:`xarray.Dataset`).

    With ``load=True`` the file is closed before returning (``build`` must have read everything it needs);
    otherwise it stays open until ``Dataset.close()`` (or the end of a ``with`` block). It is closed at once when
    ``build`` raises.
    """
    f = h5py.File(path, "r")
    try:
        dataset = build(f, load)
    except BaseException:
        f.close()
        raise
    if load:
        f.close()
    else:
        dataset.set_close(f.close)
    return dataset
