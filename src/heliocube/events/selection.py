"""Which candidate events an event dataset keeps, each kept or dropped with its reason.

The rules apply in this order; the first one a candidate fails is its reason:

1. its start lies in the date range (``date_start`` 00:00 to ``date_finish`` 24:00 UTC);
2. its type is the configured ``event_type`` (a CSV row has the configured type);
3. it is not excluded (``exclude``: a UTC day ``YYYY-MM-DD`` of its start, or its ``event_id``);
4. its GOES class is at least ``min_goes_class`` (a candidate without a class fails this rule);
5. its heliographic Stonyhurst longitude, from its helioprojective position seen from Earth at its peak (sunpy),
   is within ``max_longitude`` degrees of the central meridian (a position off the disk fails; a candidate without
   a position is kept, the reason says the limit was not applied);
6. it is among the ``strongest.n`` by GOES flux of its ``strongest.per`` period (UTC day, month, year or all) among
   the candidates that passed 1-5 (ties: earlier start, then event id).

Exclusions come before the ranking, so an excluded event leaves its place to the next strongest.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..timegrid import parse_day, parse_duration
from .goes import goes_flux

__all__ = ["CANDIDATE_COLUMNS", "EVENT_COLUMNS", "goes_flux", "kept_events", "select_events", "stonyhurst_longitude"]

#: candidates.csv (every candidate, kept or not, with the reason).
CANDIDATE_COLUMNS = ("event_id", "event_type", "start", "peak", "end", "goes_class", "goes_flux", "active_region",
                     "hpc_x", "hpc_y", "kept", "reason")
#: events.csv: the kept candidates and their windows.
EVENT_COLUMNS = (*CANDIDATE_COLUMNS, "window_start", "window_end")
_PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y", "all": "all"}


def stonyhurst_longitude(hpc_x, hpc_y, times) -> np.ndarray:
    """Heliographic Stonyhurst longitude (deg) of helioprojective points (arcsec) seen from Earth at ``times``;
    NaN for a point off the disk or without a position."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from sunpy.coordinates import HeliographicStonyhurst, Helioprojective

    x, y = np.asarray(hpc_x, dtype=float), np.asarray(hpc_y, dtype=float)
    out = np.full(x.shape, np.nan)
    known = np.isfinite(x) & np.isfinite(y)
    if not known.any():
        return out
    obstime = Time(list(pd.DatetimeIndex(times)[known].tz_convert(None).to_pydatetime()), scale="utc")
    seen = SkyCoord(x[known] * u.arcsec, y[known] * u.arcsec,
                    frame=Helioprojective(observer="earth", obstime=obstime))
    out[known] = seen.transform_to(HeliographicStonyhurst(obstime=obstime)).lon.to_value(u.deg)
    return out


def _excluded(row, exclude: list[str]) -> str | None:
    day = row["start"].strftime("%Y-%m-%d")
    for item in exclude:
        if item in (day, row["event_id"]):
            return f"excluded by config ({item})"
    return None


