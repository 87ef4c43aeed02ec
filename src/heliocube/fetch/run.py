"""The fetch job: for every slot of a span of days, the nearest candidate that downloads whole and passes QC.

Work proceeds in rounds: each unresolved slot offers its next-ranked candidate, the round's downloads run in
parallel (at most ``connections`` at a time), and a failed or rejected candidate moves only its own slot on
to its next candidate. Outputs (:mod:`heliocube.fetch.receipts`):

- per-day receipts ``raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json`` (what each slot chose, sha256, and the
  rejected candidates with their reasons; with a gate that has a ``fingerprint``, also the gate's verdict on
  each file it inspected, so that a rerun, e.g. the last month's job when the range is extended, inspects
  only files it has no verdict on: QC is most of a fetch job's CPU once the files are cached);
- for the span, a slot table (one row per slot) and a ledger (one row per rejected candidate, plus a
  ``cache_mismatch`` note per cached file found changed since its receipt).

A cached file is used again (its download skipped, its QC verdict reused) only while it still has the SHA-256 a
receipt recorded (:mod:`heliocube.fetch.cache`); one that differs is discarded and downloaded again. A downloaded
file's SHA-256 is computed from its bytes as they are written, so no file is read again for its receipt.

A JSOC export whose files expire while they download (the archive answers 404 for them) is asked for again for the
records not yet downloaded, at most ``jsoc.export_retries`` times (:func:`heliocube.fetch.pipeline.schedule_downloads`);
a record still without its file is an ``export_expired`` ledger row and its slot falls back.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..httpclient import new_session
from ..progress import Progress
from ..registry import get_product
from ..slots import rank_candidates
from ..timegrid import slots_for_day
from .cache import CACHE_MISMATCH, MISSING, FileDigests, recorded_mismatch
from .candidates import (
    EXPORT_EXPIRED,
    CandidateRows,
    Slot,
    download_candidate,
    load_candidates,
    location_or_as_is,
    raw_file_name,
    raw_target,
)
from .gate import LEDGER_COLUMNS, AcceptAll, Rejection
from .limiter import ConnectionLimiter
from .pipeline import schedule_downloads
from .receipts import (
    SLOT_COLUMNS,
    cache_digests,
    day_receipts,
    previous_urls,
    slot_tables,
    write_receipts,
)
from .verdicts import judge, previous_verdicts

__all__ = ["LEDGER_COLUMNS", "SLOT_COLUMNS", "Filled", "Slot", "fetch_days", "fill_slots", "raw_file_name",
           "slot_tables"]

log = logging.getLogger(__name__)


def fetch_days(product_name: str, days: list[dt.date], context, root: str | os.PathLike, *,
               cadence: dt.timedelta, tolerance: dt.timedelta, anchor: dt.date,
               gate=None, progress_every: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fill every slot of ``days`` and write the per-day receipts; log progress over the slots as they resolve.

    Parameters
    ----------
    product_name : str
        Registry name.
    days : list of datetime.date
        The days this job owns; their manifests (and their neighbours', when present) must exist.
    context : heliocube.query.ArchiveContext
    root : path
        Output root.
    cadence, tolerance : datetime.timedelta
        Slot spacing and largest accepted |t - slot|.
    anchor : datetime.date
        Day whose 00:00 UTC anchors the slot grid (the configured start).
    gate : QualityGate, optional
        QC verdicts; default accepts every whole, readable file.
    progress_every : float, optional
        Seconds between progress lines (:class:`heliocube.progress.Progress`); default its interval.

    Returns
    -------
    slots, ledger : pandas.DataFrame
        One row per slot (`SLOT_COLUMNS`) and one per rejected candidate (`LEDGER_COLUMNS`).
    """
    product = get_product(product_name)
    gate = gate or AcceptAll()
    candidates = load_candidates(product_name, days, root)
    slots: list[Slot] = []
    for day in sorted(days):
        day_slots = slots_for_day(day, cadence, anchor)
        for time, ranked in zip(day_slots, rank_candidates(day_slots, candidates, pd.Timedelta(tolerance)),
                                strict=True):
            slots.append(Slot(day, time, ranked))
    receipts, receipts_near, damaged = day_receipts(product_name, days, root)
    rows = CandidateRows(candidates)  # each row built once, for the downloads and the receipts
    digests = cache_digests(product, slots, rows, root, receipts_near, damaged)
    filled = fill_slots(product, slots, rows, context, root, gate=gate, receipts=receipts, digests=digests,
                        progress_every=progress_every)
    return write_receipts(product_name, days, slots, rows, filled.known_urls, root, cadence, tolerance,
                          filled.verdicts if filled.fingerprint else None, filled.fingerprint, filled.cache_notes,
                          filled.file_digests)


