"""Iterable dataset over an experiment's WebDataset shards ``{root}/exports/{experiment}/shards/*.tar``."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds

from .partition import consumer, partition
from .preprocess import Preprocess, check_channels, check_step, resolve_normalizer
from .splits import export_dir, read_splits, split_positions, splits_path
from .tar_samples import read_image, tar_samples

__all__ = ["ShardDataset"]


class ShardDataset(torch.utils.data.IterableDataset):
    """The samples of an experiment's shards, streamed: each shard is opened once and read front to back.

    Parameters
    ----------
    shards : str or os.PathLike
        ``{root}/exports/{experiment}/shards`` (its ``index.json`` lists the shards and their sample counts).
    channels, step, downsample, normalize, split, splits, header_keys
        As for :class:`heliocube.ml.ZarrDataset` (``header_keys`` are looked up in each sample's ``.json``).
    shuffle : bool
        Shuffle the shard order by ``(seed, epoch)`` and the samples within a buffer of ``buffer_size`` samples
        of each reader; the same ``(seed, epoch)`` and reader layout give the same order.
    seed : int
        Seed of the shuffle.
    epoch : int
        First epoch; :meth:`set_epoch` changes it, as with ``DistributedSampler``.
    buffer_size : int
        Samples held per reader for shuffling (descriptions: their ``.json`` and where their frames lie).
    rank, world_size : int, optional
        This process's share of a distributed run (default: ``torch.distributed``'s when initialised, else one).
    batch_size : int, optional
        Yield batches of this many samples (each reader's last may be shorter), for ``DataLoader(batch_size=None)``:
        ``image`` is one ``(B, C, H, W)`` tensor the frames are read straight into, in shared memory inside a
        DataLoader worker, so it reaches the training process with no collation copy; ``time``, ``index`` (a
        tensor) and ``header`` hold one entry per sample. Default: single samples, for the DataLoader to batch.

    Notes
    -----
    Every reader (rank x DataLoader worker) computes the same list of the epoch's samples and takes its own
    contiguous run of it (:func:`heliocube.ml.partition.partition`): no sample is read twice or lost, and ranks
    get equal counts (give or take one), which distributed training needs to stay in step. ``split`` and ``step``
    are applied before the cut, from the index and the split manifest (one row per synced row, like the shards);
    each sample's time is checked against the manifest as it is read.
    """

    def __init__(self, shards: str | os.PathLike, *, channels: Sequence[str] | None = None, step: int = 1,
                 downsample: int = 1, normalize: Any = False, split: str | None = None,
                 splits: str | os.PathLike | None = None, header_keys: Sequence[str] = (), shuffle: bool = False,
                 seed: int = 0, epoch: int = 0, buffer_size: int = 16, rank: int | None = None,
                 world_size: int | None = None, batch_size: int | None = None):  # fmt: skip
        self.folder = Path(shards)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise FileNotFoundError(f"{index_path}: no shard index; the workflow's export stage writes it")
        index = json.loads(index_path.read_text())
        self.shards = sorted(index["shards"])  # named by date: time order
        self.counts = np.array([index["shards"][name] for name in self.shards], dtype=np.int64)
        self.all_channels = list(index["channels"])
        self.channels = check_channels(channels, self.all_channels, str(self.folder))
        shapes = {tuple(index["shapes"][channel]) for channel in self.channels}
        if len(shapes) != 1:
            raise ValueError(f"channels {self.channels} of {self.folder} have frames of shapes {sorted(shapes)}: "
                             "select channels of one shape")  # fmt: skip
        self.shape = shapes.pop()
        keep = np.arange(self.counts.sum()) % check_step(step) == 0
        self.times = None
        if split is not None:
            manifest = read_splits(splits or splits_path(self.folder))
            if len(manifest) != len(keep):
                raise ValueError(f"{splits or splits_path(self.folder)} has {len(manifest)} rows, the shards "
                                 f"{len(keep)} samples: both must hold every synced row")  # fmt: skip
            keep &= split_positions(manifest, split)
            self.times = np.datetime_as_string(manifest["time"].to_numpy().astype("datetime64[s]"), unit="s")
        self.keep = keep
        self.header_keys = list(header_keys)
        self.shuffle, self.seed, self.epoch, self.buffer_size = shuffle, seed, epoch, buffer_size
        self.rank, self.world_size = rank, world_size
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise ValueError(f"batch_size={batch_size!r}: give a whole size >= 1, or None for single samples")
        self.batch_size = batch_size
        normalizer = resolve_normalizer(normalize, export_dir(self.folder) / "normalization.json")
        self.preprocess = Preprocess(self.channels, downsample, normalizer)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next pass as epoch ``epoch`` (call before each epoch, in the main process)."""
        self.epoch = epoch

    def __len__(self) -> int:
        """Samples of one epoch over every reader (what a DataLoader over all ranks yields)."""
        return int(self.keep.sum())

    def _raw(self, runs: list[tuple[int, np.ndarray]]) -> Iterator[dict[str, Any]]:
        """Descriptions of the samples of ``runs`` (:func:`~heliocube.ml.tar_samples.tar_samples`), each shard's
        headers passed over once."""
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        for shard, positions in runs:
            url = self.folder / self.shards[shard]
            wanted = set(positions.tolist())
            samples = tar_samples(url, self.channels, self.shape, wanted.__contains__)
            read = 0
            # zip asks the positions first, so the tar is left as soon as the run's last sample is read
            for position, sample in zip(positions.tolist(), samples):  # noqa: B905
                if sample["__position__"] != position:
                    break
                sample["__url__"], sample["__index__"] = str(url), int(starts[shard] + position)
                read += 1
                yield sample
            if read != len(positions):
                raise ValueError(f"{url}: {read} of the samples at positions {positions.tolist()} found; "
                                 f"index.json says {self.counts[shard]}: rebuild the shards")

    def _decode(self, sample: dict[str, Any], image: np.ndarray | None = None) -> dict[str, Any]:
        """One sample dict from a description; its frames are read into ``image`` when given (the batch's slot,
        then not preprocessed: the caller reads directly only without normalization and downsampling)."""
        meta = json.loads(sample["json"])
        index = sample["__index__"]
        if self.times is not None and meta["time"][:19] != self.times[index]:
            raise ValueError(f"{sample['__url__']}: sample {sample['__key__']} is at {meta['time']}, the split "
                             f"manifest's row {index} at {self.times[index]}: rebuild the exports together")
        header = {channel: {key: meta_header(meta, channel)[key] for key in self.header_keys
                            if key in meta_header(meta, channel)} for channel in self.channels}  # fmt: skip
        if image is not None:
            return {"time": meta["time"][:19], "index": index, "header": header}
        return self.preprocess(read_image(sample, np.empty((len(self.channels), *self.shape), np.float32)),
                               time=meta["time"][:19], index=index, header=header)

    def _batch(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch of sample descriptions, read straight into one (shared-memory, in a worker) image tensor."""
        direct = self.preprocess.normalizer is None and self.preprocess.factor == 1
        decoded = [] if direct else [self._decode(sample) for sample in samples]
        shape = (len(self.channels), *self.shape) if direct else tuple(decoded[0]["image"].shape)
        image = _batch_tensor((len(samples), *shape))
        if direct:
            for slot, sample in zip(image.numpy(), samples, strict=True):
                decoded.append(self._decode(sample, image=read_image(sample, slot)))
        else:
            for slot, sample in zip(image, decoded, strict=True):
                slot.copy_(sample["image"])
        return {"image": image, "time": [s["time"] for s in decoded],
                "index": torch.tensor([s["index"] for s in decoded]), "channels": list(self.channels),
                "header": [s["header"] for s in decoded]}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        index, count = consumer(self.rank, self.world_size)
        runs = partition(self.counts, self.keep, index, count, shuffle=self.shuffle, seed=self.seed,
                         epoch=self.epoch)  # fmt: skip
        raw = self._raw(runs)
        if self.shuffle:
            rng = random.Random(f"{self.seed}:{self.epoch}:{index}:{count}")
            raw = wds.shuffle(self.buffer_size, initial=self.buffer_size, rng=rng)(raw)
        if self.batch_size is None:
            for sample in raw:
                yield self._decode(sample)
            return
        batch = []
        for sample in raw:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self._batch(batch)
                batch = []
        if batch:
            yield self._batch(batch)


def _batch_tensor(shape: tuple[int, ...]) -> torch.Tensor:
    """An empty float32 tensor, in shared memory inside a DataLoader worker (as ``default_collate`` makes its
    batches there), so sending it to the training process copies nothing."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    storage = torch.empty(0, dtype=torch.float32)._typed_storage()._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=torch.float32).new(storage).resize_(shape)


def meta_header(meta: dict[str, Any], channel: str) -> dict[str, Any]:
    """The header keywords of ``channel`` in a sample's ``.json`` (:func:`heliocube.export.shards.sample_metadata`)."""
    return meta["frames"][channel]["header"]
