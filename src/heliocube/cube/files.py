"""What every cube file shares: its companion paths, its HDF5 filters and the software versions it records."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["TIME_COLUMNS", "compression_options", "partial_path", "software_versions", "times_csv_path", "utc_now"]

_PACKAGES = ("heliocube", "numpy", "astropy", "sunpy", "h5py")
#: Columns copied to the times CSV.
TIME_COLUMNS = ("slot_time", "obs_time")


def software_versions() -> dict[str, str]:
    """Installed versions of the packages recorded in every cube (``version_<name>`` attributes)."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def utc_now() -> str:
    """The time now, UTC ISO to the second (the ``created`` attribute)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compression_options(cube_config: Mapping) -> dict[str, Any]:
    """HDF5 filter keywords (``compression``, ``compression_opts``, ``shuffle``) from a config's ``cube`` section."""
    kind = cube_config.get("compression", "gzip")
    return {
        "compression": None if kind == "none" else kind,
        "compression_opts": int(cube_config.get("compression_level", 4)) if kind == "gzip" else None,
        "shuffle": bool(cube_config.get("shuffle", True)),
    }


def times_csv_path(path: str | os.PathLike) -> Path:
    """The times CSV written beside a cube: ``<dir>/<stem>_times.csv``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_times.csv")


def partial_path(path: Path) -> Path:
    """The temporary name a cube, master or times CSV is written under before it is renamed into place."""
    # hidden, and without the final suffix, so no glob for complete cubes picks it up
    return path.with_name(f".{path.name}.partial-{os.getpid()}")
