"""The embedded archive's HTTP request handler: the network model's admission, latency and paced body around
:meth:`heliocube.archive.server.ArchiveServer._route`, and the access log's entries."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from .network import NetworkModel
from .responses import Response, storage_failure

__all__ = ["Handler"]


#: Query parameters that carry the user's JSOC email or its local part (checkAddress, exp_request): masked in
#: the access log, which the demo keeps under the output root.
_PRIVATE_PARAMETERS = ("address", "notify", "requester")


def _masked(query: str) -> str:
    """The query string with the email-carrying parameters' values replaced by ``***``."""
    if not any(name + "=" in query for name in _PRIVATE_PARAMETERS):
        return query
    parts = []
    for part in query.split("&"):
        name, sep, _ = part.partition("=")
        parts.append(f"{name}{sep}***" if name in _PRIVATE_PARAMETERS and sep else part)
    return "&".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "heliocube-archive/1"

    def setup(self):
        super().setup()
        self.server.archive._connection(+1)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.archive._connection(-1)

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._serve(head=False)

    def do_HEAD(self):
        self._serve(head=True)

    def _serve(self, head: bool):
        archive = self.server.archive
        if archive.network is None or urlsplit(self.path).path in _UNMETERED:
            return self._serve_admitted(head)
        started = time.monotonic()
        if not archive.meter.admit():  # over the connection limit: refused, after the round trip
            archive.network.wait_latency(started)
            refusal = _network_refusal(archive.network)
            archive._log({"time": time.time(), "method": self.command, "path": urlsplit(self.path).path,
                          "query": "", "status": refusal.status, "bytes": 0, "duration_s": 0.0,
                          "open_connections": archive._open, "range": None})
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(refusal, head)
            return
        # The request stops counting just before its last bytes leave (see _send): a client that has read its
        # whole answer and asks again at once must find its slot free, or equal client and server caps race.
        self._release = _once(archive.meter.release)
        try:
            self._serve_admitted(head, started)
        finally:
            self._release()
            self._release = None

    def _serve_admitted(self, head: bool, started_monotonic: float | None = None):
        archive = self.server.archive
        started, open_now = time.time(), archive._open
        split = urlsplit(self.path)
        entry = {"time": started, "method": self.command, "path": split.path, "query": _masked(split.query),
                 "status": 500, "bytes": 0, "duration_s": 0.0, "open_connections": open_now,
                 "range": self.headers.get("Range")}
        try:
            response = archive._route(split.path, split.query, self.headers)
            response = archive._apply_faults(split.path, split.query, response)
        except Exception:
            archive._log(entry)
            raise
        if response.sleep:  # a "slow" fault: the wait counts in the logged duration
            time.sleep(response.sleep)
        if started_monotonic is not None:
            archive.network.wait_latency(started_monotonic)
        # Log before the body leaves: a client that has read its answer can trust the log to hold the request.
        entry.update(status=response.status, bytes=0 if head else response.bytes_to_send,
                     duration_s=round(time.time() - started, 6))
        try:
            archive._log(entry)
        except OSError as err:  # e.g. the output disk is full: say so to the client rather than drop the line
            response = storage_failure(err, archive.access_log_path)
        if archive.meter is not None and response.status == 200 and response.bytes_to_send == len(response.body):
            archive.meter_file_served(split.path)  # before the body leaves, as the log: a client done can trust it
        try:
            self._send(response, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: Response, head: bool) -> int:
        body = response.body
        self.send_response(response.status, response.reason)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        limit = len(body)
        if response.cut_at is not None and response.cut_at < len(body):
            limit = max(response.cut_at, 0)
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return 0
        archive = self.server.archive
        release = getattr(self, "_release", None)
        if archive.meter is not None:
            archive.network.write(self.wfile, body[:limit], archive.meter, before_last=release)
        else:
            self.wfile.write(body[:limit])
        self.wfile.flush()
        return limit


def _once(action):
    """``action`` as a callable that acts on its first call only."""
    done = threading.Event()

    def call():
        if not done.is_set():
            done.set()
            action()
    return call



#: Paths outside the network model (never delayed, limited or metered): the workflow's and the bench's own checks.
_UNMETERED = ("/health", "/network")


def _network_refusal(model: NetworkModel) -> Response:
    """The answer beyond the model's connection limit: 429 (or 503) with Retry-After."""
    return Response(model.refuse_status, b"too many connections (embedded archive network model)\n", "text/plain",
                     {"Retry-After": f"{model.retry_after_seconds:g}"})

