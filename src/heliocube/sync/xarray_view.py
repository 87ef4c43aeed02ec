"""An :class:`xarray.Dataset` view of a synced file, through h5py (``h5netcdf`` is not a dependency)."""

from __future__ import annotations

import os
from typing import Any

import h5py

from ..h5xarray import (
    file_attrs,
    hpc_coords,
    lazy_array,
    open_h5_view,
    read_column,
    read_hpc_axes,
    time_attrs,
    utc_times,
)

__all__ = ["open_synced_xarray"]


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
        shapes differ). Coordinates:

        - ``time``: the synced axis (datetime64, UTC; naive, as xarray requires);
        - ``<product>_x``, ``<product>_y``: helioprojective longitude and latitude (arcsec) of the product's
          pixel centres, from its frames' WCS (``x = CRVAL1 + CDELT1 * (i + 1 - CRPIX1)``, FITS 1-based CRPIX).
          Products differ in plate scale and pointing, so these are per product and not indexes of the shared
          pixel dims: 1-D along the product's x (y) dim when every frame has the same WCS within a tenth of a
          pixel, 2-D along ``time`` and that dim when it differs between frames (NaN in rows without a frame),
          absent when the frames are rotated or lack WCS keys. ``ds[product].attrs["hpc_coords"]`` says which
          case applies and why (see :mod:`heliocube.helioprojective`). Plot with
          ``ds["EIT195"].isel(time=0).plot(x="EIT195_x", y="EIT195_y")``;
        - per product ``<product>_obs_time``, ``<product>_dt_seconds``, ``<product>_source_index``,
          ``<product>_present`` and every ``<product>/frames/<col>`` as ``<product>_<col>`` (``previous_time``
          and ``<product>_previous_*`` for running differences, whose ``x``/``y`` are the current frame's).

        Root attributes become ``Dataset.attrs``; header text is left in the file.
    """
    return open_h5_view(path, _synced_dataset, load=load)


def _synced_dataset(f: h5py.File, load: bool):
    import xarray as xr

    products = [str(p) for p in file_attrs(f)["products"]]
    shapes = {f[p]["data"].shape[1:] for p in products}
    coords: dict[str, Any] = {"time": ("time", utc_times(read_column(f["time"])), time_attrs("synced axis time"))}
    if "previous_time" in f:
        coords["previous_time"] = ("time", utc_times(read_column(f["previous_time"])),
                                   time_attrs("axis time of the previous row (running difference)"))
    variables = {}
    for product in products:
        group = f[product]
        data = group["data"]
        dims = ("time", "y", "x") if len(shapes) == 1 else ("time", f"y_{product}", f"x_{product}")
        axes = read_hpc_axes(group["frames"], group["headers"], data.shape[1:], present=group["present"][()])
        coords.update(hpc_coords(axes, dims[1:], prefix=f"{product}_"))
        attrs = {**{k: v for k, v in data.attrs.items() if k != "dims"}, "hpc_coords": axes.note}
        variables[product] = xr.Variable(dims, data[()] if load else lazy_array(data), attrs=attrs)
        coords[f"{product}_obs_time"] = ("time", utc_times(read_column(group["obs_time"])))
        for name in ("dt_seconds", "source_index", "present"):
            coords[f"{product}_{name}"] = ("time", group[name][()])
        _add_columns(coords, group["frames"], f"{product}_")
        if "previous" in group:
            prev = group["previous"]
            coords[f"{product}_previous_obs_time"] = ("time", utc_times(read_column(prev["obs_time"])))
            coords[f"{product}_previous_source_index"] = ("time", prev["source_index"][()])
            _add_columns(coords, prev["frames"], f"{product}_previous_")
    return xr.Dataset(variables, coords=coords, attrs=file_attrs(f))


def _add_columns(coords: dict[str, Any], frames: h5py.Group, prefix: str) -> None:
    for name, column in frames.items():
        key = f"{prefix}{name}"
        if key in coords:  # the parsed top-level obs_time wins over the cube's text column of the same name
            continue
        coords[key] = ("time", read_column(column))
