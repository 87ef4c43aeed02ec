"""The export stage's writers over a whole synced file, for bench_ml.py (kept free of torch, so a process running
only them measures their memory alone)."""

from __future__ import annotations

from pathlib import Path

import h5py
import pandas as pd

from heliocube.export.periods import month_shard_days, shard_name
from heliocube.export.shards import merge_shard_index, write_month_shards
from heliocube.export.zarr_store import consolidate_store, write_year


def write_exports(synced: Path, exports: Path, *, zarr_store: bool = True, shards: bool = True,
                  chunk_frames: int = 1) -> None:
    """The export stage's writers over the whole synced file: the Zarr years, the shards of every month."""
    with h5py.File(synced, "r") as f:
        times = pd.to_datetime(f["time"].asstr()[()])
    if zarr_store:
        store = exports / "bench.zarr"
        years = sorted({str(t.year) for t in times})
        for year in years:
            write_year(synced, store, year, chunk_frames=chunk_frames)
        consolidate_store(store, years)
    if shards:
        folder = exports / "bench" / "shards"
        folder.mkdir(parents=True, exist_ok=True)
        parts = []
        for month in sorted({t.strftime("%Y-%m") for t in times}):
            days = month_shard_days(month, times[0].date(), times[-1].date())
            parts.append(folder / f"{month}.index.json")
            write_month_shards(synced, parts[-1], [shard_name(day) for day in days])
        merge_shard_index(parts, folder / "index.json")