@dataclasses.dataclass
class Filled:
    """What :func:`fill_slots` learnt besides the slots' choices: each record's archive-relative location, the QC
    verdicts (to record), the gate's fingerprint, the cached files discarded as changed (by candidate position), and
    the SHA-256 of the files it downloaded or checked (for the receipts, which then hash no file again)."""

    known_urls: dict
    verdicts: dict
    fingerprint: str | None
    cache_notes: dict
    file_digests: FileDigests = dataclasses.field(default_factory=FileDigests)


def fill_slots(product, slots: list[Slot], candidates: pd.DataFrame | CandidateRows, context, root, *, gate=None,
               receipts: list[dict] = (), digests: dict | None = None, progress_every: float | None = None) -> Filled:
    """Fill ``slots`` (each with its ranked candidate positions) in rounds, in place: each open slot offers its
    next candidate, the round's downloads run in parallel, and a failure or rejection moves only its own slot on.

    ``receipts`` are earlier receipts of these slots (their locations and QC verdicts are reused), ``digests`` the
    SHA-256 each cached file must still have (one that differs is discarded and downloaded again).
    """
    product_name, gate = product.name, gate or AcceptAll()
    rows = CandidateRows.of(candidates)
    base = context.jsoc_url if product.is_jsoc else context.sdac_url  # every location resolves against this base
    known_urls = previous_urls(receipts, base)  # record id -> archive-relative location
    refused: dict[str, Rejection] = {}  # record id -> why JSOC would not export it
    fingerprint = getattr(gate, "fingerprint", None)
    verdicts = previous_verdicts(receipts, fingerprint)  # record id -> Verdict, reusable
    digests = dict(digests or {})  # record id -> sha256 its cached file must still have
    cache_notes: dict[int, Rejection] = {}  # candidate position -> why its cached file was discarded
    file_digests = FileDigests()  # of the files downloaded (hashed as written) or checked against their receipt
    exported: set[str] = set()  # records whose location an export of this job gave (a 404 then means it expired)
    checked: set[int] = set()
    qc_counts = collections.Counter()  # files inspected, verdicts reused
    session = new_session(context.connections)
    limiter = ConnectionLimiter(context.connections, context.policy.max_backoff)  # every request to the archive

    def target_of(position: int) -> Path | None:
        return raw_target(root, product, rows[position])

    # a slot counts as done once it has its frame or has run out of candidates (a slot without any: at once)
    progress = Progress(f"{product_name} fetch", len(slots), unit="slots", done=sum(not s.open for s in slots),
                        every=progress_every, logger=log)
    # twice the connections: a file is checked (size, FITS) while the next one downloads on its connection
    with ThreadPoolExecutor(max_workers=2 * context.connections) as pool:
        while any(slot.open for slot in slots):
            for slot in slots:  # archive keywords can rule a candidate out before any download
                was_open = slot.open
                while slot.open and (verdict := gate.before_download(rows[slot.current])) is not None:
                    slot.reject(verdict)
                if was_open and not slot.open:
                    progress.advance()
            round_slots = [slot for slot in slots if slot.open]
            if not round_slots:
                break
            needed = sorted({slot.current for slot in round_slots})
            _discard_changed(pool, [p for p in needed if p not in checked], rows, target_of, digests, verdicts,
                             cache_notes, file_digests)
            checked.update(needed)
            jobs = _start_downloads(pool, product, rows, needed, known_urls, context, base, refused, limiter,
                                    exported, lambda position: download_candidate(
                                        session, product, rows[position], known_urls, root, context, base,
                                        refused, limiter, file_digests, exported))
            for slot in round_slots:
                outcome = jobs[slot.current].result()
                if isinstance(outcome, Rejection):
                    slot.reject(outcome)
                    if not slot.open:
                        progress.advance()
                    continue
                verdict = judge(gate, rows[slot.current], outcome, verdicts, qc_counts, root, file_digests)
                if verdict.rejection is None:
                    slot.chosen, slot.path, slot.metrics = slot.current, outcome, verdict.metrics
                else:
                    slot.reject(verdict.rejection)
                if not slot.open:
                    progress.advance()
    progress.finish()
    log.info("%s QC: %d files inspected, %d verdicts reused", product_name, qc_counts["inspected"],
             qc_counts["reused"])
    return Filled(known_urls, verdicts, fingerprint, cache_notes, file_digests)


