"""Sync stage: align per-product cubes on one fixed UTC time axis and write one synced file per experiment.

The entry point is :func:`sync_experiment`. Its steps are also public for finer use and tests:

1. :func:`match_products` builds the axis ``[start 00:00, finish + 1 day)`` every ``step`` (a whole multiple of
   each cube's cadence, :func:`check_step_multiple`) and gives each axis time each product's nearest frame in
   ``[t - tolerance, t + tolerance)`` (tolerance at most and by default ``step / 2``, so a frame serves at most one
   row; ties: earlier, then smaller record id). Rows missing a product are dropped and recorded in a ledger, or
   kept with a presence mask (``keep_missing=True``). See :mod:`heliocube.sync.matching`.
2. :func:`apply_running_difference` (optional) pairs each synced row with the previous synced row, within
   ``max_gap``, for LASCO-style running differences (:mod:`heliocube.sync.difference`).
3. :func:`write_synced` streams the frames (byte-equal float32 copies of the cube rows), provenance columns and
   headers into one HDF5 file plus a times CSV, atomically (layout in :mod:`heliocube.sync.writer`);
   :func:`open_synced_xarray` opens it as an :class:`xarray.Dataset`.
4. :func:`write_prior_tool_files` (optional) writes the prior tool's per-product ``_sync.h5`` and
   ``_times_sync.csv`` files, without its bugs (:mod:`heliocube.sync.prior_tool`).
"""

from ..lazy import lazy_names

#: Where each public name lives; imported on first use, so the config check (which needs only
#: ``check_step_multiple``) does not load h5py and the writers into every Snakemake process.
_HOMES = {
    "DEFAULT_DIFFERENCE_PRODUCTS": "difference",
    "NO_PREVIOUS_ROW": "difference",
    "PREVIOUS_ROW_BEYOND_MAX_GAP": "difference",
    "apply_running_difference": "difference",
    "SyncResult": "experiment",
    "sync_experiment": "experiment",
    "MISSING_FRAME": "matching",
    "NO_FRAME_WITHIN_TOLERANCE": "matching",
    "SyncTable": "matching",
    "build_time_axis": "matching",
    "check_step_multiple": "steps",
    "match_products": "matching",
    "nearest_frames": "matching",
    "read_frame_times": "matching",
    "write_prior_tool_files": "prior_tool",
    "synced_csv_path": "writer",
    "write_synced": "writer",
    "open_synced_xarray": "xarray_view",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)


__all__ = sorted(_HOMES)
