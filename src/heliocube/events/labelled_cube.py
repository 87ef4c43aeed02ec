"""Labelled HDF5 cubes of sampled event frames (``events.h5`` over all events, ``per_event/{event_id}.h5``).

Layout (every 1-D dataset has one row per frame, in the order of ``frames``)::

    /frames          float32 (N, H, W), one frame per chunk, gzip + shuffle; attrs dims="frame,y,x", units
    /time            observation time, ISO 8601 UTC ``YYYY-MM-DDTHH:MM:SS.sss`` (attr scale="utc")
    /label           int8, 1 = flare, 0 = pre- or post-flare (the targets)
    /phase           "pre", "flare" or "post"
    /event_id        the event the frame belongs to (its owner, see heliocube.events.partition)
    /goes_class      that event's GOES class
    /product         registry product name (e.g. AIA131)
    /filename        the frame's name in labels.csv (JSOC's export name of its record)
    /provenance/record, /provenance/sha256, /provenance/file, /provenance/hdu
                     archive record, SHA-256 from the frame table, cleaned FITS path relative to the output root
                     and its HDU (0: the file's first image HDU)
    root attrs       name, n_frames, frame_shape, label_meaning, phases, events, products, settings (JSON), versions

Read it with plain ``h5py`` (``f["frames"][i]``, ``f["label"][:]``) or :class:`heliocube.ml.EventDataset`.
Files are written without HDF5 timestamps, so the same selection gives the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from astropy.io import fits

from ..frameio import blank_to_nan, read_frame
from ..paths import atomic_path

__all__ = ["COLUMNS", "PROVENANCE", "LabelledCubeWriter", "read_cleaned_frame"]

#: 1-D per-frame datasets (root) and provenance datasets (under ``provenance/``), from the sampled-frame table.
COLUMNS = ("time", "label", "phase", "event_id", "goes_class", "product", "filename")
PROVENANCE = ("record", "sha256", "file", "hdu")
_TEXT = h5py.string_dtype()
LABEL_MEANING = "1 = flare (start <= t <= end), 0 = pre-flare or post-flare"


def read_cleaned_frame(root: str | os.PathLike, file: str, hdu: int = 0) -> tuple[np.ndarray, fits.Header]:
    """A cleaned frame as float32 (NaN where missing) and its header.

    ``hdu`` 0 reads the file's first image HDU with :func:`heliocube.frameio.read_frame` (a per-frame file); a
    positive ``hdu`` reads that extension of a multi-frame file (the clean stage's day files, index column ``hdu``).
    """
    path = Path(root, file)
    if hdu:
        with fits.open(path, memmap=False) as hdul:
            if hdu >= len(hdul) or hdul[hdu].data is None:
                raise ValueError(f"{path}: no image in HDU {hdu}")
            data, header = np.asarray(hdul[hdu].data), hdul[hdu].header.copy()
    else:
        data, header = read_frame(path)
    data = blank_to_nan(data, header)
    if data.ndim != 2:
        raise ValueError(f"{path}: HDU {hdu} holds a {data.ndim}-D array, expected one 2-D frame")
    return np.asarray(data, dtype=np.float32), header


def _text(values) -> np.ndarray:
    return np.array([str(value) for value in values], dtype=object)


class LabelledCubeWriter:
    """Write the frames of a sampled-frame table into a labelled cube at ``path`` (atomically: on success only).

    Parameters
    ----------
    path : path-like
        The cube file.
    table : pandas.DataFrame
        One row per frame, in file order: ``time`` (Timestamp), ``label``, ``owner_phase`` (written as ``phase``),
        ``owner_event`` (as ``event_id``), ``goes_class``, ``product``, ``filename``, ``record``, ``sha256``,
        ``file``, ``hdu``.
    frame_shape : (int, int)
        (H, W) of every frame; (0, 0) when there is none.
    attrs : mapping
        Root attributes (JSON-encoded when not a plain str/int/float or list of str).
    """

    def __init__(self, path: str | os.PathLike, table: pd.DataFrame, frame_shape: Sequence[int],
                 attrs: Mapping) -> None:  # fmt: skip
        self.path = Path(path)
        self.table = table.reset_index(drop=True)
        self.shape = tuple(int(size) for size in frame_shape)
        self.attrs = dict(attrs)
        self._context = None
        self._file: h5py.File | None = None
        self.written = 0

    def __enter__(self) -> LabelledCubeWriter:
        self._context = atomic_path(self.path)
        tmp = self._context.__enter__()
        # track_order off and no timestamps: the bytes depend only on the contents
        self._file = h5py.File(tmp, "w", libver=("earliest", "v110"), track_order=False)
        f, n, (h, w) = self._file, len(self.table), self.shape
        if n and h and w:
            frames = f.create_dataset("frames", shape=(n, h, w), dtype=np.float32, chunks=(1, h, w),
                                      compression="gzip", compression_opts=4, shuffle=True, track_times=False,
                                      fillvalue=np.nan)  # fmt: skip
        else:
            frames = f.create_dataset("frames", shape=(n, h, w), dtype=np.float32, track_times=False)
        frames.attrs["dims"] = "frame,y,x"
        frames.attrs["units"] = str(self.attrs.pop("units", ""))
        table = self.table
        times = table["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] if n else []
        columns = {"time": _text(times), "label": table["label"].to_numpy(dtype=np.int8),
                   "phase": _text(table["owner_phase"]), "event_id": _text(table["owner_event"]),
                   "goes_class": _text(table["goes_class"]), "product": _text(table["product"]),
                   "filename": _text(table["filename"])}  # fmt: skip
        for name, values in columns.items():
            dtype = np.int8 if name == "label" else _TEXT
            f.create_dataset(name, data=np.asarray(values, dtype=dtype if name == "label" else object), dtype=dtype,
                             shape=(n,), track_times=False)
        f["time"].attrs["scale"] = "utc"
        f["label"].attrs["meaning"] = LABEL_MEANING
        group = f.create_group("provenance", track_order=False)
        for name in PROVENANCE:
            if name == "hdu":
                group.create_dataset(name, data=table[name].to_numpy(dtype=np.int64), shape=(n,), dtype=np.int64,
                                     track_times=False)
            else:
                group.create_dataset(name, data=_text(table[name]), shape=(n,), dtype=_TEXT, track_times=False)
        for key, value in self.attrs.items():
            plain = isinstance(value, str | int | float) or (
                isinstance(value, list | tuple) and all(isinstance(item, str) for item in value))
            f.attrs[key] = (list(value) if isinstance(value, tuple) else value) if plain else json.dumps(
                value, sort_keys=True)
        f.attrs["n_frames"] = n
        f.attrs["frame_shape"] = list(self.shape)
        f.attrs["label_meaning"] = LABEL_MEANING
        return self

    def write(self, row: int, frame: np.ndarray) -> None:
        """Store the frame of table row ``row``."""
        if frame.shape != self.shape:
            raise ValueError(f"{self.table.loc[row, 'file']}: frame shape {frame.shape}, the dataset's frames are "
                             f"{self.shape}; an event dataset needs one frame size (one variant)")
        self._file["frames"][row] = frame
        self.written += 1

    def copy(self, row: int, source: LabelledCubeWriter, source_row: int) -> None:
        """Store the frame ``source`` holds at ``source_row`` as table row ``row``, copying its compressed chunk
        (both files have the same chunks and filters: a frame is compressed once, not once per file)."""
        if source.shape != self.shape:
            raise ValueError(f"{self.table.loc[row, 'file']}: frame shape {source.shape}, the dataset's frames are "
                             f"{self.shape}; an event dataset needs one frame size (one variant)")
        mask, chunk = source._file["frames"].id.read_direct_chunk((source_row, 0, 0))
        self._file["frames"].id.write_direct_chunk((row, 0, 0), chunk, mask)
        self.written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._file.close()
        if exc_type is None and self.written != len(self.table):
            exc = RuntimeError(f"{self.path}: {self.written} of {len(self.table)} frames written")
            self._context.__exit__(type(exc), exc, None)
            raise exc
        self._context.__exit__(exc_type, exc, tb)