def _discard_changed(pool, positions, rows, target_of, digests, verdicts, notes, file_digests) -> None:
    """Delete the cached files of ``positions`` that differ from their recorded SHA-256 (hashed in ``pool``), so
    that they are downloaded again and judged afresh; note each in ``notes`` and forget its verdict. The digest of
    each file kept goes to ``file_digests`` (its receipt needs it)."""
    def check(position: int) -> str | None:
        target = target_of(position)  # None: a record no local file can be named after (ledgered by download_candidate)
        expected = digests.get(rows.record_id(position))
        return None if target is None else recorded_mismatch(target, expected, file_digests)

    for position, found in zip(positions, pool.map(check, positions), strict=True):
        if found is None or found == MISSING:  # unchanged, never recorded, or simply not downloaded yet
            continue
        record_id, target = rows.record_id(position), target_of(position)
        target.unlink(missing_ok=True)
        verdicts.pop(record_id, None)
        detail = (f"cached {target.name} has sha256 {found}, its receipt recorded {digests[record_id]}: "
                  "discarded and downloaded again")
        notes[position] = Rejection(CACHE_MISMATCH, found, detail)
        log.warning("%s: %s", record_id, detail)


def _start_downloads(pool, product, rows, positions, known_urls, context, base: str, refused: dict, limiter,
                     exported: set, download) -> dict:
    """Start the downloads of ``positions`` (:func:`heliocube.fetch.pipeline.schedule_downloads`): at once for
    a candidate with its location, as its export finishes for one that needs a JSOC export. Returns each one's
    future outcome. ``known_urls`` gets the archive-relative location of each candidate that still needs
    downloading (JSOC: from exports sized by the manifest's bytes; ``refused`` the records JSOC would not export,
    ``exported`` those an export gave a location). A manifest's absolute URL (written before locations) becomes a
    location when it lies on ``base``; any other value is kept as it is, for `download_candidate` to refuse with
    its reason. A record whose export expired before its file was downloaded is exported again, at most
    ``jsoc.export_retries`` times."""
    for position in positions:
        row = rows[position]
        if isinstance(row["url"], str) and row["url"]:
            known_urls.setdefault(row["record_id"], location_or_as_is(row["url"], base))
    # A file already on disk still needs its URL for the slot table's provenance: a job killed after the download
    # but before its receipt left no record of it.
    sizes = {rows.record_id(p): rows[p]["size"] for p in positions}  # in time order
    unresolved = {record_id: size for record_id, size in sizes.items() if record_id not in known_urls}
    unresolved = unresolved if product.is_jsoc else {}

    def export(on_result, records):
        from .jsoc_urls import resolve_jsoc_urls  # JSOC products only: an SDAC fetch job imports no drms

        def record(result):  # the locations first: the downloads read them
            known_urls.update({record: location_or_as_is(url, base) for record, url in result.urls.items()})
            exported.update(result.urls)
            refused.update(result.refused)
            return on_result(result)

        for record_id in records:  # an expired export's location must not be tried again
            known_urls.pop(record_id, None)
        resolve_jsoc_urls(product, {record_id: unresolved[record_id] for record_id in records}, context,
                          on_result=record, limiter=limiter)

    def expired(outcome) -> bool:
        return isinstance(outcome, Rejection) and outcome.reason == EXPORT_EXPIRED

    return schedule_downloads(pool, positions, rows.record_id, unresolved,
                              download, export, renew=expired, renewals=context.export_retries)
