"""What the report reads from cubes and synced files: a few frames of each cube, and each synced product's |dt|."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits

__all__ = ["CubeSample", "SyncedDt", "master_cubes", "sample_cube", "synced_abs_dt", "synced_files"]


@dataclasses.dataclass(frozen=True)
class CubeSample:
    """Frames picked evenly over a cube's time axis, with their slot times and FITS headers."""

    variant: str
    product: str
    n_frames: int
    frame_shape: tuple[int, int]
    slot_times: list[str]
    frames: list[np.ndarray]
    headers: list[fits.Header]
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SyncedDt:
    """The |obs_time - axis time| of every kept row of each product of one synced experiment, in seconds."""

    experiment: str
    tolerance_seconds: float
    abs_dt: dict[str, np.ndarray]


def master_cubes(root: str | os.PathLike) -> list[Path]:
    """The master cube of every product and variant, ``cubes/{variant}/{product}.h5`` (seeded copies left out:
    their pixels are the master's)."""
    return sorted(path for path in Path(root).glob("cubes/*/*.h5") if not path.name.endswith(".seeded.h5"))


def synced_files(root: str | os.PathLike) -> list[Path]:
    """Every synced experiment file, ``synced/{experiment}.h5``."""
    return sorted(Path(root).glob("synced/*.h5"))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sample_cube(path: str | os.PathLike, n: int = 6, max_size: int = 128) -> CubeSample:
    """Read ``n`` frames spread evenly over a cube (first and last included), reduced to at most ``max_size`` px.

    Parameters
    ----------
    path : path-like
        A cube (or master cube) written by :class:`heliocube.cube.CubeWriter`.
    n : int
        Frames wanted; fewer when the cube has fewer.
    max_size : int
        Larger frames are subsampled by a whole stride (thumbnails only: no pixel is interpolated).

    Returns
    -------
    CubeSample
    """
    path = Path(path)
    with h5py.File(path, "r") as cube:
        data = cube["data"]
        total = data.shape[0]
        picks = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int)) if total else []
        stride = max(1, -(-max(data.shape[1:]) // max_size))
        frames = [np.asarray(data[i], dtype=np.float32)[::stride, ::stride] for i in picks]
        slot_times = [_text(cube["frames"]["slot_time"][i]) for i in picks]
        headers = [fits.Header.fromstring(_text(cube["headers"][i]), sep="\n") for i in picks]
        variant = _text(cube.attrs.get("variant", path.parent.name))
        product = _text(cube.attrs.get("product", path.stem))
        shape = tuple(int(s) for s in data.shape[1:])
        attrs = {key: _text(value) for key, value in cube.attrs.items() if isinstance(value, str | bytes)}
    return CubeSample(variant, product, total, shape, slot_times, frames, headers, attrs)


def synced_abs_dt(path: str | os.PathLike) -> SyncedDt:
    """The |dt| of each product's kept rows (rows where the product is present) in one synced file.

    Parameters
    ----------
    path : path-like
        A synced file (:func:`heliocube.sync.write_synced`); read with h5py from its documented layout
        (``<product>/dt_seconds`` and ``<product>/present``), without building the xarray view.

    Returns
    -------
    SyncedDt
        Products in the experiment's order; ``tolerance_seconds`` the experiment's matching window half-width.
    """
    with h5py.File(path, "r") as synced:
        products = [_text(p) for p in synced.attrs["products"]]
        abs_dt = {}
        for product in products:
            dt = np.abs(np.asarray(synced[product]["dt_seconds"][()], dtype=float))
            present = np.asarray(synced[product]["present"][()], dtype=bool)
            abs_dt[product] = dt[present & np.isfinite(dt)]
        return SyncedDt(_text(synced.attrs.get("experiment", Path(path).stem)),
                        float(synced.attrs.get("tolerance_seconds", np.nan)), abs_dt)
