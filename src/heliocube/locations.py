"""Archive-relative file locations: what manifests, receipts and slot tables keep instead of absolute URLs.

A location such as ``eit/lz/2010/10/efz20101015.000012`` or ``SUM1/D5/S00000/image_lev1.fits`` is relative to the
archive's configured base URL (``archive.sdac_url`` or ``archive.jsoc_url``, or the embedded archive's), and the
host is put back only when a file is fetched (:func:`archive_url`). So a mirror, a new JSOC host or another
embedded-archive port fetches exactly the same files, and the outputs do not change with it.

A location is made of plain path segments only (letters, digits, ``._+-``; no ``..``, no empty segment, no
scheme or host): anything else is refused before any request is sent.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from .httpclient import same_origin

__all__ = ["ForeignLocation", "UnsafeLocation", "archive_location", "archive_url"]

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}")  # fullmatch; ".." refused separately


class UnsafeLocation(ValueError):
    """A location that could name something outside the archive's base (``..``, ``%2e``, a backslash...)."""


class ForeignLocation(ValueError):
    """An absolute URL that is not on the configured archive (another scheme, host or port)."""


def _checked(location: str, text: str) -> str:
    segments = location.split("/")
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or ".." in segment:
            raise UnsafeLocation(f"{text!r} is not a plain path below the archive base (segment {segment!r})")
    return location


def archive_location(url: str, base: str) -> str:
    """The location of ``url`` relative to the archive ``base``.

    Parameters
    ----------
    url : str
        A location already (``eit/lz/...``), or an absolute URL on ``base``'s scheme, host and port whose path lies
        below ``base``'s path (what JSOC exports answer, and what manifests written before locations held).
    base : str
        The configured archive base URL, ending in ``/``.

    Returns
    -------
    str
        The location, e.g. ``eit/lz/2010/10/efz20101015.000012``.

    Raises
    ------
    ForeignLocation
        ``url`` is absolute and on another scheme, host or port.
    UnsafeLocation
        ``url`` (or its path) is not a plain path below ``base``: ``..`` or ``.`` segments, empty segments,
        percent-escapes, backslashes, control characters, a query or fragment.
    """
    text = str(url)
    if "://" in text or text.startswith("//"):
        if not same_origin(text, base):
            raise ForeignLocation(f"{text} is not on the configured archive {base}")
        parts, prefix = urlsplit(text), urlsplit(base).path
        if parts.query or parts.fragment or not parts.path.startswith(prefix):
            raise UnsafeLocation(f"{text!r} is not a plain path below the archive base {base}")
        text = parts.path[len(prefix):]
    return _checked(text, str(url))


def archive_url(location: str, base: str) -> str:
    """The URL to fetch ``location`` from (``base`` + location), after `archive_location`'s checks."""
    return urljoin(base, archive_location(location, base))
