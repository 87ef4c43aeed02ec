"""Read cube frames by row, copying compressed chunks unchanged when the filters allow it.

A synced file usually stores frames with the same chunking (one frame per chunk) and filters as the cubes it is
built from. Then a frame can be moved as its compressed chunk (``read_direct_chunk``/``write_direct_chunk``):
the decompressed bytes are by construction identical to the source row, and no gzip work is done, which for a
mission-long 512² experiment is the difference between hours and minutes. Anything else (other filters, virtual
sources that cannot be resolved, unallocated chunks, differenced frames) goes through a normal float32
read/write.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

__all__ = ["FrameSource", "chunk_signature"]


def chunk_signature(dataset: h5py.Dataset) -> tuple | None:
    """(dtype, chunk shape, filters) of a chunked dataset, or None when it is not chunked."""
    plist = dataset.id.get_create_plist()
    if plist.get_layout() != h5py.h5d.CHUNKED:
        return None
    pipeline = (plist.get_filter(i) for i in range(plist.get_nfilters()))
    filters = tuple((code, tuple(values)) for code, _flags, values, _name in pipeline)
    return (dataset.dtype.str, tuple(plist.get_chunk()), filters)


class FrameSource:
    """Rows of a cube's ``/data`` (a real or a virtual dataset), as arrays or as compressed chunks.

    Parameters
    ----------
    file : h5py.File
        The open cube (or virtual master).
    name : str
        Dataset path, ``"data"`` for a cube.
    """

    def __init__(self, file: h5py.File, name: str = "data") -> None:
        self.dataset = file[name]
        self.shape = self.dataset.shape
        self._opened: list[h5py.File] = []
        # (first virtual row, last virtual row, dataset, first source row, its chunk signature) per block
        self._blocks: list[tuple[int, int, h5py.Dataset, int, tuple | None]] = []
        if self.dataset.is_virtual:
            self._resolve_virtual(Path(file.filename).parent)
        else:
            self._blocks.append((0, self.shape[0] - 1, self.dataset, 0, chunk_signature(self.dataset)))

    def _resolve_virtual(self, base: Path) -> None:
        frame_points = int(np.prod(self.shape[1:], dtype=np.int64))
        blocks = []
        for mapping in self.dataset.virtual_sources():
            (v_first, *_), (v_last, *_) = mapping.vspace.get_select_bounds()
            if mapping.vspace.get_select_npoints() != (v_last - v_first + 1) * frame_points:
                return  # not a block of whole frames: leave the fast path off
            if mapping.src_space.get_select_type() == h5py.h5s.SEL_ALL:
                s_first = 0
            else:
                s_first = mapping.src_space.get_select_bounds()[0][0]
            source = Path(mapping.file_name)
            source = source if source.is_absolute() else base / source
            if mapping.file_name == "." or not source.exists():
                return
            handle = h5py.File(os.fspath(source), "r")
            self._opened.append(handle)
            dataset = handle[mapping.dset_name]
            blocks.append((v_first, v_last, dataset, s_first, chunk_signature(dataset)))
        self._blocks = sorted(blocks, key=lambda block: block[0])

    def close(self) -> None:
        """Close the source files opened to resolve a virtual dataset."""
        for handle in self._opened:
            handle.close()
        self._opened.clear()
        self._blocks.clear()

    def read(self, row: int) -> np.ndarray:
        """Row ``row`` as a float32 array."""
        return np.asarray(self.dataset[row], dtype=np.float32)

    def read_chunk(self, row: int, signature: tuple | None) -> tuple[int, bytes] | None:
        """``(filter_mask, compressed bytes)`` of row ``row`` if it is stored as one chunk with ``signature``.

        Returns None when the chunk cannot be copied as is (different layout or filters, unresolved virtual
        source, or a chunk that was never written).
        """
        if signature is None or signature[1][0] != 1:
            return None
        for first, last, dataset, source_first, source_signature in self._blocks:
            if first <= row <= last:
                if source_signature != signature:
                    return None
                offset = (row - first + source_first,) + (0,) * (dataset.ndim - 1)
                try:
                    return dataset.id.read_direct_chunk(offset)
                except (KeyError, OSError, RuntimeError, ValueError):
                    return None  # unallocated chunk: the normal read returns the fill value
        return None
