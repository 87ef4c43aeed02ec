"""Pre, flare and post phases of an event window, per-minute bins, and one owner per frame where windows overlap.

An event's window is ``[window_start, window_end]`` (``start - pre_buffer`` to ``end + post_buffer``). A frame at
time ``t`` is, as the prior notebook sorted its files,

- ``pre``   when ``window_start <= t < start``,
- ``flare`` when ``start <= t <= end`` (both ends included),
- ``post``  when ``end < t <= window_end``,
- ``outside`` otherwise (a frame table should hold none; such a frame is accounted for, never sampled).

Frames are binned by the full UTC minute of their time (``t`` floored to the minute), so 23:59 and the 00:00 after
midnight, or the last minute of a month and the first of the next, are different bins; ``hhmm`` is only how a bin
is printed.

Overlapping windows
-------------------
The same frame (same product and record) can lie in the windows of two events. It gets exactly one owner, and
only its owner may sample it; the other events account for it as ``overlap_relabelled``. With
``label_overlap: flare_wins`` (default):

1. a frame inside the flare of one or more events belongs to one of them (the flare wins over any pre or post
   phase); among several flares, to the event whose peak (or flare midpoint, when the peak is unknown) is nearest;
2. a frame in only pre or post phases belongs to the event whose flare interval ``[start, end]`` is nearest;
3. remaining ties go to the event that starts first, then to the smaller ``event_id``.

With ``label_overlap: exclude`` a frame in more than one window belongs to no event (no label is ever a guess).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..paths import safe_component

__all__ = [
    "EVENT_COLUMNS",
    "FRAME_COLUMNS",
    "FRAME_STATUSES",
    "OVERLAP_RULES",
    "PHASES",
    "assign_owners",
    "flare_minute_bins",
    "hhmm",
    "minute_of",
    "phase_minute_bins",
    "phase_of",
    "read_events",
    "read_frame_table",
]

PHASES = ("pre", "flare", "post")
OVERLAP_RULES = ("flare_wins", "exclude")
#: Columns of ``events.csv`` this stage reads (others are kept and ignored).
EVENT_COLUMNS = ("event_id", "start", "end", "window_start", "window_end")
#: Columns of ``frames/{event_id}.csv``; an optional integer ``hdu`` names the extension of a multi-frame file.
FRAME_COLUMNS = ("product", "time", "record", "status", "reason", "file", "sha256")
FRAME_STATUSES = ("ok", "rejected", "missing")
_MINUTE = pd.Timedelta(minutes=1)
_TICK = pd.Timedelta(1, "ns")


def _utc(values, what: str) -> pd.Series:
    """Parse ISO 8601 times (UTC, with or without ``Z``) into naive UTC ``datetime64[ns]``; name the bad row."""
    series = pd.Series(values, dtype=object)
    try:
        parsed = pd.to_datetime(series, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        for number, value in series.items():
            try:
                pd.to_datetime(value, format="ISO8601", utc=True)
            except (ValueError, TypeError):
                raise ValueError(f"{what}, row {number + 1}: {value!r} is not an ISO 8601 UTC time") from exc
        raise ValueError(f"{what}: {exc}") from exc
    if parsed.isna().any():
        number = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise ValueError(f"{what}, row {number + 1}: empty time")
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def read_events(path: str | os.PathLike) -> pd.DataFrame:
    """The kept events of ``events.csv`` with parsed times (naive UTC), in the file's order.

    Raises
    ------
    ValueError
        Naming the file and row: a missing column, a time that does not parse, a repeated or unsafe ``event_id``,
        or times out of order (``window_start <= start <= end <= window_end`` must hold).
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in EVENT_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; have {list(table.columns)}")
    for column in ("start", "end", "window_start", "window_end"):
        table[column] = _utc(table[column], f"{path}: column {column}")
    if "peak" in table.columns:
        table["peak"] = pd.to_datetime(table["peak"].replace("", None), format="ISO8601", utc=True,
                                       errors="coerce").dt.tz_localize(None).astype("datetime64[ns]")  # fmt: skip
    else:
        table["peak"] = pd.NaT
    if "goes_class" not in table.columns:
        table["goes_class"] = ""
    for number, row in table.iterrows():
        where = f"{path}, row {number + 1} (event {row['event_id']!r})"
        try:
            safe_component(row["event_id"])
        except ValueError as exc:
            raise ValueError(f"{where}: event_id must be a plain file name") from exc
        if not row["window_start"] <= row["start"] <= row["end"] <= row["window_end"]:
            raise ValueError(f"{where}: times out of order, need window_start <= start <= end <= window_end, got "
                             f"{row['window_start']}, {row['start']}, {row['end']}, {row['window_end']}")
    repeated = table["event_id"][table["event_id"].duplicated()]
    if len(repeated):
        raise ValueError(f"{path}: event_id {repeated.iloc[0]!r} appears more than once")
    return table.reset_index(drop=True)


