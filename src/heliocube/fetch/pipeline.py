"""Scheduling a fetch round's downloads: every file that has its URL at once, the others as their exports finish.

A fetch job downloads through one pool of ``fetch.connections_per_archive`` workers. Files whose URL is known (SDAC
listings, earlier receipts, manifest URLs) go to the pool at once, all days of the job together, so the archive's
connection cap stays busy across days rather than day by day. Files that need a JSOC export go to the pool as
their export finishes, while the next export stages (:func:`heliocube.fetch.jsoc_urls.resolve_jsoc_urls` with
``on_result``), instead of after every export of the job. Files whose export expired before they were downloaded
(JSOC deletes an export's files after a few days: a slow job, or a long queue) are exported again, in one new
export per round, once the round's downloads are done.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import logging
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future

__all__ = ["schedule_downloads"]

log = logging.getLogger(__name__)


def schedule_downloads(pool, positions: Iterable[int], record_of: Callable[[int], str], unresolved: Collection[str],
                       download: Callable[[int], object], export: Callable[[Callable, list[str]], None],
                       renew: Callable[[object], bool] | None = None, renewals: int = 0) -> dict[int, Future]:
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
        Called in a thread of its own with ``on_result`` and the record ids to export (first those of
        ``unresolved``, then any to export again): it must call ``on_result(result)`` with each finished export's
        result (an object with ``urls`` and ``refused`` keyed by record id), after making the URLs known to
        ``download``; ``on_result`` returns the futures of the downloads it started. An exception it raises
        becomes the outcome of every download still waiting for an export.
    renew : callable, optional
        Outcome -> whether it says the file's export expired before the file was downloaded. Once the exports'
        downloads are done, the records with such an outcome are exported again and downloaded from the new
        export, at most ``renewals`` times; after that, the outcome stands.
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
    started: list[tuple[int, Future]] = []  # this round's downloads of exported records
    last_round = [renew is None or renewals <= 0]

    def take(records) -> list[int]:
        with lock:
            return [position for record in records for position in waiting.pop(record, [])]

    def start(records) -> list[Future]:
        final = last_round[0]
        begun = []
        for position in take(records):
            begun.append(pool.submit(download, position))
            with lock:
                started.append((position, begun[-1]))
            # an outcome that asks for a new export is handed on only in the last round (see run below)
            _chain(begun[-1], futures[position], None if final else renew)
        return begun

    def on_result(result) -> list[Future]:
        return start([*result.urls, *result.refused])

    def run() -> None:
        records = list(waiting)
        try:
            for renewal in itertools.count():
                export(on_result, records)
                start(records)  # records no finished export named: their download says why there is no file
                with lock:
                    mine = started[:]
                    started.clear()
                concurrent.futures.wait([future for _, future in mine])
                if last_round[0]:
                    return
                again = [(position, future) for position, future in mine
                         if future.exception() is None and renew(future.result())]
                if not again:
                    return
                with lock:
                    for position, _ in again:
                        waiting[record_of(position)].append(position)
                records = list(dict.fromkeys(record_of(position) for position, _ in again))
                last_round[0] = renewal + 1 >= renewals
                log.warning("%d records' export expired before their files were downloaded: exporting them again "
                            "(renewal %d of %d)", len(records), renewal + 1, renewals)
        except BaseException as err:  # handed to whoever waits for these downloads
            for position in take(list(waiting)):
                futures[position].set_exception(err)

    threading.Thread(target=run, name="jsoc-exports", daemon=True).start()
    return futures


def _chain(source: Future, target: Future, unless: Callable[[object], bool] | None = None) -> None:
    """Give ``target`` the outcome of ``source`` once it has one (an outcome ``unless`` holds true of is not given)."""

    def copy(done: Future) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        elif unless is None or not unless(done.result()):
            target.set_result(done.result())

    source.add_done_callback(copy)
