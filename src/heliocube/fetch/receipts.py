"""A fetch job's receipts: reading what earlier runs recorded (locations, digests) and writing the day receipts.

Per-day receipts ``raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json`` say what each slot chose (record, location, path,
size, SHA-256, QC metrics, the record's keywords) and which candidates were rejected and why; with a gate that has a
``fingerprint``, also the gate's verdict on each file it inspected (:mod:`heliocube.fetch.verdicts`). A downloaded
file's SHA-256 is the one computed from its bytes as they were written (:class:`heliocube.fetch.cache.FileDigests`):
writing the receipts reads no file again.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..locations import ForeignLocation, UnsafeLocation, archive_location
from ..manifest import record_keywords
from ..paths import atomic_path, day_receipt_path
from ..registry import get_product
from .cache import FileDigests, read_receipts, recorded_digests
from .candidates import CandidateRows, raw_target
from .gate import LEDGER_COLUMNS, QC_METRICS

__all__ = ["SLOT_COLUMNS", "cache_digests", "day_receipts", "event_receipt_digests", "previous_urls", "slot_tables",
           "write_receipts"]

log = logging.getLogger(__name__)

SLOT_COLUMNS = ["product", "day", "slot", "status", "record_id", "time_utc", "dt_seconds", "url", "path",
                "sha256", "size", "n_rejected", *(f"qc_{name}" for name in QC_METRICS), "keywords"]


def day_receipts(product_name: str, days: list[dt.date], root) -> tuple[list[dict], list[dict], list[Path]]:
    """What earlier runs recorded for ``days``: their receipts, the receipts of ``days`` and their neighbours (a slot
    near midnight may have taken a file a neighbouring month's job recorded: their digests count too), and the
    paths of those that are damaged (:func:`heliocube.fetch.cache.read_receipts`)."""
    near = sorted(set(days) | {d + dt.timedelta(days=k) for d in days for k in (-1, 1)})
    paths = {day: day_receipt_path(root, product_name, day) for day in near}
    read, damaged = read_receipts(paths.values())
    return [read[paths[day]] for day in days if paths[day] in read], list(read.values()), damaged


def event_receipt_digests(product_name: str, root) -> dict[str, str]:
    """Record id -> SHA-256 as the event jobs' receipts of ``product_name`` recorded them (those that read)."""
    paths = sorted(Path(root).glob(f"events/*/frames/*/{product_name}.receipt.json"))
    return recorded_digests(read_receipts(paths)[0].values())


def cache_digests(product, slots, rows, root, receipts: Iterable[dict], damaged: list[Path]) -> dict[str, str]:
    """Record id -> SHA-256 to check the slots' cached files against: what ``receipts`` recorded.

    When a receipt the job reads is ``damaged``, the digests it recorded went with it, and a file changed since,
    reused unchecked, would pass into the cubes with a new digest recorded over it. Then the event receipts'
    digests count too, and the cached file of every candidate the ``slots`` rank that no receipt vouches for is
    deleted, to be downloaded, checked and recorded afresh. Only the slots' own candidates are touched (a file
    another job downloaded and recorded stays); partial downloads (hidden) are left: they are checked when complete.
    """
    digests = recorded_digests(receipts)
    if not damaged:
        return digests
    digests = {**event_receipt_digests(product.name, root), **digests}
    rows = CandidateRows.of(rows)
    deleted = 0
    for position in sorted({position for slot in slots for position in slot.ranked}):
        if rows.record_id(position) in digests:
            continue
        target = raw_target(root, product, rows[position])
        if target is not None and target.is_file():
            target.unlink()
            deleted += 1
    if deleted:
        log.warning("%s: %d cached downloads no receipt vouches for are downloaded again (a receipt is damaged)",
                    product.name, deleted)
    return digests


def previous_urls(receipts: list[dict], base: str) -> dict[str, str]:
    """Archive-relative locations the receipts recorded for their slots' records (those of earlier versions,
    absolute URLs, when they lie on ``base``; any other is left out and the record is resolved again)."""
    known = {}
    for slot in (slot for receipt in receipts for slot in receipt["slots"]):
        if slot.get("record_id") and slot.get("url"):
            with contextlib.suppress(ForeignLocation, UnsafeLocation):
                known[slot["record_id"]] = archive_location(slot["url"], base)
    return known


def slot_tables(product_name, slots, candidates, known_urls, root, verdicts, cache_notes, digests=None):
    """The slot table (`SLOT_COLUMNS`), the ledger (`LEDGER_COLUMNS`) and the records each day's slots judged, of
    slots :func:`heliocube.fetch.run.fill_slots` filled. ``digests`` (a :class:`FileDigests`) holds the SHA-256
    of the files this run downloaded or checked; a file it lacks is hashed here."""
    digests = digests if digests is not None else FileDigests()
    rows = CandidateRows.of(candidates)
    slot_rows, ledger_rows = [], []
    product = get_product(product_name)
    judged_on: dict[str, set[str]] = collections.defaultdict(set)  # records each day's slots judged
    for slot in slots:
        chosen = None if slot.chosen is None else rows[slot.chosen]
        status = "ok" if chosen is not None else ("failed" if slot.ranked else "empty")
        positions = [position for position, _ in slot.rejections] + ([] if chosen is None else [slot.chosen])
        judged_on[slot.day.isoformat()].update(rows.record_id(position) for position in positions)
        sha256 = None
        if chosen is not None:
            verdict = (verdicts or {}).get(chosen["record_id"])
            if verdict is not None and verdict.sha256 and verdict.matches(slot.path):
                sha256 = verdict.sha256  # the same file as when it was hashed
            else:
                sha256 = digests.of(slot.path)
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
            row = rows[position]
            ledger_rows.append({
                "product": product_name, "day": slot.day.isoformat(), "slot": slot.time.isoformat(),
                "record_id": row["record_id"], "time_utc": row["time_utc"].isoformat(), "reason": rejection.reason,
                "value": rejection.value, "detail": rejection.detail,
            })
    return pd.DataFrame(slot_rows, columns=SLOT_COLUMNS), pd.DataFrame(ledger_rows, columns=LEDGER_COLUMNS), judged_on


def write_receipts(product_name, days, slots, candidates, known_urls, root, cadence, tolerance, verdicts,
                   fingerprint, cache_notes, digests=None):
    """Write each day's receipt of slots :func:`heliocube.fetch.run.fill_slots` filled; returns the slot table and
    the ledger of them all."""
    slot_table, ledger, judged_on = slot_tables(product_name, slots, candidates, known_urls, root, verdicts,
                                                cache_notes, digests)
    by_day = {"slots": collections.defaultdict(list), "rejections": collections.defaultdict(list)}
    for key, table in (("slots", slot_table), ("rejections", ledger)):  # one conversion, not one per day
        for entry in table.to_dict("records"):
            by_day[key][entry["day"]].append(entry)
    for day in days:
        receipt = {
            "product": product_name, "day": day.isoformat(), "cadence_seconds": cadence.total_seconds(),
            "tolerance_seconds": tolerance.total_seconds(),
            "slots": by_day["slots"][day.isoformat()], "rejections": by_day["rejections"][day.isoformat()],
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
