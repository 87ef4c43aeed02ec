"""Output trees for the read API's tests and bench: cubes written by the package's CubeWriter, and parameter files
and event tables written with h5py/csv exactly as the issue 15/16 contracts lay them out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from heliocube.cube import CubeWriter

#: The contract's parameter names and order.
PARAMETER_NAMES = ("entropy", "mean", "std", "fractal_dimension", "skewness", "kurtosis", "uniformity",
                   "relative_smoothness", "tamura_contrast", "tamura_directionality")
PARAMETER_UNITS = ("bit", "DN", "DN", "", "", "", "", "", "DN", "")
EVENT_COLUMNS = ("event_id", "event_type", "start", "peak", "end", "goes_class", "goes_flux", "active_region", "hpc_x",
                 "hpc_y", "kept", "reason", "window_start", "window_end")


def _header(obs: str, size: int, quality: int) -> str:
    cards = {"SIMPLE": "T", "NAXIS": "2", "NAXIS1": str(size), "NAXIS2": str(size), "DATE-OBS": f"'{obs}'",
             "TELESCOP": "'SDO/AIA'", "INSTRUME": "'AIA_3'", "WAVELNTH": "193", "EXPTIME": "2.0",
             "CDELT1": "300.0", "CDELT2": "300.0", "CRPIX1": f"{size / 2 + 0.5}", "CRPIX2": f"{size / 2 + 0.5}",
             "CRVAL1": "150.0", "CRVAL2": "-300.0", "DSUN_OBS": "1.4959787E+11", "QUALITY": str(quality)}
    return "\n".join(f"{key:<8}= {value:>20}" for key, value in cards.items())


def write_cube(path: Path, obs_times: list[str], size: int, *, seed: int = 0, cadence: str = "6min") -> None:
    """A cube of ``size``² frames at ``obs_times`` (a bright disk plus noise); QUALITY is 0 except frame 1 (1024)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] - (size - 1) / 2
    disk = np.where(np.hypot(rows, cols) < size * 0.4, 100.0, 1.0)
    attrs = {"variant": path.parent.parent.name, "config_hash": "cfg", "units": "DN", "cadence": cadence,
             "product": path.parent.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    with CubeWriter(path, (size, size), attrs=attrs) as writer:
        for i, obs in enumerate(obs_times):
            frame = (disk * rng.lognormal(0, 0.3, size=(size, size))).astype(np.float32)
            quality = 1024 if i == 1 else 0
            row = {"slot_time": obs[:16] + ":00", "obs_time": obs, "record_id": f"rec-{i}", "sha256": f"{i:064x}",
                   "CRPIX1": size / 2 + 0.5, "CRPIX2": size / 2 + 0.5, "CDELT1": 300.0, "CDELT2": 300.0,
                   "CRVAL1": 150.0, "CRVAL2": -300.0, "R_SUN": 3.2, "qc_quality": float(quality)}
            writer.append(frame, row, _header(obs, size, quality))


def param_values(n_frames: int, grid: int, first: int = 0) -> np.ndarray:
    """Values that name their place: frame*1000 + row*10 + column/10 + parameter/100 (float32-exact enough)."""
    t, r, c, k = np.meshgrid(np.arange(first, first + n_frames), np.arange(grid), np.arange(grid), np.arange(10),
                             indexing="ij")
    return (t * 1000 + r * 10 + c / 10 + k / 100).astype(np.float32)


def write_params(cube: Path, root: Path, grid: int, *, first: int = 0, nan_cell: bool = True,
                 names_on: str = "file") -> Path:
    """``params/{variant}/{product}/{year}.h5`` for ``cube`` (``cubes/{variant}/{product}/{year}.h5`` under
    ``root``), laid out as the issue 16 contract says; values from :func:`param_values`. The contract does not say
    whether the names and units are attributes of the file or of ``params``: ``names_on`` ("file"/"dataset")."""
    variant, product, year = cube.parent.parent.name, cube.parent.name, cube.stem
    path = root / "params" / variant / product / f"{year}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(cube, "r") as source, h5py.File(path, "w") as f:
        n = source["data"].shape[0]
        values = param_values(n, grid, first)
        if nan_cell and n:
            values[0, 0, 0, :] = np.nan  # an off-disk cell
        f.create_dataset("params", data=values, chunks=(1, grid, grid, 10), compression="gzip", shuffle=True)
        holder = f if names_on == "file" else f["params"]
        holder.attrs["parameter_names"] = list(PARAMETER_NAMES)
        holder.attrs["parameter_units"] = list(PARAMETER_UNITS)
        f.attrs.update(settings=json.dumps({"grid": grid}), grid=grid, product=product, variant=variant,
                       config_hash="cfg")
        f.create_dataset("time", data=source["frames/obs_time"][()], dtype=h5py.string_dtype())
        for name, column in source["frames"].items():
            f.create_dataset(f"frames/{name}", data=column[()], dtype=column.dtype)
    return path


def six_minute_times(start: str, n: int) -> list[str]:
    times = pd.date_range(start, periods=n, freq="6min") + pd.Timedelta(seconds=1.5)
    return [t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] for t in times]


def write_events(root: Path, name: str, rows: list[dict]) -> Path:
    """``events/{name}/events.csv`` with the contract's columns (missing values empty)."""
    path = root / "events" / name / "events.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=EVENT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in EVENT_COLUMNS})
    return path
