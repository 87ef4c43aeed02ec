"""Plain HTTP GETs with the retry policy: the one place that turns HTTP outcomes into retry decisions."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import requests

from .retry import RetryableError, RetryPolicy, call_with_retries, parse_retry_after

__all__ = ["TRANSPORT_ERRORS", "ArchiveStorageFull", "ForeignHost", "NotFound", "check_status", "get", "new_session",
           "same_origin", "transport_error"]

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "heliocube (https://github.com/heliocube)"


class NotFound(Exception):
    """The archive answered 404: the thing does not exist (not an outage)."""


class ArchiveStorageFull(RuntimeError):
    """The archive answered 507 Insufficient Storage (the embedded one when the output disk is full): not a
    per-file failure to ledger, so deliberately no ``OSError``/``RequestException``; the job stops and says why."""


class ForeignHost(requests.exceptions.InvalidURL):
    """A URL or redirect from an archive that leads off the archive's own scheme, host and port."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL; None for anything a parser could read two ways."""
    if any(ch == "\\" or ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, parts.hostname, port


def same_origin(url: str, base: str) -> bool:
    """True if ``url`` has the scheme, host and port of the configured ``base`` (archives are pinned to it)."""
    origin = _origin(url)
    return origin is not None and origin == _origin(base)


def _redirect_allowed(source: str, target: str) -> bool:
    """A redirect stays on the same origin, or upgrades http to https on the same host."""
    if same_origin(target, source):
        return True
    before, after = _origin(source), _origin(target)
    return (before is not None and after is not None and before[0] == "http" and after == ("https", before[1], 443)
            and before[2] == 80)


class _PinnedSession(requests.Session):
    """A session that refuses to follow a redirect to another host (an archive must not send us elsewhere)."""

    def get_redirect_target(self, resp):
        target = super().get_redirect_target(resp)
        if target is not None and not _redirect_allowed(resp.url, urljoin(resp.url, target)):
            resp.close()  # hand the connection back to the pool before giving up
            raise ForeignHost(f"{resp.url} redirects to another host ({urljoin(resp.url, target)}); not followed")
        return target


def new_session(connections: int = 4) -> requests.Session:
    """A keep-alive session whose pool holds ``connections`` sockets per host (and never more).

    Redirects are followed only on the same scheme, host and port (or from http to https on the same host);
    any other raises `ForeignHost`.
    """
    session = _PinnedSession()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=connections, pool_block=True)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.trust_env = True  # honour NO_PROXY etc. as urllib (drms) does
    return session


def check_status(response: requests.Response, url: str) -> None:
    """Turn an HTTP answer into our outcomes: 404 `NotFound`, transient `RetryableError`, other errors raise."""
    if response.status_code == 404:
        raise NotFound(url)
    if response.status_code == 507:
        raise ArchiveStorageFull(f"GET {url}: HTTP 507 {response.reason}")
    if response.status_code in _RETRY_STATUS:
        raise RetryableError(f"GET {url}: HTTP {response.status_code}",
                             parse_retry_after(response.headers.get("Retry-After")), status=response.status_code)
    response.raise_for_status()


def transport_error(err: requests.RequestException, url: str) -> RetryableError:
    """The retryable form of a failed connection, with the ledger's reason code (truncated/timeout/unreachable)."""
    if isinstance(err, requests.exceptions.ChunkedEncodingError):  # the connection ended inside the body
        return RetryableError(f"GET {url}: body cut short ({type(err).__name__})", reason="truncated")
    if isinstance(err, requests.Timeout):
        return RetryableError(f"GET {url}: {type(err).__name__}", reason="timeout")
    return RetryableError(f"GET {url}: {type(err).__name__}", reason="unreachable")


#: Failures of a connection (as opposed to an HTTP answer) that `transport_error` classifies.
TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def get_once(session: requests.Session, url: str, timeout: float, headers: dict | None = None) -> requests.Response:
    """One GET whose body is fully read; transient failures raise `RetryableError`, 404 `NotFound`."""
    try:
        response = session.get(url, timeout=timeout, headers=headers)
    except TRANSPORT_ERRORS as err:
        raise transport_error(err, url) from err
    check_status(response, url)
    expected = response.headers.get("Content-Length")
    if expected is not None and "Content-Encoding" not in response.headers and int(expected) != len(response.content):
        raise RetryableError(f"GET {url}: body has {len(response.content)} of {expected} bytes")
    return response


def get(session: requests.Session, url: str, policy: RetryPolicy, timeout: float, headers: dict | None = None):
    """GET ``url`` with retries; returns the response, raises `NotFound` for a 404."""
    return call_with_retries(lambda: get_once(session, url, timeout, headers), policy, f"GET {url}")
