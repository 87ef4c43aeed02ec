"""Warm, cached readers of the built datasets under an output root, for the read API.

What the API reads, and only this (paths relative to ROOT, every name taken from a directory listing, never from a
request):

- ``cubes/{variant}/{product}/{year}.h5``: images and their per-frame table (:mod:`heliocube.cube`);
- ``params/{variant}/{product}/{year}.h5``: the image parameters, frame i of the cube's year (issue 16 layout:
  ``params`` (T, G, G, 10), ``frames/<column>``, ``time``);
- ``events/{name}/events.csv``: the kept events of each event dataset.

A :class:`Series` is every frame of one (kind, variant, product) across its years, in time order. It is built once
and kept while its files are unchanged (same names, sizes and modification times, checked with one ``stat`` per file
per request); the HDF5 files stay open, so a request reads only the frames it returns.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..h5xarray import read_column, utc_times

__all__ = ["KINDS", "Catalog", "RequestError", "Series"]

#: The two per-frame dataset kinds: their directory under ROOT.
KINDS = ("cubes", "params")
#: Names a directory may have to be served (variant, product, year, event dataset).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: Used when a file records no cadence and holds a single frame (the seed's cadence).
_DEFAULT_CADENCE = np.timedelta64(6, "m")
#: Bytes of decoded chunks kept per open parameter file (filled only by what is read): a 100-frame page of
#: 64x64x10 float32 is 16 MiB, so a page asked again, or the next page of a series, is not decompressed again.
PARAMS_CHUNK_CACHE = 32 * 2**20


class RequestError(LookupError):
    """A request the data cannot answer; ``parameter`` names the query parameter at fault, ``status`` the HTTP
    status (404 when the data do not exist, 422 when the request is malformed)."""

    def __init__(self, parameter: str, message: str, status: int = 404) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.status = status


def _listed(directory: Path, suffix: str = "") -> list[str]:
    """Servable names in ``directory`` (plain files or directories, no hidden or partial files), sorted."""
    try:
        entries = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in entries:
        stem = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else None if suffix else name
        if stem is not None and _NAME.match(name) and not (directory / name).is_symlink():
            out.append(stem)
    return out


@dataclass
class Series:
    """Every frame of one (kind, variant, product), over its year files, in time order."""

    kind: str
    variant: str
    product: str
    files: list[Path]
    times: np.ndarray  # datetime64[ns], sorted
    file_index: np.ndarray  # which of ``files`` holds each frame
    frame_index: np.ndarray  # the frame's row in that file
    cadence: np.timedelta64
    signature: tuple
    handles: list[h5py.File] = field(default_factory=list, repr=False)
    columns: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    datasets: dict[tuple[int, str], h5py.Dataset] = field(default_factory=dict, repr=False)

    def nearest(self, time: np.datetime64, tolerance: np.timedelta64) -> int:
        """Position of the frame nearest ``time``; RequestError naming ``time`` when none is within ``tolerance``."""
        if len(self.times) == 0:
            raise RequestError("time", f"{self.kind}/{self.variant}/{self.product} holds no frames")
        i = int(np.searchsorted(self.times, time))
        candidates = [j for j in (i - 1, i) if 0 <= j < len(self.times)]
        best = min(candidates, key=lambda j: abs(self.times[j] - time))
        if abs(self.times[best] - time) > tolerance:
            raise RequestError("time", f"no {self.product} frame in {self.kind}/{self.variant} within "
                               f"{tolerance / np.timedelta64(1, 's'):g} s of {_iso(time)} (nearest: "
                               f"{_iso(self.times[best])}); widen it with tolerance=SECONDS")
        return best

    def between(self, start: np.datetime64, end: np.datetime64) -> np.ndarray:
        """Positions of the frames with ``start <= time <= end``."""
        lo, hi = np.searchsorted(self.times, start, "left"), np.searchsorted(self.times, end, "right")
        return np.arange(lo, hi)

    def locate(self, position: int) -> tuple[h5py.File, int]:
        """The open file holding the frame at ``position``, and its row there."""
        return self.handles[int(self.file_index[position])], int(self.frame_index[position])

    def time_text(self, position: int) -> str:
        return _iso(self.times[position])

    def read(self, dataset: str, positions: np.ndarray) -> np.ndarray:
        """``dataset`` rows of the frames at ``positions`` (in that order), one contiguous read per file."""
        positions = np.asarray(positions, dtype=int)
        first = self.dataset(0, dataset) if self.handles else None
        if first is None or len(positions) == 0:
            shape = (0, *first.shape[1:]) if first is not None else (0,)
            return np.empty(shape, dtype=first.dtype if first is not None else np.float32)
        out = np.empty((len(positions), *first.shape[1:]), dtype=first.dtype)
        for f in np.unique(self.file_index[positions]):
            mask = self.file_index[positions] == f
            rows = self.frame_index[positions][mask]
            lo, hi = int(rows.min()), int(rows.max()) + 1
            source = self.dataset(int(f), dataset)
            if hi - lo <= 2 * len(rows):  # a slice is one HDF5 read; sparse steps read row by row
                out[mask] = source[lo:hi][rows - lo]
            else:
                out[mask] = np.stack([source[r] for r in rows])
        return out

    def dataset(self, file: int, name: str) -> h5py.Dataset:
        """``name`` in the series' ``file``-th file, kept open: HDF5's chunk cache lives with the open dataset."""
        key = (file, name)
        if key not in self.datasets:
            self.datasets[key] = self.handles[file][name]
        return self.datasets[key]

    def column(self, name: str, positions: np.ndarray) -> np.ndarray | None:
        """The per-frame column ``frames/<name>`` at ``positions``; None when a file does not record it.

        A column is read whole once (a few bytes per frame) and kept with the series.
        """
        if name not in self.columns:
            key = f"frames/{name}"
            if not self.handles or not all(key in h for h in self.handles):
                self.columns[name] = None
            else:
                parts = [read_column(h[key]) for h in self.handles]
                self.columns[name] = np.concatenate(parts)[self._offsets[self.file_index] + self.frame_index]
        column = self.columns[name]
        return None if column is None else column[np.asarray(positions, dtype=int)]

    @property
    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(h["data" if "data" in h else "params"]) for h in self.handles])])

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def _iso(time: np.datetime64) -> str:
    return str(np.datetime64(time, "ms")).rstrip("Z")


def _frame_times(handle: h5py.File) -> np.ndarray:
    """Observation times of a cube or parameter file (``frames/obs_time``, else ``frames/slot_time``, else
    ``time``), as datetime64[ns]; frames without one are NaT."""
    for name in ("frames/obs_time", "frames/slot_time", "time"):
        if name in handle:
            values = read_column(handle[name])
            if values.dtype.kind in "iuf":  # a numeric time encoding: seconds since the Unix epoch
                return (values.astype("float64") * 1e9).astype("int64").astype("datetime64[ns]")
            return utc_times(values)
    return np.full(handle["data" if "data" in handle else "params"].shape[0], np.datetime64("NaT"), "datetime64[ns]")


def _cadence(handles: list[h5py.File], times: np.ndarray) -> np.timedelta64:
    for handle in handles:
        text = handle.attrs.get("cadence")
        if text:
            try:
                return np.timedelta64(pd.Timedelta(str(text.decode() if isinstance(text, bytes) else text)))
            except ValueError:
                pass
    steps = np.diff(times)
    return np.median(steps) if len(steps) else _DEFAULT_CADENCE


class Catalog:
    """The datasets under ``root``, with cached :class:`Series`; safe to share between request threads."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self._series: dict[tuple[str, str, str], Series] = {}
        self._lock = threading.RLock()  # a parameter series asks for its cube's

    # listings: every name comes from the file system, so a request can only select what is there
    def variants(self, kind: str, product: str | None = None) -> list[str]:
        names = _listed(self.root / kind)
        return [v for v in names if product is None or self._files(kind, v, product)]

    def products(self, kind: str) -> list[str]:
        return sorted({p for v in _listed(self.root / kind) for p in _listed(self.root / kind / v)
                       if self._files(kind, v, p)})

    def _files(self, kind: str, variant: str, product: str) -> list[Path]:
        directory = self.root / kind / variant / product
        return [directory / f"{year}.h5" for year in _listed(directory, ".h5") if year.isdigit()]

    def resolve_product(self, kind: str, channel: str) -> str:
        """The product a request's ``channel`` names: a product name (any case) or an AIA wavelength (``171``)."""
        products = self.products(kind)
        wanted = f"AIA{channel}" if channel.isdigit() else channel
        for product in products:
            if product.lower() == wanted.lower():
                return product
        raise RequestError("channel", f"unknown channel {channel!r}; {kind} exist for: {', '.join(products) or 'none'}")

    def resolve_variant(self, kind: str, product: str, variant: str | None) -> str:
        """``variant`` when it holds ``product``; by default the one with the largest frames (then by name)."""
        variants = self.variants(kind, product)
        if variant is not None:
            if variant not in variants:
                raise RequestError("variant", f"unknown variant {variant!r} for {product} {kind}; available: "
                                   f"{', '.join(variants)}")
            return variant
        if kind == "cubes":
            return max(variants, key=lambda v: (self._frame_size(v, product), v))
        cube_variants = set(self.variants("cubes", product))
        return max(variants, key=lambda v: (self._frame_size(v, product) if v in cube_variants else 0, v))

    def _frame_size(self, variant: str, product: str) -> int:
        return int(self.series("cubes", variant, product).handles[0]["data"].shape[-1])

    def series(self, kind: str, variant: str, product: str) -> Series:
        """The cached :class:`Series`, rebuilt when its files changed."""
        files = self._files(kind, variant, product)
        for path in files:  # names come from listings; this only guards symlinked directories
            if not path.resolve().is_relative_to(self.root):
                raise RequestError("variant", f"{variant}/{product} is outside the served root", status=403)
        signature = tuple((p.name, *(lambda s: (s.st_size, s.st_mtime_ns))(p.stat())) for p in files)
        key = (kind, variant, product)
        with self._lock:
            cached = self._series.get(key)
            if cached is not None and cached.signature == signature:
                return cached
            if cached is not None:
                cached.close()
            series = self._build(kind, variant, product, files, signature)
            if kind == "params" and self._files("cubes", variant, product):
                series.cadence = self.series("cubes", variant, product).cadence  # parameter files record none
            self._series[key] = series
            return series

    @staticmethod
    def _build(kind, variant, product, files, signature) -> Series:
        # parameter files: a chunk cache that holds a page of decoded 64x64x10 frames (HDF5's default is 1 MiB)
        cache = {"rdcc_nbytes": PARAMS_CHUNK_CACHE, "rdcc_nslots": 10007} if kind == "params" else {}
        handles = [h5py.File(p, "r", **cache) for p in files]
        times = [_frame_times(h) for h in handles]
        all_times = np.concatenate(times) if times else np.empty(0, "datetime64[ns]")
        file_index = np.concatenate([np.full(len(t), i) for i, t in enumerate(times)]) if times else np.empty(0, int)
        frame_index = np.concatenate([np.arange(len(t)) for t in times]) if times else np.empty(0, int)
        keep = ~np.isnat(all_times)
        order = np.argsort(all_times[keep], kind="stable")
        sorted_times = all_times[keep][order]
        return Series(kind, variant, product, list(files), sorted_times, file_index[keep][order],
                      frame_index[keep][order], _cadence(handles, sorted_times), signature, handles)

    def event_tables(self) -> dict[str, Path]:
        """``{name: events.csv}`` of every event dataset (empty when the event stage has not run)."""
        out = {}
        for name in _listed(self.root / "events"):
            path = self.root / "events" / name / "events.csv"
            if path.is_file() and path.resolve().is_relative_to(self.root):
                out[name] = path
        return out

    def close(self) -> None:
        with self._lock:
            for series in self._series.values():
                series.close()
            self._series.clear()
