"""Bounded retries with exponential backoff and jitter, shared by every archive call."""

from __future__ import annotations

import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["RetryPolicy", "RetryableError", "budget_spent", "call_with_retries", "is_refusal",
           "parse_retry_after", "retry_after_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryableError(Exception):
    """A failure worth another attempt (HTTP 5xx/429, timeout, truncated or corrupt body).

    ``retry_after`` carries a server's Retry-After hint in seconds, when it sent one; ``reason`` is the ledger's
    reason code should the attempts run out (http, truncated, unreadable, timeout, unreachable); ``status`` the
    HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, retry_after: float | None = None, reason: str = "http",
                 status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason
        self.status = status


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from now that a Retry-After header asks to wait: its delay-seconds, or its HTTP-date (RFC 9110
    10.2.3; a date already past is 0). None when absent or unreadable."""
    if not value or not str(value).strip():
        return None
    if re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", str(value)):  # delay-seconds (not nan, inf, 1e3)
        return max(float(value), 0.0)
    import email.utils
    from datetime import UTC, datetime

    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def retry_after_of(err: BaseException) -> float | None:
    """The Retry-After seconds a failure carries: a `RetryableError`'s hint, or the header of an HTTP error
    answer that has one (``urllib.error.HTTPError``, which the drms client raises for a 429 or 503)."""
    hint = getattr(err, "retry_after", None)
    if hint is not None:
        return float(hint)
    headers = getattr(err, "headers", None)
    try:
        return parse_retry_after(headers["Retry-After"]) if headers is not None else None
    except (KeyError, TypeError):
        return None


def is_refusal(err: BaseException) -> bool:
    """Whether a failure is an archive's refusal of a request it will serve later: a 429, or a 503 with a
    Retry-After (without one a 503 is as likely an outage). The status is a `RetryableError`'s ``status``, or an
    ``urllib.error.HTTPError``'s ``code``, as the drms and HEK clients raise."""
    status = getattr(err, "status", None)
    if status is None:
        status = getattr(err, "code", None)
    return status == 429 or (status == 503 and retry_after_of(err) is not None)


def budget_spent(err: BaseException, policy: RetryPolicy) -> str:
    """What :func:`call_with_retries` spent before giving up with ``err``, for messages: ``after 5 attempts`` or
    ``refused 11 times``."""
    if is_refusal(err):
        return f"refused {policy.refusals + 1} times"
    return f"after {policy.retries + 1} attempts"


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attempt ``k`` (0-based) failing waits ``backoff * 2**k`` seconds times a jitter in [0.5, 1.5), capped at
    ``max_backoff``; a server's Retry-After replaces the computed delay, under the same cap.

    A *refusal* (:func:`is_refusal`: a 429, or a 503 with Retry-After: an archive at its own limit) says nothing about
    the file, so it spends one of ``refusals`` instead of one of ``retries``; otherwise a busy archive would use up a
    good file's retries and the slot would fall back to a worse candidate. Any other failure's Retry-After (a 500
    or a proxy's 502 may carry one) only sets its wait.
    """

    retries: int = 4
    backoff: float = 2.0
    max_backoff: float = 120.0
    refusals: int = 10

    @classmethod
    def from_config(cls, config: dict) -> RetryPolicy:
        fetch = config["fetch"]
        return cls(fetch["retries"], fetch["backoff_seconds"], fetch["max_backoff_seconds"],
                   fetch.get("refusals", cls.refusals))

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return min(self.backoff * 2**attempt * rng.uniform(0.5, 1.5), self.max_backoff)


def call_with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (RetryableError,),
    rng: random.Random | None = None,
) -> T:
    """Run ``action`` until it succeeds, ``policy.retries`` extra attempts have failed, or the archive has refused
    it more than ``policy.refusals`` times (a 429, or a 503 with Retry-After, counted apart: see `RetryPolicy`).

    Parameters
    ----------
    action : callable
        Called with no arguments.
    policy : RetryPolicy
    what : str
        Names the action in log lines.
    retry_on : tuple of exception types
        Failures that earn another attempt; anything else propagates at once.

    Raises
    ------
    Exception
        The last failure, once the attempts (or the refusals) are spent.
    """
    rng = rng or random.Random()
    failures = refusals = 0
    while True:
        try:
            return action()
        except retry_on as err:
            retry_after, refused = retry_after_of(err), is_refusal(err)
            if not refused:
                failures += 1
                if failures > policy.retries:
                    raise
                next_try = f"attempt {failures + 1} of {policy.retries + 1}"
            else:
                refusals += 1
                if refusals > policy.refusals:
                    raise
                next_try = f"refused {refusals} of {policy.refusals} times, asking again"
            wait = policy.delay(refusals - 1 if refused else failures - 1, retry_after, rng)
            log.warning("%s failed (%s); %s in %.2f s", what, err, next_try, wait)
            time.sleep(wait)
