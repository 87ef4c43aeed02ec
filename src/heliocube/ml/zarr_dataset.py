"""Map-style dataset over an experiment's Zarr store ``{root}/exports/{experiment}.zarr`` (random access)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import zarr

from .preprocess import Preprocess, check_channels, check_step, resolve_normalizer
from .splits import export_dir, read_splits, split_positions, splits_path

__all__ = ["ZarrDataset"]

_YEAR = re.compile(r"^\d{4}$")


def iso_seconds(times: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS`` strings (UTC) of ``datetime64`` times, as the synced files write them."""
    return np.datetime_as_string(times.astype("datetime64[s]"), unit="s")


class ZarrDataset(torch.utils.data.Dataset):
    """The rows of an experiment's Zarr store, across its year groups, in time order.

    Parameters
    ----------
    store : str or os.PathLike
        ``{root}/exports/{experiment}.zarr``.
    channels : sequence of str, optional
        Channels of the sample, in this order (default: all, in the store's order), e.g. ``["AIA_0171", "HMI_M"]``.
    step : int
        Temporal step: keep every ``step``-th row of the experiment's time axis (counted over the whole axis, so a
        row's membership does not depend on ``split``).
    downsample : int
        Spatial downsampling factor (NaN-aware block mean, :func:`heliocube.ml.preprocess.downsample`).
    normalize : bool, path or Normalizer
        ``True`` applies ``{root}/exports/{experiment}/normalization.json`` (the export stage's artifact) before
        downsampling; ``False`` (default) gives the synced values bit for bit.
    split : {"train", "val", "test"}, optional
        Keep only the rows of that split in ``splits`` (default ``{root}/exports/{experiment}/splits.csv``).
    splits : str or os.PathLike, optional
        Another split manifest.
    header_keys : sequence of str
        Header keywords (the per-frame lists in each channel array's attributes) copied into ``sample["header"]``.

    Notes
    -----
    ``dataset[i]`` reads one chunk per channel: a store written with ``exports.zarr.chunk_frames: 1`` reads one
    frame, the default 120 decompresses 120 frames to give one (use the shards for sequential passes).
    The arrays are opened in each process on first use, so DataLoader workers never share a file handle.
    """

    def __init__(self, store: str | os.PathLike, *, channels: Sequence[str] | None = None, step: int = 1,
                 downsample: int = 1, normalize: Any = False, split: str | None = None,
                 splits: str | os.PathLike | None = None, header_keys: Sequence[str] = ()):  # fmt: skip
        self.store = Path(store)
        root = zarr.open_group(self.store, mode="r")
        self.years = sorted(name for name in root.group_keys() if _YEAR.match(name))
        if not self.years:
            raise ValueError(f"{self.store}: no year groups (YYYY); is it an export of heliocube?")
        times, years, rows, available = [], [], [], None
        for number, year in enumerate(self.years):
            # xarray decodes the CF-encoded time coordinate, as a user opening the store would
            view = xr.open_zarr(self.store, group=year)
            names = list(view.attrs.get("channels", [name for name, var in view.data_vars.items()
                                                     if var.dims == ("time", "y", "x")]))
            if available is not None and names != available:
                raise ValueError(f"{self.store}: year {year} holds channels {names}, others {available}")
            available = names
            times.append(view.indexes["time"].to_numpy().astype("datetime64[ns]"))
            years.append(np.full(len(times[-1]), number))
            rows.append(np.arange(len(times[-1])))
        self.all_channels = list(available)
        self.channels = check_channels(channels, self.all_channels, str(self.store))
        keep = np.arange(sum(map(len, times))) % check_step(step) == 0
        times = np.concatenate(times)
        if split is not None:
            manifest = read_splits(splits or splits_path(self.store))
            keep &= np.isin(times, manifest["time"].to_numpy()[split_positions(manifest, split)])
        self.split = split
        self.positions = np.flatnonzero(keep)  # rows of the whole time axis, in time order
        self.times = iso_seconds(times[keep])
        self._year = np.concatenate(years)[keep]
        self._row = np.concatenate(rows)[keep]
        self.header_keys = list(header_keys)
        normalizer = resolve_normalizer(normalize, export_dir(self.store) / "normalization.json")
        self.preprocess = Preprocess(self.channels, downsample, normalizer)
        self._opened: tuple[int, list[dict[str, Any]], list[dict[str, dict[str, list]]]] | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def _arrays(self):
        """Per year: channel -> zarr array, and channel -> selected per-frame keyword lists (opened per process)."""
        if self._opened is None or self._opened[0] != os.getpid():
            root = zarr.open_group(self.store, mode="r")
            arrays, headers = [], []
            for year in self.years:
                group = root[year]
                arrays.append({channel: group[channel] for channel in self.channels})
                attrs = {channel: dict(group[channel].attrs) for channel in self.channels}
                headers.append({channel: {key: attrs[channel][key] for key in self.header_keys
                                          if key in attrs[channel]} for channel in self.channels})  # fmt: skip
            self._opened = (os.getpid(), arrays, headers)
        return self._opened[1], self._opened[2]

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} out of range for {len(self)} samples")
        item = int(item) % len(self)
        arrays, headers = self._arrays()
        year, row = self._year[item], int(self._row[item])
        frames = [arrays[year][channel][row] for channel in self.channels]
        header = {channel: {key: values[row] for key, values in headers[year][channel].items()}
                  for channel in self.channels}  # fmt: skip
        return self.preprocess(frames, time=str(self.times[item]), index=int(self.positions[item]), header=header)
