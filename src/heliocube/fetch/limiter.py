"""Requests one fetch job has in progress on one archive: at most ``connections``, fewer after the archive refuses.

Every request of a fetch job to an archive (downloads, and JSOC's export requests and status checks) takes a slot
of the job's :class:`ConnectionLimiter`, in the order asked for, so the configured
``fetch.connections_per_archive`` holds for all of them together and a status check is not starved by downloads.

An answer with a Retry-After hint slows the whole job down, not only the request that got it: no new request starts
before Retry-After has passed; and a refusal (a 429, or a 503 with Retry-After, an archive at its own connection
limit: :func:`heliocube.retry.is_refusal`) drops the limit to one less than the requests then in progress (at least
one).
After as many whole answers in a row as ``4 x`` the limit, the limit grows back by one, up to ``connections``
(additive increase, multiplicative-ish decrease, as TCP does), so a job whose archive allows fewer connections
than configured settles just under what it allows.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..retry import is_refusal, retry_after_of

__all__ = ["ConnectionLimiter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Whole answers in a row, per unit of the current limit, before the limit grows by one again.
_GROW_AFTER = 4


class ConnectionLimiter:
    """A first-come first-served limit on the requests in progress to one archive (see the module notes).

    Parameters
    ----------
    connections : int
        The most requests at once (``fetch.connections_per_archive``).
    max_pause : float, optional
        Longest pause a Retry-After imposes (``fetch.max_backoff_seconds``, which caps each retry's wait too).
    """

    def __init__(self, connections: int, max_pause: float | None = None):
        self.max_pause = max_pause
        self.ceiling = max(int(connections), 1)
        self.limit = self.ceiling
        self.active = 0
        self.peak = 0
        self.slowdowns = 0
        self._resume_at = 0.0
        self._streak = 0
        self._tickets = itertools.count()
        self._serving = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def slot(self):
        """Hold one slot while the block runs (waits for its turn, the limit and any Retry-After pause)."""
        with self._cond:
            ticket = next(self._tickets)
            while True:
                pause = self._resume_at - time.monotonic()
                if ticket == self._serving and self.active < self.limit and pause <= 0:
                    break
                self._cond.wait(timeout=pause if pause > 0 else None)
            self._serving += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify_all()

    def call(self, action: Callable[[], T]) -> T:
        """Run ``action`` in a slot; a failure carrying a Retry-After hint pauses the job, a refusal lowers the
        limit; then it propagates."""
        with self.slot():
            try:
                result = action()
            except Exception as err:
                retry_after, refused = retry_after_of(err), is_refusal(err)
                if retry_after is not None or refused:
                    self.slow_down(retry_after or 0.0, fewer=refused)
                raise
        self._succeeded()
        return result

    def slow_down(self, retry_after: float, fewer: bool = True) -> None:
        """The archive asked to wait ``retry_after`` seconds: none new before then and, when ``fewer`` (it refused
        for its connection limit), fewer requests at once from now."""
        with self._cond:
            self.slowdowns += 1
            if fewer:
                self.limit = max(1, min(self.limit, self.active) - 1)
            pause = max(retry_after, 0.0) if self.max_pause is None else min(max(retry_after, 0.0), self.max_pause)
            self._resume_at = max(self._resume_at, time.monotonic() + pause)
            self._streak = 0
            limit = self.limit
            self._cond.notify_all()
        log.info("archive asked to retry after %g s: at most %d requests at once from now", retry_after, limit)

    def _succeeded(self) -> None:
        with self._cond:
            self._streak += 1
            if self.limit < self.ceiling and self._streak >= _GROW_AFTER * self.limit:
                self.limit += 1
                self._streak = 0
                self._cond.notify_all()
