"""Damage a cached raw file the three ways a cache goes wrong after the download, for the cache-integrity tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from astropy.io import fits

#: truncated: cut in half (a disk full, a copy interrupted); replaced: another record's whole, valid file (a wrong
#: copy); flipped: bytes inside the image changed with size and modification time kept (bit rot, a careless hand).
CORRUPTIONS = ("truncated", "replaced", "flipped")


def corrupt(path: Path, how: str, donor: Path) -> None:
    """Damage ``path`` in place as ``how`` says; ``donor`` is the other record's file used by ``replaced``."""
    if how == "truncated":
        with open(path, "r+b") as stream:
            stream.truncate(path.stat().st_size // 2)
    elif how == "replaced":
        shutil.copyfile(donor, path)
    elif how == "flipped":
        before = path.stat()
        with fits.open(path) as hdul:  # the first HDU with pixels: where the image's bytes start and end
            info = next(hdu.fileinfo() for hdu in hdul if hdu.header.get("NAXIS", 0) >= 2)
        middle = info["datLoc"] + info["datSpan"] // 2
        with open(path, "r+b") as stream:
            stream.seek(middle)
            chunk = bytearray(stream.read(64))
            stream.seek(middle)
            stream.write(bytes(b ^ 0x40 for b in chunk))  # high bits of a few pixels near the image centre
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_size == before.st_size
    else:
        raise ValueError(how)
