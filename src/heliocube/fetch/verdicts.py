"""QC verdicts kept in the day receipts, so that a rerun inspects only files it has no verdict on.

With a gate that has a ``fingerprint`` (everything that decides its verdicts), the fetch stage records the gate's
verdict on each file it inspected, with the file's size, modification time, sha256 and path; a later run under the
same fingerprint reuses the verdict for the same unchanged file instead of inspecting it again (QC is most of a
fetch job's CPU once the files are cached). The fetch stage first discards a cached file whose content differs
from its recorded sha256 (:mod:`heliocube.fetch.cache`), dropping its verdict with it.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from pathlib import Path

import pandas as pd

from .download import sha256_of
from .gate import Rejection

__all__ = ["Verdict", "handoff_current", "judge", "previous_verdicts"]


@dataclasses.dataclass
class Verdict:
    """A gate's verdict on one downloaded file, and the file's identity when it was given.

    ``sha256`` and ``path`` (relative to the output root) let a later run and ``heliocube verify`` check that the
    file is still the one judged (receipts of older versions lack them)."""

    rejection: Rejection | None
    metrics: dict
    size: int
    mtime_ns: int
    sha256: str | None = None
    path: str | None = None
    #: the decoded frame kept for the clean stage (:mod:`heliocube.handoff`): path, sha256, tag; None when none
    handoff: dict | None = None

    @classmethod
    def of_file(cls, path: Path, rejection: Rejection | None, metrics: dict, root, handoff=None,
                digests=None) -> Verdict:
        """The verdict on ``path`` now; its SHA-256 from ``digests`` (a :class:`heliocube.fetch.cache.FileDigests`)
        when it knows the file, else hashed here."""
        stat = path.stat()
        sha256 = digests.of(path) if digests is not None else sha256_of(path)
        return cls(rejection, metrics, stat.st_size, stat.st_mtime_ns, sha256, os.path.relpath(path, root), handoff)

    def matches(self, path: Path) -> bool:
        """Whether ``path`` is still the file this verdict was given on."""
        try:
            stat = path.stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == (self.size, self.mtime_ns)

    def as_json(self) -> dict:
        return dataclasses.asdict(self)  # the rejection too (a dataclass), or None

    @classmethod
    def from_json(cls, entry: dict) -> Verdict:
        return cls(**{**entry, "rejection": entry["rejection"] and Rejection(**entry["rejection"])})


def judge(gate, candidate: pd.Series, path: Path, verdicts: dict[str, Verdict],
          counts: collections.Counter, root, digests=None) -> Verdict:
    """The gate's verdict on ``path``: one recorded for this record and this very file, else a new inspection
    (recorded in ``verdicts``, with the file's SHA-256 from ``digests`` when it has it). ``counts`` tallies
    ``reused`` and ``inspected``. A file whose content differs from its recorded digest never gets here: the fetch
    stage deleted it and dropped its verdict first."""
    record_id = candidate["record_id"]
    known = verdicts.get(record_id)
    tag = getattr(gate, "handoff_tag", None)
    # an acceptance is reused when it also has the handoff the gate would write now (or found none possible)
    if known is not None and known.matches(path) and (
            known.rejection is not None or tag is None or handoff_current(known.handoff, tag, root)):
        counts["reused"] += 1
        return known
    counts["inspected"] += 1
    rejection = gate.after_download(candidate, path)
    metrics = gate.metrics_of(path) if rejection is None and hasattr(gate, "metrics_of") else {}
    handoff = gate.handoff_of(path) if rejection is None and tag is not None else None
    verdicts[record_id] = verdict = Verdict.of_file(path, rejection, metrics, root, handoff, digests)
    return verdict


def handoff_current(entry: dict | None, tag: str, root) -> bool:
    """Whether a recorded handoff entry was made under ``tag`` and its file (if one was made) is there."""
    if not entry or entry.get("tag") != tag:
        return False
    return entry.get("path") is None or Path(root, entry["path"]).is_file()


def previous_verdicts(receipts: list[dict], fingerprint: str | None) -> dict[str, Verdict]:
    """The verdicts ``receipts`` recorded under ``fingerprint`` (none without one)."""
    verdicts: dict[str, Verdict] = {}
    for receipt in receipts if fingerprint else ():
        qc = receipt.get("qc") or {}
        if qc.get("fingerprint") == fingerprint:
            verdicts.update({record_id: Verdict.from_json(entry) for record_id, entry in qc["verdicts"].items()})
    return verdicts