def select_events(candidates: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """``candidates`` (times tz-aware UTC) with ``kept`` and ``reason`` set by the rules of this module.

    Parameters
    ----------
    candidates : pandas.DataFrame
        :data:`CANDIDATE_COLUMNS` but ``kept`` and ``reason``.
    spec : mapping
        The event dataset (:func:`heliocube.events.settings.events_of`): ``date_start``, ``date_finish``,
        ``event_type``, ``exclude``, ``min_goes_class``, ``max_longitude``, ``strongest``.
    """
    table = candidates.sort_values(["start", "event_id"]).reset_index(drop=True).copy()
    first = pd.Timestamp(parse_day(spec["date_start"]).isoformat(), tz="UTC")
    last = pd.Timestamp(parse_day(spec["date_finish"]).isoformat(), tz="UTC") + pd.Timedelta(days=1)
    event_type = spec.get("event_type", "FL")
    minimum = spec.get("min_goes_class")
    min_flux = goes_flux(minimum) if minimum else None
    limit = spec.get("max_longitude")
    longitude = stonyhurst_longitude(table["hpc_x"], table["hpc_y"], table["peak"].fillna(table["start"]))
    reasons: list[str | None] = []
    notes: list[str] = []
    for i, row in table.iterrows():
        note = []
        if not first <= row["start"] < last:
            reasons.append(f"starts outside {spec['date_start']}..{spec['date_finish']}")
        elif row["event_type"] != event_type:
            reasons.append(f"event type {row['event_type']}, not {event_type}")
        elif (why := _excluded(row, spec.get("exclude") or [])) is not None:
            reasons.append(why)
        elif min_flux is not None and not (row["goes_flux"] >= min_flux * (1 - 1e-9)):
            reasons.append(f"class {row['goes_class'] or 'unknown'} below {minimum}"
                           if pd.notna(row["goes_flux"]) else f"no GOES class (minimum {minimum})")
        elif limit is not None and np.isfinite(longitude[i]) and abs(longitude[i]) > limit:
            reasons.append(f"longitude {longitude[i]:+.1f} deg beyond {limit:g} deg")
        elif limit is not None and pd.notna(row["hpc_x"]) and not np.isfinite(longitude[i]):
            reasons.append(f"position ({row['hpc_x']:.0f}, {row['hpc_y']:.0f}) arcsec is off the disk")
        else:
            reasons.append(None)
            if min_flux is not None:
                note.append(f"{row['goes_class']} >= {minimum}")
            if limit is not None:
                note.append(f"|longitude| {abs(longitude[i]):.1f} <= {limit:g} deg" if np.isfinite(longitude[i])
                            else "no position: longitude limit not applied")
        notes.append(", ".join(note))
    table["kept"] = [reason is None for reason in reasons]
    table["reason"] = [reason or "" for reason in reasons]
    strongest = spec.get("strongest") or {}
    if strongest.get("n"):
        per = strongest.get("per", "all")
        period = (table["start"].dt.strftime(_PERIODS[per]) if per != "all" else pd.Series("all", index=table.index))
        ranked = table[table["kept"]].assign(period=period).sort_values(
            ["period", "goes_flux", "start", "event_id"], ascending=[True, False, True, True], na_position="last")
        ranked["rank"] = ranked.groupby("period").cumcount() + 1
        for i, row in ranked.iterrows():
            where = "all" if per == "all" else row["period"]
            if row["rank"] > strongest["n"]:
                table.loc[i, ["kept", "reason"]] = [False, f"not among the {strongest['n']} strongest of {where} "
                                                           f"(rank {row['rank']})"]
            else:
                notes[i] = ", ".join(filter(None, [notes[i], f"rank {row['rank']} of {where}"]))
    for i in table.index[table["kept"]]:
        table.loc[i, "reason"] = "kept" + (f": {notes[i]}" if notes[i] else "")
    return table[[*CANDIDATE_COLUMNS, *(c for c in table if c not in CANDIDATE_COLUMNS)]]


def kept_events(selected: pd.DataFrame, pre_buffer, post_buffer) -> pd.DataFrame:
    """The kept rows of :func:`select_events` with their windows ``[start - pre_buffer, end + post_buffer]``
    (per-row ``pre_buffer`` / ``post_buffer`` columns, as a CSV may give, override the dataset's)."""
    kept = selected[selected["kept"]].copy()
    pre, post = (pd.Timedelta(parse_duration(value)) for value in (pre_buffer, post_buffer))
    none = pd.Series(pd.NaT, index=kept.index, dtype="timedelta64[ns]")
    own_pre = pd.to_timedelta(kept["pre_buffer"]) if "pre_buffer" in kept else none
    own_post = pd.to_timedelta(kept["post_buffer"]) if "post_buffer" in kept else none
    kept["window_start"] = kept["start"] - own_pre.fillna(pre)
    kept["window_end"] = kept["end"] + own_post.fillna(post)
    return kept[list(EVENT_COLUMNS)].reset_index(drop=True)
