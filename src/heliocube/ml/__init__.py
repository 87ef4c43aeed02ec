"""PyTorch datasets over the exports of a synced experiment (``pip install heliocube[ml]`` for torch).

- :class:`ZarrDataset`: map-style, random access to the rows of the Zarr store ``{root}/exports/{experiment}.zarr``
  (every year group, in time order).
- :class:`ShardDataset`: iterable, streams the WebDataset shards ``{root}/exports/{experiment}/shards/*.tar`` (one
  pass over each tar, frames read straight into the image, :mod:`heliocube.ml.tar_samples`; optionally whole
  batches in shared memory), split across DataLoader workers and distributed ranks without duplicates or losses.

Both give the same sample: a dict with ``image`` (a ``(C, H, W)`` float32 tensor), ``time`` (ISO UTC),
``channels``, ``index`` (the row on the experiment's time axis) and ``header`` (selected header fields per channel),
and take the same options: channel selection, temporal step, spatial downsampling (NaN-aware mean pooling),
normalization on/off and ``split=`` (``{root}/exports/{experiment}/splits.csv``).

- :class:`EventDataset`: map-style, the sampled frames of an event dataset (``{root}/events/{name}/dataset/
  events.h5``) with their flare labels as targets; a sample holds ``image`` (``(1, H, W)``), ``label``, ``time``,
  ``phase``, ``event_id`` and the frame's product, GOES class and file name.

The datasets are imported on first use, so ``import heliocube.ml`` (and the workflow) loads no torch.
"""

from __future__ import annotations

from ..lazy import lazy_names

__all__ = ["EventDataset", "ShardDataset", "ZarrDataset", "split_positions", "splits_path"]

_HOMES = {
    "EventDataset": "event_dataset",
    "ZarrDataset": "zarr_dataset",
    "ShardDataset": "shard_dataset",
    "split_positions": "splits",
    "splits_path": "splits",
}


# torch (about a second to import) is loaded only when a dataset is asked for
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
