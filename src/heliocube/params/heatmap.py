"""Heatmaps of one parameter of one frame: the grid of cells over the solar image, with a colour bar, the parameter's
name and its units (what the GSU API's ``get_aia_imageparam_jpeg`` shows), and the heatmaps a parameter job writes.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state), so a server may render heatmaps from several
threads.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import h5py
import numpy as np

__all__ = ["heatmap_name", "render_heatmap", "render_heatmap_sheet", "write_heatmaps"]


def _display(image: np.ndarray) -> np.ndarray:
    """The image for display: clipped at its 1st and 99.5th percentiles, square-root stretched to [0, 1]."""
    image = np.asarray(image, dtype=np.float64)
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape)
    lo, hi = np.percentile(finite, [1, 99.5])
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return np.sqrt(np.nan_to_num(scaled))


def _draw(figure, axes, bar_axes, image: np.ndarray, grid_values: np.ndarray, name: str, units: str,
          title: str) -> None:
    """One heatmap on ``axes`` with its colour bar on ``bar_axes``."""
    values = np.asarray(grid_values, dtype=np.float64)
    height, width = np.asarray(image).shape
    axes.imshow(_display(image), cmap="gray", origin="lower", extent=(0, width, 0, height), interpolation="nearest")
    finite = values[np.isfinite(values)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cells = axes.imshow(np.ma.masked_invalid(values), cmap="viridis", origin="lower", extent=(0, width, 0, height),
                        alpha=0.6, interpolation="nearest", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9)
    grid = values.shape[0]
    if grid <= 32:  # cell borders, where they do not hide the image
        for k in range(1, grid):
            axes.axhline(k * height / grid, color="white", lw=0.3, alpha=0.5)
            axes.axvline(k * width / grid, color="white", lw=0.3, alpha=0.5)
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=9)
    bar = figure.colorbar(cells, cax=bar_axes)
    bar.set_label(f"{name.replace('_', ' ')} [{units}]", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _encode(figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


def render_heatmap(image: np.ndarray, grid_values: np.ndarray, name: str, units: str, *, title: str = "",
                   fmt: str = "png") -> bytes:
    """One parameter's cells drawn over the frame they were computed on.

    Parameters
    ----------
    image : numpy.ndarray
        The frame ``(H, W)``, row 0 at the bottom (solar images' convention, as in the cubes).
    grid_values : numpy.ndarray
        The parameter on the ``(G, G)`` grid (cell ``[i, j]`` covers rows ``i*H/G..`` and columns ``j*W/G..``);
        NaN cells are left transparent.
    name, units : str
        Shown on the colour bar, e.g. ``"entropy"``, ``"bit"``.
    title : str
        Above the image (e.g. product and time).
    fmt : str
        Any format matplotlib's Agg canvas writes: ``png``, ``jpg``, ``svg``, ``pdf``...

    Returns
    -------
    bytes
        The encoded image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 4.4), dpi=100)
    FigureCanvasAgg(figure)
    _draw(figure, figure.add_axes((0.04, 0.06, 0.72, 0.84)), figure.add_axes((0.79, 0.06, 0.04, 0.84)), image,
          grid_values, name, units, title)
    return _encode(figure, fmt)


def render_heatmap_sheet(image: np.ndarray, values: np.ndarray, names, units, *, title: str = "",
                         fmt: str = "png") -> bytes:
    """All parameters of one frame as heatmaps on one sheet (two rows), e.g. for the report.

    Parameters
    ----------
    values : numpy.ndarray
        ``(G, G, P)`` parameters, the last axis in the order of ``names`` and ``units``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = (len(names) + 1) // 2
    figure = Figure(figsize=(2.6 * columns, 5.0), dpi=90)
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=10)
    for k, (name, unit) in enumerate(zip(names, units, strict=True)):
        row, column = divmod(k, columns)
        left, bottom = column / columns, 0.5 - row * 0.47
        axes = figure.add_axes((left + 0.01, bottom + 0.02, 0.70 / columns, 0.38))
        bar = figure.add_axes((left + 0.74 / columns, bottom + 0.02, 0.04 / columns, 0.38))
        _draw(figure, axes, bar, image, values[..., k], name, unit, "")
    return _encode(figure, fmt)


def heatmap_name(slot_time: str, parameter: str) -> str:
    """``{YYYYMMDDTHHMMSS}_{parameter}.png``: a frame's heatmap file name (no ``:`` in file names)."""
    stamp = "".join(ch for ch in slot_time[:19] if ch.isdigit() or ch == "T")
    return f"{stamp}_{parameter}.png"


def write_heatmaps(cube_path: str | os.PathLike, params_path: str | os.PathLike, folder: str | os.PathLike, *,
                   frame: int = -1) -> list[Path]:
    """Write the ten heatmaps of one frame (default the last) of a cube into ``folder`` (created; empty when the
    cube has no frame)."""
    from .store import read_parameters

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = read_parameters(params_path)
    if not len(stored.time):
        return []
    index = frame % len(stored.time)
    with h5py.File(cube_path, "r") as cube:
        image = cube["data"][index]
    written = []
    for k, (name, units) in enumerate(zip(stored.names, stored.units, strict=True)):
        title = f"{stored.attrs['product']} {stored.attrs['variant']} {stored.time[index][:19]}"
        path = folder / heatmap_name(stored.time[index], name)
        path.write_bytes(render_heatmap(image, stored.params[index, :, :, k], name, units, title=title))
        written.append(path)
    return written
