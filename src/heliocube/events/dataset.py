"""Build one event dataset: partition, sample, label, account, and write every output of ``events/{name}/dataset/``.

Outputs (under ``{output_root}/events/{name}/dataset/``)

- ``labels.csv`` and ``labels.tsv``: ``filename,label[,goes_class][,phase]`` (:mod:`heliocube.events.labels`);
- ``sampling/{event_id}.csv``: one row per minute bin of each phase and product (:data:`~.sampling.LOG_COLUMNS`);
- ``summary.csv`` and ``summary.md``: per event and product, with a TOTAL row (:mod:`heliocube.events.summary`);
- ``accounting.csv``: one row per row of every frame table (:data:`ACCOUNTING_COLUMNS`), whose ``outcome`` is
  ``sampled``, ``not_drawn`` (drawable, not drawn), ``rejected`` / ``missing`` (the frame table's status, with its
  ledger reason), ``overlap_relabelled`` (another event owns the frame, ``reason`` says which and why) or
  ``outside_window``;
- ``events.h5`` and ``per_event/{event_id}.h5``: labelled cubes (:mod:`heliocube.events.labelled_cube`);
- ``fits/{filename}``: with ``fits_copies``, each sampled frame as its own FITS file under its label-file name.

Every file is a function of the inputs and the settings: the same seed gives the same bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..framewrite import write_image
from ..paths import atomic_path
from .labelled_cube import LabelledCubeWriter, read_cleaned_frame
from .labels import LABEL_OF_PHASE, label_table, seed_file_name, write_labels
from .partition import OVERLAP_RULES, assign_owners, flare_minute_bins, read_events, read_frame_table
from .sampling import LOG_COLUMNS, sample_event
from .summary import summary_table, write_summary

__all__ = ["ACCOUNTING_COLUMNS", "DEFAULTS", "build_event_dataset", "dataset_dir", "sampling_settings"]

log = logging.getLogger(__name__)

#: ``sampling:`` settings of an ``events`` entry and their defaults (the prior notebook's 178 pre and post frames).
DEFAULTS = {"seed": 0, "n_pre": 178, "n_post": 178, "label_overlap": "flare_wins",
            "labels": {"goes_class": False, "phase": False}, "fits_copies": False}  # fmt: skip
ACCOUNTING_COLUMNS = ("event_id", "product", "time", "record", "status", "phase", "minute", "hhmm", "outcome",
                      "owner_event", "owner_phase", "reason", "file", "hdu", "filename")
OUTCOMES = ("sampled", "not_drawn", "rejected", "missing", "overlap_relabelled", "outside_window")


def dataset_dir(output_root: str | os.PathLike, name: str) -> Path:
    """``{output_root}/events/{name}/dataset``"""
    return Path(output_root, "events", name, "dataset")


def sampling_settings(settings: Mapping | None) -> dict:
    """The sampling settings with defaults filled in; ``settings`` is an ``events`` entry or its ``sampling``.

    Raises
    ------
    ValueError
        For a negative count, an unknown overlap rule or a seed that is not a non-negative integer.
    """
    given = dict(settings or {})
    given = dict(given.get("sampling") or {}) if "sampling" in given else given
    out = {**DEFAULTS, **{key: value for key, value in given.items() if key != "labels"}}
    out["labels"] = {**DEFAULTS["labels"], **dict(given.get("labels") or {})}
    for key in ("seed", "n_pre", "n_post"):
        if isinstance(out[key], bool) or not isinstance(out[key], int | np.integer) or out[key] < 0:
            raise ValueError(f"sampling.{key} must be a non-negative integer, got {out[key]!r}")
    if out["label_overlap"] not in OVERLAP_RULES:
        raise ValueError(f"sampling.label_overlap {out['label_overlap']!r}: expected one of {OVERLAP_RULES}")
    return out


def _iso(times: pd.Series) -> pd.Series:
    return times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3]


def _outcomes(frames: pd.DataFrame, sampled: set) -> pd.Series:
    outcome = pd.Series("not_drawn", index=frames.index, dtype=object)
    outcome[frames["status"] == "rejected"] = "rejected"
    outcome[frames["status"] == "missing"] = "missing"
    outcome[frames.index.isin(list(sampled))] = "sampled"
    outcome[frames["phase"] == "outside"] = "outside_window"
    outcome[frames["owner_event"] != frames["event_id"]] = "overlap_relabelled"
    return outcome


def _load(events_csv, frame_tables: Mapping, rule: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    events = read_events(events_csv)
    tables = {str(key): value for key, value in frame_tables.items()}
    absent = [event_id for event_id in events["event_id"] if event_id not in tables]
    if absent:
        raise ValueError(f"no frame table for event(s) {absent} of {events_csv}")
    extra = sorted(set(tables) - set(events["event_id"]))
    if extra:
        raise ValueError(f"frame tables of events not in {events_csv}: {extra}")
    parts = [read_frame_table(tables[event_id], event_id) for event_id in events["event_id"]]
    frames = pd.concat(parts, ignore_index=True) if parts else _no_frames()
    frames = assign_owners(events, frames, rule)
    frames["hdu"] = pd.to_numeric(frames["hdu"].replace("", "0")).astype("int64")
    frames["filename"] = [seed_file_name(product, record, time) for product, record, time
                          in zip(frames["product"], frames["record"], frames["time"], strict=True)]  # fmt: skip
    goes = dict(zip(events["event_id"], events["goes_class"], strict=True))
    frames["goes_class"] = frames["owner_event"].map(goes).fillna("")
    return events, frames


def _no_frames() -> pd.DataFrame:
    """The concatenated frame tables of a dataset without events."""
    columns = ["event_id", "product", "time", "record", "status", "reason", "file", "sha256", "hdu"]
    frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    frame["time"] = pd.Series(dtype="datetime64[ns]")
    return frame


def _summary_row(event, product: str, samples: dict, outcomes: pd.Series) -> dict:
    counts = outcomes.value_counts()
    start, end = pd.Timestamp(event["start"]), pd.Timestamp(event["end"])
    row = {"event_id": event["event_id"], "event_date": f"{start:%Y-%m-%d}", "product": product,
           "goes_class": event["goes_class"], "start": f"{start:%Y-%m-%dT%H:%M:%S}", "end": f"{end:%Y-%m-%dT%H:%M:%S}",
           "flare_minutes": (end - start).total_seconds() / 60, "flare_minute_bins": len(flare_minute_bins(event))}
    for phase in ("flare", "pre", "post"):
        row[phase] = len(samples[phase].chosen)
        row[f"{phase}_shortfall"] = samples[phase].shortfall
    row["total"] = row["flare"] + row["pre"] + row["post"]
    row.update({outcome: int(counts.get(outcome, 0)) for outcome in OUTCOMES[1:]})
    return row


def _clear_stale(directory: Path, keep: set[str], suffix: str) -> None:
    """Remove files of a previous build (e.g. an event no longer selected) from one of this stage's folders."""
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_file() and path.name.endswith(suffix) and path.name not in keep:
                path.unlink()


