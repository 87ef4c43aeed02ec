"""Parameter files, one per product-variant-year cube: :func:`write_cube_parameters` and :func:`read_parameters`.

Layout of ``params/{variant}/{product}/{year}.h5`` (plain h5py; frame ``i`` is frame ``i`` of
``cubes/{variant}/{product}/{year}.h5``)::

    /params          float32 (T, G, G, 10), chunks (1, G, G, 10), gzip + shuffle; cell [t, i, j] covers rows
                     i*h:(i+1)*h and columns j*w:(j+1)*w of frame t (row 0 first, as in the cube)
    /time            (T,) UTC ISO strings: the cube's slot times
    /frames/<col>    every column of the cube's per-frame table, same names and values
    attrs (root and /params)  parameter_names, parameter_units (10 str each, heliocube.params order), settings
                     (JSON of every setting, heliocube.params.settings.ParamSettings), grid (G), product, variant,
                     config_hash, cube (the cube's path relative to the output root), cube_config_hash, created,
                     version_heliocube
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import h5py
import numpy as np

from . import PARAMETER_NAMES, PARAMETER_UNITS
from .compute import compute_parameters
from .settings import ParamSettings

__all__ = ["ParameterFile", "read_parameters", "write_cube_parameters"]

log = logging.getLogger(__name__)
_STR = h5py.string_dtype(encoding="utf-8")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attrs(settings: ParamSettings, config_hash: str, extra: dict) -> dict:
    from ..cube import software_versions

    return {
        "parameter_names": list(PARAMETER_NAMES), "parameter_units": list(PARAMETER_UNITS),
        "settings": settings.to_json(), "grid": settings.grid, "product": settings.product,
        "variant": settings.variant, "config_hash": config_hash,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version_heliocube": software_versions()["heliocube"], **extra,
    }


def write_cube_parameters(cube_path: str | os.PathLike, output: str | os.PathLike, settings: ParamSettings, *,
                          config_hash: str = "unknown") -> Path:
    """Compute the parameters of every frame of a cube and write them, atomically, to ``output``.

    Parameters
    ----------
    cube_path : path-like
        A per-year cube (:class:`heliocube.cube.CubeWriter`); read one frame at a time.
    output : path-like
        The parameter file (layout in the module's text); written to a hidden file beside it, renamed when whole.
    settings : ParamSettings
        :func:`heliocube.params.settings.settings_for` of the cube's product and variant.
    config_hash : str
        The run's :func:`heliocube.config.config_hash`.

    Returns
    -------
    pathlib.Path
        ``output``.
    """
    from ..paths import atomic_path

    output = Path(output)
    started = time.perf_counter()
    with h5py.File(cube_path, "r") as cube, atomic_path(output) as tmp:
        data = cube["data"]
        n_frames, grid = data.shape[0], settings.grid
        extra = {"cube": _text(cube_path), "cube_config_hash": _text(cube.attrs.get("config_hash", "unknown")),
                 "cube_units": _text(data.attrs.get("units", cube.attrs.get("units", "unknown")))}
        with h5py.File(tmp, "w") as out:
            attrs = _attrs(settings, config_hash, extra)
            params = out.create_dataset("params", shape=(n_frames, grid, grid, len(PARAMETER_NAMES)),
                                        maxshape=(None, grid, grid, len(PARAMETER_NAMES)), dtype=np.float32,
                                        chunks=(1, grid, grid, len(PARAMETER_NAMES)), compression="gzip",
                                        compression_opts=4, shuffle=True)
            for key, value in attrs.items():
                out.attrs[key] = value
                params.attrs[key] = value
            params.attrs["dims"] = "time,cell_y,cell_x,parameter"
            frames = out.create_group("frames")
            for name, column in cube["frames"].items():
                frames.create_dataset(name, data=column[()], dtype=column.dtype)
            slot = cube["frames"]["slot_time"][()] if "slot_time" in cube["frames"] else np.array([], object)
            out.create_dataset("time", data=np.asarray([_text(v) for v in slot], dtype=object), dtype=_STR)
            for index in range(n_frames):
                params[index] = compute_parameters(data[index], settings)
    log.info("wrote the %dx%d-cell parameters of %d frames of %s to %s in %.1f s", grid, grid, n_frames, cube_path,
             output, time.perf_counter() - started)
    return output


@dataclasses.dataclass(frozen=True)
class ParameterFile:
    """What a parameter file holds (the whole ``params`` array loaded)."""

    params: np.ndarray
    names: list[str]
    units: list[str]
    time: list[str]
    settings: ParamSettings
    attrs: dict

    def parameter(self, name: str) -> np.ndarray:
        """``(T, G, G)`` values of one parameter."""
        return self.params[..., self.names.index(name)]


def read_parameters(path: str | os.PathLike) -> ParameterFile:
    """Read a parameter file written by :func:`write_cube_parameters`."""
    with h5py.File(path, "r") as f:
        attrs = {key: f.attrs[key] for key in f.attrs}
        names = [_text(v) for v in attrs["parameter_names"]]
        units = [_text(v) for v in attrs["parameter_units"]]
        return ParameterFile(f["params"][()], names, units, [_text(v) for v in f["time"][()]],
                             ParamSettings.from_json(_text(attrs["settings"])),
                             {k: (_text(v) if isinstance(v, bytes | str) else v) for k, v in attrs.items()})


def settings_json(path: str | os.PathLike) -> dict:
    """The settings a parameter file records, as a dict."""
    with h5py.File(path, "r") as f:
        return json.loads(_text(f.attrs["settings"]))
