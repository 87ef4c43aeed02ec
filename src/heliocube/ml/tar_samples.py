"""One forward pass over a shard, each sample's ``.npy`` members read straight into its ``(C, H, W)`` image.

The shards are plain tars (:mod:`heliocube.export.shards`), so a seekable :class:`tarfile.TarFile` walks their
headers and skips the bytes of every member not wanted. A wanted frame's ``.npy`` header is parsed with numpy's own
reader and its payload read with ``readinto`` into its plane of the sample's image: one copy from the page cache,
where webdataset's stream (tar bytes, then ``np.load`` from a ``BytesIO``, then stacking the channels) made three.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["read_npy_into", "tar_samples"]


def sample_key(member: str) -> str:
    """``YYYY/MM/DD/HHMM`` of a member ``YYYY/MM/DD/HHMM.<CHANNEL>.npy`` or ``YYYY/MM/DD/HHMM.json``."""
    folder, _, name = member.rpartition("/")
    return f"{folder}/{name.split('.', 1)[0]}"


def read_npy_into(file, plane: np.ndarray, where: str) -> None:
    """Read the ``.npy`` at ``file``'s position into ``plane`` (float32 ``(H, W)``); float16 frames widen exactly.

    Raises
    ------
    ValueError
        When the array's shape differs from the plane's or it is not a C-ordered float16/float32 array.
    """
    version = np.lib.format.read_magic(file)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = header(file)
    if shape != plane.shape or fortran or dtype.kind != "f" or dtype.itemsize not in (2, 4):
        raise ValueError(f"{where}: a {dtype} array of shape {shape}, not the {plane.shape} float frame expected")
    target = plane if dtype == plane.dtype else np.empty(shape, dtype)
    view = memoryview(target).cast("B")
    if file.readinto(view) != view.nbytes:
        raise ValueError(f"{where}: the frame is cut short")
    if target is not plane:
        plane[...] = target  # float16 (or byte-swapped) frames converted exactly


def tar_samples(path: str | os.PathLike, channels: Sequence[str], shape: tuple[int, int],
                wanted: Callable[[int], bool]) -> Iterator[dict[str, Any]]:
    """The samples of the shard ``path`` whose position (0, 1... in the tar's order) ``wanted`` accepts.

    Yields
    ------
    dict
        ``__key__`` (``YYYY/MM/DD/HHMM``), ``__position__``, ``json`` (the ``.json`` member's bytes) and ``image``:
        a float32 ``(len(channels), *shape)`` array, channels in the order given.

    Raises
    ------
    ValueError
        When a read sample lacks one of ``channels`` or its ``.json`` member.
    """
    suffixes = {f"{channel}.npy": number for number, channel in enumerate(channels)}
    url = os.fspath(path)
    try:
        with open(url, "rb") as file, tarfile.open(fileobj=file, mode="r:") as tar:
            yield from _samples(file, tar, suffixes, shape, wanted, url)
    except tarfile.TarError as error:
        raise ValueError(f"{url}: not a whole tar ({error}): rebuild the shards") from error


def _samples(file, tar: tarfile.TarFile, suffixes: dict[str, int], shape: tuple[int, int],
             wanted: Callable[[int], bool], url: str) -> Iterator[dict[str, Any]]:
    key, position, sample, seen = None, -1, None, set()
    for info in tar:  # headers only: the tar seeks past the bytes of members not read
        this = sample_key(info.name)
        if this != key:
            if sample is not None:
                yield _complete(sample, seen, len(suffixes), url)
            key, position, seen = this, position + 1, set()
            sample = ({"__key__": key, "__position__": position,
                       "image": np.empty((len(suffixes), *shape), np.float32)}
                      if wanted(position) else None)  # fmt: skip
        if sample is None or not info.isfile():
            continue
        suffix = info.name.split(".", 1)[1]
        file.seek(info.offset_data)
        if suffix == "json":
            sample["json"] = file.read(info.size)
        elif suffix in suffixes:
            read_npy_into(file, sample["image"][suffixes[suffix]], f"{url}: {info.name}")
            seen.add(suffix)
    if sample is not None:
        yield _complete(sample, seen, len(suffixes), url)


def _complete(sample: dict[str, Any], seen: set[str], channels: int, url: str) -> dict[str, Any]:
    if len(seen) != channels or "json" not in sample:
        raise ValueError(f"{url}: sample {sample['__key__']} lacks channels or its .json member: rebuild the shards")
    return sample
