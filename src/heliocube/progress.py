"""Progress of a long job in its log: done/total, rate and time left, every so many seconds and at the end.

A month's fetch or clean job over thousands of frames runs for minutes to hours with its log as the only window on
it. :class:`Progress` writes one line when the job starts, then at most one per interval of wall time (not per
item: a log stays short whether the items take milliseconds or minutes), and one when it ends::

    EIT195 fetch: 0/7440 slots
    EIT195 fetch: 1210/7440 slots (16%), 40.3 slots/s, about 0:02:34 left
    EIT195 fetch: 7440/7440 slots done in 0:03:05 (40.2 slots/s)

The interval is ``every`` seconds, by default :data:`DEFAULT_EVERY` or the environment variable
``HELIOCUBE_PROGRESS_SECONDS`` (a setting of how a run is watched, not of its data: it stays out of the config and
its hash). Tests pass their own clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

__all__ = ["DEFAULT_EVERY", "Progress", "progress_interval"]

#: Seconds between two progress lines unless ``HELIOCUBE_PROGRESS_SECONDS`` says otherwise.
DEFAULT_EVERY = 30.0
_ENVIRONMENT = "HELIOCUBE_PROGRESS_SECONDS"


def progress_interval() -> float:
    """Seconds between progress lines: ``HELIOCUBE_PROGRESS_SECONDS`` when set, else :data:`DEFAULT_EVERY`.

    Raises
    ------
    ValueError
        When the variable is set to something other than a number of seconds >= 0.
    """
    text = os.environ.get(_ENVIRONMENT, "").strip()
    if not text:
        return DEFAULT_EVERY
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ValueError(f"{_ENVIRONMENT}={text!r}: give a number of seconds >= 0 between progress lines")
    return seconds


def _duration(seconds: float) -> str:
    return str(dt.timedelta(seconds=round(seconds)))  # 0:02:34, 1 day, 2:00:00


class Progress:
    """Count the items of one job and log where it stands: at the start, every ``every`` seconds, at the end.

    Parameters
    ----------
    label : str
        What the job is, first on every line (e.g. ``"EIT195 fetch"``).
    total : int
        Items the job has in all.
    unit : str
        Name of an item in the lines (``"slots"``, ``"frames"``).
    done : int
        Items already done when the job starts (e.g. slots with no candidate): they count in ``done/total`` but
        not in the rate.
    every : float, optional
        Seconds between two lines; default :func:`progress_interval`. ``0`` logs at every step.
    clock : callable
        Seconds from an arbitrary origin; :func:`time.monotonic` unless a test gives its own.
    logger : logging.Logger, optional
        Where the lines go (INFO); default this module's logger.

    Examples
    --------
    >>> progress = Progress("EIT195 fetch", total=3, unit="slots", every=30.0)
    >>> for _ in range(3):
    ...     progress.advance()
    >>> progress.finish()
    """

    def __init__(self, label: str, total: int, *, unit: str = "items", done: int = 0, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None) -> None:
        self.label, self.total, self.unit = label, int(total), unit
        self.done = self._initial = int(done)
        self.every = progress_interval() if every is None else float(every)
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._start = self._last = clock()
        self._log.info("%s: %d/%d %s", label, self.done, self.total, unit)

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done; log a line when ``every`` seconds passed since the last one."""
        self.done += n
        now = self._clock()
        if now - self._last >= self.every and self.done < self.total:
            self._last = now
            self._log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line at ``now`` (default: the clock's time): done/total, percent, rate, time left."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        counted = self.done - self._initial
        rate = counted / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * self.done / self.total if self.total else 100.0
        left = f"about {_duration((self.total - self.done) / rate)} left" if rate > 0 else "time left unknown"
        return f"{self.label}: {self.done}/{self.total} {self.unit} ({percent:.0f}%), {rate:.1f} {self.unit}/s, {left}"

    def finish(self) -> None:
        """Log the last line: items done, the time taken and the mean rate."""
        elapsed = max(self._clock() - self._start, 0.0)
        counted = self.done - self._initial
        rate = f"{counted / elapsed:.1f} {self.unit}/s" if elapsed > 0 else "at once"
        self._log.info("%s: %d/%d %s done in %s (%s)", self.label, self.done, self.total, self.unit,
                       _duration(elapsed), rate)
