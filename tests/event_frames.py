"""Small event datasets for the event-sampling tests: events.csv, per-event frame tables and real cleaned FITS files.

Frames are 8x8 float32 images written with astropy, one file per frame (or, with ``day_files``, one multi-extension
file per day as the clean stage writes them, with the table's ``hdu`` column); pixel values encode the frame's time
so a test can tell which file a cube row came from (:func:`expected_value`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

SHAPE = (8, 8)
EVENT_FIELDS = ("event_id", "event_type", "start", "peak", "end", "goes_class", "goes_flux", "active_region",
                "hpc_x", "hpc_y", "kept", "reason", "window_start", "window_end")


def iso(t: pd.Timestamp) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def event(event_id: str, start: str, end: str, *, pre: float = 10, post: float = 10, goes: str = "M1.0",
          peak: str | None = None) -> dict:
    """An events.csv row with a window of ``pre`` minutes before the start and ``post`` after the end."""
    start_t, end_t = pd.Timestamp(start), pd.Timestamp(end)
    return {"event_id": event_id, "event_type": "FL", "start": iso(start_t),
            "peak": iso(pd.Timestamp(peak)) if peak else iso(start_t + (end_t - start_t) / 2), "end": iso(end_t),
            "goes_class": goes, "goes_flux": 1e-5, "active_region": 12000, "hpc_x": 100.0, "hpc_y": -200.0,
            "kept": True, "reason": "kept", "window_start": iso(start_t - pd.Timedelta(minutes=pre)),
            "window_end": iso(end_t + pd.Timedelta(minutes=post))}


def write_events(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(EVENT_FIELDS)).to_csv(path, index=False)
    return path


def expected_value(t: pd.Timestamp) -> float:
    """The pixel value of the frame observed at ``t``: seconds since 2014-01-01 (exact in float32 below 2^24 s)."""
    return float((pd.Timestamp(t) - pd.Timestamp("2014-01-01")).total_seconds() // 1) % 2**24


def frame_times(row: dict, cadence: float = 12.0, offset: float = 0.57) -> pd.DatetimeIndex:
    """Observation times every ``cadence`` seconds over an event's window, ``offset`` s after each whole step."""
    first = pd.Timestamp(row["window_start"]).floor("min") + pd.Timedelta(seconds=offset)
    times = pd.date_range(first, pd.Timestamp(row["window_end"]), freq=pd.Timedelta(seconds=cadence))
    return times[times >= pd.Timestamp(row["window_start"])]


def record_of(t: pd.Timestamp, wavelength: int = 131) -> str:
    return f"aia.lev1_euv_12s[{pd.Timestamp(t):%Y-%m-%dT%H:%M:%S}Z][{wavelength}]"


def write_frame_table(root: Path, row: dict, *, product: str = "AIA131", wavelength: int = 131, status=None,
                      times=None, day_files: bool = False, append: bool = False, files: bool = True) -> Path:
    """Write ``events/demo/frames/{event_id}.csv`` and the cleaned FITS of its ``ok`` frames under ``root``.

    ``status(i, t)`` gives ``(status, reason)`` per frame (default every frame ``ok``); ``append`` adds the rows to
    the event's table (a second product); ``files=False`` names the FITS files without writing them (for tests
    that read no frame).
    """
    times = frame_times(row) if times is None else times
    rows, days = [], {}
    for i, t in enumerate(times):
        state, reason = status(i, t) if status else ("ok", "")
        file, hdu = "", ""
        if state == "ok":
            if day_files:
                file = f"frames/test/{product}/{t:%Y-%m-%d}.fits"
                days.setdefault(file, []).append(t)
                hdu = len(days[file])
            else:
                file = f"frames/test/{product}/{t:%Y%m%dT%H%M%S}.fits"
                path = root / file
                if files and not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    header = fits.Header({"BUNIT": "DN/s", "T_OBS": iso(t)})
                    fits.PrimaryHDU(np.full(SHAPE, expected_value(t), np.float32), header).writeto(path)
        rows.append({"product": product, "time": iso(t), "record": record_of(t, wavelength), "status": state,
                     "reason": reason, "file": file, "sha256": f"{i:064x}", "hdu": hdu})
    for file, stamps in days.items():
        hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(np.full(SHAPE, expected_value(t), np.float32),
                                                    fits.Header({"BUNIT": "DN/s", "T_OBS": iso(t)}),
                                                    name=f"SLOT_{t:%Y%m%dT%H%M%S}") for t in stamps]
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        fits.HDUList(hdus).writeto(root / file, overwrite=True)
    columns = ["product", "time", "record", "status", "reason", "file", "sha256"] + (["hdu"] if day_files else [])
    table = root / "events" / "demo" / "frames" / f"{row['event_id']}.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    new = pd.DataFrame(rows, columns=columns)
    if append:
        new = pd.concat([pd.read_csv(table, dtype=str, keep_default_na=False), new], ignore_index=True)
    new.to_csv(table, index=False)
    return table


def some_bad(i: int, t) -> tuple[str, str]:
    """Every 7th frame rejected by QC, every 11th missing in the archive, the rest ok."""
    if i % 7 == 3:
        return "rejected", "holes"
    if i % 11 == 5:
        return "missing", "not_in_archive"
    return "ok", ""
