"""Slot selection: which candidates may fill a slot of the fixed UTC grid, in which order.

Each slot ranks the candidates whose time lies in ``[slot - tolerance, slot + tolerance)`` by ``|t - slot|``,
ties going to the earlier time and then to the smaller record id. The fetch stage walks that list until a
candidate downloads whole and passes QC. A slot's ranking depends only on the candidates near it, so the
outcome of one slot never moves another (the prior tool's greedy cascade did). The half-open window means
that, with the default tolerance of half the cadence, a frame can fill at most one slot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["rank_candidates"]


def rank_candidates(slots: pd.DatetimeIndex, candidates: pd.DataFrame, tolerance: pd.Timedelta) -> list[list[int]]:
    """Candidate row positions for every slot, best first.

    Parameters
    ----------
    slots : pandas.DatetimeIndex
        UTC slot times.
    candidates : pandas.DataFrame
        Needs ``time_utc`` (tz-aware UTC) and ``record_id``; rows without a time are never chosen.
    tolerance : pandas.Timedelta
        Largest accepted distance from the slot (the upper edge excluded).

    Returns
    -------
    list of list of int
        For ``slots[i]``, positions (``iloc``) into ``candidates``, nearest first; empty when none qualifies.
    """
    tolerance = pd.Timedelta(tolerance).as_unit("ns")
    times = pd.DatetimeIndex(candidates["time_utc"]).as_unit("ns")  # pandas 3 may infer us; compare in ns
    valid = np.flatnonzero(~times.isna())
    order = valid[np.argsort(times[valid].asi8, kind="stable")]
    sorted_ns = times[order].asi8
    record_ids = candidates["record_id"].astype(str).to_numpy()
    ranked = []
    for slot in pd.DatetimeIndex(slots).as_unit("ns").asi8:
        lo = np.searchsorted(sorted_ns, slot - tolerance.value, side="left")
        hi = np.searchsorted(sorted_ns, slot + tolerance.value, side="left")
        window = order[lo:hi]
        keys = sorted(window, key=lambda i: (abs(times.asi8[i] - slot), times.asi8[i], record_ids[i]))
        ranked.append([int(i) for i in keys])
    return ranked
