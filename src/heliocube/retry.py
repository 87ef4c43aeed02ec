"""Bounded retries with exponential backoff and jitter, shared by every archive call."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["RetryPolicy", "RetryableError", "call_with_retries", "retry_after_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class RetryableError(Exception):
    """A failure worth another attempt (HTTP 5xx/429, timeout, truncated or corrupt body).

    ``retry_after`` carries a server's Retry-After hint in seconds, when it sent one; ``reason`` is the ledger's
    reason code should the attempts run out (http, truncated, unreadable, timeout, unreachable).
    """

    def __init__(self, message: str, retry_after: float | None = None, reason: str = "http"):
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


def retry_after_of(err: BaseException) -> float | None:
    """The Retry-After seconds a failure carries: a `RetryableError`'s hint, or the header of an HTTP error
    answer that has one (``urllib.error.HTTPError``, which the drms client raises for a 429 or 503)."""
    hint = getattr(err, "retry_after", None)
    if hint is not None:
        return float(hint)
    headers = getattr(err, "headers", None)
    try:
        return float(headers["Retry-After"]) if headers is not None and headers["Retry-After"] else None
    except (KeyError, TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attempt ``k`` (0-based) failing waits ``backoff * 2**k`` seconds times a jitter in [0.5, 1.5), capped at
    ``max_backoff``; a server's Retry-After replaces the computed delay, under the same cap.

    A failure that carries a Retry-After hint is a *refusal* (an archive at its own limit answers 429 or 503 with
    one): it says nothing about the file, so it spends one of ``refusals`` instead of one of ``retries``. Otherwise
    a busy archive would use up a good file's retries and the slot would fall back to a worse candidate.
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
    it more than ``policy.refusals`` times (failures with a Retry-After hint, counted apart: see `RetryPolicy`).

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
            retry_after = retry_after_of(err)
            if retry_after is None:
                failures += 1
                if failures > policy.retries:
                    raise
                next_try = f"attempt {failures + 1} of {policy.retries + 1}"
            else:
                refusals += 1
                if refusals > policy.refusals:
                    raise
                next_try = f"refused {refusals} of {policy.refusals} times, asking again"
            wait = policy.delay(failures - 1 if retry_after is None else 0, retry_after, rng)
            log.warning("%s failed (%s); %s in %.2f s", what, err, next_try, wait)
            time.sleep(wait)
