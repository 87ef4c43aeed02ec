"""The cube stage: cleaned frame files of one product-variant-year streamed into an HDF5 cube, then a master.

The cube job reads the month indexes written by the clean stage, opens each day's frame file once, checks every
frame against the digest the clean stage recorded (a frame file rewritten since would be caught here, not copied
silently), and appends it with its index row and full header through :class:`heliocube.cube.CubeWriter`. Memory
use is one day file at a time.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from .clean import INDEX_COLUMNS, STRING_COLUMNS, frame_digest, read_index
from .cube import CubeWriter, build_master, compression_options, times_csv_path

__all__ = ["CUBE_COLUMNS", "build_product_master", "build_year_cube", "units_of"]

#: Per-frame columns of a cube: the clean index, in its order.
CUBE_COLUMNS = INDEX_COLUMNS
#: Fixes each column's type before the first frame (an empty year still gets every column).
_EXAMPLE_ROW = {c: ("" if c in STRING_COLUMNS else (0 if c == "hdu" else 0.0)) for c in CUBE_COLUMNS}


def units_of(header: fits.Header, default: str) -> str:
    """Physical unit of the data: the header's BUNIT, else the product's registry unit."""
    unit = str(header.get("BUNIT", "") or "").strip()
    return unit or default


def build_year_cube(index_paths: Sequence[str | os.PathLike], root: str | os.PathLike, cube_path: str | os.PathLike,
                    *, frame_size: int, units: str, attrs: Mapping, compression: Mapping) -> int:
    """Stream every frame listed in ``index_paths`` (month indexes, in time order) into ``cube_path``.

    Returns the number of frames. Raises ValueError when a frame differs from the digest its index recorded.
    """
    table = pd.concat([read_index(p) for p in index_paths], ignore_index=True) if index_paths else None
    if table is None or table.empty:
        table = pd.DataFrame(columns=list(CUBE_COLUMNS))
    table = table.sort_values("slot_time", kind="stable").reset_index(drop=True)
    attrs = dict(attrs)
    with CubeWriter(cube_path, (frame_size, frame_size), attrs=attrs, **compression_options(compression)) as writer:
        writer.declare_columns(_EXAMPLE_ROW)
        for frame_file, rows in table.groupby("frame_file", sort=False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                with fits.open(Path(root, frame_file), memmap=False) as hdul:
                    for _, row in rows.iterrows():
                        hdu = hdul[int(row["hdu"])]
                        frame = np.asarray(hdu.data, dtype=np.float32)
                        if frame_digest(frame) != row["frame_sha256"]:
                            raise ValueError(f"{frame_file}[{row['hdu']}] differs from the frame the clean stage "
                                             "recorded; rerun the clean stage for this month")
                        if writer.n_frames == 0:
                            writer.set_attrs(units=units_of(hdu.header, units))
                        writer.append(frame, {c: _plain(row[c]) for c in CUBE_COLUMNS}, hdu.header)
        return writer.n_frames


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def build_product_master(master_path: str | os.PathLike, year_paths: Sequence[str | os.PathLike]) -> Path:
    """The master cube over the years (virtual datasets) and its times CSV (the years' CSVs concatenated)."""
    path = build_master(master_path, year_paths)
    target = times_csv_path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        header_written = False
        for year in year_paths:
            with open(times_csv_path(year), newline="", encoding="utf-8") as source:
                rows = list(csv.reader(source))
            if not header_written and rows:
                writer.writerow(rows[0])
                header_written = True
            writer.writerows(rows[1:])
    os.replace(tmp, target)
    return path
