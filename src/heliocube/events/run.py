"""Entry points of the event jobs (what ``scripts/events_*.py`` call): select the events, fetch one event's frames.

``select_job`` is the workflow's checkpoint: how many events a dataset has is known only once HEK (or the CSV) has
answered, so Snakemake re-evaluates the DAG after it and plans one ``events_frames`` job per kept event.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
from astropy.time import Time

from ..config import validate_config
from ..paths import atomic_path
from ..retry import RetryPolicy
from ..timegrid import parse_day
from .frames import event_frames, iso_ms
from .selection import CANDIDATE_COLUMNS, EVENT_COLUMNS, kept_events, select_events
from .settings import event_variant, events_of, hek_url

__all__ = ["frames_job", "read_events", "select_job"]

log = logging.getLogger(__name__)

_TIME_COLUMNS = ("start", "peak", "end", "window_start", "window_end")


def _write(table: pd.DataFrame, columns, path) -> None:
    out = table[list(columns)].copy()
    for column in _TIME_COLUMNS:
        if column in out:
            out[column] = [iso_ms(value) for value in out[column]]
    with atomic_path(Path(path)) as tmp:
        out.to_csv(tmp, index=False)


def read_events(path: str | os.PathLike) -> pd.DataFrame:
    """An ``events.csv`` (or ``candidates.csv``) with its times as tz-aware UTC timestamps and ``kept`` as bool."""
    table = pd.read_csv(path, dtype={"event_id": str, "goes_class": str, "reason": str}, keep_default_na=False,
                        na_values={"goes_flux": [""], "active_region": [""], "hpc_x": [""], "hpc_y": [""]})
    for column in _TIME_COLUMNS:
        if column in table:
            table[column] = pd.to_datetime(table[column].replace("", None), utc=True, format="ISO8601")
    if "kept" in table:
        table["kept"] = table["kept"].astype(str).str.lower() == "true"
    return table


def select_job(config: dict, name: str, candidates_path: str, events_path: str) -> None:
    """Candidates of event dataset ``name`` from HEK or its CSV, each kept or dropped with its reason."""
    from ..jobs import embedded_archive_url

    config = validate_config(config)
    spec = events_of(config)[name]
    if spec.get("source", "hek") == "csv":
        from .table import read_event_table

        candidates = read_event_table(spec["csv"], spec.get("event_type", "FL"))
    else:
        from .hek import query_hek

        start = Time(parse_day(spec["date_start"]).isoformat(), scale="utc")
        end = Time((parse_day(spec["date_finish"]) + pd.Timedelta(days=1)).isoformat(), scale="utc")
        url = hek_url(config, spec, embedded_archive_url(config))
        candidates = query_hek(url, start, end, event_type=spec.get("event_type", "FL"),
                               frm_name=spec.get("frm_name"), policy=RetryPolicy.from_config(config))
    selected = select_events(candidates, spec)
    events = kept_events(selected, spec.get("pre_buffer", "180min"), spec.get("post_buffer", "180min"))
    _write(selected, CANDIDATE_COLUMNS, candidates_path)
    _write(events, EVENT_COLUMNS, events_path)
    log.info("%s: %d candidates, %d kept", name, len(selected), len(events))


def frames_job(config: dict, name: str, event_id: str, events_path: str, frames_path: str) -> None:
    """Every frame of one event's window, fetched and cleaned; its frame table."""
    from ..jobs import archive_context, quality_gate

    config = validate_config(config)
    spec = events_of(config)[name]
    events = read_events(events_path)
    match = events[events["event_id"] == event_id]
    if match.empty:
        raise KeyError(f"event {event_id!r} is not in {events_path}")
    root = config["output_root"]
    table = event_frames(match.iloc[0], spec["products"], event_variant(config, spec), archive_context(config), root,
                         directory=Path(frames_path).with_suffix(""),
                         gate_of=lambda product: quality_gate(config, product))
    with atomic_path(Path(frames_path)) as tmp:
        table.to_csv(tmp, index=False)
