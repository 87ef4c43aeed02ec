"""Write a synced experiment: one HDF5 file (+ a times CSV), streamed frame by frame, renamed into place.

Layout (plain h5py; N synced rows, products in ``attrs["products"]`` order)::

    /time                      str (N,)   UTC axis time of each row, 'YYYY-MM-DDTHH:MM:SS'
    /previous_time             str (N,)   axis time of the predecessor row (running difference only)
    /ledger/{product,time,reason,dropped}  one entry per (product, axis time) without a usable frame; an axis
                                          time is a row or appears here with dropped=True
    /<product>/data            float32 (N, H, W), chunks (1, H, W), gzip+shuffle by default, fill NaN; a byte-
                               equal copy of the source cube row (a running difference for difference products)
    /<product>/obs_time        str (N,)   observation time of the frame ('' where absent)
    /<product>/dt_seconds      float64 (N,)  |obs_time - time| (NaN where absent)
    /<product>/source_index    int64 (N,) row in the source cube (-1 where absent)
    /<product>/present         bool (N,)  False only in rows kept with keep_missing=True (data NaN there)
    /<product>/frames/<col>    every per-frame column of the source cube at source_index, same dtype (NaN, -1,
                               False or '' where absent)
    /<product>/headers         str (N,)   full FITS header text of the frame ('\\n'-separated cards)
    /<product>/previous/{source_index,obs_time,dt_seconds,frames/<col>}  the predecessor frame of a difference
                               product (dt_seconds relative to previous_time)
    root attrs                 experiment, products, difference_products, step, tolerance, max_gap (text and
                               *_seconds), keep_missing, range_start, range_finish, axis_length, n_rows,
                               n_dropped_rows, config_hash, units (aligned with products), created, layout,
                               version_<package>, plus any extra ``attrs``
    /<product> attrs           units, source_cube, source_variant, source_config_hash, source_n_frames,
                               difference, n_present, n_dropped, cadence (+ cadence_seconds; NaN if not given)

Memory does not grow with the number of frames beyond the per-frame metadata columns (a few bytes to a few tens
of bytes per frame and column): frames and headers are read and written one at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ..cube import software_versions
from ..timegrid import format_duration
from .framecopy import FrameSource, chunk_signature
from .matching import MISSING_FRAME, SyncTable
from .times import as_timedelta, iso_seconds

__all__ = ["LAYOUT", "synced_csv_path", "write_synced"]

LAYOUT = (
    "heliocube synced v1: time (N,); <product>/data (N,H,W) float32; <product>/{obs_time,dt_seconds,source_index,"
    "present,headers} (N,); <product>/frames/<col> (N,); ledger/*"
)
_STR = h5py.string_dtype(encoding="utf-8")


def synced_csv_path(path: str | os.PathLike) -> Path:
    """The times CSV written beside a synced file: same name with ``.csv``."""
    return Path(path).with_suffix(".csv")


def partial_path(path: Path) -> Path:
    # hidden and pid-tagged, like the cube writer's, so no glob for finished outputs matches it
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic_outputs(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """Yield temporary paths beside ``paths``; rename them all (the first one last) only if the block succeeds.

    Unlike :func:`heliocube.paths.atomic_path` the temporary files are created by the writer itself, so the
    final files get the usual umask permissions rather than ``mkstemp``'s 0600.
    """
    temps = tuple(partial_path(path) for path in paths)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
        for temp, path in reversed(list(zip(temps, paths, strict=True))):
            os.replace(temp, path)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)


def _duration_text(delta: pd.Timedelta | None) -> str:
    if delta is None:
        return ""
    seconds = delta.total_seconds()
    return format_duration(dt.timedelta(seconds=seconds)) if float(seconds).is_integer() else f"{seconds}s"


def _str_array(items) -> np.ndarray:
    # an explicit string dtype: h5py cannot store an empty Python list as an attribute of strings
    return np.array([str(item) for item in items], dtype=_STR)


def _fill_value(dtype: np.dtype) -> Any:
    if h5py.check_string_dtype(dtype) is not None:
        return b""
    return {"f": np.nan, "i": -1, "u": 0, "b": False}.get(dtype.kind, 0)


def _gather_columns(source: h5py.Group, target: h5py.Group, index: np.ndarray) -> None:
    """Copy every per-frame column of ``source`` at rows ``index`` (missing rows get a fill value)."""
    present = index != MISSING_FRAME
    for name, column in source.items():
        values = column[()]
        out = np.empty(len(index), dtype=values.dtype)
        out[~present] = _fill_value(column.dtype)
        out[present] = values[index[present]]
        target.create_dataset(name, data=out, dtype=column.dtype)


def _check_sources(table: SyncTable, sources: Mapping[str, h5py.File]) -> None:
    for product, source in sources.items():
        data = source["data"]
        if data.ndim != 3:
            raise ValueError(f"cube of {product} has data of shape {data.shape}, expected (T, H, W)")
        indices = [table.source_index[product], table.previous_source_index.get(product, np.array([], np.int64))]
        top = max((int(i.max()) for i in indices if len(i)), default=-1)
        if top >= data.shape[0]:
            raise ValueError(f"row {top} of {product} is beyond its cube's {data.shape[0]} frames (stale table?)")


def _write_product(
    out: h5py.File,
    table: SyncTable,
    product: str,
    source: h5py.File,
    filters: Mapping[str, Any],
    cadence: pd.Timedelta | None,
) -> None:
    index = table.source_index[product]
    n = len(index)
    _t, height, width = source["data"].shape
    units = str(source.attrs.get("units", source["data"].attrs.get("units", "unknown")))
    group = out.create_group(product)
    data = group.create_dataset(
        "data",
        shape=(n, height, width),
        maxshape=(None, height, width),
        dtype=np.float32,
        chunks=(1, height, width),
        fillvalue=np.float32(np.nan),
        **filters,
    )
    data.attrs["units"] = units
    data.attrs["dims"] = "time,y,x"
    group.create_dataset("obs_time", data=iso_seconds(table.obs_time[product]), dtype=_STR)
    group.create_dataset("dt_seconds", data=table.dt_seconds(product))
    group.create_dataset("source_index", data=index.astype(np.int64))
    present = table.present(product)
    group.create_dataset("present", data=present)
    _gather_columns(source["frames"], group.create_group("frames"), index)
    previous = table.previous_source_index.get(product)
    if previous is not None:
        prev = group.create_group("previous")
        prev.create_dataset("source_index", data=previous.astype(np.int64))
        prev.create_dataset("obs_time", data=iso_seconds(table.previous_obs_time[product]), dtype=_STR)
        delta = (table.previous_obs_time[product] - table.previous_time).total_seconds()
        prev.create_dataset("dt_seconds", data=np.abs(np.asarray(delta, dtype=np.float64)))
        _gather_columns(source["frames"], prev.create_group("frames"), previous)

    headers_in = source["headers"]
    headers = group.create_dataset("headers", shape=(n,), maxshape=(None,), dtype=_STR, chunks=(256,))
    frames = FrameSource(source)
    signature = chunk_signature(data)
    try:
        for i in np.flatnonzero(present):
            row = int(index[i])
            headers[i] = headers_in[row]
            if previous is not None:
                # float32 - float32 stays float32; NaN (occulter, off-disk) stays NaN
                data[i] = frames.read(row) - frames.read(int(previous[i]))
                continue
            chunk = frames.read_chunk(row, signature)
            if chunk is None:
                data[i] = frames.read(row)
            else:
                mask, payload = chunk
                data.id.write_direct_chunk((int(i), 0, 0), payload, filter_mask=mask)
    finally:
        frames.close()
    dropped = table.ledger[table.ledger["dropped"] & (table.ledger["product"] == product)]
    group.attrs.update(
        {
            "units": units,
            "source_cube": os.fspath(source.filename),
            "source_variant": str(source.attrs.get("variant", "")),
            "source_config_hash": str(source.attrs.get("config_hash", "")),
            "source_n_frames": int(source["data"].shape[0]),
            "difference": previous is not None,
            "n_present": int(present.sum()),
            "n_dropped": len(dropped),
            "cadence": _duration_text(cadence),
            "cadence_seconds": np.nan if cadence is None else cadence.total_seconds(),
        }
    )


def write_synced(
    path: str | os.PathLike,
    table: SyncTable,
    cube_paths: Mapping[str, str | os.PathLike],
    *,
    experiment: str,
    config_hash: str = "",
    compression: str | None = "gzip",
    compression_opts: int | None = 4,
    shuffle: bool = True,
    attrs: Mapping[str, Any] | None = None,
    cadences: Mapping[str, dt.timedelta | str] | None = None,
    write_csv: bool = True,
) -> Path:
    """Write the synced file of ``table`` (and its times CSV) from the products' cubes.

    Parameters
    ----------
    path : path-like
        Output HDF5 file, e.g. ``synced/{experiment}.h5``. Written under a hidden temporary name and renamed
        only when complete; on any exception neither it nor the CSV appears (an older file stays untouched).
    table : SyncTable
        From :func:`~heliocube.sync.matching.match_products` (optionally
        :func:`~heliocube.sync.difference.apply_running_difference`), built from the same cubes.
    cube_paths : mapping of str to path-like
        The cube (a per-year file or a virtual master) of every product of ``table``.
    experiment : str
        Experiment name, stored as an attribute.
    config_hash : str
        Hash of the configuration that produced the file.
    compression, compression_opts, shuffle
        HDF5 filters of every ``/<product>/data``. When they equal the source cube's, frames are copied as
        compressed chunks (identical bytes, no recompression).
    attrs : mapping, optional
        Extra root attributes.
    cadences : mapping of str to timedelta or str, optional
        Cube cadence per product, recorded as the ``cadence`` attribute of its group (the prior-tool names need
        it).
    write_csv : bool
        Also write :func:`synced_csv_path` (``SyncTable.to_frame``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        When a product has no cube, a cube is not (T, H, W), or the table points beyond a cube's frames.
    """
    path = Path(path)
    missing = [p for p in table.products if p not in cube_paths]
    if missing:
        raise ValueError(f"no cube given for products {missing}")
    filters = {
        "compression": compression,
        "compression_opts": compression_opts if compression == "gzip" else None,
        "shuffle": bool(shuffle),
    }
    outputs = (path, synced_csv_path(path)) if write_csv else (path,)
    with atomic_outputs(*outputs) as temps, contextlib.ExitStack() as stack:
        sources = {p: stack.enter_context(h5py.File(cube_paths[p], "r")) for p in table.products}
        _check_sources(table, sources)
        with h5py.File(temps[0], "w", libver="latest") as out:
            _write_root(out, table)
            for product in table.products:
                cadence = None if cadences is None or product not in cadences else as_timedelta(cadences[product])
                _write_product(out, table, product, sources[product], filters, cadence)
            root = {
                "experiment": experiment,
                "config_hash": config_hash,
                "units": _str_array(out[p].attrs["units"] for p in table.products),
                **{f"version_{name}": ver for name, ver in software_versions().items()},
                **dict(attrs or {}),
            }
            out.attrs.update(root)
        if write_csv:
            table.to_frame().to_csv(temps[1], index=False)
    return path


def _write_root(out: h5py.File, table: SyncTable) -> None:
    out.create_dataset("time", data=iso_seconds(table.time), dtype=_STR)
    if table.previous_time is not None:
        out.create_dataset("previous_time", data=iso_seconds(table.previous_time), dtype=_STR)
    ledger = out.create_group("ledger")
    ledger.create_dataset("product", data=table.ledger["product"].to_numpy(dtype=object), dtype=_STR)
    ledger.create_dataset("time", data=iso_seconds(pd.DatetimeIndex(table.ledger["time"])), dtype=_STR)
    ledger.create_dataset("reason", data=table.ledger["reason"].to_numpy(dtype=object), dtype=_STR)
    ledger.create_dataset("dropped", data=table.ledger["dropped"].to_numpy(dtype=bool))
    dropped_times = table.ledger.loc[table.ledger["dropped"], "time"].nunique()
    out.attrs.update(
        {
            "products": _str_array(table.products),
            "difference_products": _str_array(table.difference_products),
            "step": _duration_text(table.step),
            "step_seconds": table.step.total_seconds(),
            "tolerance": _duration_text(table.tolerance),
            "tolerance_seconds": table.tolerance.total_seconds(),
            "max_gap": _duration_text(table.max_gap),
            "max_gap_seconds": np.nan if table.max_gap is None else table.max_gap.total_seconds(),
            "keep_missing": bool(table.keep_missing),
            "range_start": table.start.isoformat(),
            "range_finish": table.finish.isoformat(),
            "axis_length": len(table.axis),
            "n_rows": len(table),
            "n_dropped_rows": int(dropped_times),
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "layout": LAYOUT,
        }
    )
