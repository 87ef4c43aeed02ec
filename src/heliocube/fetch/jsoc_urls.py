"""Turn JSOC record ids into download URLs with ``drms`` exports: sized requests, JSOC's statuses, bounded retries.

Statuses of ``jsoc_fetch`` (``exp_request`` / ``exp_status``) and what each one leads to:

- 0: done, the URLs are read;
- 1, 2 (queued, processing): polled every ``jsoc.poll_seconds`` until done, at most ``jsoc.export_wait_seconds``;
- 3 (the request exceeds JSOC's byte limit): split in halves, each half asked for again; a single record JSOC
  still refuses becomes an ``export_too_large`` ledger row;
- 7 (the address already has a pending export, or too many from its host): asked again after a backoff, for at
  most ``jsoc.export_wait_seconds``, then the job stops with :class:`ExportBusy` (nothing is ledgered: the records
  are fine, the archive is busy);
- 4 (failed), 5 (expired), 6 (not found after drms's own retries), 25 (data offline) and any other code: the
  request is made again after a backoff (``fetch.backoff_seconds``), ``jsoc.export_retries`` times; then each of
  its records becomes an ``export_failed`` ledger row, so one bad export never fails the month.

Connection failures are retried per request under ``fetch.retries`` (refusals, 429/503 with Retry-After, under
``fetch.refusals``); once spent, the job fails as in an outage.

Pipelining: with ``on_result``, each request's URLs are handed on as soon as its export is done (the fetch
downloads them while the next export stages), and its worker asks for the next export at once. At most
``jsoc.concurrent_exports`` requests are pending at JSOC, and at most :data:`LOOKAHEAD` times as many exports are
staging or have files still downloading: a staged export's URLs wait for at most the downloads of the exports
staged before it, never for the whole job's exports (JSOC deletes an export's files after a few days).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import drms

from ..query.jsoc import TRANSIENT, jsoc_client
from ..retry import call_with_retries
from .export_batches import ExportLimits, export_batches, record_bytes, recordset_item
from .gate import Rejection

__all__ = ["EXPORT_FAILED", "EXPORT_TOO_LARGE", "LOOKAHEAD", "ExportBusy", "ExportResult", "ExportTimeout",
           "resolve_jsoc_urls"]

log = logging.getLogger(__name__)

#: Ledger reasons of records JSOC would not export.
EXPORT_TOO_LARGE = "export_too_large"
EXPORT_FAILED = "export_failed"

#: Exports staging or downloading per slot of ``jsoc.concurrent_exports`` (one staging while one downloads).
LOOKAHEAD = 2

_DONE, _TOO_LARGE, _NOT_FOUND, _BUSY = 0, 3, 6, 7  # jsoc_fetch's status codes (the others: see the docstring)
#: Status checks answering "not found" before the export counts as failed (drms's ``retries_notfound``).
_NOTFOUND_CHECKS = 5


class ExportBusy(RuntimeError):
    """JSOC kept refusing a new export because the address had one pending (status 7) for longer than allowed."""


class ExportTimeout(RuntimeError):
    """An export stayed pending for longer than ``jsoc.export_wait_seconds``."""


@dataclasses.dataclass
class ExportResult:
    """What the exports gave: a URL per exported record, and why each refused record has none."""

    urls: dict[str, str] = dataclasses.field(default_factory=dict)
    refused: dict[str, Rejection] = dataclasses.field(default_factory=dict)

    def update(self, other: ExportResult) -> None:
        self.urls.update(other.urls)
        self.refused.update(other.refused)


@dataclasses.dataclass(frozen=True)
class _Answer:
    status: int
    message: str = ""
    urls: object = None  # drms's table of record, filename, url when done


def _record_key(record: str) -> str:
    return re.sub(r"\{[^}]*\}$", "", record.strip())


def resolve_jsoc_urls(product, records: Mapping[str, object], context,
                      on_result: Callable[[ExportResult], None] | None = None, limiter=None) -> ExportResult:
    """Download URL of each record's image segment, from export requests sized to JSOC's limits.

    ``as-is`` uses ``url_quick`` (no staging, the archive's own files); ``fits`` asks for an export with full
    headers and polls until it is ready. At most ``context.concurrent_exports`` requests are in flight at once
    (per job: the profile's parallel fetch jobs each have as many).

    Parameters
    ----------
    product : heliocube.registry.Product
    records : mapping of str to number or None
        Record id -> size in bytes from the manifest (None or NA when the archive gave none), in time order.
    context : heliocube.query.ArchiveContext
    on_result : callable, optional
        Called (in the request's worker thread) with each finished request's result, URLs and refusals, as soon
        as it is known; returns the futures of what it started with them (the downloads), and the request counts
        as in flight until they are done (see the module notes).
    limiter : heliocube.fetch.limiter.ConnectionLimiter, optional
        The job's limit on requests to JSOC: every export request and status check holds one of its slots.

    Returns
    -------
    ExportResult
        URLs of the exported records; records JSOC refused, with their ledger rejection. A record in neither was
        not returned by a finished export.

    Raises
    ------
    ExportBusy, ExportTimeout
        JSOC kept the job waiting for longer than ``context.export_wait_seconds``.
    """
    result = ExportResult()
    if not records:
        return result
    client = call_with_retries(lambda: _limited(limiter, lambda: jsoc_client(context.jsoc_url, context.email)),
                               context.policy, "JSOC address check", TRANSIENT)
    limits = ExportLimits(context.max_export_bytes, context.max_export_records)
    estimated = {recordset_item(product, record): record_bytes(product, size) for record, size in records.items()}
    batches = export_batches(estimated.items(), limits)
    log.info("%s: %d records in %d export requests (at most %d at once)", product.name, len(records), len(batches),
             context.concurrent_exports)
    exporter = _Exporter(client, context, estimated, on_result, limiter)
    # the pool's size is the cap: a too-large request is split and asked for again within its worker
    with ThreadPoolExecutor(max_workers=context.concurrent_exports, thread_name_prefix="jsoc-export") as pool:
        for part in pool.map(exporter.export, batches):
            result.update(part)
    return result


class _Exporter:
    """Exports one batch of record-set items, splitting and retrying as JSOC answers."""

    def __init__(self, client: drms.Client, context, estimated: dict[str, float], on_result=None, limiter=None):
        self.client, self.context, self.estimated = client, context, estimated
        self.method = "url_quick" if context.jsoc_protocol == "as-is" else "url"
        self.rng = random.Random()
        self.on_result, self.limiter = on_result, limiter
        self.in_flight = threading.BoundedSemaphore(LOOKAHEAD * context.concurrent_exports)

    def export(self, items: list[str]) -> ExportResult:
        if self.on_result is None:
            return self._export(items)
        self.in_flight.acquire()
        try:
            result = self._export(items)
            started = list(self.on_result(result) or ())
        except BaseException:
            self.in_flight.release()
            raise
        _when_all_done(started, self.in_flight.release)
        return result

    def _export(self, items: list[str]) -> ExportResult:
        policy = self.context.policy
        for attempt in range(self.context.export_retries + 1):
            answer = self._attempt(items)
            if answer.status == _DONE:
                return self._urls(items, answer.urls)
            if answer.status == _TOO_LARGE:
                return self._too_large(items, answer)
            if attempt < self.context.export_retries:
                wait = policy.delay(attempt, None, self.rng)
                log.warning("JSOC export of %d records failed with status %d (%s); attempt %d of %d in %.2f s",
                            len(items), answer.status, answer.message, attempt + 2, self.context.export_retries + 1,
                            wait)
                time.sleep(wait)
        detail = (f"JSOC export of {len(items)} records failed with status {answer.status} "
                  f"({answer.message}) {self.context.export_retries + 1} times")
        log.error("%s; its records are ledgered as %s", detail, EXPORT_FAILED)
        return ExportResult(refused={_record_key(item): Rejection(EXPORT_FAILED, answer.status, detail)
                                     for item in items})

    def _too_large(self, items: list[str], answer: _Answer) -> ExportResult:
        if len(items) == 1:
            nbytes = self.estimated[items[0]]
            detail = f"JSOC refused to export this record alone as too large ({answer.message})"
            log.error("%s: %s; ledgered as %s", _record_key(items[0]), detail, EXPORT_TOO_LARGE)
            return ExportResult(refused={_record_key(items[0]): Rejection(EXPORT_TOO_LARGE, nbytes, detail)})
        half = len(items) // 2
        log.warning("JSOC export of %d records is too large (%s): asking for %d and %d", len(items), answer.message,
                    half, len(items) - half)
        result = self._export(items[:half])
        result.update(self._export(items[half:]))
        return result

    def _call(self, action, what: str):
        """``action`` (one JSOC CGI call) in a slot of the job's limiter, retried (``fetch.retries``, ``.refusals``)."""
        return call_with_retries(lambda: _limited(self.limiter, action), self.context.policy, what, TRANSIENT)

    def _attempt(self, items: list[str]) -> _Answer:
        """One export request of ``items``, waited for until it is no longer pending."""
        context, recordset = self.context, ",".join(items)
        deadline = time.monotonic() + context.export_wait_seconds
        for busy in itertools.count():
            request = self._call(
                lambda: self.client.export(recordset, method=self.method, protocol=context.jsoc_protocol),
                f"JSOC export request of {len(items)} records")
            if request.status != _BUSY:
                break
            wait = context.policy.delay(busy, None, self.rng)
            if time.monotonic() + wait > deadline:
                raise ExportBusy(f"JSOC refused a new export for {context.export_wait_seconds:g} s: the address has "
                                 f"a pending export (status 7: {self._quiet(_error_of(request))}); raise "
                                 "jsoc.export_wait_seconds or lower jsoc.concurrent_exports")
            log.info("JSOC is busy with this address's pending export (status 7): asking again in %.2f s", wait)
            time.sleep(wait)
        if not self._wait(request, deadline):
            raise ExportTimeout(f"JSOC export {request.id} of {len(items)} records was still pending (status "
                                f"{request.status}) after {context.export_wait_seconds:g} s (jsoc.export_wait_seconds)")
        if int(request.status) != _DONE:
            return _Answer(int(request.status), self._quiet(_error_of(request)))
        try:
            return _Answer(_DONE, urls=request.urls)
        except drms.DrmsExportError as err:
            return _Answer(int(request.status), self._quiet(str(err)))

    def _wait(self, request, deadline: float) -> bool:
        """Check the export's status every ``jsoc.poll_seconds`` until it is no longer pending (True) or the next
        check would come after ``deadline`` (False). As ``drms.ExportRequest.wait`` does, but each check holds a
        slot of the limiter rather than the wait between checks; "not found" (6, a request JSOC has not
        registered yet) counts as pending for :data:`_NOTFOUND_CHECKS` checks."""
        notfound = 0
        while not request.has_finished(skip_update=True):
            if time.monotonic() + self.context.poll_seconds > deadline:
                return False
            time.sleep(self.context.poll_seconds)
            self._call(request.has_finished, f"JSOC export status of {request.id}")
            notfound = notfound + 1 if int(request.status) == _NOT_FOUND else 0
            if notfound > _NOTFOUND_CHECKS:
                return True
        return True

    def _quiet(self, message: str) -> str:
        """JSOC's message without the JSOC email (status 7 names the address), for logs and ledger rows."""
        email = self.context.email
        return message.replace(email, "<jsoc email>") if email else message

    def _urls(self, items: list[str], table) -> ExportResult:
        asked = {_record_key(item) for item in items}
        urls = {}
        for record, url in zip(table["record"], table["url"], strict=True):
            key = _record_key(str(record))
            if key not in asked:  # only the records asked for: an extra answer names nothing we fetch
                log.warning("JSOC export answered record %r, which was not asked for; ignored", key)
                continue
            urls[key] = url if "://" in str(url) else urljoin(self.context.jsoc_url, str(url))
        return ExportResult(urls=urls)


def _when_all_done(futures: list, callback) -> None:
    """Call ``callback`` once every future is done (at once when there is none)."""
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(_future):
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            callback()

    if not futures:
        callback()
    for future in futures:
        future.add_done_callback(one_done)


def _limited(limiter, action):
    return action() if limiter is None else limiter.call(action)


def _error_of(request) -> str:
    """JSOC's message in an answer drms keeps (its ``error`` field)."""
    return str(getattr(request, "_d", {}).get("error") or "no message")
