"""One verified download: stream to a temporary name, check size and FITS structure, then rename."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import requests
from astropy.io import fits

from ..httpclient import TRANSPORT_ERRORS, NotFound, check_status, transport_error
from ..paths import atomic_path
from ..retry import RetryableError, RetryPolicy, call_with_retries

__all__ = ["DownloadError", "download_verified", "sha256_of", "verify_fits"]

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that will not succeed: ``reason`` is the ledger's code (missing, http, truncated, unreadable)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_fits(path: str | os.PathLike) -> None:
    """Raise unless every HDU's header and data can be read (a truncated or corrupt file fails here)."""
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdus:
            for hdu in hdus:
                _ = hdu.data
            if len(hdus) == 0 or all(hdu.data is None for hdu in hdus):
                raise OSError("no image data")
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, VerifyError... for broken files
        raise RetryableError(f"unreadable FITS ({type(err).__name__}: {err})", reason="unreadable") from err


def _fetch_once(session: requests.Session, url: str, target: Path, expected_size: int | None, timeout: float) -> None:
    try:
        with session.get(url, timeout=timeout, stream=True) as response:
            try:
                check_status(response, url)
            except NotFound:
                raise DownloadError("missing", f"{url} answered 404") from None
            except requests.HTTPError:
                raise DownloadError("http", f"{url} answered {response.status_code}") from None
            announced = response.headers.get("Content-Length")
            with atomic_path(target) as tmp:
                written = 0
                with open(tmp, "wb") as out:
                    for block in response.iter_content(CHUNK):
                        out.write(block)
                        written += len(block)
                for size, source in ((announced, "Content-Length"), (expected_size, "archive listing")):
                    if size is not None and int(size) != written:
                        raise RetryableError(f"truncated: {written} bytes, {source} says {size}", reason="truncated")
                verify_fits(tmp)
    except TRANSPORT_ERRORS as err:
        raise transport_error(err, url) from err


def download_verified(session: requests.Session, url: str, target: str | os.PathLike, policy: RetryPolicy,
                      timeout: float, expected_size: int | None = None) -> Path:
    """Download ``url`` to ``target`` unless ``target`` already exists, retrying transient failures.

    The body goes to a hidden temporary file beside ``target`` and is renamed onto it only after its size
    matches and every HDU reads, so a file at ``target`` is always complete and readable: that is why an
    existing one is not fetched again.

    Raises
    ------
    DownloadError
        When the file is missing (404), refused, or still truncated/unreadable after the retries.
    """
    target = Path(target)
    if target.exists():
        return target
    try:
        call_with_retries(lambda: _fetch_once(session, url, target, expected_size, timeout), policy, f"download {url}")
    except RetryableError as err:
        raise DownloadError(err.reason, f"{url}: {err} (after {policy.retries + 1} attempts)") from err
    return target
