"""The fetch job: for every slot of a span of days, the nearest candidate that downloads whole and passes QC.

Work proceeds in rounds: each unresolved slot offers its next-ranked candidate, the round's downloads run in
parallel (at most ``connections`` at a time), and a failed or rejected candidate moves only its own slot on
to its next candidate. Outputs:

- per-day receipts ``raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json`` (what each slot chose, sha256, and the
  rejected candidates with their reasons; with a gate that has a ``fingerprint``, also the gate's verdict on
  each file it inspected, so that a rerun, e.g. the last month's job when the range is extended, inspects
  only files it has no verdict on: QC is most of a fetch job's CPU once the files are cached);
- for the span, a slot table (one row per slot) and a ledger (one row per rejected candidate, plus a
  ``cache_mismatch`` note per cached file found changed since its receipt).

A cached file is used again (its download skipped, its QC verdict reused) only while it still has the SHA-256 a
receipt recorded (:mod:`heliocube.fetch.cache`); one that differs is discarded and downloaded again.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..httpclient import new_session
from ..locations import ForeignLocation, UnsafeLocation, archive_location, archive_url
from ..manifest import empty_manifest, normalize_manifest, read_manifest, record_keywords
from ..paths import atomic_path, day_receipt_path, manifest_path, raw_dir, safe_component
from ..progress import Progress
from ..registry import get_product
from ..slots import rank_candidates
from ..timegrid import slots_for_day
from .cache import CACHE_MISMATCH, MISSING, recorded_digests, recorded_mismatch
from .download import DownloadError, download_verified, sha256_of
from .gate import LEDGER_COLUMNS, QC_METRICS, AcceptAll, Rejection
from .jsoc_urls import resolve_jsoc_urls
from .limiter import ConnectionLimiter
from .pipeline import schedule_downloads
from .verdicts import judge, previous_verdicts

__all__ = ["LEDGER_COLUMNS", "SLOT_COLUMNS", "Filled", "Slot", "fetch_days", "fill_slots", "raw_file_name",
           "slot_tables"]

log = logging.getLogger(__name__)

SLOT_COLUMNS = ["product", "day", "slot", "status", "record_id", "time_utc", "dt_seconds", "url", "path",
                "sha256", "size", "n_rejected", *(f"qc_{name}" for name in QC_METRICS), "keywords"]


def raw_file_name(product, record_id: str) -> str:
    """Local file name of a record, built from validated parts only.

    JSOC ``aia.lev1_euv_12s[2011-02-15T00:00:12Z][171]`` becomes
    ``aia.lev1_euv_12s.2011-02-15T000012Z.171.image.fits``; an SDAC path keeps its last component, which must
    be a plain file name.
    """
    if product.is_jsoc:
        series, rest = record_id.split("[", 1)
        parts = [re.sub(r"[^A-Za-z0-9._+-]", "", part) for part in re.findall(r"\[([^\]]*)\]", "[" + rest)]
        return safe_component(".".join([series, *parts, product.segment, "fits"]))
    return safe_component(record_id.rstrip("/").rsplit("/", 1)[-1])


@dataclasses.dataclass
class Slot:
    day: dt.date
    time: pd.Timestamp
    ranked: list[int]
    position: int = 0
    chosen: int | None = None
    path: Path | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    rejections: list[tuple[int, Rejection]] = dataclasses.field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.chosen is None and self.position < len(self.ranked)

    @property
    def current(self) -> int:
        return self.ranked[self.position]

    def reject(self, rejection: Rejection) -> None:
        self.rejections.append((self.current, rejection))
        self.position += 1


def _load_candidates(product_name: str, days: list[dt.date], root) -> pd.DataFrame:
    """Manifests of ``days`` and of their neighbours (a slot near midnight may take a frame across it)."""
    wanted = sorted(set(days) | {d + dt.timedelta(days=k) for d in days for k in (-1, 1)})
    frames = [read_manifest(p) for p in (manifest_path(root, product_name, d) for d in wanted) if p.exists()]
    missing = [d for d in days if not manifest_path(root, product_name, d).exists()]
    if missing:
        raise FileNotFoundError(f"{product_name}: no manifest for {missing[0]} (run the query stage first)")
    frames = [f for f in frames if not f.empty]
    return normalize_manifest(pd.concat(frames, ignore_index=True)) if frames else empty_manifest()


def _previous_receipts(product_name: str, days: list[dt.date], root) -> list[dict]:
    """The receipts an earlier run wrote for ``days``."""
    paths = (day_receipt_path(root, product_name, day) for day in days)
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def _recorded_digests(product_name: str, days: list[dt.date], root) -> dict[str, str]:
    """Record id -> SHA-256 of its cached file, as recorded by the receipts of ``days`` and their neighbours (a
    slot near midnight may have taken a file a neighbouring month's job recorded)."""
    near = sorted(set(days) | {d + dt.timedelta(days=k) for d in days for k in (-1, 1)})
    return recorded_digests(_previous_receipts(product_name, near, root))


def _previous_urls(receipts: list[dict], base: str) -> dict[str, str]:
    """Archive-relative locations the receipts recorded for their slots' records (those of earlier versions,
    absolute URLs, when they lie on ``base``; any other is left out and the record is resolved again)."""
    known = {}
    for slot in (slot for receipt in receipts for slot in receipt["slots"]):
        if slot.get("record_id") and slot.get("url"):
            with contextlib.suppress(ForeignLocation, UnsafeLocation):
                known[slot["record_id"]] = archive_location(slot["url"], base)
    return known


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
    candidates = _load_candidates(product_name, days, root)
    slots: list[Slot] = []
    for day in sorted(days):
        day_slots = slots_for_day(day, cadence, anchor)
        for time, ranked in zip(day_slots, rank_candidates(day_slots, candidates, pd.Timedelta(tolerance)),
                                strict=True):
            slots.append(Slot(day, time, ranked))
    receipts = _previous_receipts(product_name, days, root)
    filled = fill_slots(product, slots, candidates, context, root, gate=gate, receipts=receipts,
                        digests=_recorded_digests(product_name, days, root), progress_every=progress_every)
    return _write_receipts(product_name, days, slots, candidates, filled.known_urls, root, cadence, tolerance,
                           filled.verdicts if filled.fingerprint else None, filled.fingerprint, filled.cache_notes)


@dataclasses.dataclass
class Filled:
    """What :func:`fill_slots` learnt besides the slots' choices: each record's archive-relative location, the QC
    verdicts (to record), the gate's fingerprint, and the cached files discarded as changed (by candidate position)."""

    known_urls: dict
    verdicts: dict
    fingerprint: str | None
    cache_notes: dict


def fill_slots(product, slots: list[Slot], candidates: pd.DataFrame, context, root, *, gate=None,
               receipts: list[dict] = (), digests: dict | None = None, progress_every: float | None = None) -> Filled:
    """Fill ``slots`` (each with its ranked candidate positions) in rounds, in place: each open slot offers its
    next candidate, the round's downloads run in parallel, and a failure or rejection moves only its own slot on.

    ``receipts`` are earlier receipts of these slots (their locations and QC verdicts are reused), ``digests`` the
    SHA-256 each cached file must still have (one that differs is discarded and downloaded again).
    """
    product_name, gate = product.name, gate or AcceptAll()
    base = context.jsoc_url if product.is_jsoc else context.sdac_url  # every location resolves against this base
    known_urls = _previous_urls(receipts, base)  # record id -> archive-relative location
    refused: dict[str, Rejection] = {}  # record id -> why JSOC would not export it
    fingerprint = getattr(gate, "fingerprint", None)
    verdicts = previous_verdicts(receipts, fingerprint)  # record id -> Verdict, reusable
    digests = dict(digests or {})  # record id -> sha256 its cached file must still have
    cache_notes: dict[int, Rejection] = {}  # candidate position -> why its cached file was discarded
    checked: set[int] = set()
    qc_counts = collections.Counter()  # files inspected, verdicts reused
    session = new_session(context.connections)
    limiter = ConnectionLimiter(context.connections, context.policy.max_backoff)  # every request to the archive

    def target_of(position: int) -> Path | None:
        return _raw_target(root, product, candidates.iloc[position])

    # a slot counts as done once it has its frame or has run out of candidates (a slot without any: at once)
    progress = Progress(f"{product_name} fetch", len(slots), unit="slots", done=sum(not s.open for s in slots),
                        every=progress_every, logger=log)
    # twice the connections: a file is checked (size, FITS) while the next one downloads on its connection
    with ThreadPoolExecutor(max_workers=2 * context.connections) as pool:
        while any(slot.open for slot in slots):
            for slot in slots:  # archive keywords can rule a candidate out before any download
                was_open = slot.open
                while slot.open and (verdict := gate.before_download(candidates.iloc[slot.current])) is not None:
                    slot.reject(verdict)
                if was_open and not slot.open:
                    progress.advance()
            round_slots = [slot for slot in slots if slot.open]
            if not round_slots:
                break
            needed = sorted({slot.current for slot in round_slots})
            _discard_changed(pool, [p for p in needed if p not in checked], candidates, target_of, digests, verdicts,
                             cache_notes)
            checked.update(needed)
            jobs = _start_downloads(pool, product, candidates, needed, known_urls, context, base, refused, limiter,
                                    lambda position: _download(session, product, candidates.iloc[position],
                                                               known_urls, root, context, base, refused, limiter))
            for slot in round_slots:
                outcome = jobs[slot.current].result()
                if isinstance(outcome, Rejection):
                    slot.reject(outcome)
                    if not slot.open:
                        progress.advance()
                    continue
                verdict = judge(gate, candidates.iloc[slot.current], outcome, verdicts, qc_counts, root)
                if verdict.rejection is None:
                    slot.chosen, slot.path, slot.metrics = slot.current, outcome, verdict.metrics
                else:
                    slot.reject(verdict.rejection)
                if not slot.open:
                    progress.advance()
    progress.finish()
    log.info("%s QC: %d files inspected, %d verdicts reused", product_name, qc_counts["inspected"],
             qc_counts["reused"])
    return Filled(known_urls, verdicts, fingerprint, cache_notes)


def _discard_changed(pool, positions, candidates, target_of, digests, verdicts, notes) -> None:
    """Delete the cached files of ``positions`` that differ from their recorded SHA-256 (hashed in ``pool``), so
    that they are downloaded again and judged afresh; note each in ``notes`` and forget its verdict."""
    def check(position: int) -> str | None:
        target = target_of(position)  # None: a record no local file can be named after (ledgered by _download)
        expected = digests.get(candidates.iloc[position]["record_id"])
        return None if target is None else recorded_mismatch(target, expected)

    for position, found in zip(positions, pool.map(check, positions), strict=True):
        if found is None or found == MISSING:  # unchanged, never recorded, or simply not downloaded yet
            continue
        record_id, target = candidates.iloc[position]["record_id"], target_of(position)
        target.unlink(missing_ok=True)
        verdicts.pop(record_id, None)
        detail = (f"cached {target.name} has sha256 {found}, its receipt recorded {digests[record_id]}: "
                  "discarded and downloaded again")
        notes[position] = Rejection(CACHE_MISMATCH, found, detail)
        log.warning("%s: %s", record_id, detail)


def _start_downloads(pool, product, candidates, positions, known_urls, context, base: str, refused: dict, limiter,
                     download) -> dict:
    """Start the downloads of ``positions`` (:func:`heliocube.fetch.pipeline.schedule_downloads`): at once for
    a candidate with its location, as its export finishes for one that needs a JSOC export. Returns each one's
    future outcome. ``known_urls`` gets the archive-relative location of each candidate that still needs
    downloading (JSOC: from exports sized by the manifest's bytes; ``refused`` the records JSOC would not export). A
    manifest's absolute URL (written before locations) becomes a location when it lies on ``base``; any other value
    is kept as it is, for `_download` to refuse with its reason."""
    for position in positions:
        row = candidates.iloc[position]
        if isinstance(row["url"], str) and row["url"]:
            known_urls.setdefault(row["record_id"], _location_or_as_is(row["url"], base))
    # A file already on disk still needs its URL for the slot table's provenance: a job killed after the download
    # but before its receipt left no record of it.
    sizes = {candidates.iloc[p]["record_id"]: candidates.iloc[p]["size"] for p in positions}  # in time order
    unresolved = {record_id: size for record_id, size in sizes.items() if record_id not in known_urls}
    unresolved = unresolved if product.is_jsoc else {}

    def export(on_result):
        def record(result):  # the locations first: the downloads read them
            known_urls.update({record: _location_or_as_is(url, base) for record, url in result.urls.items()})
            refused.update(result.refused)
            return on_result(result)

        resolve_jsoc_urls(product, unresolved, context, on_result=record, limiter=limiter)

    return schedule_downloads(pool, positions, lambda position: candidates.iloc[position]["record_id"], unresolved,
                              download, export)


def _raw_target(root, product, row: pd.Series) -> Path | None:
    """Where the candidate's raw file is cached; None when its record id names no plain local file."""
    try:
        return raw_dir(root, product.name, row["time_utc"].date()) / raw_file_name(product, row["record_id"])
    except ValueError:
        return None


def _location_or_as_is(url: str, base: str) -> str:
    try:
        return archive_location(url, base)
    except (ForeignLocation, UnsafeLocation):
        return url


def _download(session, product, row: pd.Series, known_urls: dict, root, context, base: str,
              refused: dict, limiter=None) -> Path | Rejection:
    """The candidate's raw file (downloaded unless cached), or why it cannot be had: a record id that names no
    plain local file (``unsafe_record``), a location off the archive (``foreign_host``) or outside its base
    (``unsafe_location``, refused before any request), or the download's failure."""
    target = _raw_target(root, product, row)
    if target is None:  # one bad manifest row is one ledger row, never a failed month
        return Rejection("unsafe_record", detail=f"record id {row['record_id']!r} names no plain local file")
    location = known_urls.get(row["record_id"])
    if location is None and not target.exists():  # JSOC's refusal, or no URL in a finished export
        return refused.get(row["record_id"]) or Rejection("missing", detail="the archive gave no URL for this record")
    if target.exists():
        return target
    try:
        url = archive_url(location, base)
    except ForeignLocation as err:  # a URL the archive sent must not lead elsewhere
        return Rejection("foreign_host", detail=f"{err}{_LEGACY_HINT}")
    except UnsafeLocation as err:
        return Rejection("unsafe_location", detail=str(err))
    try:
        size = None if pd.isna(row["size"]) else int(row["size"])
        return download_verified(session, url, target, context.policy, context.timeout, expected_size=size,
                                 limiter=limiter)
    except DownloadError as err:
        return Rejection(err.reason, detail=err.detail)


#: Said with a refused absolute URL: manifests written before locations held the host of the archive they were
#: queried from, which may simply have moved.
_LEGACY_HINT = (" (manifests written before heliocube kept archive-relative locations hold absolute URLs: if the"
                " archive moved, delete the product's manifests so the query lists them again)")


def slot_tables(product_name, slots, candidates, known_urls, root, verdicts, cache_notes):
    """The slot table (`SLOT_COLUMNS`), the ledger (`LEDGER_COLUMNS`) and the records each day's slots judged, of
    slots :func:`fill_slots` filled."""
    slot_rows, ledger_rows = [], []
    product = get_product(product_name)
    judged_on: dict[str, set[str]] = collections.defaultdict(set)  # records each day's slots judged
    for slot in slots:
        chosen = None if slot.chosen is None else candidates.iloc[slot.chosen]
        status = "ok" if chosen is not None else ("failed" if slot.ranked else "empty")
        positions = [position for position, _ in slot.rejections] + ([] if chosen is None else [slot.chosen])
        judged_on[slot.day.isoformat()].update(candidates.iloc[position]["record_id"] for position in positions)
        sha256 = None
        if chosen is not None:
            verdict = (verdicts or {}).get(chosen["record_id"])
            if verdict is not None and verdict.sha256 and verdict.matches(slot.path):
                sha256 = verdict.sha256  # the same file as when it was hashed
            else:
                sha256 = sha256_of(slot.path)
                if verdict is not None:
                    verdict.sha256 = sha256
        slot_rows.append({
            "product": product_name, "day": slot.day.isoformat(), "slot": slot.time.isoformat(), "status": status,
            "record_id": None if chosen is None else chosen["record_id"],
            "time_utc": None if chosen is None else chosen["time_utc"].isoformat(),
            "dt_seconds": None if chosen is None else (chosen["time_utc"] - slot.time).total_seconds(),
            "url": None if chosen is None else known_urls.get(chosen["record_id"]),
            "path": None if chosen is None else os.path.relpath(slot.path, root),
            "sha256": sha256,
            "size": None if chosen is None else slot.path.stat().st_size,
            "n_rejected": len(slot.rejections),
            **{f"qc_{name}": slot.metrics.get(name) for name in QC_METRICS},
            # the record's archive keywords travel on: JSOC's as-is files lack them (header.with_record_keywords)
            "keywords": record_keywords(product, chosen),
        })
        notes = [(position, cache_notes[position]) for position in positions if position in cache_notes]
        for position, rejection in [*notes, *slot.rejections]:  # a discarded cached file: noted, not a rejection
            row = candidates.iloc[position]
            ledger_rows.append({
                "product": product_name, "day": slot.day.isoformat(), "slot": slot.time.isoformat(),
                "record_id": row["record_id"], "time_utc": row["time_utc"].isoformat(), "reason": rejection.reason,
                "value": rejection.value, "detail": rejection.detail,
            })
    return pd.DataFrame(slot_rows, columns=SLOT_COLUMNS), pd.DataFrame(ledger_rows, columns=LEDGER_COLUMNS), judged_on


def _write_receipts(product_name, days, slots, candidates, known_urls, root, cadence, tolerance, verdicts,
                    fingerprint, cache_notes):
    slot_table, ledger, judged_on = slot_tables(product_name, slots, candidates, known_urls, root, verdicts,
                                                cache_notes)
    for day in days:
        receipt = {
            "product": product_name, "day": day.isoformat(), "cadence_seconds": cadence.total_seconds(),
            "tolerance_seconds": tolerance.total_seconds(),
            "slots": slot_table[slot_table["day"] == day.isoformat()].to_dict("records"),
            "rejections": ledger[ledger["day"] == day.isoformat()].to_dict("records"),
        }
        if verdicts is not None:
            receipt["qc"] = {"fingerprint": fingerprint, "verdicts": {
                record_id: verdicts[record_id].as_json() for record_id in sorted(judged_on[day.isoformat()])
                if record_id in verdicts}}  # fmt: skip
        with atomic_path(day_receipt_path(root, product_name, day)) as tmp:
            tmp.write_text(json.dumps(receipt, indent=1, default=str))
    log.info("%s: %d slots, %d filled, %d rejected candidates", product_name, len(slot_table),
             int((slot_table["status"] == "ok").sum()), len(ledger))
    return slot_table, ledger
