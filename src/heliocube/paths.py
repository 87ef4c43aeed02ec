"""Where each stage writes, and the atomic-write helper that makes a present file a complete file.

Paths are built here from the output root and validated components only: nothing an archive sends is
ever joined into a path unchecked (see `safe_component`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "day_receipt_path", "manifest_path", "raw_dir", "safe_component"]

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}")  # used with fullmatch: "$" would let a final "\n" by


def safe_component(name: str) -> str:
    """Return ``name`` if it is a plain file name (no separators, no ``..``, no leading dot); else raise.

    Raises
    ------
    ValueError
        For anything that could leave the directory it is joined to.
    """
    if not isinstance(name, str) or not _SAFE.fullmatch(name) or ".." in name:
        raise ValueError(f"unsafe file name from archive: {name!r}")
    return name


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name starts with ``.`` and ends with ``.part``, so no reader mistakes it for output, and
    the rename is atomic on POSIX file systems.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def manifest_path(root: str | os.PathLike, product: str, day: dt.date) -> Path:
    """``{root}/manifests/{product}/{YYYY}/{YYYY-MM-DD}.parquet``"""
    return Path(root, "manifests", product, f"{day:%Y}", f"{day:%Y-%m-%d}.parquet")


def raw_dir(root: str | os.PathLike, product: str, day: dt.date) -> Path:
    """``{root}/raw/{product}/{YYYY}/{YYYY-MM-DD}/``: the download cache of one product-day."""
    return Path(root, "raw", product, f"{day:%Y}", f"{day:%Y-%m-%d}")


def day_receipt_path(root: str | os.PathLike, product: str, day: dt.date) -> Path:
    """``{root}/raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json``: what the fetch of that day chose and why."""
    return Path(root, "raw", product, f"{day:%Y}", f"{day:%Y-%m-%d}.receipt.json")
