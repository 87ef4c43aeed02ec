"""The clean stage: the slots a fetch filled, turned into calibrated, resized float32 frames with provenance.

For one product, one variant and a span of days it writes

- per day, ``frames/{variant}/{product}/{YYYY}/{YYYY-MM-DD}.fits``: an empty primary HDU describing the day, then
  one image HDU per kept slot (``EXTNAME = SLOT_YYYYMMDDThhmmss``) whose header is the raw header updated by the
  calibration and resize steps, plus provenance cards (``HC_SLOT``, ``HC_RECID``, ``HC_SHA``, ``HC_VARI``). A day
  without any kept slot still gets its file (primary HDU only), so "no data" and "not built" differ.
  ``sunpy.map.Map(path)`` returns one map per slot.
- for the span, an index (one row per written frame, :data:`INDEX_COLUMNS`, read by the cube stage) and a ledger
  of slots whose raw file could not be cleaned (same columns as the fetch ledger).

A raw file is cleaned only while it has the SHA-256 its fetch recorded: one changed since (truncated, replaced,
bytes flipped) becomes a ``cache_mismatch`` ledger row and no frame. This stage cannot download, so the job then
fails (:func:`check_cache_ledger`) with the command that makes the next run fetch the file again.

Optionally (``outputs.per_frame_fits``) each frame is also written on its own with the prior tool's name
``{mission}_{product}_{YYYYMMDDhhmmss}_{size}.fits`` under ``frames/{variant}/{product}/per-frame/``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from .fetch.cache import CACHE_MISMATCH, read_receipts, recorded_mismatch
from .fetch.gate import LEDGER_COLUMNS, QC_METRICS
from .frameindex import FLOAT_COLUMNS, INDEX_COLUMNS, STRING_COLUMNS, WCS_KEYS, frame_digest
from .frameio import blank_to_nan, read_frame
from .framewrite import write_frames, write_image
from .header import record_keywords, with_record_keywords
from .paths import atomic_path, day_receipt_path
from .progress import Progress
from .registry import get_product
from .variants import Variant

if TYPE_CHECKING:
    import pandas as pd

# pandas only for the callers that hand and take DataFrames (clean_days, read_index): the clean job
# reads and writes its tables with heliocube.tablecsv (clean_slot_rows), ~0.3 s CPU less at its start.

__all__ = [
    "FLOAT_COLUMNS",
    "INDEX_COLUMNS",
    "QC_METRICS",
    "STRING_COLUMNS",
    "WCS_KEYS",
    "RawCacheMismatch",
    "check_cache_ledger",
    "clean_days",
    "clean_frame",
    "clean_slot_rows",
    "day_frames_path",
    "frame_digest",
    "read_index",
    "slots_on_grid",
]

log = logging.getLogger(__name__)


class RawCacheMismatch(RuntimeError):
    """Raw files differ from the SHA-256 their fetch recorded; the message names them and the repair."""


def day_frames_path(root: str | os.PathLike, variant: str, product: str, day: dt.date) -> Path:
    """``{root}/frames/{variant}/{product}/{YYYY}/{YYYY-MM-DD}.fits``"""
    return Path(root, "frames", variant, product, f"{day:%Y}", f"{day:%Y-%m-%d}.fits")


def slots_on_grid(slot_times: Iterable, cadence: dt.timedelta, anchor: dt.date) -> np.ndarray:
    """Mask of the slots that lie on a variant's grid ``anchor 00:00 UTC + k * cadence``.

    ``slot_times``: ISO text or datetimes (a pandas Series of either too), read as :func:`_moment` reads them; a
    time without a zone is UTC.
    """
    anchor_time = dt.datetime.combine(anchor, dt.time(), dt.UTC)
    moments = (_moment(value) for value in slot_times)
    offsets = np.array([((m if m.tzinfo else m.replace(tzinfo=dt.UTC)) - anchor_time).total_seconds()
                        for m in moments], dtype=float)
    return np.isclose(np.mod(offsets, cadence.total_seconds()), 0.0)


def clean_frame(data: np.ndarray, header: fits.Header, product_name: str, variant: Variant, *,
                copy_header: bool = True) -> tuple[np.ndarray, fits.Header]:
    """Calibrate (when the variant asks) and resize one frame; float32 data and a new header.

    A calibrated variant's geometry goes straight to the output grid (:func:`heliocube.calibrate.calibrate_frame`,
    ``calibration.method``).

    ``copy_header=False`` lets the resize update ``header`` itself (a caller that read it and owns it). Integer
    data with ``BLANK`` pixels (:func:`heliocube.frameio.read_frame`) become floats with NaN there first, so no
    step ever averages a ``BLANK`` value.
    """
    from .resize import resize_frame  # OpenCV: not for the jobs that only read indexes (cube)

    data = blank_to_nan(data, header)
    if variant.calibration:
        from .calibrate import calibrate_frame  # sunpy-heavy: imported only for variants that calibrate

        return calibrate_frame(data, header, variant.calibration, product_name, variant.image_size,
                               variant.resize_method, copy_header=copy_header)
    return resize_frame(data, header, variant.image_size, variant.resize_method, copy_header=copy_header)


def _float(value) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _stamp(slot: dt.datetime) -> str:
    return slot.strftime("%Y%m%dT%H%M%S")


def _moment(value) -> dt.datetime:
    """A slot table's time (ISO text as the fetch writes it, or a datetime: pandas.Timestamp is one) as a datetime,
    what ``pandas.Timestamp(value)`` gives for it."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def clean_days(product_name: str, variant: Variant, days: Iterable[dt.date], slots: pd.DataFrame,
               root: str | os.PathLike, *, anchor: dt.date,
               per_frame_fits: bool = False,
               progress_every: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the cleaned frames of ``days`` and return the frame index and the ledger of failures; log progress.

    :func:`clean_slot_rows` with pandas tables: see it for the parameters.

    Returns
    -------
    index, ledger : pandas.DataFrame
        :data:`INDEX_COLUMNS` rows for every frame written; ``LEDGER_COLUMNS`` rows for slots that failed here.
    """
    import pandas as pd

    index, ledger = clean_slot_rows(product_name, variant, days, slots.to_dict("records"), root, anchor=anchor,
                                    per_frame_fits=per_frame_fits, progress_every=progress_every)
    return pd.DataFrame(index, columns=list(INDEX_COLUMNS)), pd.DataFrame(ledger, columns=LEDGER_COLUMNS)


def clean_slot_rows(product_name: str, variant: Variant, days: Iterable[dt.date], slots: Iterable[Mapping],
                    root: str | os.PathLike, *, anchor: dt.date, per_frame_fits: bool = False,
                    progress_every: float | None = None) -> tuple[list[dict], list[dict]]:
    """Write the cleaned frames of ``days`` and return the rows of the frame index and of the ledger of failures;
    log progress.

    Parameters
    ----------
    product_name : str
        Registry name.
    variant : Variant
        Size, method, cadence and calibration of the output.
    days : iterable of datetime.date
        Days this job owns; each gets a frame file, possibly without frames.
    slots : iterable of mapping
        The rows of the fetch stage's slot table (:data:`heliocube.fetch.run.SLOT_COLUMNS`, plus optional ``qc_*``
        columns): as :func:`heliocube.tablecsv.read_rows` reads them (text, '' when empty) or with pandas' types.
    root : path
        Output root; ``slots.path`` is relative to it.
    anchor : datetime.date
        Day whose 00:00 UTC anchors the slot grids (the configured start).
    per_frame_fits : bool
        Also write one FITS per frame with the prior tool's naming.
    progress_every : float, optional
        Seconds between progress lines (:class:`heliocube.progress.Progress`); default its interval.

    Returns
    -------
    index, ledger : list of dict
        :data:`INDEX_COLUMNS` rows for every frame written; ``LEDGER_COLUMNS`` rows for slots that failed here
        (values str, int, float or None: :func:`heliocube.tablecsv.write_rows` writes them as pandas would).
    """
    product = get_product(product_name)
    slots = [slot for slot in slots if slot["status"] == "ok"]
    slots = [slot for slot, keep in zip(slots, slots_on_grid([s["slot"] for s in slots], variant.cadence, anchor),
                                        strict=True) if keep]
    index_rows, ledger_rows = [], []
    days = sorted(days)  # an iterable, read once
    handoffs = _recorded_handoffs(product_name, days, root)
    n_handed = 0
    by_day = {day.isoformat(): [] for day in days}  # the month's slots read once, not once per day
    for slot in slots:
        if slot["day"] in by_day:
            by_day[slot["day"]].append(slot)
    progress = Progress(f"{product_name} {variant.name} clean", sum(map(len, by_day.values())),
                        unit="frames", every=progress_every, logger=log)
    for day in days:
        day_slots = sorted(by_day[day.isoformat()], key=lambda slot: slot["slot"])
        target = day_frames_path(root, variant.name, product_name, day)
        primary = fits.Header()
        primary["HC_PROD"] = (product_name, "heliocube product")
        primary["HC_VARI"] = (variant.name, "heliocube variant")
        primary["HC_DAY"] = (day.isoformat(), "UTC day of these slots")
        written: list[tuple[np.ndarray, fits.Header]] = []
        for slot in day_slots:
            slot_time = _moment(slot["slot"])
            found = recorded_mismatch(Path(root, slot["path"]), slot["sha256"])
            if found is not None:  # never a frame from bytes other than the ones fetched and judged
                ledger_rows.append({"product": product_name, "day": day.isoformat(), "slot": slot["slot"],
                                    "record_id": slot["record_id"], "time_utc": slot["time_utc"],
                                    "reason": CACHE_MISMATCH, "value": found,
                                    "detail": f"{slot['path']}: expected sha256 {slot['sha256']}, found {found}"})
                progress.advance()
                continue
            try:
                # the frame the fetch job kept when it decoded the file for QC; else decode it (the same result)
                made = _from_handoff(handoffs.get(slot["sha256"]), root, slot, product, variant)
                if made is not None:
                    frame, header = made
                    n_handed += 1
                else:
                    data, header = read_frame(Path(root, slot["path"]))
                    header = with_record_keywords(header, record_keywords(product, slot))  # as-is JSOC: geometry
                    made = _calibrated_binned(data, header, product_name, variant)
                    frame, header = made or clean_frame(data, header, product_name, variant, copy_header=False)
            except (ValueError, RuntimeError) as exc:  # unreadable since fetch, or a calibration that cannot apply
                ledger_rows.append({"product": product_name, "day": day.isoformat(), "slot": slot["slot"],
                                    "record_id": slot["record_id"], "time_utc": slot["time_utc"],
                                    "reason": "clean_failed", "value": None, "detail": str(exc)})
                progress.advance()  # a slot that cannot be cleaned is done too
                continue
            header["EXTNAME"] = f"SLOT_{_stamp(slot_time)}"
            header["HC_SLOT"] = (slot_time.isoformat(), "slot time (UTC) this frame fills")
            header["HC_RECID"] = (str(slot["record_id"]), "archive record")
            header["HC_SHA"] = str(slot["sha256"])  # 64 hex digits: no room left for a comment
            header["HC_VARI"] = (variant.name, "heliocube variant")
            hdu_index = len(written) + 1
            written.append((frame, header))
            obs = _moment(slot["time_utc"])
            dt_seconds = float(slot["dt_seconds"])
            row = {
                "slot_time": slot_time.strftime("%Y-%m-%dT%H:%M:%S"),
                "obs_time": obs.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
                "dt_seconds": dt_seconds, "abs_dt_seconds": abs(dt_seconds),
                "record_id": str(slot["record_id"]), "url": _text(slot["url"]),
                "sha256": str(slot["sha256"]), "raw_path": str(slot["path"]),
                "frame_file": os.path.relpath(target, root), "hdu": hdu_index, "frame_sha256": frame_digest(frame),
            }
            for name in QC_METRICS:
                row[f"qc_{name}"] = _float(slot.get(f"qc_{name}"))
            for key in WCS_KEYS:
                row[key] = _float(header.get(key))
            index_rows.append(row)
            if per_frame_fits:
                _write_per_frame(root, variant, product, obs, frame, header)
            progress.advance()
        primary["NFRAMES"] = (len(written), "image HDUs that follow, one per slot")
        with atomic_path(target) as tmp:
            write_frames(tmp, primary, written)
    progress.finish()
    log.info("%s %s: %d frames written (%d from the fetch job's handoff, the others decoded), %d slots failed to "
             "clean", product_name, variant.name, len(index_rows), n_handed, len(ledger_rows))
    return index_rows, ledger_rows


def _text(value) -> str:
    """A text cell, read as text ('' when empty) or by pandas (NaN or pandas.NA when empty), as text."""
    missing = value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType"
    return "" if missing else str(value)


def _recorded_handoffs(product_name: str, days: list[dt.date], root) -> dict[str, dict]:
    """Raw SHA-256 -> handoff entry, from the QC verdicts of the receipts of ``days`` and their neighbours."""
    from .handoff import recorded_handoffs

    near = sorted(set(days) | {d + dt.timedelta(days=k) for d in days for k in (-1, 1)})
    paths = (day_receipt_path(root, product_name, day) for day in near)
    return recorded_handoffs(read_receipts(paths)[0].values())


def _from_handoff(entry, root, slot, product, variant):
    if entry is None:
        return None
    from .handoff import frame_from_handoff

    return frame_from_handoff(root, entry, Path(root, slot["path"]), variant, product.name,
                              record_keywords(product, slot))


def _calibrated_binned(data, header, product_name: str, variant):
    """A calibrated variant's frame from the decoded frame binned as a handoff would be (None: not such a variant),
    so that its pixels are the same with or without the fetch job's handoff."""
    if not variant.calibration:
        return None
    from .handoff import calibrated_from_decoded

    return calibrated_from_decoded(data, header, variant, product_name)


