"""Map-style dataset over a labelled event cube (``events/{name}/dataset/events.h5`` or ``per_event/*.h5``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

__all__ = ["EventDataset"]


def _strings(dataset: h5py.Dataset) -> np.ndarray:
    return np.array(dataset.asstr()[:], dtype=object)


class EventDataset(torch.utils.data.Dataset):
    """The sampled frames of an event dataset with their labels as targets (see
    :mod:`heliocube.events.labelled_cube` for the file layout).

    Parameters
    ----------
    path : str or os.PathLike
        A labelled cube (``events.h5``, ``per_event/{event_id}.h5``) or the dataset folder holding ``events.h5``.
    products : sequence of str, optional
        Keep only frames of these products (e.g. ``["AIA131"]``).
    events : sequence of str, optional
        Keep only frames of these event ids.
    phases : sequence of {"pre", "flare", "post"}, optional
        Keep only frames of these phases.

    Notes
    -----
    A sample is a dict: ``image`` (a ``(1, H, W)`` float32 tensor, NaN where the frame has no data), ``label``
    (int, 1 = flare, 0 = pre/post-flare), ``time`` (ISO UTC), ``phase``, ``event_id``, ``product``, ``goes_class``,
    ``filename`` and ``index`` (the row in the file). The 1-D columns are read once; frames are read one chunk at a
    time from a file opened in each process on first use, so DataLoader workers never share an HDF5 handle.
    """

    def __init__(self, path: str | os.PathLike, *, products: Sequence[str] | None = None,
                 events: Sequence[str] | None = None, phases: Sequence[str] | None = None) -> None:  # fmt: skip
        path = Path(path)
        self.path = path / "events.h5" if path.is_dir() else path
        with h5py.File(self.path, "r") as f:
            if "frames" not in f or "label" not in f:
                raise ValueError(f"{self.path}: no frames/label datasets; is it a heliocube event cube?")
            self.columns = {name: _strings(f[name]) for name in ("time", "phase", "event_id", "product",
                                                                 "goes_class", "filename")}  # fmt: skip
            self.all_labels = f["label"][:].astype(np.int64)
        keep = np.ones(len(self.all_labels), bool)
        for column, wanted in (("product", products), ("event_id", events), ("phase", phases)):
            if wanted is not None:
                keep &= np.isin(self.columns[column], list(wanted))
        self.rows = np.flatnonzero(keep)
        self._opened: tuple[int, h5py.File] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        """The targets of the selected rows, in order (e.g. for class weights or a weighted sampler)."""
        return self.all_labels[self.rows]

    def _frames(self) -> h5py.Dataset:
        if self._opened is None or self._opened[0] != os.getpid():
            self._opened = (os.getpid(), h5py.File(self.path, "r"))
        return self._opened[1]["frames"]

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"index {item} out of range for {len(self)} samples")
        row = int(self.rows[int(item) % len(self)])
        image = torch.from_numpy(np.asarray(self._frames()[row], dtype=np.float32)[None])
        sample = {name: str(values[row]) for name, values in self.columns.items()}
        sample.update(image=image, label=int(self.all_labels[row]), index=row)
        return sample

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_opened"] = None  # an open h5py file does not pickle (spawned workers open their own)
        return state
