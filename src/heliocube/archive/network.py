"""A network model for the embedded archive: latency, per-connection bandwidth, a connection limit, JSOC export
staging and expiry, and a meter of what the server actually served.

Off by default (:class:`ArchiveServer` without ``network`` answers at once, as fast as the loopback allows). With a
:class:`NetworkModel`:

- every answer leaves no sooner than ``latency_ms`` after its request arrived (the time spent building the answer
  counts in it, as a remote server's response time would);
- a body is sent at ``connection_mb_per_s`` megabytes (10**6 bytes) per second at most, per connection;
- at most ``max_connections`` requests are served at once, server-wide; the next is answered ``refuse_status``
  (429, or 503) with ``Retry-After: retry_after_seconds``. Like nginx's ``limit_conn``, a connection counts while
  a request is in progress on it, not while it idles between keep-alive requests;
- a url (``fits``) export stays pending for ``jsoc_staging_seconds_per_request`` plus
  ``jsoc_staging_seconds_per_record`` times its records, then its files can be downloaded for
  ``jsoc_export_expiry_seconds`` (404 after that, as an expired export's directory is gone).

:class:`NetworkMeter` records the server's side: requests in progress over time (and their peak), bytes sent per
second, refusals, and url exports in flight (requested, until every file was answered whole or the export ended
without files). ``/network`` answers its summary as JSON; the server writes it to its stats file when it stops.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math
import os
import threading
import time
from collections.abc import Callable

__all__ = ["CONFIG_KEYS", "NetworkMeter", "NetworkModel"]

_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class NetworkModel:
    """How the embedded archive imitates a remote archive's network (see the module notes); None: unlimited."""

    latency_ms: float = 0.0
    connection_mb_per_s: float | None = None
    max_connections: int | None = None
    refuse_status: int = 429
    retry_after_seconds: float = 1.0
    jsoc_staging_seconds_per_request: float = 0.0
    jsoc_staging_seconds_per_record: float = 0.0
    jsoc_export_expiry_seconds: float | None = None

    def __post_init__(self):
        if self.refuse_status not in (429, 503):
            raise ValueError(f"refuse_status must be 429 or 503, not {self.refuse_status}")

    @classmethod
    def from_config(cls, block: dict | None) -> NetworkModel | None:
        """The model of a config's ``archive.network`` block (None when absent or null)."""
        if not block:
            return None
        return cls(**{key: block[key] for key in CONFIG_KEYS if key in block})

    def as_json(self) -> dict:
        return dataclasses.asdict(self)

    def staging_seconds(self, records: int) -> float:
        """How long a url export of ``records`` records stays pending."""
        return self.jsoc_staging_seconds_per_request + self.jsoc_staging_seconds_per_record * records

    def wait_latency(self, started: float) -> None:
        """Sleep until ``latency_ms`` after ``started`` (a ``time.monotonic`` value)."""
        remaining = started + self.latency_ms / 1000.0 - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def write(self, stream, body: bytes, meter: NetworkMeter, before_last: Callable[[], None] | None = None) -> None:
        """Write ``body`` at the modelled bandwidth, counting the bytes as they leave.

        Each chunk leaves when the bandwidth would have delivered its last byte, so the final one leaves at the
        transfer's end and the request is over then (sleeping after it would hold the connection slot for one
        chunk's time after the client has its answer). ``before_last`` runs just before the final chunk is
        written: nothing the client does after reading it can come before."""
        rate = (self.connection_mb_per_s or 0.0) * 1e6
        started, sent = time.monotonic(), 0
        view = memoryview(body)
        while sent < len(body):
            chunk = view[sent : sent + _CHUNK] if rate else view[sent:]
            if rate:
                early = started + (sent + len(chunk)) / rate - time.monotonic()
                if early > 0:
                    time.sleep(early)
            if before_last is not None and sent + len(chunk) >= len(body):
                before_last()
            stream.write(chunk)
            sent += len(chunk)
            meter.sent(len(chunk))


#: Keys of the config's ``archive.network`` block (the fields of :class:`NetworkModel`).
CONFIG_KEYS = tuple(field.name for field in dataclasses.fields(NetworkModel))


