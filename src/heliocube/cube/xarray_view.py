"""A cube (or master) opened as a lazily indexed :class:`xarray.Dataset` with time and helioprojective
coordinates."""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

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

__all__ = ["lazy_array", "open_cube_xarray"]


def open_cube_xarray(path: str | os.PathLike, *, load: bool = False):
    """Open a cube (or master) as an :class:`xarray.Dataset` through h5py.

    Parameters
    ----------
    path : path-like
        A cube written by :class:`CubeWriter` or a master from :func:`build_master`.
    load : bool
        Read every frame now and close the file; otherwise ``data`` is read lazily (per indexed slice) and the
        HDF5 file stays open until ``Dataset.close()`` (also called by the ``with`` statement).

    Returns
    -------
    xarray.Dataset
        ``data`` (float32) with dims ``(time, y, x)`` and coordinates:

        - ``time``: ``frames/slot_time`` as datetime64 (UTC; naive, as xarray requires; the frame index when the
          cube has no such column), and ``slot_time`` as the stored text;
        - ``x``, ``y``: helioprojective longitude and latitude (arcsec) of the pixel centres, from the frames'
          WCS (``x = CRVAL1 + CDELT1 * (i + 1 - CRPIX1)``, FITS 1-based CRPIX) when every frame has the same WCS
          within a tenth of a pixel, so ``ds.sel(x=0, y=0, method="nearest")`` finds the disk centre. When the
          WCS differs between frames (the disk centre drifts), the pixel dims are ``(time, y_pix, x_pix)`` and
          ``x(time, x_pix)``, ``y(time, y_pix)`` hold each frame's own coordinates (for plotting:
          ``ds.data.isel(time=0).plot(x="x", y="y")``). Rotated frames (``CROTA2`` moving a pixel by more than
          a tenth of a pixel) or frames without WCS keys get no ``x``/``y``;
        - every other ``frames/<col>`` along ``time`` (strings as Python ``str``).

        ``data.attrs["hpc_coords"]`` says which case applies and why (see
        :mod:`heliocube.helioprojective`); root attributes become ``Dataset.attrs``. Per-frame header text is not
        included (read ``/headers`` with h5py).
    """
    return open_h5_view(path, _cube_dataset, load=load)


def _cube_dataset(f: h5py.File, load: bool):
    import xarray as xr

    dset = f["data"]
    coords: dict[str, Any] = {}
    for name, col in f["frames"].items():
        values = read_column(col)
        if name == "slot_time":
            coords["time"] = ("time", utc_times(values), time_attrs("slot time: the grid time the frame fills"))
        coords[name] = ("time", values)
    if "time" not in coords:
        coords["time"] = ("time", np.arange(dset.shape[0]))
    axes = read_hpc_axes(f["frames"], f["headers"], dset.shape[1:])
    dims = ("time", "y_pix", "x_pix") if axes.per_frame else ("time", "y", "x")
    coords.update(hpc_coords(axes, dims[1:]))
    # the file's "dims" attribute names the stored layout; the view's dims are the Variable's own
    attrs = {**{k: v for k, v in dset.attrs.items() if k != "dims"}, "hpc_coords": axes.note}
    data = dset[()] if load else lazy_array(dset)
    return xr.Dataset({"data": xr.Variable(dims, data, attrs=attrs)}, coords=coords, attrs=file_attrs(f))
