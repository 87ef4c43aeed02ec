"""The EIT header cache: keywords of each remote file's header, kept per month so a killed query reads none twice.

An EIT query reads the header of every file of the month directory (one or two HTTP Range requests each) to learn
its wavelength and time; the manifests are written only once every header is read. Each header read is appended to
``{root}/manifests/headers/{directory}.headers.jsonl`` as soon as it is done, so a query killed part way (or
stopped by an outage) and run again reads only the headers it had not read yet.

The cache belongs to the archive directory, not to a product: EIT's four wavelengths share one month directory and
every query of any of them reads every file's header (the wavelength is in the header only), so EIT 195's query
and EIT 304's read the same headers, once between them. Their jobs may run at once: appends are locked (see
:class:`HeaderCache`), and a header both read at the same time is only written twice, with the same keywords.

Lines are keyed by the file's path relative to the archive's base URL and its listed size, never by host or port:
a moved archive (mirror, other port) serves the same files, and a file whose size changed is read again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ..paths import safe_component

__all__ = ["HeaderCache", "header_cache_path", "kept_keywords"]

log = logging.getLogger(__name__)


def header_cache_path(root: str | os.PathLike, directory: str) -> Path:
    """``{root}/manifests/headers/{directory}.headers.jsonl``, ``directory`` the archive-relative month directory
    (e.g. ``eit/lz/2010/10``, from the registry's template), shared by every product listed from it."""
    parts = directory.strip("/").split("/")
    return Path(root, "manifests", "headers", *[safe_component(part) for part in parts[:-1]],
                f"{safe_component(parts[-1])}.headers.jsonl")


def _plain(value):
    """A header value as JSON holds it (astropy's ``Undefined`` and other oddities become None or text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return None if type(value).__name__ == "Undefined" else str(value)


def kept_keywords(header, keywords: Iterable[str]) -> dict:
    """The values of ``keywords`` that ``header`` (a ``fits.Header`` or any mapping) holds, as JSON stores them."""
    return {key: _plain(header[key]) for key in keywords if key in header}


class HeaderCache:
    """The cached header keywords of one month directory, read at construction and appended to as headers arrive.

    Parameters
    ----------
    path : path-like
        The month's ``.headers.jsonl`` (see :func:`header_cache_path`); created on the first :meth:`put`.
    keywords : iterable of str
        The header keywords kept. Lines written for another set of keywords are ignored (a code change that needs
        a new keyword reads the headers again rather than trusting entries that lack it).

    Notes
    -----
    One line per file, written with a single ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``,
    so two jobs appending at once (a query also lists the day on either side of its month, and the products of one
    directory share its cache) never interleave. A
    line cut short by a kill is ignored on reading, and the next append starts on a new line.
    """

    def __init__(self, path: str | os.PathLike, keywords: Iterable[str]):
        self.path = Path(path)
        self.keywords = tuple(keywords)
        self._fingerprint = hashlib.sha256("\n".join(self.keywords).encode()).hexdigest()[:12]
        self._entries: dict[tuple[str, int | None], dict] = {}
        self._load()

    def __len__(self) -> int:
        return len(self._entries)

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        ignored = 0
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                if entry["keys"] != self._fingerprint:
                    continue
                self._entries[(entry["path"], entry["size"])] = entry
            except (ValueError, KeyError, TypeError):  # a torn last line, or anything not ours
                ignored += 1
        if ignored:
            log.info("%s: %d unreadable line(s) ignored", self.path, ignored)

    def get(self, path: str, size: int | None) -> tuple[dict, int | None] | None:
        """The cached keywords and full file size of ``path`` (archive-relative) listed with ``size``, or None."""
        entry = self._entries.get((path, size))
        return None if entry is None else (entry["cards"], entry["total"])

    def put(self, path: str, size: int | None, header, total: int | None) -> dict:
        """Record the kept keywords of ``header`` (any mapping, e.g. a ``fits.Header``); returns them as cached."""
        cards = kept_keywords(header, self.keywords)
        entry = {"path": path, "size": size, "total": total, "keys": self._fingerprint, "cards": cards}
        line = (json.dumps(entry, ensure_ascii=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":  # a killed writer left half a line: close it first
                line = b"\n" + line
            os.write(fd, line)
        finally:
            os.close(fd)  # also releases the lock
        self._entries[(path, size)] = entry
        return cards