class NetworkMeter:
    """What the server served, measured as it happens (thread-safe)."""

    def __init__(self, model: NetworkModel, stats_path: str | os.PathLike | None = None):
        self.model = model
        self.stats_path = os.fspath(stats_path) if stats_path else None
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self.active = 0
        self.peak_connections = 0
        self.requests = 0
        self.refused = 0
        self.timeline: list[tuple[float, int]] = []  # (seconds since start, requests in progress after the change)
        self.bytes_per_second: collections.Counter = collections.Counter()  # whole second since start -> bytes
        self._exports: dict[int, dict] = {}  # export number -> {"ready": t, "files": set of names not yet served}
        self.open_exports = 0
        self.peak_open_exports = 0
        self.export_timeline: list[tuple[float, int]] = []

    def _now(self) -> float:
        return time.monotonic() - self._t0

    # ------------------------------------------------------------------ connections
    def admit(self) -> bool:
        """Count a request in progress; False (and counted as refused) when the limit is reached."""
        with self._lock:
            self.requests += 1
            limit = self.model.max_connections
            if limit is not None and self.active >= limit:
                self.refused += 1
                return False
            self.active += 1
            self.peak_connections = max(self.peak_connections, self.active)
            self.timeline.append((round(self._now(), 4), self.active))
            return True

    def release(self) -> None:
        with self._lock:
            self.active -= 1
            self.timeline.append((round(self._now(), 4), self.active))

    def sent(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_per_second[int(self._now())] += nbytes

    # ------------------------------------------------------------------ exports
    def export_requested(self, number: int, files: list[str]) -> float:
        """Note a url export; returns the monotonic time at which it is staged."""
        ready = time.monotonic() + self.model.staging_seconds(len(files))
        with self._lock:
            self._exports[number] = {"ready": ready, "files": set(files), "open": bool(files)}
            self._change_open(+1 if files else 0)
        return ready

    def export_staged(self, number: int) -> bool:
        with self._lock:
            entry = self._exports.get(number)
            return entry is None or time.monotonic() >= entry["ready"]

    def export_finished_without_files(self, number: int) -> None:
        """A failed or expired export: no longer in flight."""
        with self._lock:
            entry = self._exports.get(number)
            if entry and entry["open"]:
                entry["open"] = False
                self._change_open(-1)

    def export_expired(self, number: int) -> bool:
        expiry = self.model.jsoc_export_expiry_seconds
        with self._lock:
            entry = self._exports.get(number)
        return entry is not None and expiry is not None and time.monotonic() > entry["ready"] + expiry

    def export_file_served(self, number: int, name: str) -> None:
        with self._lock:
            entry = self._exports.get(number)
            if not entry or not entry["open"]:
                return
            entry["files"].discard(name)
            if not entry["files"]:
                entry["open"] = False
                self._change_open(-1)

    def _change_open(self, delta: int) -> None:
        if delta:
            self.open_exports += delta
            self.peak_open_exports = max(self.peak_open_exports, self.open_exports)
            self.export_timeline.append((round(self._now(), 4), self.open_exports))

    # ------------------------------------------------------------------ summary
    def summary(self, timeline: bool = True) -> dict:
        """The model, the peaks, bytes per second and (with ``timeline``) every change of the counts."""
        with self._lock:
            seconds = sorted(self.bytes_per_second)
            total = sum(self.bytes_per_second.values())
            busy = (seconds[-1] - seconds[0] + 1) if seconds else 0
            out = {
                "model": self.model.as_json(),
                "elapsed_s": round(self._now(), 3),
                "requests": self.requests,
                "refused": self.refused,
                "peak_connections": self.peak_connections,
                "mean_connections": _time_weighted_mean(self.timeline),
                "bytes_sent": total,
                "busy_seconds": busy,
                "mean_bytes_per_second": total / busy if busy else 0.0,
                "peak_bytes_per_second": max(self.bytes_per_second.values(), default=0),
                "peak_open_exports": self.peak_open_exports,
            }
            if timeline:
                out["bytes_per_second"] = [[s, self.bytes_per_second[s]] for s in seconds]
                out["connections"] = [list(p) for p in self.timeline]
                out["open_exports"] = [list(p) for p in self.export_timeline]
        return out

    def write_stats(self) -> None:
        """Write :meth:`summary` to the stats file, when the meter has one."""
        if self.stats_path:
            tmp = self.stats_path + ".tmp"
            with open(tmp, "w") as stream:
                json.dump(self.summary(), stream)
            os.replace(tmp, self.stats_path)


def _time_weighted_mean(timeline: list[tuple[float, int]]) -> float:
    """Mean requests in progress from the first to the last change (0 when nothing was served)."""
    if len(timeline) < 2:
        return 0.0
    area = sum((t1 - t0) * count for (t0, count), (t1, _) in itertools.pairwise(timeline))
    span = timeline[-1][0] - timeline[0][0]
    return round(area / span, 3) if span > 0 and math.isfinite(area) else 0.0