def check_cache_ledger(ledger: pd.DataFrame | list[dict], root: str | os.PathLike) -> None:
    """Raise :class:`RawCacheMismatch` when ``ledger`` (of :func:`clean_days` or :func:`clean_slot_rows`) holds
    ``cache_mismatch`` rows.

    The message lists each raw file (expected and found digest) and says what to run: the clean stage cannot
    download, the fetch stage can, once ``heliocube verify ROOT --repair`` has marked its month for a rerun.
    """
    rows = ledger.to_dict("records") if hasattr(ledger, "to_dict") else ledger
    bad = [row["detail"] for row in rows if row["reason"] == CACHE_MISMATCH]
    if not bad:
        return
    lines = "\n".join(f"  {detail}" for detail in bad)
    raise RawCacheMismatch(
        f"{len(bad)} raw file(s) differ from the sha256 their fetch recorded and were not cleaned:\n{lines}\n"
        f"Run `heliocube verify {root} --repair`, then the workflow again: it downloads them again and rebuilds "
        "what depends on them.")


def _write_per_frame(root, variant: Variant, product, obs: dt.datetime, frame, header) -> None:
    name = f"{product.mission}_{product.name}_{obs:%Y%m%d%H%M%S}_{variant.image_size}.fits"
    target = Path(root, "frames", variant.name, product.name, "per-frame", name)
    with atomic_path(target) as tmp:
        write_image(tmp, frame, header)


def read_index(path: str | os.PathLike) -> pd.DataFrame:
    """A frame index CSV with its column types restored (strings stay strings, empty is '')."""
    import pandas as pd

    table = pd.read_csv(path, dtype={c: str for c in STRING_COLUMNS}, keep_default_na=False)
    for column in FLOAT_COLUMNS:
        table[column] = pd.to_numeric(table[column].replace("", np.nan), errors="coerce").astype(float)
    table["hdu"] = table["hdu"].astype(int)
    return table
