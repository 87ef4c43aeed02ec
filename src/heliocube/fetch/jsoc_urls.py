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

Connection failures are retried per request under ``fetch.retries``; once spent, the job fails as in an outage.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import drms

from ..query.jsoc import TRANSIENT, jsoc_client
from ..retry import call_with_retries
from .export_batches import ExportLimits, export_batches, record_bytes, recordset_item
from .gate import Rejection

__all__ = ["EXPORT_FAILED", "EXPORT_TOO_LARGE", "ExportBusy", "ExportResult", "ExportTimeout", "resolve_jsoc_urls"]

log = logging.getLogger(__name__)

#: Ledger reasons of records JSOC would not export.
EXPORT_TOO_LARGE = "export_too_large"
EXPORT_FAILED = "export_failed"

_DONE, _TOO_LARGE, _BUSY = 0, 3, 7  # jsoc_fetch's status codes (the others: see the module's docstring)


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


def resolve_jsoc_urls(product, records: Mapping[str, object], context) -> ExportResult:
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
    client = call_with_retries(lambda: jsoc_client(context.jsoc_url, context.email), context.policy,
                               "JSOC address check", TRANSIENT)
    limits = ExportLimits(context.max_export_bytes, context.max_export_records)
    estimated = {recordset_item(product, record): record_bytes(product, size) for record, size in records.items()}
    batches = export_batches(estimated.items(), limits)
    log.info("%s: %d records in %d export requests (at most %d at once)", product.name, len(records), len(batches),
             context.concurrent_exports)
    exporter = _Exporter(client, context, estimated)
    # the pool's size is the cap: a too-large request is split and asked for again within its worker
    with ThreadPoolExecutor(max_workers=context.concurrent_exports, thread_name_prefix="jsoc-export") as pool:
        for part in pool.map(exporter.export, batches):
            result.update(part)
    return result


class _Exporter:
    """Exports one batch of record-set items, splitting and retrying as JSOC answers."""

    def __init__(self, client: drms.Client, context, estimated: dict[str, float]):
        self.client, self.context, self.estimated = client, context, estimated
        self.method = "url_quick" if context.jsoc_protocol == "as-is" else "url"
        self.rng = random.Random()

    def export(self, items: list[str]) -> ExportResult:
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
        result = self.export(items[:half])
        result.update(self.export(items[half:]))
        return result

    def _attempt(self, items: list[str]) -> _Answer:
        """One export request of ``items``, waited for until it is no longer pending."""
        context, recordset = self.context, ",".join(items)
        deadline = time.monotonic() + context.export_wait_seconds
        for busy in itertools.count():
            request = call_with_retries(
                lambda: self.client.export(recordset, method=self.method, protocol=context.jsoc_protocol),
                context.policy, f"JSOC export request of {len(items)} records", TRANSIENT)
            if request.status != _BUSY:
                break
            wait = context.policy.delay(busy, None, self.rng)
            if time.monotonic() + wait > deadline:
                raise ExportBusy(f"JSOC refused a new export for {context.export_wait_seconds:g} s: the address has "
                                 f"a pending export (status 7: {self._quiet(_error_of(request))}); raise "
                                 "jsoc.export_wait_seconds or lower jsoc.concurrent_exports")
            log.info("JSOC is busy with this address's pending export (status 7): asking again in %.2f s", wait)
            time.sleep(wait)
        try:
            finished = call_with_retries(
                lambda: request.wait(sleep=context.poll_seconds, timeout=max(deadline - time.monotonic(), 0.0)),
                context.policy, f"JSOC export status of {request.id}", TRANSIENT)
        except drms.DrmsExportError as err:  # drms raises for every finished status but 0
            return _Answer(int(request.status), self._quiet(str(err)))
        if not finished:
            raise ExportTimeout(f"JSOC export {request.id} of {len(items)} records was still pending (status "
                                f"{request.status}) after {context.export_wait_seconds:g} s (jsoc.export_wait_seconds)")
        try:
            return _Answer(_DONE, urls=request.urls)
        except drms.DrmsExportError as err:
            return _Answer(int(request.status), self._quiet(str(err)))

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


def _error_of(request) -> str:
    """JSOC's message in an answer drms keeps (its ``error`` field)."""
    return str(getattr(request, "_d", {}).get("error") or "no message")