def read_frame_table(path: str | os.PathLike, event_id: str) -> pd.DataFrame:
    """One event's frame table with parsed ``time`` (naive UTC) and an ``event_id`` column, sorted by time.

    Raises
    ------
    ValueError
        Naming the file and row: a missing column, an unknown ``status``, an ``ok`` frame without ``file``, or a
        time that does not parse.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in FRAME_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; have {list(table.columns)}")
    if "hdu" not in table.columns:
        table["hdu"] = ""
    unknown = ~table["status"].isin(FRAME_STATUSES)
    if unknown.any():
        number = int(np.flatnonzero(unknown)[0])
        raise ValueError(f"{path}, row {number + 1}: status {table['status'].iloc[number]!r}, expected one of "
                         f"{FRAME_STATUSES}")
    fileless = (table["status"] == "ok") & (table["file"] == "")
    if fileless.any():
        raise ValueError(f"{path}, row {int(np.flatnonzero(fileless)[0]) + 1}: status ok without a file")
    table["time"] = _utc(table["time"], f"{path}: column time")
    table.insert(0, "event_id", event_id)
    return table.sort_values(["product", "time", "record"], kind="stable").reset_index(drop=True)


def minute_of(times) -> pd.Series:
    """The full UTC minute (``datetime64``) each time falls in."""
    return pd.Series(pd.to_datetime(times)).dt.floor("min")


def hhmm(minutes) -> list[str]:
    """How a minute bin is printed in the sampling logs (the prior notebook's ``hhmm``)."""
    return [pd.Timestamp(minute).strftime("%H%M") for minute in minutes]


def phase_of(times, event) -> np.ndarray:
    """``pre``, ``flare``, ``post`` or ``outside`` for each time, in the window of ``event`` (a row of
    :func:`read_events`)."""
    t = pd.to_datetime(pd.Series(times)).to_numpy()
    start, end = np.datetime64(event["start"]), np.datetime64(event["end"])
    first, last = np.datetime64(event["window_start"]), np.datetime64(event["window_end"])
    return np.select([(t >= first) & (t < start), (t >= start) & (t <= end), (t > end) & (t <= last)],
                     list(PHASES), default="outside")  # fmt: skip


def flare_minute_bins(event) -> pd.DatetimeIndex:
    """The flare's discrete minutes: every UTC minute from the start's to the end's, both included (the prior
    notebook's count of unique ``hhmm``; a flare shorter than a minute has one bin, or two across a minute)."""
    return pd.date_range(pd.Timestamp(event["start"]).floor("min"), pd.Timestamp(event["end"]).floor("min"),
                         freq="min")  # fmt: skip


def phase_minute_bins(event, phase: str) -> pd.DatetimeIndex:
    """Every UTC minute that overlaps ``phase`` of ``event`` (empty when the phase is empty, e.g. no buffer)."""
    if phase == "flare":
        return flare_minute_bins(event)
    if phase == "pre":
        first, last = pd.Timestamp(event["window_start"]), pd.Timestamp(event["start"]) - _TICK
    elif phase == "post":
        first, last = pd.Timestamp(event["end"]) + _TICK, pd.Timestamp(event["window_end"])
    else:
        raise ValueError(f"unknown phase {phase!r}, expected one of {PHASES}")
    if last < first:
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    return pd.date_range(first.floor("min"), last.floor("min"), freq="min")


def _frame_key(frames: pd.DataFrame) -> pd.Series:
    """What makes two rows of different events the same frame: product and record (time when no record)."""
    ident = frames["record"].where(frames["record"] != "", frames["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    return frames["product"] + "\x1f" + ident


def assign_owners(events: pd.DataFrame, frames: pd.DataFrame, rule: str = "flare_wins") -> pd.DataFrame:
    """Each frame row's phase in its own event's window, and the one event (and phase) that owns the frame.

    Parameters
    ----------
    events : pandas.DataFrame
        :func:`read_events`.
    frames : pandas.DataFrame
        The frame tables of all events, concatenated (:func:`read_frame_table`).
    rule : {"flare_wins", "exclude"}
        How a frame in several windows gets its owner (see the module notes).

    Returns
    -------
    pandas.DataFrame
        ``frames`` plus ``minute``, ``hhmm``, ``phase`` (in the row's event), ``owner_event``, ``owner_phase``
        (empty when no event owns it) and ``overlap`` (why another event owns it, or ``""``).
    """
    if rule not in OVERLAP_RULES:
        raise ValueError(f"label_overlap {rule!r}: expected one of {OVERLAP_RULES}")
    frames = frames.reset_index(drop=True).copy()
    by_id = {row["event_id"]: row for _, row in events.iterrows()}
    order = {event_id: number for number, event_id in enumerate(events["event_id"])}  # events.csv: start order
    unknown = sorted(set(frames["event_id"]) - set(by_id))
    if unknown:
        raise ValueError(f"frame tables of events not in events.csv: {unknown}")
    frames["phase"] = ""
    for event_id, rows in frames.groupby("event_id", sort=False):
        frames.loc[rows.index, "phase"] = phase_of(rows["time"], by_id[event_id])
    frames["minute"] = minute_of(frames["time"])
    frames["hhmm"] = hhmm(frames["minute"])
    frames["owner_event"] = frames["event_id"]
    frames["owner_phase"] = frames["phase"]
    frames["overlap"] = ""
    inside = frames[frames["phase"] != "outside"]
    key = _frame_key(inside)
    shared = key.map(inside.groupby(key)["event_id"].nunique()) > 1
    if not shared.any():
        return frames
    inside, key = inside[shared], key[shared]
    if rule == "exclude":
        listed = inside.groupby(key)["event_id"].agg(lambda ids: ", ".join(sorted(ids)))
        frames.loc[inside.index, ["owner_event", "owner_phase"]] = ""
        frames.loc[inside.index, "overlap"] = "in the windows of " + key.map(listed) + ": excluded"
        return frames
    table = events.set_index("event_id")
    start, end = inside["event_id"].map(table["start"]), inside["event_id"].map(table["end"])
    peak = inside["event_id"].map(table["peak"]).fillna(start + (end - start) / 2)
    t, flare = inside["time"], inside["phase"] == "flare"
    # distance to the flare interval [start, end]: zero inside, else to its nearer end
    to_flare = pd.concat([start - t, t - end, pd.Series(pd.Timedelta(0), index=t.index)], axis=1).max(axis=1)
    ranked = pd.DataFrame({"key": key, "not_flare": ~flare, "distance": (t - peak).abs().where(flare, to_flare),
                           "start": start, "order": inside["event_id"].map(order), "event_id": inside["event_id"],
                           "phase": inside["phase"]})  # fmt: skip
    best = ranked.sort_values(["key", "not_flare", "distance", "start", "order", "event_id"], kind="stable")
    best = best.drop_duplicates("key").set_index("key")
    owner, phase = key.map(best["event_id"]), key.map(best["phase"])
    frames.loc[inside.index, "owner_event"] = owner
    frames.loc[inside.index, "owner_phase"] = phase
    why = ("flare of event " + owner + " wins").where(phase == "flare",
                                                      phase + " of event " + owner + ", the nearest flare")
    lost = inside.index[owner != inside["event_id"]]
    frames.loc[lost, "overlap"] = why[owner != inside["event_id"]]
    return frames