def build_event_dataset(events_csv: str | os.PathLike, frame_tables: Mapping[str, str | os.PathLike],
                        output_root: str | os.PathLike, name: str, settings: Mapping | None = None) -> None:
    """Build the event dataset ``name`` from ``events.csv`` and the per-event frame tables.

    Parameters
    ----------
    events_csv : path-like
        ``events/{name}/events.csv`` (kept events with ``window_start``/``window_end``).
    frame_tables : mapping of str to path-like
        ``event_id`` -> ``events/{name}/frames/{event_id}.csv``, one per event of ``events_csv``.
    output_root : path-like
        The run's output root (frame tables name cleaned files relative to it).
    name : str
        The event dataset's name (``events[].name`` in the config).
    settings : mapping, optional
        The ``events`` entry or its ``sampling`` mapping (:data:`DEFAULTS`).
    """
    config = sampling_settings(settings)
    out = dataset_dir(output_root, name)
    # both folders are the rule's directory() outputs: they exist even when the selection kept no event
    for folder in ("sampling", "per_event"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    events, frames = _load(events_csv, frame_tables, config["label_overlap"])
    products = sorted(frames["product"].unique()) or [""]
    chosen, logs, summary_rows = [], {}, []
    frames["outcome"] = ""
    for _, event in events.iterrows():
        event_id, event_logs = event["event_id"], []
        for product in products:
            rows = frames[(frames["event_id"] == event_id) & (frames["product"] == product)]
            samples = sample_event(rows, event, product, seed=config["seed"], n_pre=config["n_pre"],
                                   n_post=config["n_post"])  # fmt: skip
            picked = [label for phase in ("pre", "flare", "post") for label in samples[phase].chosen]
            event_logs += [row for phase in ("pre", "flare", "post") for row in samples[phase].log]
            outcome = _outcomes(rows, set(picked))
            frames.loc[rows.index, "outcome"] = outcome
            summary_rows.append(_summary_row(event, product, samples, outcome))
            chosen += picked
        logs[event_id] = pd.DataFrame(event_logs, columns=list(LOG_COLUMNS))
    sampled = frames.loc[sorted(chosen)]  # each frame once: only its owner draws it
    sampled = sampled.assign(label=sampled["owner_phase"].map(LABEL_OF_PHASE))
    labels = label_table(sampled, **config["labels"])
    write_labels(labels, out / "labels.csv", out / "labels.tsv")
    for event_id, table in logs.items():
        with atomic_path(out / "sampling" / f"{event_id}.csv") as tmp:
            table.to_csv(tmp, index=False, lineterminator="\n")
    _clear_stale(out / "sampling", {f"{event_id}.csv" for event_id in logs}, ".csv")
    write_summary(summary_table(summary_rows), out / "summary.csv", out / "summary.md", f"Event dataset {name}")
    _write_accounting(frames, out / "accounting.csv")
    _write_cubes(events, sampled, output_root, out, config, name)
    log.info("event dataset %s: %d events, %d frames sampled of %d in the windows", name, len(events),
             len(sampled), len(frames))


def _write_accounting(frames: pd.DataFrame, path: Path) -> None:
    table = frames.copy()
    table["time"] = _iso(table["time"]) if len(table) else table["time"]
    table["minute"] = table["minute"].dt.strftime("%Y-%m-%dT%H:%M") if len(table) else table.get("minute")
    table["reason"] = table["reason"].where(table["outcome"] != "overlap_relabelled", table["overlap"])
    table.loc[table["outcome"] == "outside_window", "reason"] = "outside the event window"
    with atomic_path(path) as tmp:
        table.reindex(columns=list(ACCOUNTING_COLUMNS)).to_csv(tmp, index=False, lineterminator="\n")


def _write_cubes(events: pd.DataFrame, sampled: pd.DataFrame, output_root, out: Path, config: dict,
                 name: str) -> None:  # fmt: skip
    """``events.h5``, ``per_event/{event_id}.h5`` and, on request, ``fits/{filename}``: each frame read once."""
    order = {event_id: number for number, event_id in enumerate(events["event_id"])}
    sampled = sampled.assign(_event=sampled["owner_event"].map(order))
    sampled = sampled.sort_values(["_event", "product", "time", "record"], kind="stable").reset_index(drop=True)
    first = read_cleaned_frame(output_root, sampled.loc[0, "file"], int(sampled.loc[0, "hdu"])) if len(sampled) \
        else (np.zeros((0, 0), np.float32), None)  # fmt: skip
    shape = first[0].shape
    units = "" if first[1] is None else str(first[1].get("BUNIT", ""))
    attrs = {"name": name, "units": units, "settings": config, "seed": int(config["seed"]),
             "label_overlap": config["label_overlap"], "phases": ["pre", "flare", "post"],
             "products": sorted(sampled["product"].unique())}  # fmt: skip
    fits_dir = out / "fits"
    copies = set()
    with LabelledCubeWriter(out / "events.h5", sampled, shape, {**attrs, "events": list(events["event_id"])}) as cube:
        for event_id in events["event_id"]:
            rows = sampled.index[sampled["owner_event"] == event_id]
            part = sampled.loc[rows].reset_index(drop=True)
            with LabelledCubeWriter(out / "per_event" / f"{event_id}.h5", part, shape,
                                    {**attrs, "events": [event_id]}) as single:  # fmt: skip
                for position, row in enumerate(rows):
                    frame, header = read_cleaned_frame(output_root, sampled.loc[row, "file"],
                                                       int(sampled.loc[row, "hdu"]))  # fmt: skip
                    single.write(position, frame)
                    cube.copy(row, single, position)
                    if config["fits_copies"]:
                        _write_copy(fits_dir, sampled.loc[row], frame, header)
                        copies.add(sampled.loc[row, "filename"])
    _clear_stale(out / "per_event", {f"{event_id}.h5" for event_id in events["event_id"]}, ".h5")
    _clear_stale(fits_dir, copies, ".fits")


def _write_copy(directory: Path, row: pd.Series, frame: np.ndarray, header) -> None:
    """One sampled frame as its own FITS file named as in the label files, with its label in the header."""
    header = header.copy()
    header["HC_EVENT"] = (str(row["owner_event"]), "heliocube event id")
    header["HC_PHASE"] = (str(row["owner_phase"]), "pre, flare or post")
    header["HC_LABEL"] = (int(LABEL_OF_PHASE[row["owner_phase"]]), "1 = flare, 0 = pre/post-flare")
    with atomic_path(directory / row["filename"]) as tmp:
        write_image(tmp, frame, header)
