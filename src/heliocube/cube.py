"""Per-product HDF5 cubes written by streaming frames, a virtual-dataset master, and an xarray view.

Layout of a cube file (readable with plain h5py)::

    /data            float32 (T, H, W), chunks (1, H, W), maxshape (None, H, W), gzip+shuffle by default;
                     attrs: units
    /frames/<col>    one 1-D dataset of length T per metadata column (slot_time, obs_time, dt, record id, url,
                     sha256, QC metrics, WCS keys...): strings are variable-length UTF-8, ints int64, floats
                     float64, bools bool
    /headers         variable-length UTF-8 (T,): the full FITS header text of each frame ("\\n"-separated cards)
    root attrs       variant, config_hash, units, created (UTC ISO), software versions (version_heliocube,
                     version_numpy, version_astropy, version_sunpy, version_h5py), frame_shape, n_frames, plus any
                     ``attrs`` given to :class:`CubeWriter`

:class:`CubeWriter` writes to a hidden temporary file beside the target and renames it on a successful close, so a
file at the target path is always complete; it also writes ``<stem>_times.csv`` (slot_time, obs_time) the same way.
Memory use does not depend on the number of frames (one frame plus small per-frame metadata columns).

:func:`build_master` concatenates per-year cubes with HDF5 virtual datasets (no data copied), so extending a range
rewrites only the affected year and the master. :func:`open_cube_xarray` opens a cube as a lazily indexed
:class:`xarray.Dataset` with time and helioprojective coordinates (through h5py: see :mod:`heliocube.h5xarray`).
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.io import fits

from .h5xarray import (
    file_attrs,
    hpc_coords,
    lazy_array,
    open_h5_view,
    read_column,
    read_hpc_axes,
    time_attrs,
    utc_times,
)

__all__ = [
    "CubeWriter",
    "build_master",
    "compression_options",
    "lazy_array",
    "open_cube_xarray",
    "software_versions",
    "times_csv_path",
]

_STR = h5py.string_dtype(encoding="utf-8")
_PACKAGES = ("heliocube", "numpy", "astropy", "sunpy", "h5py")
#: Columns copied to the times CSV.
TIME_COLUMNS = ("slot_time", "obs_time")


def software_versions() -> dict[str, str]:
    """Installed versions of the packages recorded in every cube (``version_<name>`` attributes)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compression_options(cube_config: Mapping) -> dict[str, Any]:
    """HDF5 filter keywords (``compression``, ``compression_opts``, ``shuffle``) from a config's ``cube`` section."""
    kind = cube_config.get("compression", "gzip")
    return {
        "compression": None if kind == "none" else kind,
        "compression_opts": int(cube_config.get("compression_level", 4)) if kind == "gzip" else None,
        "shuffle": bool(cube_config.get("shuffle", True)),
    }


