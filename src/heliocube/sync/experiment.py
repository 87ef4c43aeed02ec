"""The sync stage in one call: cubes in, one synced file (+ CSV, + optional prior-tool files) out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py

from .difference import DEFAULT_DIFFERENCE_PRODUCTS, apply_running_difference
from .matching import SyncTable, match_products, read_frame_times
from .writer import synced_csv_path, write_synced

__all__ = ["SyncResult", "sync_experiment"]


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_experiment` wrote: the synced file, its CSV, the prior-tool files and the table."""

    path: Path
    csv_path: Path
    table: SyncTable
    prior_tool_paths: tuple[Path, ...] = ()


def _cadences_from_cubes(cube_paths: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    cadences = {}
    for product, path in cube_paths.items():
        with h5py.File(path, "r") as f:
            if "cadence" not in f.attrs:
                raise ValueError(
                    f"cube of {product} ({path}) records no 'cadence' attribute: pass cadences= explicitly"
                )
            cadences[product] = str(f.attrs["cadence"])
    return cadences


def sync_experiment(
    output_path: str | os.PathLike,
    cube_paths: Mapping[str, str | os.PathLike],
    *,
    experiment: str,
    start: str | dt.date,
    finish: str | dt.date,
    step: str | dt.timedelta,
    cadences: Mapping[str, str | dt.timedelta] | str | dt.timedelta | None = None,
    tolerance: str | dt.timedelta | None = None,
    anchor: str | dt.date | None = None,
    keep_missing: bool = False,
    running_difference: bool = False,
    difference_products: Sequence[str] = DEFAULT_DIFFERENCE_PRODUCTS,
    max_gap: str | dt.timedelta = "24h",
    config_hash: str = "",
    compression: str | None = "gzip",
    compression_opts: int | None = 4,
    shuffle: bool = True,
    attrs: Mapping[str, Any] | None = None,
    prior_tool_dir: str | os.PathLike | None = None,
    missions: Mapping[str, str] | None = None,
) -> SyncResult:
    """Synchronise the cubes of an experiment onto one time axis and write the synced file.

    Parameters
    ----------
    output_path : path-like
        The synced HDF5 file (``synced/{experiment}.h5``); its times CSV goes beside it
        (:func:`~heliocube.sync.writer.synced_csv_path`).
    cube_paths : mapping of str to path-like
        Product name to its cube or virtual master, in the order the products should appear.
    experiment : str
        Experiment name (a root attribute).
    start, finish : str or datetime.date
        First and last day (``YYYY-MM-DD``); the axis covers ``[start 00:00, finish + 1 day 00:00)`` UTC.
    step : str or datetime.timedelta
        Axis spacing; a whole multiple of every cube's cadence.
    cadences : mapping, str or timedelta, optional
        Cube cadence per product, or one cadence for all; by default each cube's ``cadence`` root attribute
        (ValueError when absent).
    tolerance : str or datetime.timedelta, optional
        Half window width, at most (and by default) ``step / 2``.
    anchor : str or datetime.date, optional
        A day whose midnight is on the axis (default ``start``).
    keep_missing : bool
        Keep rows where a product has no frame (presence mask, NaN frames) instead of dropping them.
    running_difference : bool
        Replace the frames of ``difference_products`` by ``frame(row) - frame(previous row)``
        (:func:`~heliocube.sync.difference.apply_running_difference`).
    difference_products : sequence of str
        Products differenced when ``running_difference`` is on (LASCO C2 and C3 by default).
    max_gap : str or datetime.timedelta
        Largest gap between a row and its predecessor for a running difference.
    config_hash : str
        Hash of the configuration, stored as a root attribute.
    compression, compression_opts, shuffle
        HDF5 filters of the frames (identical to the cubes' by default, so frames are copied without
        recompression).
    attrs : mapping, optional
        Extra root attributes.
    prior_tool_dir : path-like, optional
        Also write the prior tool's per-product ``_sync.h5`` / ``_times_sync.csv`` files there
        (:func:`~heliocube.sync.prior_tool.write_prior_tool_files`).
    missions : mapping of str to str, optional
        Mission token per product for the prior-tool names (default: from the product registry).

    Returns
    -------
    SyncResult

    Examples
    --------
    >>> sync_experiment(  # doctest: +SKIP
    ...     "synced/mdi_eit_c2.h5",
    ...     {"MDI_96m": "cubes/128px-mean-6h/MDI_96m.h5", "EIT195": "cubes/128px-mean-6h/EIT195.h5"},
    ...     experiment="mdi_eit", start="1999-01-01", finish="2010-12-31", step="6h", cadences="6h",
    ... )
    """
    if cadences is None:
        cadences = _cadences_from_cubes(cube_paths)
    elif isinstance(cadences, (str, dt.timedelta)):
        cadences = dict.fromkeys(cube_paths, cadences)
    frame_times = {product: read_frame_times(path) for product, path in cube_paths.items()}
    table = match_products(
        frame_times,
        start,
        finish,
        step,
        tolerance=tolerance,
        cadences=cadences,
        keep_missing=keep_missing,
        anchor=anchor,
    )
    if running_difference:
        table = apply_running_difference(table, difference_products, max_gap)
    path = write_synced(
        output_path,
        table,
        cube_paths,
        experiment=experiment,
        config_hash=config_hash,
        compression=compression,
        compression_opts=compression_opts,
        shuffle=shuffle,
        attrs=attrs,
        cadences=cadences,
    )
    prior = ()
    if prior_tool_dir is not None:
        from .prior_tool import write_prior_tool_files  # astropy: only for the prior tool's files

        prior = tuple(write_prior_tool_files(path, prior_tool_dir, missions=missions))
    return SyncResult(path=path, csv_path=synced_csv_path(path), table=table, prior_tool_paths=prior)
