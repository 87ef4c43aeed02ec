"""Sizing JSOC export requests: records grouped by estimated bytes, record count and request-line length.

JSOC refuses an export whose stored size exceeds its per-request cap (``jsoc_fetch`` answers status 3, "Request
exceeds max byte limit of 100000MB"): 100 GB for files exported as they are stored, 10 GB when compressed files
are exported uncompressed. ``drms`` sends the record set in the query string of a GET request, and JSOC copies it
into a buffer of ``DRMS_MAXQUERYLEN`` (8192) characters, so the list of record names must stay short as well.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from urllib.parse import quote_plus

__all__ = ["JSOC_MAX_EXPORT_BYTES", "MAX_ENCODED_RECORDSET", "ExportLimits", "export_batches", "record_bytes",
           "recordset_item"]

#: JSOC's cap of one export request of files exported as stored (jsoc_fetch's ``MAX_STRAIGHT_EXPORT_SIZE``).
JSOC_MAX_EXPORT_BYTES = 100e9

#: Percent-encoded characters of record set per request: JSOC keeps 8192 characters of it (``DRMS_MAXQUERYLEN``),
#: and web servers commonly refuse request lines longer than 8 KiB (Apache's ``LimitRequestLine`` 8190), which
#: also hold the base URL and drms's other parameters.
MAX_ENCODED_RECORDSET = 6000

#: Bytes per pixel assumed for a record whose size the archive does not give: 4 bounds JSOC's stored files from
#: above (32-bit at most, most of them Rice-compressed 16-bit), so an estimate errs towards smaller requests.
_BYTES_PER_PIXEL = 4


@dataclasses.dataclass(frozen=True)
class ExportLimits:
    """What one export request may hold.

    Parameters
    ----------
    max_bytes : float
        Largest estimated size (config ``jsoc.max_export_bytes``).
    max_records : int
        Most records (config ``jsoc.max_export_records``).
    max_encoded_chars : int
        Longest percent-encoded record set (:data:`MAX_ENCODED_RECORDSET`).
    """

    max_bytes: float = JSOC_MAX_EXPORT_BYTES
    max_records: int = 1000
    max_encoded_chars: int = MAX_ENCODED_RECORDSET


def record_bytes(product, size) -> float:
    """Estimated stored size of one record's image segment: the manifest's ``size`` when the archive gave one,
    else ``native_size**2 * 4`` (JSOC's listings give no file sizes)."""
    try:
        known = float(size)
    except (TypeError, ValueError):
        known = math.nan
    if math.isfinite(known) and known > 0:
        return known
    return float(product.native_size) ** 2 * _BYTES_PER_PIXEL


def recordset_item(product, record: str) -> str:
    """One record of an export's record set: the record with its image segment, ``series[...]{segment}``."""
    return f"{record}{{{product.segment}}}"


def export_batches(items: Iterable[tuple[str, float]], limits: ExportLimits) -> list[list[str]]:
    """Group record-set items into export requests, greedily in the order given (the fetch passes time order).

    A request is closed when the next item would take it past ``limits.max_bytes``, ``limits.max_records`` or
    ``limits.max_encoded_chars`` (items joined by encoded commas). An item over a limit on its own is a request of
    its own: JSOC decides whether it can be exported.

    Parameters
    ----------
    items : iterable of (str, float)
        Record-set items (:func:`recordset_item`) and their estimated bytes (:func:`record_bytes`).
    limits : ExportLimits

    Returns
    -------
    list of list of str
        The items of each request, in order.

    Examples
    --------
    >>> export_batches([("a[1]{image}", 60e9), ("a[2]{image}", 60e9), ("a[3]{image}", 1e9)], ExportLimits())
    [['a[1]{image}'], ['a[2]{image}', 'a[3]{image}']]
    """
    separator = len(quote_plus(","))
    batches: list[list[str]] = []
    current: list[str] = []
    size = chars = 0.0
    for item, nbytes in items:
        length = len(quote_plus(item))
        fits = (len(current) < limits.max_records and size + nbytes <= limits.max_bytes
                and chars + separator + length <= limits.max_encoded_chars)
        if current and not fits:
            batches.append(current)
            current, size, chars = [], 0.0, 0.0
        chars += length + (separator if current else 0)
        current.append(item)
        size += nbytes
    if current:
        batches.append(current)
    return batches