def times_csv_path(path: str | os.PathLike) -> Path:
    """The times CSV written beside a cube: ``<dir>/<stem>_times.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_times.csv")


def _tmp_path(path: Path) -> Path:
    # hidden, and without the final suffix, so no glob for complete cubes picks it up
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def _column_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, (str, _dt.datetime, _dt.date, np.datetime64)):
        return "str"
    raise TypeError(f"unsupported metadata value {value!r} of type {type(value).__name__}")


_KIND_DTYPE = {"bool": np.dtype(bool), "int": np.dtype(np.int64), "float": np.dtype(np.float64), "str": _STR}


def _to_text(value: Any) -> str:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, (_dt.date, np.datetime64)):
        return str(value)
    return str(value)


class CubeWriter:
    """Stream frames into an HDF5 cube at ``path``; use as a context manager.

    Parameters
    ----------
    path : path-like
        Final cube path. Written to ``.<name>.partial-<pid>`` beside it and renamed on a successful close; an
        exception inside the ``with`` block (or :meth:`abort`) removes the temporary file and leaves ``path`` (and
        any previous file there) untouched.
    frame_shape : (int, int)
        (H, W) of every frame.
    compression, compression_opts, shuffle
        HDF5 filters of ``data`` (``compression=None`` for none).
    attrs : mapping, optional
        Extra root attributes; ``variant``, ``config_hash`` and ``units`` are expected here (empty / "unknown"
        when missing).

    Notes
    -----
    The metadata columns are fixed by the first row. A later row may omit a column or give ``None``: floats get
    NaN, strings "", bools False; an int column cannot be missing (ValueError). A column whose first value is
    ``None`` is stored as float. Unknown new keys raise ValueError. Datetimes are stored as ISO strings.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        frame_shape: tuple[int, int],
        *,
        compression: str | None = "gzip",
        compression_opts: int | None = 4,
        shuffle: bool = True,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        if len(self.frame_shape) != 2 or min(self.frame_shape) <= 0:
            raise ValueError(f"frame_shape must be two positive ints, got {frame_shape!r}")
        self.compression = compression
        self.compression_opts = compression_opts if compression == "gzip" else None
        self.shuffle = bool(shuffle)
        self.attrs = dict(attrs or {})
        self.n_frames = 0
        self._file: h5py.File | None = None
        self._tmp = _tmp_path(self.path)
        self._columns: dict[str, str] = {}
        self._times: list[tuple[str, str]] = []
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> CubeWriter:
        if self._file is not None or self._closed:
            raise RuntimeError("CubeWriter can be opened only once")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self._tmp, "w", libver="latest")
        self._file = f
        h, w = self.frame_shape
        data = f.create_dataset(
            "data",
            shape=(0, h, w),
            maxshape=(None, h, w),
            dtype=np.float32,
            chunks=(1, h, w),
            compression=self.compression,
            compression_opts=self.compression_opts,
            shuffle=self.shuffle,
            fillvalue=np.float32(np.nan),
        )
        f.create_group("frames")
        f.create_dataset("headers", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(256,))
        root = {"variant": "", "config_hash": "", "units": "unknown"}
        root.update(self.attrs)
        for name, ver in software_versions().items():
            root[f"version_{name}"] = ver
        root["created"] = _utc_now()
        root["frame_shape"] = np.array(self.frame_shape, dtype=np.int64)
        root["layout"] = "heliocube cube v1: data (T,H,W) float32; frames/<column> (T,); headers (T,)"
        for key, value in root.items():
            f.attrs[key] = value
        data.attrs["units"] = str(root["units"])
        data.attrs["dims"] = "time,y,x"
        return self

    def __enter__(self) -> CubeWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Discard everything written; leave ``path`` untouched."""
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
        self._tmp.unlink(missing_ok=True)
        self._closed = True

    def close(self) -> None:
        """Finish the file and atomically move it (and the times CSV) into place."""
        if self._closed:
            return
        if self._file is None:
            raise RuntimeError("CubeWriter was never opened")
        try:
            self._file.attrs["n_frames"] = self.n_frames
            self._file.close()
            self._file = None
            csv_path = times_csv_path(self.path)
            csv_tmp = _tmp_path(csv_path)
            with open(csv_tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(TIME_COLUMNS)
                writer.writerows(self._times)
            os.replace(self._tmp, self.path)
            os.replace(csv_tmp, csv_path)
        except BaseException:
            self.abort()
            _tmp_path(times_csv_path(self.path)).unlink(missing_ok=True)
            raise
        self._closed = True

    # -- writing -----------------------------------------------------------------------------------------------
    def set_attrs(self, **attrs: Any) -> None:
        """Set root attributes once their values are known (e.g. ``units`` from the first frame's header)."""
        if self._file is None:
            raise RuntimeError("CubeWriter is not open (use it as a context manager)")
        for key, value in attrs.items():
            self._file.attrs[key] = value
        if "units" in attrs:
            self._file["data"].attrs["units"] = str(attrs["units"])

    def declare_columns(self, example_row: Mapping[str, Any]) -> None:
        """Fix the metadata columns from an example row without appending a frame, so a cube that ends up with no
        frames still has every column (its master and readers then see one schema)."""
        if self._file is None:
            raise RuntimeError("CubeWriter is not open (use it as a context manager)")
        if not self._columns:
            self._prepare_row(example_row)

    def append(self, frame: np.ndarray, row: Mapping[str, Any], header: fits.Header | str) -> int:
        """Append one frame with its metadata row and header; returns its index along T.

        The frame is converted to float32 (never to an integer type); a :class:`~astropy.io.fits.Header` is stored
        as its cards joined by ``"\\n"`` (read back with ``fits.Header.fromstring(text, sep="\\n")``), a ``str``
        verbatim.
        """
        if self._file is None:
            raise RuntimeError("CubeWriter is not open (use it as a context manager)")
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} does not match the cube's {self.frame_shape}")
        if frame.dtype.kind not in "biuf":
            raise ValueError(f"frames must be real numbers, got dtype {frame.dtype}")
        values = self._prepare_row(row)
        text = header if isinstance(header, str) else header.tostring(sep="\n", endcard=False, padding=False)
        i = self.n_frames
        f = self._file
        data = f["data"]
        data.resize(i + 1, axis=0)
        data[i] = frame.astype(np.float32, copy=False)  # converted, never cast to an integer type
        headers = f["headers"]
        headers.resize(i + 1, axis=0)
        headers[i] = text
        group = f["frames"]
        for name, value in values.items():
            ds = group[name]
            ds.resize(i + 1, axis=0)
            ds[i] = value
        self._times.append(tuple(str(values.get(col, "")) for col in TIME_COLUMNS))
        self.n_frames = i + 1
        return i

    def _prepare_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        group = self._file["frames"]
        if not self._columns:  # first row fixes the columns
            for name, value in row.items():
                if "/" in str(name):
                    raise ValueError(f"metadata column names cannot contain '/': {name!r}")
                kind = "float" if value is None else _column_kind(value)
                self._columns[str(name)] = kind
                group.create_dataset(str(name), shape=(0,), maxshape=(None,), dtype=_KIND_DTYPE[kind], chunks=(1024,))
        extra = set(map(str, row)) - set(self._columns)
        if extra:
            raise ValueError(f"metadata columns {sorted(extra)} were not in the first row {sorted(self._columns)}")
        values = {}
        for name, kind in self._columns.items():
            value = row.get(name)
            if value is None:
                if kind == "int":
                    raise ValueError(f"integer metadata column {name!r} is missing or None")
                value = {"float": np.nan, "str": "", "bool": False}[kind]
            elif kind == "str":
                value = _to_text(value)
            elif kind == "float":
                value = float(value)
            elif kind == "int":
                if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                    raise ValueError(f"integer metadata column {name!r} got {value!r}")
                value = int(value)
            else:
                value = bool(value)
            values[name] = value
        return values


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

    tmp = _tmp_path(master_path)
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
            f.attrs["created"] = _utc_now()
        os.replace(tmp, master_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return master_path


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
