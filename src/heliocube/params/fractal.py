"""Fractal dimension (P4): box counting (Minkowski-Bouligand) on each cell's edge pixels.

``N(e)`` is the number of boxes of side ``e`` (a tiling of the cell aligned with its corner) holding at least one
edge pixel; the dimension is the least-squares slope of ``log N(e)`` against ``log(1/e)``. The box sides are the
powers of two from 1 up to the largest one dividing both cell edges (the whole cell included): a 64 px cell uses
1, 2, ..., 64. Known values: a straight full-length line gives 1, a filled cell 2, a single pixel 0, and a
Sierpinski carpet log 8 / log 3 (with box sides 1, 3, 9, ...). A cell without an edge pixel gets 0 (the empty set);
a cell whose edges admit only one box side (odd edges) gets NaN.

Every box side is computed from the occupancy at the previous side (an OR over ``r x r`` blocks), so all sides
together cost little more than one pass over the edge map.
"""

from __future__ import annotations

import numpy as np

__all__ = ["box_counts", "box_sizes", "fractal_dimension", "slope"]


def box_sizes(cell_h: int, cell_w: int) -> list[int]:
    """Powers of two from 1 up to the largest dividing both ``cell_h`` and ``cell_w``."""
    sizes = [1]
    while cell_h % (sizes[-1] * 2) == 0 and cell_w % (sizes[-1] * 2) == 0:
        sizes.append(sizes[-1] * 2)
    return sizes


def box_counts(edges: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Occupied boxes per cell and box side, ``(rows, G, len(sizes))``.

    Parameters
    ----------
    edges : numpy.ndarray
        Boolean edge map as a ``(rows, h, G, w)`` view (:func:`heliocube.params.grid.blocked`).
    sizes : list of int
        Increasing box sides, each a multiple of the one before and dividing ``h`` and ``w``.
    """
    occupied = np.asarray(edges, dtype=bool)
    counts, side = [], 1
    for size in sizes:
        if size % side:
            raise ValueError(f"box sides {sizes}: each must be a multiple of the one before")
        r = size // side
        if occupied.shape[1] % r or occupied.shape[3] % r:
            raise ValueError(f"box side {size} does not divide the cells")
        if r > 1:  # a box is occupied when any of the r x r boxes of the previous side it covers is
            coarse = occupied[:, ::r, :, ::r].copy()
            for dy in range(r):
                for dx in range(r):
                    if dy or dx:
                        coarse |= occupied[:, dy::r, :, dx::r]
            occupied = coarse
        counts.append(np.count_nonzero(occupied, axis=(1, 3)))
        side = size
    return np.stack(counts, axis=-1)


def slope(sizes: list[int], counts: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``log N`` against ``log(1/e)`` over the last axis; 0 where nothing is occupied,
    NaN with fewer than two sides."""
    if len(sizes) < 2:
        return np.full(counts.shape[:-1], np.nan)
    x = -np.log(np.asarray(sizes, dtype=np.float64))
    x -= x.mean()
    with np.errstate(divide="ignore"):
        y = np.log(counts.astype(np.float64))
    empty = counts[..., 0] == 0
    y[empty] = 0.0
    return (y * x).sum(axis=-1) / (x * x).sum()


def fractal_dimension(edges: np.ndarray, sizes: list[int] | None = None) -> np.ndarray:
    """P4 of every cell, ``(rows, G)`` float64, from a ``(rows, h, G, w)`` boolean edge map."""
    if sizes is None:
        sizes = box_sizes(edges.shape[1], edges.shape[3])
    return slope(sizes, box_counts(edges, sizes))
