"""The shared time axis of an experiment and each product's nearest frame on it.

Every axis time ``t`` looks for frames whose observation time lies in the half-open window
``[t - tolerance, t + tolerance)`` and takes the nearest one; ties go to the earlier time, then to the smaller
record id (compared as strings), exactly as :func:`heliocube.slots.rank_candidates` ranks slot candidates.
:func:`nearest_frames` is a vectorised (``searchsorted``) implementation of that rule, tested for equality
against ``rank_candidates`` and more than ten times faster than its per-slot Python loop.

A frame serves at most one row. The tolerance may not exceed half the step, so the windows of consecutive axis
times are disjoint and every row chooses independently of the others. A larger tolerance would either put the
same frame in several rows (a duplicated sample leaks across train/test splits and gives an all-zero running
difference) or need a cross-row assignment in which one row's choice moves another's: the cascade the prior
tool suffered from and the slot design rejects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

import h5py
import numpy as np
import pandas as pd

from ..timegrid import parse_day
from .steps import check_step_multiple
from .times import as_timedelta, iso_seconds, to_utc_times

__all__ = [
    "MISSING_FRAME",
    "NO_FRAME_WITHIN_TOLERANCE",
    "SyncTable",
    "build_time_axis",
    "check_step_multiple",
    "match_products",
    "nearest_frames",
    "read_frame_times",
]

#: Source index of a product that has no frame in a row (only with ``keep_missing=True``).
MISSING_FRAME = -1
#: Ledger reason: no frame of the product in ``[t - tolerance, t + tolerance)``.
NO_FRAME_WITHIN_TOLERANCE = "no_frame_within_tolerance"
LEDGER_COLUMNS = ("product", "time", "reason", "dropped")


def build_time_axis(
    start: str | dt.date, finish: str | dt.date, step: dt.timedelta | str, *, anchor: str | dt.date | None = None
) -> pd.DatetimeIndex:
    """The fixed UTC axis ``anchor 00:00 + k * step`` inside ``[start 00:00, finish + 1 day 00:00)``.

    Parameters
    ----------
    start, finish : str (``YYYY-MM-DD``) or datetime.date
        First and last day of the experiment, both included.
    step : datetime.timedelta or str
        Axis spacing.
    anchor : str or datetime.date, optional
        Day whose midnight is on the axis (default ``start``). Give the cubes' slot anchor when the step does not
        divide a day, so that axis times coincide with cube slots.

    Returns
    -------
    pandas.DatetimeIndex
        tz-aware UTC, ns resolution.
    """
    step_ns = as_timedelta(step).value
    if step_ns <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    first, last = parse_day(start), parse_day(finish)
    if last < first:
        raise ValueError(f"finish {last} is before start {first}")
    anchor_day = first if anchor is None else parse_day(anchor)
    ns = pd.Timestamp(anchor_day, tz="UTC").value
    lo = pd.Timestamp(first, tz="UTC").value
    hi = pd.Timestamp(last + dt.timedelta(days=1), tz="UTC").value
    k_first = -((ns - lo) // step_ns)  # ceil((lo - ns) / step)
    values = ns + step_ns * np.arange(k_first, k_first + (hi - lo) // step_ns + 2, dtype=np.int64)
    values = values[(values >= lo) & (values < hi)]
    return pd.DatetimeIndex(pd.to_datetime(values, unit="ns", utc=True)).as_unit("ns")


def nearest_frames(
    axis: pd.DatetimeIndex, times: pd.DatetimeIndex, record_ids: Sequence, tolerance: dt.timedelta | str
) -> np.ndarray:
    """Position of the nearest frame within ``[t - tolerance, t + tolerance)`` for every axis time ``t``.

    Parameters
    ----------
    axis : pandas.DatetimeIndex
        UTC axis times.
    times : pandas.DatetimeIndex
        UTC observation time of each frame; NaT frames are never chosen.
    record_ids : sequence
        Record id of each frame (compared as ``str``) for the last tie-break.
    tolerance : datetime.timedelta or str
        Half width of the window; the upper edge is excluded.

    Returns
    -------
    numpy.ndarray of int64
        Position into ``times`` per axis time, :data:`MISSING_FRAME` (-1) where no frame qualifies. Equal to the
        first entry of :func:`heliocube.slots.rank_candidates` for every axis time.
    """
    tol = as_timedelta(tolerance).value
    times = pd.DatetimeIndex(times).as_unit("ns")
    query = pd.DatetimeIndex(axis).as_unit("ns").asi8
    result = np.full(len(query), MISSING_FRAME, dtype=np.int64)
    valid = np.flatnonzero(~times.isna())
    if not len(valid) or not len(query) or tol <= 0:
        return result
    ids = np.array([str(r) for r in np.asarray(record_ids, dtype=object)[valid]], dtype=object)
    by_id = np.argsort(ids, kind="stable")  # object argsort: Python str ordering, as rank_candidates uses
    stamps = times.asi8[valid]
    order = valid[by_id[np.argsort(stamps[by_id], kind="stable")]]  # by time, then record id
    sorted_ns = times.asi8[order]
    n = len(sorted_ns)
    after = np.searchsorted(sorted_ns, query, side="left")  # first frame at or after t: first of its time group
    has_after = after < n
    after_c = np.minimum(after, n - 1)
    after_ok = has_after & (sorted_ns[after_c] < query + tol)
    has_before = after > 0
    before_last = np.maximum(after - 1, 0)
    before = np.searchsorted(sorted_ns, sorted_ns[before_last], side="left")  # first of the latest-before group
    before_ok = has_before & (sorted_ns[before] >= query - tol)
    d_after = np.where(after_ok, sorted_ns[after_c] - query, np.iinfo(np.int64).max)
    d_before = np.where(before_ok, query - sorted_ns[before], np.iinfo(np.int64).max)
    take_before = before_ok & (d_before <= d_after)  # equal distance: the earlier frame
    take_after = after_ok & ~take_before
    result[take_before] = order[before[take_before]]
    result[take_after] = order[after_c[take_after]]
    return result


@dataclasses.dataclass(frozen=True)
class SyncTable:
    """Which frame of which product fills each row of a synced experiment.

    Attributes
    ----------
    products : tuple of str
        Products in output order.
    time : pandas.DatetimeIndex
        UTC axis time of each kept row (N,).
    source_index : dict of str to numpy.ndarray
        Row in the product's cube per kept row, int64 (N,); :data:`MISSING_FRAME` where absent.
    obs_time : dict of str to pandas.DatetimeIndex
        Observation time of that frame (N,); NaT where absent.
    axis : pandas.DatetimeIndex
        The full axis the rows were chosen from.
    ledger : pandas.DataFrame
        One line per (product, axis time) without a usable frame: ``product``, ``time``, ``reason``, ``dropped``
        (False when the row was kept with the product absent). Every axis time is either a row or appears in the
        ledger with ``dropped=True``.
    step, tolerance : pandas.Timedelta
        Axis spacing and half window width.
    start, finish : datetime.date
        First and last day of the experiment's range.
    keep_missing : bool
        Whether incomplete rows were kept (with ``present`` False) instead of dropped.
    difference_products : tuple of str
        Products whose frames are running differences (empty unless :func:`~heliocube.sync.difference.
        apply_running_difference` was applied).
    max_gap : pandas.Timedelta or None
        Largest accepted gap between a row and its predecessor for the running difference.
    previous_time : pandas.DatetimeIndex or None
        Axis time of the predecessor row of each kept row (running difference only).
    previous_source_index, previous_obs_time : dict
        Cube row and observation time of each difference product's predecessor frame.
    """

    products: tuple[str, ...]
    time: pd.DatetimeIndex
    source_index: dict[str, np.ndarray]
    obs_time: dict[str, pd.DatetimeIndex]
    axis: pd.DatetimeIndex
    ledger: pd.DataFrame
    step: pd.Timedelta
    tolerance: pd.Timedelta
    start: dt.date
    finish: dt.date
    keep_missing: bool = False
    difference_products: tuple[str, ...] = ()
    max_gap: pd.Timedelta | None = None
    previous_time: pd.DatetimeIndex | None = None
    previous_source_index: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    previous_obs_time: dict[str, pd.DatetimeIndex] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.time)

    def present(self, product: str) -> np.ndarray:
        """Whether ``product`` has a frame (for a difference product: both frames of the pair) in each row."""
        mask = self.source_index[product] != MISSING_FRAME
        if product in self.previous_source_index:
            mask = mask & (self.previous_source_index[product] != MISSING_FRAME)
        return mask

    def dt_seconds(self, product: str) -> np.ndarray:
        """``|obs_time - time|`` in seconds per row (float64; NaN where absent)."""
        delta = (self.obs_time[product] - self.time).total_seconds()
        return np.abs(np.asarray(delta, dtype=np.float64))

    def dropped_counts(self) -> pd.Series:
        """Number of dropped axis times attributed to each product (a row missing two products counts twice)."""
        dropped = self.ledger[self.ledger["dropped"]]
        return dropped.groupby("product", sort=False).size().reindex(list(self.products), fill_value=0)

    def to_frame(self) -> pd.DataFrame:
        """The times table of the CSV: ``time``, then per product ``<p>_obs_time``, ``<p>_dt_seconds`` (and
        ``<p>_present`` when incomplete rows are kept, ``<p>_previous_obs_time`` for difference products)."""
        table = {"time": iso_seconds(self.time)}
        if self.previous_time is not None:
            table["previous_time"] = iso_seconds(self.previous_time)
        for product in self.products:
            table[f"{product}_obs_time"] = iso_seconds(self.obs_time[product])
            table[f"{product}_dt_seconds"] = self.dt_seconds(product)
            if self.keep_missing:
                table[f"{product}_present"] = self.present(product)
            if product in self.previous_obs_time:
                table[f"{product}_previous_obs_time"] = iso_seconds(self.previous_obs_time[product])
        return pd.DataFrame(table)


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "product": pd.Series([], dtype=object),
            "time": pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"),
            "reason": pd.Series([], dtype=object),
            "dropped": pd.Series([], dtype=bool),
        }
    )


def match_products(
    frame_times: Mapping[str, pd.DataFrame],
    start: str | dt.date,
    finish: str | dt.date,
    step: dt.timedelta | str,
    *,
    tolerance: dt.timedelta | str | None = None,
    cadences: Mapping[str, dt.timedelta | str] | None = None,
    keep_missing: bool = False,
    anchor: str | dt.date | None = None,
) -> SyncTable:
    """Match every product's frames to the experiment's time axis.

    Parameters
    ----------
    frame_times : mapping of str to pandas.DataFrame
        Per product (in output order) one row per cube frame, in cube order, with ``obs_time`` (ISO string or
        datetime, UTC) and ``record_id``. An empty frame table is allowed (the product then never matches).
    start, finish : str or datetime.date
        First and last day; the axis covers ``[start 00:00, finish + 1 day 00:00)`` UTC.
    step : datetime.timedelta or str
        Axis spacing, e.g. ``"6h"``.
    tolerance : datetime.timedelta or str, optional
        Half window width, at most ``step / 2`` (default ``step / 2``).
    cadences : mapping of str to timedelta, optional
        Cube cadence of every product; when given, ``step`` must be a whole multiple of each
        (:func:`check_step_multiple`).
    keep_missing : bool
        Keep every axis time as a row, even where some (or every) product has no frame (its source index is then
        :data:`MISSING_FRAME`), instead of dropping incomplete rows. The ledger lists the gaps either way.
    anchor : str or datetime.date, optional
        See :func:`build_time_axis`.

    Returns
    -------
    SyncTable

    Raises
    ------
    ValueError
        For a step that is not a multiple of a cadence, a tolerance above ``step / 2``, no products, a product
        without a cadence (when ``cadences`` is given), or a frame table without ``obs_time``/``record_id``.
    """
    if not frame_times:
        raise ValueError("an experiment needs at least one product")
    step_td = as_timedelta(step)
    tol_td = step_td / 2 if tolerance is None else as_timedelta(tolerance)
    if tol_td <= pd.Timedelta(0) or tol_td > step_td / 2:
        raise ValueError(
            f"tolerance {tol_td} must be positive and at most half the step ({step_td / 2}) so that a frame "
            "can serve only one row"
        )
    if cadences is not None:
        unknown = [p for p in frame_times if p not in cadences]
        if unknown:
            raise ValueError(f"no cube cadence given for products {unknown}")
        check_step_multiple(step_td, {p: cadences[p] for p in frame_times})
    axis = build_time_axis(start, finish, step_td, anchor=anchor)
    products = tuple(frame_times)
    chosen: dict[str, np.ndarray] = {}
    all_times: dict[str, pd.DatetimeIndex] = {}
    for product, frames in frame_times.items():
        missing_cols = {"obs_time", "record_id"} - set(frames.columns)
        if missing_cols:
            raise ValueError(f"frame table of {product} lacks columns {sorted(missing_cols)}")
        all_times[product] = to_utc_times(frames["obs_time"])
        chosen[product] = nearest_frames(axis, all_times[product], frames["record_id"].to_numpy(), tol_td)
    complete = np.logical_and.reduce([chosen[p] != MISSING_FRAME for p in products])
    keep = np.ones(len(axis), dtype=bool) if keep_missing else complete
    ledger_parts = []
    for product in products:
        absent = chosen[product] == MISSING_FRAME
        if absent.any():
            ledger_parts.append(
                pd.DataFrame(
                    {
                        "product": product,
                        "time": axis[absent],
                        "reason": NO_FRAME_WITHIN_TOLERANCE,
                        "dropped": ~keep[absent],
                    }
                )
            )
    ledger = sort_ledger(ledger_parts, products)
    source_index = {p: chosen[p][keep] for p in products}
    obs_time = {p: _take_times(all_times[p], source_index[p]) for p in products}
    return SyncTable(
        products=products,
        time=axis[keep],
        source_index=source_index,
        obs_time=obs_time,
        axis=axis,
        ledger=ledger,
        step=step_td,
        tolerance=tol_td,
        start=parse_day(start),
        finish=parse_day(finish),
        keep_missing=keep_missing,
    )


def sort_ledger(parts: list[pd.DataFrame], products: Sequence[str]) -> pd.DataFrame:
    """Concatenate ledger parts, ordered by time and then by product order."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return empty_ledger()
    ledger = pd.concat(parts, ignore_index=True)
    rank = {p: i for i, p in enumerate(products)}
    ledger["_rank"] = ledger["product"].map(rank)
    ledger = ledger.sort_values(["time", "_rank"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    ledger["dropped"] = ledger["dropped"].astype(bool)
    return ledger[list(LEDGER_COLUMNS)]


def _take_times(times: pd.DatetimeIndex, index: np.ndarray) -> pd.DatetimeIndex:
    out = np.full(len(index), np.datetime64("NaT", "ns"))
    present = index != MISSING_FRAME
    out[present] = times.tz_localize(None).to_numpy()[index[present]] if len(times) else out[present]
    return pd.DatetimeIndex(out).tz_localize("UTC")


def read_frame_times(cube_path) -> pd.DataFrame:
    """``obs_time`` and ``record_id`` (as str) of every frame of a cube (or virtual master), in cube order."""
    with h5py.File(cube_path, "r") as f:
        frames = f["frames"]
        if f["data"].shape[0] == 0:  # a cube without frames has no columns either (the first row fixes them)
            return pd.DataFrame({"obs_time": pd.Series([], dtype=object), "record_id": pd.Series([], dtype=object)})
        obs = frames["obs_time"]
        obs_time = obs.asstr()[()] if h5py.check_string_dtype(obs.dtype) else obs[()]
        ids = frames["record_id"]
        record_id = ids.asstr()[()] if h5py.check_string_dtype(ids.dtype) else ids[()]
    return pd.DataFrame(
        {"obs_time": np.asarray(obs_time, dtype=object), "record_id": [str(r) for r in np.asarray(record_id)]}
    )
