"""Candidate events from the Heliophysics Event Knowledgebase through sunpy's own :class:`~sunpy.net.hek.HEKClient`.

The client's URL is configuration (:func:`heliocube.events.settings.hek_url`): the production HEK, or the embedded
archive's HEK-dialect endpoint in the demo and the tests. The client pages through the answer itself (``page=1, 2,
...`` while the server says ``overmax``).
"""

from __future__ import annotations

import json
import logging
import urllib.error

import pandas as pd
from astropy.time import Time

from ..retry import RetryPolicy, call_with_retries
from .selection import goes_flux
from .table import event_id_of, unique_ids

__all__ = ["query_hek"]

log = logging.getLogger(__name__)

#: Failures of a HEK request worth another attempt (HEKClient wraps an unreadable answer in OSError).
_TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, OSError, json.JSONDecodeError)


def _utc(values) -> pd.Series:
    return pd.to_datetime(pd.Series([None if v in (None, "") else str(v) for v in values], dtype=object), utc=True,
                          format="ISO8601")


def query_hek(url: str, start: Time, end: Time, *, event_type: str = "FL", frm_name: str | None = None,
              policy: RetryPolicy | None = None) -> pd.DataFrame:
    """Every ``event_type`` event HEK lists over ``[start, end]``, as candidate rows.

    Parameters
    ----------
    url : str
        The HEK search endpoint, ending in ``?`` (``https://www.lmsal.com/hek/her?``).
    start, end : astropy.time.Time
        The time range (events overlapping it are listed).
    event_type : str
        HEK event type code (``FL`` flares, ``CE`` CMEs, ...).
    frm_name : str, optional
        Only events of this feature recognition method (HEK lists one flare once per method, e.g. ``SWPC``).
    policy : heliocube.retry.RetryPolicy, optional
        Retries of a failed request (default: none).

    Returns
    -------
    pandas.DataFrame
        :data:`heliocube.events.selection.CANDIDATE_COLUMNS` but ``kept`` and ``reason``; times tz-aware UTC; the
        class's flux from ``fl_goescls``; ``event_id`` from the type and start (``FL20101015T212100``).
    """
    from sunpy.net import attrs as a
    from sunpy.net.hek import HEKClient

    query = [a.Time(start, end), a.hek.EventType(event_type)]
    if frm_name:
        query.append(a.hek.FRM.Name == frm_name)
    client = HEKClient(url=url)
    search = lambda: client.search(*query)  # noqa: E731 - one retried call
    table = call_with_retries(search, policy, f"HEK search {event_type} {start.isot}..{end.isot}", _TRANSIENT) \
        if policy is not None else search()
    raw = table.raw if len(table) else None
    log.info("HEK: %d %s events over %s..%s", 0 if raw is None else len(raw), event_type, start.isot, end.isot)
    columns = ["event_id", "event_type", "start", "peak", "end", "goes_class", "goes_flux", "active_region",
               "hpc_x", "hpc_y"]
    if raw is None:
        return pd.DataFrame(columns=columns)
    names = set(raw.colnames)

    def column(name, default=None):
        return list(raw[name]) if name in names else [default] * len(raw)

    frame = pd.DataFrame({
        "event_type": [str(v) for v in column("event_type", event_type)],
        "start": _utc(column("event_starttime")), "peak": _utc(column("event_peaktime")),
        "end": _utc(column("event_endtime")),
        "goes_class": ["" if v is None else str(v).strip() for v in column("fl_goescls")],
        "active_region": pd.to_numeric(pd.Series(column("ar_noaanum"), dtype=object), errors="coerce"),
        "hpc_x": pd.to_numeric(pd.Series(column("hpc_x"), dtype=object), errors="coerce"),
        "hpc_y": pd.to_numeric(pd.Series(column("hpc_y"), dtype=object), errors="coerce"),
    })
    frame["goes_flux"] = [goes_flux(c) if c else None for c in frame["goes_class"]]
    frame["goes_flux"] = frame["goes_flux"].astype(float)
    frame = frame.sort_values(["start", "end", "goes_class"], kind="stable").reset_index(drop=True)
    frame["event_id"] = unique_ids([event_id_of(t, s) for t, s in zip(frame["event_type"], frame["start"],
                                                                      strict=True)])
    return frame[columns]
