"""The download cache's integrity: the SHA-256 each receipt recorded for a raw file, and the check against it.

A raw file is verified when it arrives (its size, and every HDU reads) and its digest goes into the day's receipt.
A file changed afterwards (truncated, replaced, a few bytes flipped by a disk or a hand) must never again pass for
the archive's file: whatever reads a cached file a second time (the fetch stage before it reuses a file or its QC
verdict, the clean stage, ``heliocube verify``) compares it with the recorded digest first. Hashing runs at about
1 GB/s, little next to decoding the image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CACHE_MISMATCH", "MISSING", "FileDigests", "load_receipt", "read_receipts", "recorded_digests",
           "recorded_files", "recorded_mismatch", "sha256_fed", "sha256_of"]

log = logging.getLogger(__name__)

#: Ledger reason of a cached raw file that differs from its receipt's digest (discarded, never used).
CACHE_MISMATCH = "cache_mismatch"
#: What :func:`recorded_mismatch` finds when there is no file at all.
MISSING = "no file"


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (here, not beside the downloads, so that the clean stage's checks import no HTTP)."""
    return sha256_fed(path).hexdigest()


def sha256_fed(path: str | os.PathLike, nbytes: int | None = None):
    """A SHA-256 object fed the file's bytes, or only its first ``nbytes`` (the part a resumed download continues)."""
    digest = hashlib.sha256()
    left = float("inf") if nbytes is None else nbytes
    with open(path, "rb") as stream:
        while left > 0:
            block = stream.read(int(min(1 << 20, left)))
            if not block:
                break
            digest.update(block)
            left -= len(block)
    return digest


class FileDigests:
    """SHA-256 digests a fetch job already knows, per file: computed from a download's own stream as its bytes
    were written, or found by the check of a cached file against its receipt. A digest holds while the file keeps
    the size and modification time it had when the digest was noted; :meth:`of` hashes a file only otherwise.
    Thread-safe (downloads note digests from the pool's threads)."""

    def __init__(self):
        self._known: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def note(self, path: str | os.PathLike, sha256: str) -> None:
        """``sha256`` is the digest of the file now at ``path``."""
        stat = os.stat(path)
        with self._lock:
            self._known[os.fspath(path)] = (stat.st_size, stat.st_mtime_ns, sha256)

    def known(self, path: str | os.PathLike) -> str | None:
        """The noted digest of ``path``, while the file is unchanged since; None otherwise."""
        with self._lock:
            entry = self._known.get(os.fspath(path))
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return entry[2] if entry is not None and entry[:2] == (stat.st_size, stat.st_mtime_ns) else None

    def of(self, path: str | os.PathLike) -> str:
        """The digest of ``path``: the noted one, else hashed now (and noted)."""
        found = self.known(path)
        if found is None:
            found = sha256_of(path)
            self.note(path, found)
        return found


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


def recorded_mismatch(path: str | os.PathLike, expected: str | None, digests: FileDigests | None = None) -> str | None:
    """What is at ``path`` when it is not the file whose SHA-256 was recorded: its digest, or :data:`MISSING`.

    None when the file matches ``expected``, or when nothing was recorded (``expected`` None or not a digest).
    ``digests``, when given, notes the digest found (the receipts written later need it, and need not hash again).
    """
    if not _is_digest(expected):
        return None
    path = Path(path)
    if not path.is_file():
        return MISSING
    found = sha256_of(path)
    if digests is not None:
        digests.note(path, found)
    return None if found == expected else found


def load_receipt(path: str | os.PathLike) -> dict | str | None:
    """A receipt's content; None when there is none; why it does not read, as text, when it is damaged.

    Damage is content that is not a JSON object (cut short, overwritten, not UTF-8); an I/O error (permissions, a
    network file system that failed to answer) is raised as it is, so that the job fails and is run again rather
    than take the receipt for damaged and download its files again.
    """
    try:
        content = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        receipt = json.loads(content)
    except (UnicodeDecodeError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    return receipt if isinstance(receipt, dict) else f"a JSON {type(receipt).__name__}, not an object"


def read_receipts(paths: Iterable[str | os.PathLike]) -> tuple[dict[Path, dict], list[Path]]:
    """The receipts at ``paths`` that read, by path, and the paths of those that exist but are damaged (a warning
    each).

    A receipt is written whole (renamed into place), so one that does not read was damaged since. It is only what
    an earlier run recorded: a job goes without it and writes it anew, rather than failing on every rerun. Without
    it the digests of the files it recorded are unknown, so a fetch job downloads again the cached files no other
    receipt vouches for (:func:`heliocube.fetch.receipts.cache_digests`). ``heliocube verify`` names a
    damaged receipt too.
    """
    receipts, damaged = {}, []
    for path in map(Path, paths):
        receipt = load_receipt(path)
        if isinstance(receipt, str):
            log.warning("%s does not read (%s): going without what it recorded", path, receipt)
            damaged.append(path)
        elif receipt is not None:
            receipts[path] = receipt
    return receipts, damaged
