"""Leak-free train/val/test splits of a synced experiment: whole time blocks per split, a guard gap between them.

Neighbouring frames of a solar time series are nearly the same image, so a random split by frame leaks the test
set into training. Here every row's split is decided by the time block it falls in (a calendar month by default):

- seeded (default): a block goes to train, val or test by a hash of the seed and the block's start, compared with
  the cumulative fractions. The assignment of a block never depends on the other blocks, so extending the range
  adds blocks without moving any existing one to another split;
- explicit: ``ranges`` give the split of spans of days; rows outside every range get ``default``.

At every boundary where the split changes, rows closer than ``gap / 2`` to the boundary get the split ``gap`` (they
stay in the manifest, one row per synced row, but belong to no split). Two samples of different splits are then
always at least ``gap`` apart: between them lies a boundary where the split changes, each is at least ``gap / 2``
from it.

The manifest is a CSV with columns ``time`` (ISO UTC, 'YYYY-MM-DDTHH:MM:SSZ', one per synced row, in order) and
``split`` (train, val, test or gap).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..paths import atomic_path
from ..timegrid import parse_day, parse_duration

__all__ = ["GAP", "SPLITS", "assign_splits", "block_starts", "read_splits", "splits_job", "write_splits"]

log = logging.getLogger(__name__)

#: The splits, in the order the fractions are laid out on [0, 1).
SPLITS = ("train", "val", "test")
#: Split of the rows in a guard gap.
GAP = "gap"
_FREQ = {"month": "MS", "week": "W-MON", "day": "D"}


def block_starts(times: pd.DatetimeIndex, block: str) -> pd.DatetimeIndex:
    """Start of the block (``month``, ``week`` from Monday, ``day``) each time falls in."""
    naive = times.tz_convert("UTC").tz_localize(None) if times.tz is not None else times
    if block == "month":
        starts = naive.to_period("M").to_timestamp()
    elif block == "week":
        starts = naive.normalize() - pd.to_timedelta(naive.day_of_week, unit="D")
    elif block == "day":
        starts = naive.normalize()
    else:
        raise ValueError(f"unknown block {block!r}; choose one of {', '.join(_FREQ)}")
    return pd.DatetimeIndex(starts).tz_localize("UTC")


def _unit_hash(seed: int, start: pd.Timestamp) -> float:
    """A number in [0, 1) fixed by the seed and the block start alone (not by Python's salted ``hash``)."""
    digest = hashlib.sha256(f"{seed}:{start.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _seeded(starts: pd.DatetimeIndex, fractions: Mapping[str, float], seed: int) -> np.ndarray:
    edges = np.cumsum([float(fractions.get(name, 0.0)) for name in SPLITS])
    out = np.empty(len(starts), dtype=object)
    for start in starts.unique():
        value = _unit_hash(seed, start)
        index = min(int(np.searchsorted(edges, value, side="right")), len(SPLITS) - 1)
        out[starts == start] = SPLITS[index]
    return out


def _explicit(times: pd.DatetimeIndex, ranges: Sequence[Mapping], default: str) -> tuple[np.ndarray, np.ndarray]:
    """Split and unit start (the range's first instant, or the end of the last range before) of each row."""
    splits = np.full(len(times), default, dtype=object)
    spans = sorted(
        (pd.Timestamp(parse_day(r["start"]), tz="UTC"), pd.Timestamp(parse_day(r["finish"]), tz="UTC")
         + pd.Timedelta(days=1), r["split"]) for r in ranges)
    unit_values = times.tz_convert("UTC").tz_localize(None).to_numpy().copy()
    for begin, end, split in spans:
        inside = (times >= begin) & (times < end)
        splits[inside] = split
        unit_values[inside] = begin.tz_localize(None).to_datetime64()
        after = times >= end  # rows after this range and before the next start their unit at its end
        unit_values[after] = end.tz_localize(None).to_datetime64()
    return splits, pd.DatetimeIndex(unit_values).tz_localize("UTC")


def assign_splits(times: Sequence | pd.DatetimeIndex, *, block: str = "month",
                  fractions: Mapping[str, float] | None = None, seed: int = 0, gap: str | pd.Timedelta = "1d",
                  ranges: Sequence[Mapping] = (), default: str = "train") -> pd.DataFrame:
    """The split of every time.

    Parameters
    ----------
    times : sequence of datetime-like
        The synced axis times (UTC), in increasing order.
    block : {'month', 'week', 'day'}
        Time blocks assigned whole to one split (seeded assignment).
    fractions : mapping of str to float
        Share of blocks per split (default train 0.8, val 0.1, test 0.1).
    seed : int
        Seed of the block assignment.
    gap : str or Timedelta
        Guard gap: rows closer than half of it to a boundary between different splits get ``'gap'``.
    ranges : sequence of mappings, optional
        Explicit ``{split, start, finish}`` spans of days (finish included) instead of the seeded assignment.
    default : str
        Split of the rows outside every explicit range.

    Returns
    -------
    pandas.DataFrame
        Columns ``time`` (datetime64, UTC) and ``split``, one row per time, in order.
    """
    index = pd.DatetimeIndex(pd.to_datetime(list(times) if not isinstance(times, pd.DatetimeIndex) else times,
                                            utc=True)).as_unit("ns")  # pandas may infer s or us
    if not index.is_monotonic_increasing:
        raise ValueError("times must be in increasing order")
    gap = parse_duration(gap) if isinstance(gap, str) else gap
    half = pd.Timedelta(gap) / 2
    if ranges:
        splits, units = _explicit(index, ranges, default)
    else:
        units = block_starts(index, block)
        splits = _seeded(units, fractions or {"train": 0.8, "val": 0.1, "test": 0.1}, seed)
    # a boundary between rows i and i+1 of different splits: the start of row i+1's unit, within (t_i, t_i+1]
    change = np.flatnonzero(splits[1:] != splits[:-1])
    boundaries = []
    for i in change:
        start = units[i + 1]
        boundaries.append(start if index[i] < start <= index[i + 1] else index[i + 1])
    out = splits.copy()
    if boundaries and half > pd.Timedelta(0):
        values = index.asi8
        for boundary in boundaries:
            lo = np.searchsorted(values, (boundary - half).value, side="right")
            hi = np.searchsorted(values, (boundary + half).value, side="left")
            out[lo:hi] = GAP
    return pd.DataFrame({"time": index, "split": out})


def write_splits(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write a split manifest (``time`` as 'YYYY-MM-DDTHH:MM:SSZ'), atomically."""
    frame = pd.DataFrame({"time": table["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "split": table["split"]})
    with atomic_path(path) as temp:
        frame.to_csv(temp, index=False)
    return Path(path)


def read_splits(path: str | os.PathLike) -> pd.DataFrame:
    """A split manifest with ``time`` parsed (UTC)."""
    table = pd.read_csv(path, dtype={"split": str})
    table["time"] = pd.to_datetime(table["time"], utc=True)
    return table


def splits_job(synced_path: str, output: str, options: Mapping) -> None:
    """One export_splits job: the manifest of every row of a synced file, from ``exports.splits`` options."""
    import h5py

    with h5py.File(synced_path, "r") as synced:
        times = [t.decode() if isinstance(t, bytes) else str(t) for t in synced["time"][()]]
    table = assign_splits(times, block=options["block"], fractions=options["fractions"], seed=options["seed"],
                          gap=options["gap"], ranges=options["ranges"], default=options["default"])
    write_splits(output, table)
    counts = table["split"].value_counts().to_dict()
    log.info("%s: %s", output, ", ".join(f"{counts.get(s, 0)} {s}" for s in (*SPLITS, GAP)))
