"""Every frame of one event's window at native cadence, through the query, fetch (QC, fallback, ledger) and clean code.

For each configured channel the window ``[window_start, window_end]`` is listed as one JSOC record set at native
cadence (:func:`heliocube.query.jsoc.list_jsoc`, no ``@`` step), every listed record becomes a slot of its own
(:class:`heliocube.fetch.run.Slot` at its own time, so no frame is left out and none stands in for another), the
slots are filled by :func:`heliocube.fetch.run.fill_slots` (exports of the image segment only, downloads into the
shared raw cache ``raw/{product}/{YYYY}/{YYYY-MM-DD}/``, so overlapping windows and the month jobs share files, QC
with the configured thresholds) and each kept file is cleaned by :func:`heliocube.clean.clean_frame` into a FITS file
of its own, ``events/{name}/frames/{event_id}/{product}/{YYYYmmddTHHMMSS}.fits``.

The frame table ``events/{name}/frames/{event_id}.csv`` accounts for every listed record: ``ok`` (cleaned, ``file``
and its ``sha256``), ``rejected`` (QC's reason code, or ``clean_failed``) or ``missing`` (the download's or the
export's reason code, e.g. ``missing``, ``http``, ``export_failed``). Each channel's receipt (slots, ledger, QC
verdicts) is kept beside it as ``{event_id}/{product}.receipt.json``; a rerun reuses its verdicts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pandas as pd

from ..clean import clean_frame
from ..fetch.cache import read_receipts
from ..fetch.candidates import CandidateRows
from ..fetch.download import sha256_of
from ..fetch.receipts import cache_digests
from ..fetch.run import Slot, fill_slots, slot_tables
from ..frameio import read_frame
from ..framewrite import write_image
from ..header import with_record_keywords
from ..manifest import record_keywords
from ..paths import atomic_path, day_receipt_path
from ..query.jsoc import list_jsoc
from ..registry import get_product
from ..variants import Variant

__all__ = ["FRAME_COLUMNS", "event_frames", "window_candidates"]

log = logging.getLogger(__name__)

#: Columns of an event's frame table.
FRAME_COLUMNS = ("product", "time", "record", "status", "reason", "file", "sha256")
#: How far beyond the window the record set reaches: T_REC selects, T_OBS (a few seconds off) dates.
_MARGIN = dt.timedelta(minutes=1)


def iso_ms(moment) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sss`` (UTC) of a tz-aware timestamp; '' for a missing one."""
    if moment is None or pd.isna(moment):
        return ""
    moment = pd.Timestamp(moment).tz_convert("UTC")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def window_candidates(product, start: pd.Timestamp, end: pd.Timestamp, context) -> pd.DataFrame:
    """Manifest rows of every record of ``product`` observed in ``[start, end]`` (tz-aware UTC), from one record
    set at native cadence, in time order."""
    first = start.tz_convert(None).to_pydatetime() - _MARGIN
    listed = list_jsoc(product, first, (end - start).to_pytimedelta() + 2 * _MARGIN, context, step=None)
    inside = (listed["time_utc"] >= start) & (listed["time_utc"] <= end)
    return listed[inside].sort_values(["time_utc", "record_id"]).reset_index(drop=True)


def _window_days(start: pd.Timestamp, end: pd.Timestamp) -> list[dt.date]:
    first, last = start.date() - dt.timedelta(days=1), end.date() + dt.timedelta(days=1)
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


def _qc_reasons() -> frozenset[str]:
    from ..qc.checks import REASONS

    return frozenset(REASONS) | {"clean_failed"}


def _clean_one(product, variant: Variant, slot: pd.Series, root, target: Path, event_id: str) -> str:
    """Clean one fetched frame into ``target``; the SHA-256 of the file written."""
    data, header = read_frame(Path(root, slot["path"]))
    header = with_record_keywords(header, record_keywords(product, slot))  # as-is JSOC files: the geometry
    frame, header = clean_frame(data, header, product.name, variant, copy_header=False)
    header["HC_RECID"] = (str(slot["record_id"]), "archive record")
    header["HC_SHA"] = str(slot["sha256"])  # of the raw file; 64 hex digits leave no room for a comment
    header["HC_VARI"] = (variant.name, "heliocube variant")
    header["HC_EVENT"] = (event_id, "heliocube event")
    with atomic_path(target) as tmp:
        write_image(tmp, frame, header)
    return sha256_of(target)


