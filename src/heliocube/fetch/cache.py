"""The download cache's integrity: the SHA-256 each receipt recorded for a raw file, and the check against it.

A raw file is verified when it arrives (its size, and every HDU reads) and its digest goes into the day's receipt.
A file changed afterwards (truncated, replaced, a few bytes flipped by a disk or a hand) must never again pass for
the archive's file: whatever reads a cached file a second time (the fetch stage before it reuses a file or its QC
verdict, the clean stage, ``heliocube verify``) compares it with the recorded digest first. Hashing runs at about
1 GB/s, little next to decoding the image.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CACHE_MISMATCH", "MISSING", "recorded_digests", "recorded_files", "recorded_mismatch", "sha256_of"]

#: Ledger reason of a cached raw file that differs from its receipt's digest (discarded, never used).
CACHE_MISMATCH = "cache_mismatch"
#: What :func:`recorded_mismatch` finds when there is no file at all.
MISSING = "no file"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (here, not beside the downloads, so that the clean stage's checks import no HTTP)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 64


def recorded_files(receipt: dict) -> dict[str, str]:
    """Raw files a day receipt names, relative to the output root, with the SHA-256 it recorded for each.

    The slots' chosen files, and every file the QC gate judged (``qc.verdicts``: rejected ones too, whose verdict a
    rerun would reuse). Entries without a digest or a path (receipts of older versions) are left out.
    """
    files = {slot["path"]: slot["sha256"] for slot in receipt.get("slots", ())
             if isinstance(slot.get("path"), str) and _is_digest(slot.get("sha256"))}  # fmt: skip
    for verdict in ((receipt.get("qc") or {}).get("verdicts") or {}).values():
        if isinstance(verdict.get("path"), str) and _is_digest(verdict.get("sha256")):
            files.setdefault(verdict["path"], verdict["sha256"])
    return files


def recorded_digests(receipts: Iterable[dict]) -> dict[str, str]:
    """Record id -> the SHA-256 ``receipts`` recorded for its downloaded file (chosen or judged by QC)."""
    digests: dict[str, str] = {}
    for receipt in receipts:
        for record_id, verdict in ((receipt.get("qc") or {}).get("verdicts") or {}).items():
            if _is_digest(verdict.get("sha256")):
                digests[record_id] = verdict["sha256"]
        for slot in receipt.get("slots", ()):
            if slot.get("record_id") and _is_digest(slot.get("sha256")):
                digests[slot["record_id"]] = slot["sha256"]
    return digests


def recorded_mismatch(path: str | os.PathLike, expected: str | None) -> str | None:
    """What is at ``path`` when it is not the file whose SHA-256 was recorded: its digest, or :data:`MISSING`.

    None when the file matches ``expected``, or when nothing was recorded (``expected`` None or not a digest).
    """
    if not _is_digest(expected):
        return None
    path = Path(path)
    if not path.is_file():
        return MISSING
    found = sha256_of(path)
    return None if found == expected else found
