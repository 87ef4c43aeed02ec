"""Where each stage writes, and the atomic-write helper that makes a present file a complete file.

Paths are built here from the output root and validated components only: nothing an archive sends is
ever joined into a path unchecked (see `safe_component`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import secrets
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


#: The mode new files are created with before the umask applies, as ``open()`` does: outputs on a shared file
#: system must be as readable as the user's other files, not ``mkstemp``'s owner-only 0600.
_FILE_MODE = 0o666


def _create_hidden(directory: Path, name: str) -> Path:
    """Create and return a new empty file ``.{name}.<random>.part`` in ``directory``, mode 0666 minus the umask.

    ``tempfile.mkstemp`` picks the name safely but always creates 0600; ``os.open`` with ``O_EXCL`` takes the same
    care and lets the kernel apply the umask (and a directory's default ACL), which a later ``chmod`` could not do
    without reading the umask, a process-wide setting other threads may be creating files under.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(tempfile.TMP_MAX):
        tmp = directory / f".{name}.{secrets.token_hex(4)}.part"
        try:
            os.close(os.open(tmp, flags, _FILE_MODE))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name for {name} in {directory}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name starts with ``.`` and ends with ``.part``, so no reader mistakes it for output, and
    the rename is atomic on POSIX file systems. The file is created empty with the permissions ``open()`` would
    give (0666 minus the umask, e.g. 0644 under umask 022): writers that truncate it keep that mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_hidden(path.parent, path.name)
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
