"""A small synced experiment written by the package itself (cubes -> sync), for the export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from heliocube.cube import CubeWriter
from heliocube.sync import sync_experiment

SHAPE = (8, 8)


def _header(obs: str, exptime: float) -> str:
    cards = {"SIMPLE": "T", "NAXIS": "2", "NAXIS1": str(SHAPE[1]), "NAXIS2": str(SHAPE[0]), "DATE-OBS": f"'{obs}'",
             "EXPTIME": repr(exptime), "CDELT1": "300.0", "CDELT2": "300.0", "CRPIX1": "4.5", "CRPIX2": "4.5"}
    return "\n".join(f"{key:<8}= {value:>20}" for key, value in cards.items())


def _cube(path: Path, obs_times: list[str], seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    attrs = {"variant": "test-6h", "config_hash": "cfg", "units": "DN", "cadence": "6h"}
    with CubeWriter(path, SHAPE, attrs=attrs) as writer:
        for i, obs in enumerate(obs_times):
            frame = (rng.lognormal(5, 1, size=SHAPE) * scale).astype(np.float32)
            frame[0, :3] = np.nan  # off-disk pixels
            row = {"slot_time": obs[:13] + ":00:00", "obs_time": obs, "record_id": f"rec-{seed}-{i}",
                   "sha256": f"{seed:02d}{i:062x}", "EXPTIME": 1.0 + i % 3, "qc_hole_fraction": i / 100}
            writer.append(frame, row, _header(obs, 1.0 + i % 3))


def make_synced(tmp_path: Path, start: str = "2010-12-30", finish: str = "2011-01-02", *,
                difference: bool = False) -> Path:
    """AIA 171 (DN, ~1e2) and LASCO C2 (brightness, ~1e-9), every 6 h across new year; LASCO a running
    difference (negative values) when ``difference``."""
    days = pd.date_range(start, finish, freq="D")
    obs = [(t + pd.Timedelta(hours=h, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S") for t in days for h in (0, 6, 12, 18)]
    cubes = {"AIA171": tmp_path / "aia.h5", "LASCO_C2": tmp_path / "c2.h5"}
    _cube(cubes["AIA171"], obs, seed=1, scale=1.0)
    _cube(cubes["LASCO_C2"], obs, seed=2, scale=1e-11)
    extra = {"running_difference": True, "difference_products": ["LASCO_C2"]} if difference else {}
    result = sync_experiment(tmp_path / "synced.h5", cubes, experiment="x", start=start, finish=finish, step="6h",
                             **extra)
    return Path(result.path)
