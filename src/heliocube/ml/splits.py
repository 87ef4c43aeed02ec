"""The split manifest of an experiment's exports, ``{root}/exports/{experiment}/splits.csv``, for the datasets.

One row per synced row of the experiment, in time order: ``time`` (ISO UTC) and ``split`` (``train``, ``val``,
``test``, or ``gap`` for the guard rows at a boundary between different splits, which no split uses); written by
:mod:`heliocube.export.splits`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..export import splits as manifest

__all__ = ["SPLITS", "export_dir", "read_splits", "split_positions", "splits_path"]

#: The splits a dataset can be asked for (``gap`` rows belong to none of them).
SPLITS = tuple(manifest.SPLITS)


def export_dir(store: str | os.PathLike) -> Path:
    """``{root}/exports/{experiment}/`` (splits, shards, normalization) of a store ``{root}/exports/{experiment}.zarr``
    or of the shard folder ``{root}/exports/{experiment}/shards``."""
    path = Path(store)
    return path.parent if path.name == "shards" else path.with_suffix("")


def splits_path(store: str | os.PathLike) -> Path:
    """The split manifest beside a Zarr store or shard folder (see :func:`export_dir`)."""
    return export_dir(store) / "splits.csv"


def read_splits(path: str | os.PathLike) -> pd.DataFrame:
    """The manifest: ``time`` (``datetime64[ns]``, UTC made naive like the stores' time axes) and ``split``.

    Raises
    ------
    FileNotFoundError
        When there is no manifest (the message says which workflow stage writes it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no split manifest; the workflow's export stage writes it (exports.splits)")
    table = manifest.read_splits(path)
    times = table["time"].dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return pd.DataFrame({"time": times, "split": table["split"].to_numpy()})


def split_positions(splits: pd.DataFrame, split: str) -> np.ndarray:
    """Boolean mask of the manifest rows in ``split``.

    Raises
    ------
    ValueError
        When ``split`` is not one of :data:`SPLITS`.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {', '.join(SPLITS)}")
    return (splits["split"] == split).to_numpy()
