"""The cube stage: cleaned frame files of one product-variant-year streamed into an HDF5 cube, then a master.

The cube job reads the month indexes written by the clean stage, opens each day's frame file once, checks every
frame against the digest the clean stage recorded (a frame file rewritten since would be caught here, not copied
silently), and appends it with its index row and full header through :class:`heliocube.cube.CubeWriter`. Memory
use is one frame at a time. The job imports numpy and h5py and neither pandas nor astropy (indexes through
:mod:`heliocube.frameindex`, day files through :mod:`heliocube.dayframes`): a job's start is part of its cost.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .cube import CubeWriter, build_master, compression_options, times_csv_path
from .dayframes import DayFrames
from .frameindex import INDEX_COLUMNS, STRING_COLUMNS, frame_digest, read_index_rows

__all__ = ["CUBE_COLUMNS", "build_product_master", "build_year_cube", "units_of"]

#: Per-frame columns of a cube: the clean index, in its order.
CUBE_COLUMNS = INDEX_COLUMNS
#: Fixes each column's type before the first frame (an empty year still gets every column).
_EXAMPLE_ROW = {c: ("" if c in STRING_COLUMNS else (0 if c == "hdu" else 0.0)) for c in CUBE_COLUMNS}


def units_of(header: Mapping, default: str) -> str:
    """Physical unit of the data: the header's BUNIT, else the product's registry unit."""
    unit = str(header.get("BUNIT", "") or "").strip()
    return unit or default


def build_year_cube(index_paths: Sequence[str | os.PathLike], root: str | os.PathLike, cube_path: str | os.PathLike,
                    *, frame_size: int, units: str, attrs: Mapping, compression: Mapping) -> int:
    """Stream every frame listed in ``index_paths`` (month indexes, in time order) into ``cube_path``.

    Returns the number of frames. Raises ValueError when a frame differs from the digest its index recorded, or
    when a day file is cut short (:class:`heliocube.dayframes.TruncatedFramesFile`); either way no cube is left.
    """
    rows = [row for path in index_paths for row in read_index_rows(path)]
    rows.sort(key=lambda row: row["slot_time"])  # stable: a slot's rows keep their index order
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(row["frame_file"], []).append(row)
    repair = f"run `heliocube verify {root} --repair`, then the workflow again (it rebuilds the month's frames)"
    with CubeWriter(cube_path, (frame_size, frame_size), attrs=dict(attrs),
                    **compression_options(compression)) as writer:
        writer.declare_columns(_EXAMPLE_ROW)
        for frame_file, file_rows in by_file.items():
            try:
                day = DayFrames(Path(root, frame_file))
            except ValueError as exc:
                raise type(exc)(f"{exc}; {repair}") from exc
            with day:
                for row in file_rows:
                    try:
                        frame, header_text, bunit = day.frame(row["hdu"])
                    except IndexError as exc:
                        raise ValueError(f"{exc}, which its month's index lists; {repair}") from exc
                    if frame_digest(frame) != row["frame_sha256"]:
                        raise ValueError(f"{frame_file}[{row['hdu']}] differs from the frame the clean stage "
                                         f"recorded; {repair}")
                    if writer.n_frames == 0:
                        writer.set_attrs(units=units_of({"BUNIT": bunit}, units))
                    writer.append(frame, {c: row[c] for c in CUBE_COLUMNS}, header_text)
        return writer.n_frames


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
