"""Streaming frames, their metadata rows and header texts into one HDF5 cube, renamed into place when complete.

The file is written through a Python file object (h5py's ``fileobj`` driver) so that a failed write, a full disk
above all, is seen here: HDF5 meets most write errors while flushing its caches inside h5py's object
destructors, which can only print them (a hundred tracebacks per full disk, then a crash at exit). The first
failure is kept, later writes are dropped, and the writer raises one ``OSError`` naming the cube and removes its
partial file.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .files import TIME_COLUMNS, partial_path, software_versions, times_csv_path, utc_now

__all__ = ["CubeWriter"]

_STR = h5py.string_dtype(encoding="utf-8")


class _Sink:
    """The file HDF5 writes through: keeps the first failed write in ``error`` (then drops writes, so HDF5 goes on
    without an error of its own), and drops every write once ``discard`` is set (an aborted cube)."""

    def __init__(self, path: Path):
        self._file = open(path, "w+b")  # noqa: SIM115 - closed by close(), after HDF5 is done with it
        self.error: OSError | None = None
        self.discard = False

    def write(self, data) -> int:
        if self.error is None and not self.discard:
            try:
                return self._file.write(data)
            except OSError as exc:
                self.error = exc
        return len(memoryview(data))

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer) -> int:
        return self._file.readinto(buffer)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is not None or self.discard:
            return self._file.tell() if size is None else size
        try:
            return self._file.truncate(size)
        except OSError as exc:
            self.error = exc
            return self._file.tell() if size is None else size

    def flush(self) -> None:
        if self.error is None and not self.discard:
            try:
                self._file.flush()
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if self._file.closed:
            return
        self.flush()
        try:
            self._file.close()
        except OSError as exc:  # buffered bytes that found no room (dropped when discarding)
            if self.error is None and not self.discard:
                self.error = exc


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
        self._tmp = partial_path(self.path)
        self._sink: _Sink | None = None
        self._columns: dict[str, str] = {}
        self._times: list[tuple[str, str]] = []
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> CubeWriter:
        if self._file is not None or self._closed:
            raise RuntimeError("CubeWriter can be opened only once")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sink = _Sink(self._tmp)
        try:
            f = h5py.File(self._sink, "w", libver="latest")
        except BaseException:
            self._sink.close()
            self._tmp.unlink(missing_ok=True)
            raise
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
        root["created"] = utc_now()
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
        if self._sink is not None:
            self._sink.discard = True  # HDF5's closing flushes go nowhere: nothing can fail (or flood) on a full disk
        try:
            if self._file is not None:
                with contextlib.suppress(Exception):  # a file being thrown away: HDF5's complaints about it are moot
                    self._file.close()
        finally:
            self._file = None
            if self._sink is not None:
                self._sink.close()
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
            self._sink.close()
            self._raise_storage_error()
            csv_path = times_csv_path(self.path)
            csv_tmp = partial_path(csv_path)
            with open(csv_tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(TIME_COLUMNS)
                writer.writerows(self._times)
            os.replace(self._tmp, self.path)
            os.replace(csv_tmp, csv_path)
        except BaseException:
            self.abort()
            partial_path(times_csv_path(self.path)).unlink(missing_ok=True)
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

    def append(self, frame: np.ndarray, row: Mapping[str, Any], header) -> int:
        """Append one frame with its metadata row and header; returns its index along T.

        The frame is converted to float32 (never to an integer type); a :class:`~astropy.io.fits.Header` is stored
        as its cards joined by ``"\\n"`` (read back with ``fits.Header.fromstring(text, sep="\\n")``), a ``str``
        verbatim (:mod:`heliocube.dayframes` gives that text without astropy).
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
        self._raise_storage_error()
        self._times.append(tuple(str(values.get(col, "")) for col in TIME_COLUMNS))
        self.n_frames = i + 1
        return i

    def _raise_storage_error(self) -> None:
        """Raise the first failed write of the file (HDF5 met it while flushing its caches, where h5py can only
        print it) as one OSError naming the cube; the caller's abort then removes the partial file."""
        failure = self._sink.error if self._sink is not None else None
        if failure is not None:
            raise OSError(failure.errno, f"{failure.strerror or failure} while writing the cube {self.path} "
                          f"(its partial file {self._tmp.name} is removed)", str(self.path)) from None

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
