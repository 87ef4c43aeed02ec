"""The report's image-parameter section: for each parameter file, the heatmaps of its last frame and the spread of
each parameter over all its cells and frames."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .html import Figure, Table, Text

__all__ = ["parameter_files", "params_blocks"]


def parameter_files(root: str | os.PathLike) -> list[Path]:
    """Every parameter file, ``params/{variant}/{product}/{year}.h5``."""
    return sorted(Path(root).glob("params/*/*/*.h5"))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def params_blocks(root: str | os.PathLike) -> list:
    """Blocks of the section: a heatmap sheet per parameter file (its last frame) and one summary table."""
    from ..params.heatmap import render_heatmap_sheet

    root = Path(root)
    paths = parameter_files(root)
    if not paths:
        return [Text("No image parameters under this root (config params.products is empty).")]
    blocks, rows = [Text("The ten image parameters (heliocube.params) of the last frame of each parameter file, "
                         "each drawn over the frame it was computed on; the settings are in each file's "
                         "'settings' attribute.")], []
    for path in paths:
        with h5py.File(path, "r") as f:
            params, names = f["params"], [_text(v) for v in f.attrs["parameter_names"]]
            units = [_text(v) for v in f.attrs["parameter_units"]]
            product, variant = _text(f.attrs["product"]), _text(f.attrs["variant"])
            if params.shape[0] == 0:
                blocks.append(Text(f"{path.relative_to(root)}: no frame."))
                continue
            last, values = _text(f["time"][-1]), params[()]
        cube = root / "cubes" / variant / product / path.name
        with h5py.File(cube, "r") as c:
            image = c["data"][-1]
        label = f"{product} · {variant} · {last[:16].replace('T', ' ')}"
        blocks.append(Figure(render_heatmap_sheet(image, values[-1], names, units, title=label),
                             f"Image parameter heatmaps of {label}",
                             f"{path.relative_to(root)}: {values.shape[0]} frames on a {values.shape[1]}x"
                             f"{values.shape[2]} grid; the last frame shown."))
        for k, (name, unit) in enumerate(zip(names, units, strict=True)):
            column = values[..., k]
            finite = column[np.isfinite(column)]
            rows.append({"file": str(path.relative_to(root)), "parameter": name, "units": unit,
                         "min": float(finite.min()) if finite.size else np.nan,
                         "median": float(np.median(finite)) if finite.size else np.nan,
                         "max": float(finite.max()) if finite.size else np.nan,
                         "NaN cells": int(column.size - finite.size)})
    blocks.append(Table(pd.DataFrame(rows), "Every parameter over all cells and frames of each file"))
    return blocks
