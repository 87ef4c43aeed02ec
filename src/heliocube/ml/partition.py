"""Who reads what: the samples of an epoch split over distributed ranks and DataLoader workers, by seed and epoch."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["consumer", "partition"]


def consumer(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(index, count)`` of the process reading now among every reader of one epoch.

    The rank and world size are the arguments, else ``torch.distributed``'s when it is initialised, else 0 and 1;
    each rank's DataLoader workers (``torch.utils.data.get_worker_info``) divide the rank's share further.
    """
    if rank is None or world_size is None:
        initialised = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if initialised else 0 if rank is None else rank
        world_size = torch.distributed.get_world_size() if initialised else 1 if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    worker = torch.utils.data.get_worker_info()
    workers, worker_id = (1, 0) if worker is None else (worker.num_workers, worker.id)
    # readers interleave ranks (worker 0 of every rank, then worker 1...): the runs one sample longer than the
    # rest go to the first readers, so spread over the ranks, whose totals then differ by at most one
    return worker_id * world_size + rank, world_size * workers


def partition(counts: np.ndarray, keep: np.ndarray, index: int, count: int, *, shuffle: bool, seed: int,
              epoch: int) -> list[tuple[int, np.ndarray]]:
    """The samples reader ``index`` of ``count`` reads in one epoch, as ``(shard, positions in the shard)`` pairs.

    Parameters
    ----------
    counts : numpy.ndarray
        Samples per shard, shards in time order.
    keep : numpy.ndarray
        Boolean mask over every sample in time order (temporal step, split): the samples of the epoch.
    index, count : int
        The reader and the number of readers (:func:`consumer`).
    shuffle : bool
        Permute the shard order by ``(seed, epoch)``; every reader computes the same permutation, so the readers'
        shares still tile the epoch.
    seed, epoch : int
        The permutation's seed.

    Notes
    -----
    The kept samples, in (possibly permuted) shard order, are cut into ``count`` contiguous runs whose sizes differ
    by at most one: every sample is read exactly once per epoch, ranks get the same number of samples (give or take
    one), and a reader opens only the shards its run touches.
    """
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    order = np.random.default_rng([seed, epoch]).permutation(len(counts)) if shuffle else np.arange(len(counts))
    shard = np.concatenate([np.full(counts[s], s) for s in order]) if len(order) else np.zeros(0, int)
    position = np.concatenate([np.arange(counts[s]) for s in order]) if len(order) else np.zeros(0, int)
    kept = keep[starts[shard] + position] if len(shard) else np.zeros(0, bool)
    shard, position = shard[kept], position[kept]
    mine = np.array_split(np.arange(len(shard)), count)[index]
    runs = []
    for s in dict.fromkeys(shard[mine].tolist()):  # shards in run order, each once (a run is contiguous)
        runs.append((s, position[mine][shard[mine] == s]))
    return runs
