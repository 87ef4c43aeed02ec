"""One forward pass over a shard's headers; each sample's frames read later, straight into the image that holds them.

The shards are plain tars (:mod:`heliocube.export.shards`), so a seekable :class:`tarfile.TarFile` walks their
headers and skips the bytes of every member not wanted. A wanted sample becomes a small description (its ``.json``
bytes, and where each channel's ``.npy`` payload lies, parsed with numpy's own header reader); :func:`read_image`
then reads the payloads with ``os.preadv`` into the planes of any float32 ``(C, H, W)`` array, including a slot of a
shared-memory batch: one copy from the page cache, where webdataset's stream (tar bytes, ``np.load`` from a
``BytesIO``, stacking the channels, collation) made four. Descriptions are cheap to hold in a shuffle buffer.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["read_image", "tar_samples"]

#: Bytes read to parse a ``.npy`` header (numpy pads version 1 headers to a multiple of 64 bytes, 128 for ours).
_NPY_HEAD = 4096


def sample_key(member: str) -> str:
    """``YYYY/MM/DD/HHMM`` of a member ``YYYY/MM/DD/HHMM.<CHANNEL>.npy`` or ``YYYY/MM/DD/HHMM.json``."""
    folder, _, name = member.rpartition("/")
    return f"{folder}/{name.split('.', 1)[0]}"


class _Shard:
    """An open shard for positioned reads, closed when the last sample description holding it goes."""

    def __init__(self, url: str):
        self.url = url
        self.fd = os.open(url, os.O_RDONLY)

    def __del__(self) -> None:
        os.close(self.fd)


def _payload(shard: _Shard, info: tarfile.TarInfo, shape: tuple[int, int]) -> tuple[int, np.dtype]:
    """Offset and dtype of the array data of the ``.npy`` member ``info``, checked against ``shape``."""
    where = f"{shard.url}: {info.name}"
    head = io.BytesIO(os.pread(shard.fd, min(info.size, _NPY_HEAD), info.offset_data))
    try:
        version = np.lib.format.read_magic(head)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        array_shape, fortran, dtype = read(head)
    except ValueError as error:
        raise ValueError(f"{where}: not a .npy frame ({error}): rebuild the shards") from error
    if array_shape != shape or fortran or dtype.kind != "f" or dtype.itemsize not in (2, 4):
        raise ValueError(f"{where}: a {dtype} array of shape {array_shape}, not the {shape} float frame expected")
    if head.tell() + int(np.prod(shape)) * dtype.itemsize != info.size:
        raise ValueError(f"{where}: {info.size} bytes do not hold a {dtype} frame of shape {shape}")
    return info.offset_data + head.tell(), dtype


def read_image(sample: dict[str, Any], image: np.ndarray) -> np.ndarray:
    """Read the frames of a sample description (:func:`tar_samples`) into the float32 ``(C, H, W)`` ``image``.

    float16 frames widen exactly. Returns ``image``.
    """
    shard = sample["__shard__"]
    for plane, (offset, dtype) in zip(image, sample["frames"], strict=True):
        target = plane if dtype == plane.dtype else np.empty(plane.shape, dtype)
        view = memoryview(target).cast("B")
        if os.preadv(shard.fd, [view], offset) != view.nbytes:
            raise ValueError(f"{shard.url}: sample {sample['__key__']} is cut short: rebuild the shards")
        if target is not plane:
            plane[...] = target  # float16 (or byte-swapped) frames converted exactly
    return image


def tar_samples(path: str | os.PathLike, channels: Sequence[str], shape: tuple[int, int],
                wanted: Callable[[int], bool]) -> Iterator[dict[str, Any]]:
    """Descriptions of the samples of the shard ``path`` whose position (0, 1... in the tar) ``wanted`` accepts.

    Yields
    ------
    dict
        ``__key__`` (``YYYY/MM/DD/HHMM``), ``__position__``, ``json`` (the ``.json`` member's bytes) and ``frames``
        (where each of ``channels``, in that order, lies), for :func:`read_image`.

    Raises
    ------
    ValueError
        When the tar is not whole, or a wanted sample lacks one of ``channels`` or its ``.json`` member.
    """
    suffixes = {f"{channel}.npy": number for number, channel in enumerate(channels)}
    url = os.fspath(path)
    shard = _Shard(url)
    try:
        with open(url, "rb") as file, tarfile.open(fileobj=file, mode="r:") as tar:
            yield from _samples(shard, file, tar, suffixes, shape, wanted)
    except tarfile.TarError as error:
        raise ValueError(f"{url}: not a whole tar ({error}): rebuild the shards") from error


def _samples(shard: _Shard, file, tar: tarfile.TarFile, suffixes: dict[str, int], shape: tuple[int, int],
             wanted: Callable[[int], bool]) -> Iterator[dict[str, Any]]:
    key, position, sample = None, -1, None
    for info in tar:  # headers only: the tar seeks past the bytes of members not read
        this = sample_key(info.name)
        if this != key:
            if sample is not None:
                yield _complete(sample, len(suffixes))
            key, position = this, position + 1
            sample = ({"__key__": key, "__position__": position, "__shard__": shard, "frames": [None] * len(suffixes)}
                      if wanted(position) else None)  # fmt: skip
        if sample is None or not info.isfile():
            continue
        suffix = info.name.split(".", 1)[1]
        if suffix == "json":
            file.seek(info.offset_data)
            sample["json"] = file.read(info.size)
        elif suffix in suffixes:
            sample["frames"][suffixes[suffix]] = _payload(shard, info, shape)
    if sample is not None:
        yield _complete(sample, len(suffixes))


def _complete(sample: dict[str, Any], channels: int) -> dict[str, Any]:
    if None in sample["frames"] or "json" not in sample:
        raise ValueError(f"{sample['__shard__'].url}: sample {sample['__key__']} lacks channels or its .json "
                         "member: rebuild the shards")  # fmt: skip
    return sample
