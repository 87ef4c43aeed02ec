"""One verified download: stream to a temporary name, check size and FITS structure, then rename."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import requests
from astropy.io import fits

from ..httpclient import TRANSPORT_ERRORS, ForeignHost, NotFound, check_status, transport_error
from ..retry import RetryableError, RetryPolicy, budget_spent, call_with_retries
from .cache import FileDigests, sha256_fed, sha256_of

__all__ = ["DownloadError", "download_verified", "partial_path", "sha256_of", "verify_fits"]

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that will not succeed: ``reason`` is the ledger's code (missing, http, truncated, unreadable,
    foreign_host)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


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


def partial_path(target: Path) -> Path:
    """Where the body of ``target`` accumulates: hidden, beside it, stable across runs so a killed job resumes."""
    return target.with_name(f".{target.name}.partial")


def _resume_offset(response: requests.Response, have: int) -> int:
    """Bytes of the partial file the answer continues: ``have`` for a matching 206, else 0 (start over)."""
    if response.status_code == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
        return have
    return 0


def _total_size(response: requests.Response, offset: int) -> int | None:
    total = response.headers.get("Content-Range", "").rpartition("/")[2]
    if response.status_code == 206 and total.isdigit():
        return int(total)
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def _fetch_once(session: requests.Session, url: str, target: Path, expected_size: int | None, timeout: float,
                limiter=None) -> str | None:
    """One attempt: continue the partial body with an HTTP Range request, verify the whole, rename it into place.
    Returns the file's SHA-256, hashed as its bytes were written (a resumed body's prefix first); None when
    another job had put the file in place.

    An exclusive lock on the partial file keeps two jobs that want the same file (slots near a month boundary)
    from writing it at once; the second finds the target complete when it gets the lock. A body cut short stays
    in the partial file and the next attempt (or run) asks only for the rest; a body that is whole but does not
    read as FITS is discarded.
    """
    partial = partial_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "ab") as out:
        fcntl.flock(out, fcntl.LOCK_EX)
        if target.exists():
            return None
        have = os.fstat(out.fileno()).st_size
        digest = None  # of what this attempt has written so far, from the prefix it continues

        def transfer() -> int | None:
            nonlocal digest
            with session.get(url, timeout=timeout, stream=True,
                             headers={"Range": f"bytes={have}-"} if have else None) as response:
                if response.status_code == 416:  # the partial file is not a prefix of this file: start over
                    out.truncate(0)
                    raise RetryableError(f"{url}: partial download does not match; restarting", reason="truncated")
                try:
                    check_status(response, url)
                except NotFound:
                    raise DownloadError("missing", f"{url} answered 404") from None
                except requests.HTTPError:
                    raise DownloadError("http", f"{url} answered {response.status_code}") from None
                offset = _resume_offset(response, have)
                out.truncate(offset)
                out.seek(offset)
                announced = _total_size(response, offset)
                digest = sha256_fed(partial, offset) if offset else hashlib.sha256()
                for block in response.iter_content(CHUNK):
                    out.write(block)
                    digest.update(block)  # the bytes as written: no second read of the file for its receipt
                out.flush()
                return announced

        try:  # only the transfer holds a connection slot: the checks below leave it to the next download
            announced = transfer() if limiter is None else limiter.call(transfer)
        except ForeignHost as err:  # a redirect off the archive: never followed, not worth a retry
            raise DownloadError("foreign_host", str(err)) from None
        except TRANSPORT_ERRORS as err:
            out.flush()  # what arrived stays for the next attempt
            raise transport_error(err, url) from err
        written = os.fstat(out.fileno()).st_size
        for size, source in ((announced, "Content-Length"), (expected_size, "archive listing")):
            if size is not None and int(size) != written:
                if written > int(size):
                    out.truncate(0)
                raise RetryableError(f"truncated: {written} bytes, {source} says {size}", reason="truncated")
        try:
            verify_fits(partial)
        except RetryableError:
            out.truncate(0)
            raise
        os.fsync(out.fileno())
        os.replace(partial, target)
        return digest.hexdigest()


def download_verified(session: requests.Session, url: str, target: str | os.PathLike, policy: RetryPolicy,
                      timeout: float, expected_size: int | None = None, limiter=None,
                      digests: FileDigests | None = None) -> Path:
    """Download ``url`` to ``target`` unless ``target`` already exists, retrying transient failures.

    The body goes to a hidden partial file beside ``target`` (:func:`partial_path`) and is renamed onto it only
    after its size matches and every HDU reads, so a file at ``target`` is always complete and readable: that is
    why an existing one is not fetched again. A partial file left by an interrupted attempt or a killed job is
    continued with an HTTP Range request, so no byte is downloaded twice.

    Raises
    ------
    DownloadError
        When the file is missing (404), refused, or still truncated/unreadable after the retries.

    Each attempt's transfer holds a slot of ``limiter`` (a :class:`heliocube.fetch.limiter.ConnectionLimiter`),
    when given, and the checks that follow do not: an answer with Retry-After slows the job's every request down,
    and the retry waits for it.

    ``digests`` (a :class:`heliocube.fetch.cache.FileDigests`), when given, notes the file's SHA-256 as computed
    from the bytes as they were written (a resumed body's prefix hashed first), for the receipt.
    """
    target = Path(target)
    if target.exists():
        return target
    try:
        sha256 = call_with_retries(lambda: _fetch_once(session, url, target, expected_size, timeout, limiter),
                                   policy, f"download {url}")
    except RetryableError as err:
        partial_path(target).unlink(missing_ok=True)  # given up: nothing is left to resume
        raise DownloadError(err.reason, f"{url}: {err} ({budget_spent(err, policy)})") from err
    except DownloadError:
        partial_path(target).unlink(missing_ok=True)
        raise
    if digests is not None and sha256 is not None:
        digests.note(target, sha256)
    return target
