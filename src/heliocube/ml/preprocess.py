"""What both datasets do to a sample's frames: normalization, spatial downsampling, the sample dict."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.measure import block_reduce

__all__ = ["Preprocess", "downsample", "resolve_normalizer"]


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block of every channel of a ``(C, H, W)`` image, ignoring NaN.

    A block that is all NaN (off-disk fill, a missing frame) stays NaN; edge blocks of a size not divisible by
    ``factor`` average the pixels they have. ``factor=1`` returns ``image`` itself.
    """
    if factor == 1:
        return image
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        pooled = block_reduce(image, (1, factor, factor), func=np.nanmean, cval=np.nan)
    return pooled.astype(np.float32, copy=False)


def resolve_normalizer(normalize: Any, default_path: Path):
    """The normalizer a dataset applies, or ``None``.

    Parameters
    ----------
    normalize : bool, str, os.PathLike or object
        ``False``/``None``: none (values as synced). ``True``: the experiment's artifact ``default_path``
        (``{root}/exports/{experiment}/normalization.json``). A path: that artifact. Any object with a
        ``forward(array, channel)`` method (e.g. a :class:`heliocube.export.normalization.Normalizer`): itself.
    default_path : pathlib.Path
        The experiment's normalization artifact.
    """
    if normalize is None or normalize is False:
        return None
    if hasattr(normalize, "forward"):
        return normalize
    path = default_path if normalize is True else Path(normalize)
    if not isinstance(normalize, bool | str | os.PathLike):
        raise TypeError(f"normalize={normalize!r}: give True, False, a path or a Normalizer")
    from ..export.normalization import Normalizer  # the export stage's artifact reader; only needed here

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no normalization artifact; the workflow's export stage writes it")
    return Normalizer.load(path)


class Preprocess:
    """Turn one row's frames into a sample dict (picklable, so DataLoader workers get a copy).

    Parameters
    ----------
    channels : sequence of str
        The sample's channels, in order.
    factor : int
        Spatial downsampling factor (:func:`downsample`).
    normalizer : object or None
        Applied to each channel (``forward(array, channel)``) before downsampling, in the domain the statistics
        were taken in (full resolution).
    """

    def __init__(self, channels: Sequence[str], factor: int = 1, normalizer=None):
        if int(factor) != factor or factor < 1:
            raise ValueError(f"downsample={factor!r}: give a whole factor >= 1")
        self.channels = list(channels)
        self.factor = int(factor)
        self.normalizer = normalizer

    def __call__(self, frames: Sequence[np.ndarray] | np.ndarray, *, time: str, index: int,
                 header: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        if isinstance(frames, np.ndarray) and frames.dtype == np.float32 and frames.ndim == 3:
            image = frames  # the channels already read into one image (the shard reader): no copy
        else:
            image = np.stack([np.asarray(frame, dtype=np.float32) for frame in frames])  # float16 widens exactly
        if self.normalizer is not None:
            image = np.stack([np.asarray(self.normalizer.forward(plane, channel), dtype=np.float32)
                              for plane, channel in zip(image, self.channels, strict=True)])  # fmt: skip
        image = downsample(image, self.factor)
        return {"image": torch.from_numpy(np.ascontiguousarray(image)), "time": time, "index": index,
                "channels": list(self.channels), "header": {channel: dict(header.get(channel, {}))
                                                            for channel in self.channels}}  # fmt: skip


def check_channels(wanted: Sequence[str] | None, available: Sequence[str], where: str) -> list[str]:
    """``wanted`` (all of ``available`` if None), in the order given; a ValueError names unknown channels."""
    if wanted is None:
        return list(available)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    unknown = [name for name in wanted if name not in available]
    if unknown or not wanted:
        raise ValueError(f"channels={wanted}: {where} holds {list(available)}")
    return wanted


def check_step(step: int) -> int:
    """A temporal step (every ``step``-th row of the time axis), checked."""
    if int(step) != step or step < 1:
        raise ValueError(f"step={step!r}: give a whole step >= 1")
    return int(step)
