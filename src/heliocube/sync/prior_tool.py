"""The prior tool's (``soho-ml-data-ready``) synced outputs, for users migrating from it.

For every product of a synced file this writes, into one directory,

* ``{start}_to_{finish}_{product}_{mission}_{N}products_{window}_{step}_{size}_metadata_sync.h5`` with the
  frames in dataset ``'{product}_{mission}_{size}'`` (N, H, W) and a scalar JSON string
  ``'{product}_{mission}_{size}_metadata'`` whose keys are ``'{KEY}_{k}_syncslice{n}'`` (``k``: the frame's
  row in the product's cube, ``n``: the synced row), root attribute ``NOTE='JSON serialization'``;
* ``{start}_to_{finish}_{product}_{mission}_{N}products_{window}_{step}_{size}_times_sync.csv``: the product's
  observation times of the synced rows, one ``YYYYMMDDhhmmss`` per line, no header (the prior tool's time CSV
  convention);

and for a running-difference experiment the prior tool's F-corona names
(``..._{product}_Fcorona_{mission}_{N}products_...metadata_sync.h5`` and
``..._{product}_{mission}_{N}products_Fcorona_..._times_sync.csv``). ``window`` is the product's cube cadence and
``step`` the sync step, in whole hours as the prior tool wrote them (other durations as e.g. ``90min``); dates are
``YYYY-MM-DD``.

Deliberate differences from the prior tool (its bugs are not reproduced):

* frames stay float32 copies of the synced rows: no ``astype(int16)`` (no wrap-around, NaN stays NaN, LASCO level 1
  does not become zeros); they are compressed like the synced file (the prior tool wrote them uncompressed);
* the rows are the nearest frames within the tolerance on a fixed UTC axis, not the earliest frame around the
  sparsest product's times;
* ``k`` in the metadata keys is the row of the whole cube (the prior tool's keys were offset by the start of the
  date range), and running differences use the synced rows (the prior tool took them from the unsynced cube);
* every ``COMMENT``/``HISTORY`` card is kept, joined by newlines, under the prior tool's key
  ``'COMMENT{k}_{k}_syncslice{n}'`` (the prior tool kept only the last card of each);
* rows kept with ``keep_missing`` have NaN frames, no metadata keys and an empty CSV line (the prior tool had no
  such rows);
* files are written atomically and the CSV is always rewritten (the prior tool wrote it only if absent).

The metadata JSON is built in memory (as the format requires one string): about the size of all headers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from astropy.io import fits

from ..registry import get_product
from .framecopy import FrameSource, chunk_signature
from .times import as_timedelta, to_utc_times
from .writer import atomic_outputs

__all__ = ["header_metadata", "prior_tool_names", "write_prior_tool_files"]

_REPEATED = ("COMMENT", "HISTORY")


def _hours_text(seconds: float) -> str:
    if float(seconds).is_integer() and int(seconds) % 3600 == 0:
        return str(int(seconds) // 3600)
    if float(seconds).is_integer() and int(seconds) % 60 == 0:
        return f"{int(seconds) // 60}min"
    return f"{seconds:g}s"


def prior_tool_names(
    product: str,
    *,
    mission: str,
    n_products: int,
    start: str,
    finish: str,
    window_seconds: float,
    step_seconds: float,
    size: str,
    fcorona: bool,
) -> tuple[str, str]:
    """File names (h5, csv) the prior tool gave a product's synced cube and times."""
    tail = f"{_hours_text(window_seconds)}_{_hours_text(step_seconds)}_{size}"
    stem = f"{start}_to_{finish}_{product}"
    if fcorona:
        return (
            f"{stem}_Fcorona_{mission}_{n_products}products_{tail}_metadata_sync.h5",
            f"{stem}_{mission}_{n_products}products_Fcorona_{tail}_times_sync.csv",
        )
    return (
        f"{stem}_{mission}_{n_products}products_{tail}_metadata_sync.h5",
        f"{stem}_{mission}_{n_products}products_{tail}_times_sync.csv",
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return None if isinstance(value, fits.card.Undefined) else str(value)


def header_metadata(header_text: str, cube_row: int, synced_row: int) -> dict[str, Any]:
    """The prior tool's metadata entries of one synced frame: ``{'{KEY}_{k}_syncslice{n}': value}``."""
    header = fits.Header.fromstring(header_text, sep="\n")
    out: dict[str, Any] = {}
    repeated: dict[str, list[str]] = {}
    for card in header.cards:
        keyword = card.keyword
        if not keyword:
            continue
        if keyword in _REPEATED:
            repeated.setdefault(keyword, []).append(str(card.value))
            continue
        out[f"{keyword}_{cube_row}_syncslice{synced_row}"] = _json_value(card.value)
    for keyword, texts in repeated.items():
        out[f"{keyword}{cube_row}_{cube_row}_syncslice{synced_row}"] = "\n".join(texts)
    return out


def write_prior_tool_files(
    synced_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    missions: Mapping[str, str] | None = None,
    windows: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the prior tool's per-product ``_sync.h5`` and ``_times_sync.csv`` files from a synced file.

    Parameters
    ----------
    synced_path : path-like
        A file written by :func:`~heliocube.sync.writer.write_synced`.
    out_dir : path-like
        Directory for the files.
    missions : mapping of str to str, optional
        Mission token per product (default: the product registry's ``mission``).
    windows : mapping of str to timedelta or str, optional
        The prior tool's ``time_window`` per product (default: the cube cadence recorded in the synced file, or
        the step when none was recorded).

    Returns
    -------
    list of pathlib.Path
        The files written, h5 then csv per product.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    with h5py.File(synced_path, "r") as synced:
        products = [p.decode() if isinstance(p, bytes) else str(p) for p in synced.attrs["products"]]
        fcorona = len(synced.attrs["difference_products"]) > 0
        step_seconds = float(synced.attrs["step_seconds"])
        for product in products:
            group = synced[product]
            mission = missions[product] if missions and product in missions else get_product(product).mission
            if windows and product in windows:
                window_seconds = as_timedelta(windows[product]).total_seconds()
            else:
                recorded = float(group.attrs.get("cadence_seconds", np.nan))
                window_seconds = step_seconds if np.isnan(recorded) else recorded
            height, width = group["data"].shape[1:]
            size = str(width) if height == width else f"{height}x{width}"
            h5_name, csv_name = prior_tool_names(
                product,
                mission=mission,
                n_products=len(products),
                start=str(synced.attrs["range_start"]),
                finish=str(synced.attrs["range_finish"]),
                window_seconds=window_seconds,
                step_seconds=step_seconds,
                size=size,
                fcorona=fcorona,
            )
            h5_path, csv_path = out_dir / h5_name, out_dir / csv_name
            with atomic_outputs(h5_path, csv_path) as (h5_tmp, csv_tmp):
                _write_product_file(synced, group, h5_tmp, f"{product}_{mission}_{size}")
                _write_times(group, csv_tmp)
            written += [h5_path, csv_path]
    return written


def _write_product_file(synced: h5py.File, group: h5py.Group, target: Path, name: str) -> None:
    source = group["data"]
    present = group["present"][()]
    cube_rows = group["source_index"][()]
    headers = group["headers"]
    metadata: dict[str, Any] = {}
    frames = FrameSource(synced, source.name)
    try:
        with h5py.File(target, "w") as out:
            data = out.create_dataset(
                name,
                shape=source.shape,
                maxshape=(None, *source.shape[1:]),  # resizable, so an experiment with no rows still has a layout
                dtype=np.float32,
                chunks=(1, *source.shape[1:]),
                compression=source.compression,
                compression_opts=source.compression_opts,
                shuffle=source.shuffle,
                fillvalue=np.float32(np.nan),
            )
            signature = chunk_signature(data)
            for row in np.flatnonzero(present):
                chunk = frames.read_chunk(int(row), signature)
                if chunk is None:
                    data[row] = frames.read(int(row))
                else:
                    data.id.write_direct_chunk((int(row), 0, 0), chunk[1], filter_mask=chunk[0])
                text = headers[row]
                text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
                metadata.update(header_metadata(text, int(cube_rows[row]), int(row)))
            out.create_dataset(f"{name}_metadata", data=json.dumps(metadata), dtype=h5py.string_dtype("utf-8"))
            out.attrs["NOTE"] = "JSON serialization"
    finally:
        frames.close()


def _write_times(group: h5py.Group, target: Path) -> None:
    times = to_utc_times(np.asarray(group["obs_time"].asstr()[()], dtype=object))
    lines = ["" if pd.isna(t) else t.strftime("%Y%m%d%H%M%S") for t in times]
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