def event_frames(event: pd.Series, products: list[str], variant: Variant, context, root: str | os.PathLike, *,
                 directory: str | os.PathLike, gate_of) -> pd.DataFrame:
    """Fetch and clean every frame of ``event``'s window for each of ``products``; the frame table.

    Parameters
    ----------
    event : pandas.Series
        A row of ``events.csv`` (``event_id``, ``window_start``, ``window_end`` as tz-aware timestamps).
    products : list of str
        JSOC products (AIA channels) to fetch.
    variant : heliocube.variants.Variant
        Size, resize method and calibration of the cleaned frames.
    context : heliocube.query.ArchiveContext
    root : path
        Output root (raw cache, receipts of the month jobs).
    directory : path
        Where this event's cleaned frames and receipts go (``events/{name}/frames/{event_id}``).
    gate_of : callable
        Product name -> QC gate (:func:`heliocube.jobs.quality_gate`).

    Returns
    -------
    pandas.DataFrame
        :data:`FRAME_COLUMNS`, one row per listed record, by product then time.
    """
    directory = Path(directory)
    start, end = pd.Timestamp(event["window_start"]), pd.Timestamp(event["window_end"])
    rows, qc_reasons = [], _qc_reasons()
    for name in products:
        product = get_product(name)
        candidates = window_candidates(product, start, end, context)
        slots = [Slot(t.date(), t, [i]) for i, t in enumerate(candidates["time_utc"])]
        receipt_path = directory / f"{name}.receipt.json"
        read, damaged = read_receipts([receipt_path, *(day_receipt_path(root, name, d)
                                                       for d in _window_days(start, end))])
        receipts = [read[receipt_path]] if receipt_path in read else []
        candidate_rows = CandidateRows(candidates)
        digests = cache_digests(product, slots, candidate_rows, root, read.values(), damaged)
        gate = gate_of(name)
        filled = fill_slots(product, slots, candidate_rows, context, root, gate=gate, receipts=receipts,
                            digests=digests)
        verdicts = filled.verdicts if filled.fingerprint else None
        table, ledger, judged = slot_tables(name, slots, candidates, filled.known_urls, root, verdicts,
                                            filled.cache_notes, filled.file_digests)
        receipt = {"product": name, "event_id": event["event_id"], "window": [iso_ms(start), iso_ms(end)],
                   "slots": table.to_dict("records"), "rejections": ledger.to_dict("records")}
        if verdicts is not None:
            receipt["qc"] = {"fingerprint": filled.fingerprint, "verdicts": {
                record: verdicts[record].as_json() for day in sorted(judged) for record in sorted(judged[day])
                if record in verdicts}}
        with atomic_path(receipt_path) as tmp:
            tmp.write_text(json.dumps(receipt, indent=1, default=str))
        for position, slot in enumerate(slots):
            candidate = candidates.iloc[position]
            row = {"product": name, "time": iso_ms(candidate["time_utc"]), "record": candidate["record_id"],
                   "status": "ok", "reason": "", "file": "", "sha256": ""}
            if slot.chosen is None:
                reason = slot.rejections[-1][1].reason if slot.rejections else "missing"
                row.update(status="rejected" if reason in qc_reasons else "missing", reason=reason)
            else:
                target = directory / name / f"{candidate['time_utc']:%Y%m%dT%H%M%S}.fits"
                try:
                    row["sha256"] = _clean_one(product, variant, table.iloc[position], root, target,
                                               event["event_id"])
                    row["file"] = os.path.relpath(target, root)
                except (ValueError, RuntimeError, OSError) as err:  # unreadable, or a calibration that cannot apply
                    log.warning("%s: not cleaned (%s)", candidate["record_id"], err)
                    row.update(status="rejected", reason="clean_failed")
            rows.append(row)
        counts = pd.Series([r["status"] for r in rows if r["product"] == name]).value_counts().to_dict()
        log.info("%s %s: %d frames in %s..%s: %s", event["event_id"], name, len(slots), iso_ms(start), iso_ms(end),
                 counts or "none listed")
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
