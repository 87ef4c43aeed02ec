"""How the embedded JSOC answers export requests (:class:`ExportRules`), and jsoc_fetch's answers that are not
a success."""

from __future__ import annotations

import dataclasses

__all__ = ["ExportRules", "busy_answer", "expired_answer", "failed_answer", "too_large_answer"]


@dataclasses.dataclass
class ExportRules:
    """How the embedded JSOC answers export requests; the defaults accept every request, as JSOC does for an
    address exempt from its pending limit with every file online.

    The statuses and messages are those of JSOC's ``jsoc_fetch``: 3 when a request exceeds the byte cap, 7 when the
    address already has too many pending exports, 4 when an export fails, 1 while one is processed.

    Parameters
    ----------
    max_bytes : int, optional
        A request whose files (as served) hold more bytes is refused with status 3; None: no cap.
    pending_polls : int
        Status checks of a url export answered "processing" (status 1) before it is done.
    fail_first : int
        The first ``fail_first`` export requests fail (status 4): url_quick at once, url at the status check that
        would have finished it.
    fail_match : str, optional
        Every request whose record set contains this text fails the same way, however often it is made.
    expire_first : int
        The url export requests after those ``fail_first`` fails, ``expire_first`` of them, expire while staging
        (status 5 at the status check that would have finished them).
    max_pending : int, optional
        url exports one address (``notify``) may have pending; the next one is refused with status 7 (JSOC allows
        one unless the address is exempted); None: no limit.
    expire_downloading_first : int
        The first ``expire_downloading_first`` url exports that neither fail nor expire while staging expire while
        their files download: once ``files_before_expiry`` of their files were answered, the others answer 404, as
        an export's files do once JSOC has deleted them (the network model's ``jsoc_export_expiry_seconds`` does the
        same by the clock; this rule does it by count, so a test does not depend on timing).
    files_before_expiry : int
        See ``expire_downloading_first``.
    """

    max_bytes: int | None = None
    pending_polls: int = 1
    fail_first: int = 0
    fail_match: str | None = None
    expire_first: int = 0
    max_pending: int | None = None
    expire_downloading_first: int = 0
    files_before_expiry: int = 1


def too_large_answer(method: str, protocol: str, count: int, size: int, max_bytes: int) -> dict:
    """jsoc_fetch's answer to a request over its byte cap (sizes in MB, as JSOC prints them)."""
    return {"status": 3, "requestid": "VOID", "method": method, "protocol": protocol, "wait": 0, "count": count,
            "size": size // 2**20, "error": f"Request exceeds max byte limit of {max_bytes / 2**20:g}MB"}


def busy_answer(notify: str, pending: list[str]) -> dict:
    """jsoc_fetch's answer to an address that already has as many pending exports as it may."""
    return {"status": 7, "error": f"User {notify} has {len(pending)} pending export requests ({','.join(pending)}); "
                                  "please wait until at least one request has completed before submitting a new one."}


def failed_answer(requestid: str = "") -> dict:
    """An export that failed (status 4), with a message as JSOC gives one."""
    return {"status": 4, "requestid": requestid, "error": "Export failed (embedded archive: ExportRules)"}


def expired_answer(requestid: str = "") -> dict:
    """An export that expired before it was staged (status 5), with a message as JSOC gives one."""
    return {"status": 5, "requestid": requestid, "error": "Request expired (embedded archive: ExportRules)"}
