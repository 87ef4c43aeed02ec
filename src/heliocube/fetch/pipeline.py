"""Scheduling a fetch round's downloads: every file that has its URL at once, the others as their exports finish.

A fetch job downloads through one pool of ``fetch.connections_per_archive`` workers. Files whose URL is known (SDAC
listings, earlier receipts, manifest URLs) go to the pool at once, all days of the job together, so the archive's
connection cap stays busy across days rather than day by day. Files that need a JSOC export go to the pool as
their export finishes, while the next export stages (:func:`heliocube.fetch.jsoc_urls.resolve_jsoc_urls` with
``on_result``), instead of after every export of the job.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future

__all__ = ["schedule_downloads"]


def schedule_downloads(pool, positions: Iterable[int], record_of: Callable[[int], str], unresolved: Collection[str],
                       download: Callable[[int], object], export: Callable[[Callable], None]) -> dict[int, Future]:
    """Start the downloads of ``positions``; returns a future of each one's outcome.

    Parameters
    ----------
    pool : concurrent.futures.Executor
        Where downloads run.
    positions : iterable of int
        Candidates to download.
    record_of : callable
        Position -> record id.
    unresolved : collection of str
        Record ids whose URL an export must give first.
    download : callable
        Position -> outcome (run in ``pool``); for a record of ``unresolved``, called once its export is done.
    export : callable
        Called once, in a thread of its own, with ``on_result``: it must call ``on_result(result)`` with each
        finished export's result (an object with ``urls`` and ``refused`` keyed by record id), after making the
        URLs known to ``download``; ``on_result`` returns the futures of the downloads it started. An exception
        it raises becomes the outcome of every download still waiting for an export.
    """
    futures: dict[int, Future] = {}
    waiting: dict[str, list[int]] = collections.defaultdict(list)
    for position in positions:
        futures[position] = Future()
        if record_of(position) in unresolved:
            waiting[record_of(position)].append(position)
        else:
            _chain(pool.submit(download, position), futures[position])
    if not waiting:
        return futures
    lock = threading.Lock()

    def take(records) -> list[int]:
        with lock:
            return [position for record in records for position in waiting.pop(record, [])]

    def start(records) -> list[Future]:
        started = []
        for position in take(records):
            started.append(pool.submit(download, position))
            _chain(started[-1], futures[position])
        return started

    def on_result(result) -> list[Future]:
        return start([*result.urls, *result.refused])

    def run() -> None:
        try:
            export(on_result)
        except BaseException as err:  # handed to whoever waits for these downloads
            for position in take(list(waiting)):
                futures[position].set_exception(err)
            return
        start(list(waiting))  # records no finished export named: their download says why there is no file

    threading.Thread(target=run, name="jsoc-exports", daemon=True).start()
    return futures


def _chain(source: Future, target: Future) -> None:
    """Give ``target`` the outcome of ``source`` once it has one."""

    def copy(done: Future) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
