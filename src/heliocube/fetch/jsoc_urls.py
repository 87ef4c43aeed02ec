"""Turn JSOC record ids into download URLs with a ``drms`` export (batched, retried)."""

from __future__ import annotations

import logging
import re
from urllib.parse import urljoin

import drms

from ..query.jsoc import TRANSIENT, jsoc_client
from ..retry import RetryableError, call_with_retries

__all__ = ["EXPORT_BATCH", "resolve_jsoc_urls"]

log = logging.getLogger(__name__)

#: Records per export request: keeps the record-set string well under URL length limits.
EXPORT_BATCH = 50


def _record_key(record: str) -> str:
    return re.sub(r"\{[^}]*\}$", "", record.strip())


def resolve_jsoc_urls(product, record_ids: list[str], context) -> dict[str, str]:
    """Download URL of each record's image segment.

    ``as-is`` uses ``url_quick`` (no staging, the archive's own files); ``fits`` asks for an export with full
    headers and polls until it is ready. Records the export does not return are absent from the result.
    """
    if not record_ids:
        return {}
    client = call_with_retries(lambda: jsoc_client(context.jsoc_url, context.email), context.policy,
                               "JSOC address check", TRANSIENT)
    method = "url_quick" if context.jsoc_protocol == "as-is" else "url"
    urls: dict[str, str] = {}
    for start in range(0, len(record_ids), EXPORT_BATCH):
        batch = record_ids[start:start + EXPORT_BATCH]
        recordset = ",".join(f"{record}{{{product.segment}}}" for record in batch)

        def export(recordset=recordset):
            try:
                request = client.export(recordset, method=method, protocol=context.jsoc_protocol)
                request.wait(sleep=context.poll_seconds, timeout=context.timeout * 10)
                if request.has_failed():
                    raise RetryableError(f"JSOC export failed with status {request.status}")
                return request.urls
            except drms.DrmsExportError as err:
                raise RetryableError(f"JSOC export error: {err}") from err

        table = call_with_retries(export, context.policy, f"JSOC export of {len(batch)} records",
                                  (*TRANSIENT, RetryableError))
        asked = set(batch)
        for record, url in zip(table["record"], table["url"], strict=True):
            key = _record_key(str(record))
            if key not in asked:  # only the records asked for: an extra answer names nothing we fetch
                log.warning("JSOC export answered record %r, which was not asked for; ignored", key)
                continue
            urls[key] = url if "://" in str(url) else urljoin(context.jsoc_url, str(url))
    return urls
