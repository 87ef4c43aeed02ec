"""Running differences of the synced rows (the prior tool's LASCO "F-corona" option, done on the right rows).

Row ``k`` of the result is row ``k`` of the synced table paired with row ``k - 1`` of the *same* table: a
difference product's frame is ``frame(k) - frame(k - 1)``, every other product keeps ``frame(k)``. The pair is
used only when ``time[k] - time[k - 1] <= max_gap`` (axis times, so the limit does not depend on observation
jitter); otherwise row ``k`` is dropped and counted in the ledger. The first row never has a predecessor. A row
dropped here still serves as the predecessor of the next one, as in the prior tool (whose bug was to take the
frames from the unsynced cube with synced positions). "F-corona removal" is only this running difference, not a
background model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..registry import coronagraphs
from .matching import SyncTable, sort_ledger
from .times import as_timedelta

__all__ = [
    "DEFAULT_DIFFERENCE_PRODUCTS",
    "NO_PREVIOUS_ROW",
    "PREVIOUS_ROW_BEYOND_MAX_GAP",
    "apply_running_difference",
]

#: Products differenced when the running-difference option is on and no list is given: the registry's coronagraphs.
DEFAULT_DIFFERENCE_PRODUCTS = coronagraphs()
#: Ledger reason: the first synced row has no predecessor.
NO_PREVIOUS_ROW = "no_previous_row"
#: Ledger reason: the predecessor row is more than ``max_gap`` earlier.
PREVIOUS_ROW_BEYOND_MAX_GAP = "previous_row_beyond_max_gap"


def apply_running_difference(
    table: SyncTable,
    difference_products: Sequence[str] = DEFAULT_DIFFERENCE_PRODUCTS,
    max_gap: dt.timedelta | str = "24h",
) -> SyncTable:
    """Pair each synced row with the previous synced row for a running difference.

    Parameters
    ----------
    table : SyncTable
        Output of :func:`~heliocube.sync.matching.match_products` (not already differenced).
    difference_products : sequence of str
        Products to difference; those not in the experiment are ignored.
    max_gap : datetime.timedelta or str
        Largest accepted ``time[k] - time[k - 1]`` (inclusive).

    Returns
    -------
    SyncTable
        Rows ``k >= 1`` within the gap, with ``previous_time`` and, per difference product,
        ``previous_source_index``/``previous_obs_time``; dropped rows are added to the ledger once per difference
        product (reason :data:`NO_PREVIOUS_ROW` or :data:`PREVIOUS_ROW_BEYOND_MAX_GAP`). The frames themselves
        are differenced when written (:func:`~heliocube.sync.writer.write_synced`).

    Raises
    ------
    ValueError
        If none of ``difference_products`` is in the experiment, or the table is already differenced.
    """
    if table.difference_products:
        raise ValueError("the table already holds running differences")
    products = tuple(p for p in table.products if p in set(difference_products))
    if not products:
        raise ValueError(
            f"running difference requested but none of {list(difference_products)} is among the experiment's "
            f"products {list(table.products)}"
        )
    gap = as_timedelta(max_gap)
    times = table.time
    n = len(times)
    gaps = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    gaps[1:] = np.diff(times.asi8)
    keep = gaps <= gap.value
    keep[:1] = False  # explicit: the first row has no predecessor even if n == 1
    reasons = np.where(np.arange(n) == 0, NO_PREVIOUS_ROW, PREVIOUS_ROW_BEYOND_MAX_GAP)
    dropped_rows = np.flatnonzero(~keep)
    parts = [table.ledger] + [
        pd.DataFrame({"product": p, "time": times[dropped_rows], "reason": reasons[dropped_rows], "dropped": True})
        for p in products
    ]
    previous = np.flatnonzero(keep) - 1
    return dataclasses.replace(
        table,
        time=times[keep],
        source_index={p: idx[keep] for p, idx in table.source_index.items()},
        obs_time={p: t[keep] for p, t in table.obs_time.items()},
        ledger=sort_ledger(parts, table.products),
        difference_products=products,
        max_gap=gap,
        previous_time=times[previous],
        previous_source_index={p: table.source_index[p][previous] for p in products},
        previous_obs_time={p: table.obs_time[p][previous] for p in products},
    )
