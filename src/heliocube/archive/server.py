"""The embedded archive's HTTP server: JSOC (``/cgi-bin/ajax/``, ``/SUM*``) and SDAC (``/sdac/``) on 127.0.0.1.

Routes
------
``/cgi-bin/ajax/jsoc_info?op=series_struct|rs_list|rs_summary``, ``/cgi-bin/ajax/jsoc_fetch?op=exp_request|exp_status``,
``/cgi-bin/ajax/checkAddress.sh``, ``/cgi-bin/ajax/show_series``: JSON as JSOC answers the drms client.
``/SUM{p}/D{k}/S00000/{file}`` and ``/SUM0/D{request}/S00000/{export file}``: FITS files.
``/sdac/...``: nginx-style autoindex listings, ``img_hdr.txt`` and files (HTTP Range supported).
``/hek/her?cmd=search&...``: a deterministic flare list in the HEK's JSON dialect (:mod:`.hek`).
``/health``: JSON with the mission's seed and frame size. ``/network``: the network meter's summary
(:mod:`heliocube.archive.network`; ``?timeline=1`` adds the counts over time). Anything else: 404.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import html
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from . import hek, jsoc, sdac
from .mission import SyntheticMission
from .network import NetworkMeter, NetworkModel

__all__ = ["FAULT_KINDS", "UNSAFE_NAMES", "ArchiveServer", "FaultConfig"]

#: Transient faults the server can inject.
FAULT_KINDS = ("http500", "http429", "slow", "truncate", "corrupt")
#: Names offered when ``FaultConfig.unsafe_names`` is on (a client must refuse to write them).
UNSAFE_NAMES = ("../../etc/x.fits", "/abs/path.fits")


@dataclasses.dataclass
class FaultConfig:
    """Transient faults injected into file and API requests.

    Parameters
    ----------
    rate : float
        Fraction of requests affected, decided from (seed, path+query, per-path request count): a retry of the
        same request draws again, so it can succeed.
    kinds : tuple of str
        Among :data:`FAULT_KINDS`; an affected request gets one of them (drawn the same way).
    slow_seconds : float
        Delay of a ``slow`` answer.
    retry_after : int
        Retry-After seconds of a 429.
    unsafe_names : bool
        Listings and export answers also offer :data:`UNSAFE_NAMES`.
    seed : int
        Seed of the fault draws.
    match : str, optional
        Only paths containing this substring are affected (e.g. ``"/sdac/"`` or ``"jsoc_fetch"``).
    """

    rate: float = 0.0
    kinds: tuple = ("http500",)
    slow_seconds: float = 1.0
    retry_after: int = 1
    unsafe_names: bool = False
    seed: int = 0
    match: str | None = None

    def __post_init__(self):
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose among {FAULT_KINDS}")
        self.kinds = tuple(self.kinds)


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


def _draw(*parts) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclasses.dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict = dataclasses.field(default_factory=dict)
    cut_at: int | None = None  # absolute offset in the full file after which nothing is sent (truncated files)
    sleep: float = 0.0
    fault: str | None = None
    reason: str | None = None  # the status line's text, when not the standard one

    @property
    def bytes_to_send(self) -> int:
        """Body bytes this answer sends (fewer than Content-Length when it is cut short on purpose)."""
        if self.cut_at is not None and self.cut_at < len(self.body):
            return max(self.cut_at, 0)
        return len(self.body)


class _Handler(BaseHTTPRequestHandler):
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
            response = _storage_failure(err, archive.access_log_path)
        if archive.meter is not None and response.status == 200 and response.bytes_to_send == len(response.body):
            archive.meter_file_served(split.path)  # before the body leaves, as the log: a client done can trust it
        try:
            self._send(response, head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: _Response, head: bool) -> int:
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


class ArchiveServer:
    """The embedded archive on a local port, serving a :class:`SyntheticMission`.

    Parameters
    ----------
    mission : SyntheticMission
        What to serve.
    host, port : str, int
        Bind address; port 0 picks a free one (see :attr:`url`).
    access_log_path : str, optional
        Every request is also appended there as one JSON line.
    faults : FaultConfig, optional
        Transient faults; may be replaced at runtime (``server.faults = FaultConfig(...)``).
    export_rules : heliocube.archive.jsoc.ExportRules, optional
        How export requests are answered (byte cap, pending answers, failures, per-address pending limit); may be
        replaced at runtime. ``export_log`` keeps every export answer's status and record count, and
        ``peak_pending_exports`` the most url exports of one address pending at once.
    network : heliocube.archive.network.NetworkModel, optional
        Latency, bandwidth, connection limit and export staging (:mod:`heliocube.archive.network`); None (the
        default) answers at once. ``meter`` then measures what was served; its summary is written to
        ``network_stats_path`` (JSON) when the server stops.
    """

    def __init__(
        self,
        mission: SyntheticMission,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log_path: str | os.PathLike | None = None,
        faults: FaultConfig | None = None,
        export_rules: jsoc.ExportRules | None = None,
        network: NetworkModel | None = None,
        network_stats_path: str | os.PathLike | None = None,
    ):
        self.mission = mission
        self.host, self.port = host, int(port)
        self.access_log_path = os.fspath(access_log_path) if access_log_path else None
        self.faults = faults or FaultConfig()
        self.export_rules = export_rules or jsoc.ExportRules()
        self.export_log: list[dict] = []
        self.peak_pending_exports = 0
        self._export_requests = 0
        self.access_log: list[dict] = []
        self.last_request = time.time()
        self._lock = threading.Lock()
        self._open = 0
        self._counts: dict[str, int] = {}
        self._exports: dict[str, dict] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.network = network
        self.meter = NetworkMeter(network, network_stats_path) if network is not None else None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ArchiveServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.archive = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="heliocube-archive", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = self._thread = None
        if self.meter is not None:
            self.meter.write_stats()

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL with a trailing slash, e.g. ``http://127.0.0.1:43210/``."""
        return f"http://{self.host}:{self.port}/"

    @property
    def jsoc_url(self) -> str:
        """Base of the JSOC CGIs (``cgi_baseurl`` of a drms ServerConfig)."""
        return self.url + "cgi-bin/ajax/"

    @property
    def sdac_url(self) -> str:
        """Base of the SDAC tree (the SDAC base URL of the configuration)."""
        return self.url + "sdac/"

    # ------------------------------------------------------------------ bookkeeping
    def _connection(self, delta: int) -> None:
        with self._lock:
            self._open += delta

    def _log(self, entry: dict) -> None:
        with self._lock:
            self.access_log.append(entry)
            self.last_request = time.time()
            if self.access_log_path:
                with open(self.access_log_path, "a") as stream:
                    stream.write(json.dumps(entry) + "\n")

    def meter_file_served(self, path: str) -> None:
        """Count an export file as served, whole (its export leaves flight once all its files have been)."""
        number = _export_number(path)
        if number is not None:
            self.meter.export_file_served(number, path.rsplit("/", 1)[-1])

    # ------------------------------------------------------------------ faults
    def _apply_faults(self, path: str, query: str, response: _Response) -> _Response:
        faults = self.faults
        if path in ("/health", "/cgi-bin/ajax/checkAddress.sh") or faults.rate <= 0 or not faults.kinds:
            return response
        if faults.match and faults.match not in path:
            return response
        key = path + "?" + query
        with self._lock:
            count = self._counts.get(key, 0)
            self._counts[key] = count + 1
        if _draw(faults.seed, key, count, "hit") >= faults.rate:
            return response
        kind = faults.kinds[int(_draw(faults.seed, key, count, "kind") * len(faults.kinds)) % len(faults.kinds)]
        if kind == "http500":
            return _Response(500, b"internal server error (injected fault)\n", "text/plain", fault=kind)
        if kind == "http429":
            return _Response(
                429,
                b"too many requests (injected fault)\n",
                "text/plain",
                {"Retry-After": str(faults.retry_after)},
                fault=kind,
            )
        if kind == "slow":
            response.sleep, response.fault = faults.slow_seconds, kind
            return response
        if kind == "truncate":
            response.cut_at, response.fault = len(response.body) // 2, kind
            return response
        garbage = hashlib.shake_256(key.encode() + str(count).encode()).digest(max(len(response.body), 16))
        response.body, response.fault, response.status = garbage, kind, 200
        return response

    # ------------------------------------------------------------------ routing
    def _route(self, path: str, query: str, headers) -> _Response:
        path = unquote(path)
        if ".." in path.split("/") or "\\" in path or "\x00" in path or "//" in path:
            return _not_found()
        params = dict(parse_qsl(query, keep_blank_values=True))
        if path == "/health":
            answer = {"status": "ok", "seed": self.mission.seed, "frame_size": self.mission.frame_size}
            return _json(answer if self.network is None else {**answer, "network": self.network.as_json()})
        if path == "/network":
            return _json(self.meter.summary(timeline=params.get("timeline") == "1") if self.meter else {"model": None})
        if path.startswith("/cgi-bin/ajax/"):
            return self._jsoc(path[len("/cgi-bin/ajax/") :], params)
        if path.startswith("/SUM"):
            if self.meter is not None and self.meter.export_expired(_export_number(path)):
                return _not_found()
            found = jsoc.resolve_sums_path(self.mission, path)
            if found is None:
                return _not_found()
            # /SUM{p}/...: the archive's own segment file (as-is); /SUM0/...: a url/fits export with full headers
            return self._file(*found, headers, minimal_header=not path.startswith("/SUM0/"))
        if path == "/sdac" or path.startswith("/sdac/"):
            return self._sdac(path[len("/sdac/") :], headers)
        if path == "/hek/her":
            try:
                return _json(hek.search(self.mission.seed, params))
            except hek.HEKQueryError as err:
                return _Response(400, json.dumps({"error": str(err)}).encode(), "application/json")
        return _not_found()

    def _jsoc(self, cgi: str, params: dict) -> _Response:
        mission = self.mission
        try:
            if cgi == "checkAddress.sh":
                return _json({"status": 2, "msg": "Address registered (heliocube embedded archive)"})
            if cgi in ("show_series", "showextseries"):
                names = [
                    {"name": s, "primekeys": ",".join(e["primekeys"]), "note": f"synthetic {s}"}
                    for s, e in mission.jsoc_series.items()
                ]
                return _json({"names": names, "n": len(names), "status": 0})
            if cgi == "jsoc_info":
                op = params.get("op")
                if op == "series_struct":
                    return _json(jsoc.series_struct(mission, params.get("ds", "").split("[")[0]))
                if op == "rs_list":
                    return _json(jsoc.rs_list(mission, params))
                if op == "rs_summary":
                    return _json(jsoc.rs_summary(mission, params))
                return _json({"status": 1, "error": f"unsupported op {op!r}"})
            if cgi == "jsoc_fetch":
                op = params.get("op")
                if op == "exp_request":
                    return _json(self._export_request(params))
                if op == "exp_status":
                    return _json(self._export_status(params.get("requestid", "")))
                return _json({"status": 4, "error": f"unsupported op {op!r}"})
        except jsoc.RecordSetError as err:
            return _json({"status": 1, "error": str(err)})
        return _not_found()

    def _export_data(self, params: dict, name_of) -> tuple[list[dict], int]:
        parsed = jsoc.parse_recordset(self.mission, params.get("ds", ""))
        data, size = [], 0
        for series, rows, segments in parsed:
            segment = segments[0] if segments else self.mission.jsoc_series[series]["segment"]
            for row in rows.to_dict("records"):
                data.append({"record": f"{row['record_id']}{{{segment}}}", "filename": name_of(row, segment)})
                size += int(row["size"])
        n = params.get("n")
        if n not in (None, ""):
            data = data[: int(n)] if int(n) >= 0 else data[int(n) :]
        if self.faults.unsafe_names:
            data += [{"record": f"unsafe[{i}]", "filename": name} for i, name in enumerate(UNSAFE_NAMES)]
        return data, size

    def _export_request(self, params: dict) -> dict:
        answer, records = self._export_answer(params)
        with self._lock:
            self.export_log.append({"op": "exp_request", "status": answer["status"], "records": records,
                                    "requestid": answer.get("requestid", ""), "ds": params.get("ds", "")})
        return answer

    def _export_answer(self, params: dict) -> tuple[dict, int]:
        """The answer to ``exp_request`` and the number of records it named."""
        method = params.get("method", "url_quick").lower()
        protocol = params.get("protocol", "as-is").lower()
        rules = self.export_rules
        with self._lock:
            self._export_requests += 1
            fails = self._export_requests <= rules.fail_first or bool(
                rules.fail_match and rules.fail_match in params.get("ds", ""))
            expires = rules.fail_first < self._export_requests <= rules.fail_first + rules.expire_first
        if method == "url_quick" and protocol == "as-is":
            data, size = self._export_data(params, lambda row, seg: jsoc.sums_path(self.mission, row))
            if rules.max_bytes is not None and size > rules.max_bytes:
                return jsoc.too_large_answer(method, protocol, len(data), size, rules.max_bytes), len(data)
            if fails:
                return jsoc.failed_answer(), len(data)
            return {
                "status": 0,
                "requestid": "",
                "method": "url_quick",
                "protocol": "as-is",
                "wait": 0,
                "rcount": len(data),
                "count": len(data),
                "size": size // 2**20,
                "dir": "",
                "data": data,
            }, len(data)
        if method not in ("url", "url_quick"):
            return {"status": 4, "error": f"method {method!r} is not supported by the embedded archive"}, 0
        data, size = self._export_data(params, lambda row, seg: jsoc.export_filename(self.mission, row, seg))
        if rules.max_bytes is not None and size > rules.max_bytes:
            return jsoc.too_large_answer("url", protocol, len(data), size, rules.max_bytes), len(data)
        notify = params.get("notify", "")
        with self._lock:
            pending = [rid for rid, entry in self._exports.items() if entry["pending"] and entry["notify"] == notify]
            if rules.max_pending is not None and len(pending) >= rules.max_pending:
                return jsoc.busy_answer(notify, pending), len(data)
            number = len(self._exports) + 1
            requestid = f"JSOC_{dt.datetime.now(dt.UTC):%Y%m%d}_{number:03d}"
            self._exports[requestid] = {"data": data, "size": size, "polls": 0, "number": number, "protocol": protocol,
                                        "notify": notify, "pending": True, "fails": fails, "expires": expires}
            if self.meter is not None:
                self.meter.export_requested(number, [entry["filename"] for entry in data])
            self.peak_pending_exports = max(self.peak_pending_exports, len(pending) + 1)
        return {
            "status": 2,
            "requestid": requestid,
            "method": "url",
            "protocol": protocol,
            "wait": 0,
            "rcount": len(data),
            "size": size // 2**20,
        }, len(data)

    def _export_status(self, requestid: str) -> dict:
        answer = self._export_status_answer(requestid)
        with self._lock:
            self.export_log.append({"op": "exp_status", "status": answer["status"], "requestid": requestid})
        return answer

    def _export_status_answer(self, requestid: str) -> dict:
        with self._lock:
            request = self._exports.get(requestid)
            if request is None:
                return {"status": 6, "requestid": requestid, "error": "request not found"}
            request["polls"] += 1
            polls = request["polls"]
            finished = polls > self.export_rules.pending_polls and (
                self.meter is None or self.meter.export_staged(request["number"]))
            if finished:  # done or failed: no longer pending for its address
                request["pending"] = False
        if finished and (request["fails"] or request["expires"]) and self.meter is not None:
            self.meter.export_finished_without_files(request["number"])
        common = {
            "requestid": requestid,
            "method": "url",
            "protocol": request["protocol"].upper(),
            "wait": 0,
            "size": request["size"] // 2**20,
        }
        if not finished:
            return {"status": 1, **common}
        if request["fails"]:
            return {**common, **jsoc.failed_answer(requestid)}
        if request["expires"]:
            return {**common, **jsoc.expired_answer(requestid)}
        return {
            "status": 0,
            **common,
            "dir": f"/SUM0/D{request['number']}/S00000",
            "count": len(request["data"]),
            "keywords": "",
            "tarfile": "",
            "data": request["data"],
        }

    def _file(self, product: str, level: str, record_id: str, headers, minimal_header: bool = False) -> _Response:
        try:
            row = self.mission.lookup(record_id, product=product, level=level)
            blob = self.mission.render_fits(product, record_id, level=level, minimal_header=minimal_header)
        except KeyError:
            return _not_found()
        cut = len(blob) // 2 if row["truncated"] else None
        response = _Response(200, blob, "application/fits", {"Accept-Ranges": "bytes"}, cut_at=cut)
        spec = headers.get("Range") if headers is not None else None
        if spec and spec.startswith("bytes="):
            first, _, last = spec[6:].split(",")[0].strip().partition("-")
            total = len(blob)
            try:
                if first == "":
                    start, end = max(total - int(last), 0), total - 1
                else:
                    start, end = int(first), min(int(last), total - 1) if last else total - 1
            except ValueError:
                return response
            if start >= total or start > end:
                return _Response(416, b"", "text/plain", {"Content-Range": f"bytes */{total}"})
            response.status, response.body = 206, blob[start : end + 1]
            response.headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            response.cut_at = None if cut is None or cut > end else max(cut - start, 0)
        return response

    def _sdac(self, path: str, headers) -> _Response:
        mission = self.mission
        if path == "" or path.endswith("/"):
            entries = sdac.list_directory(mission, path)
            if entries is None:
                return _not_found()
            return _Response(200, _autoindex("/sdac/" + path, entries, self.faults.unsafe_names).encode(), "text/html")
        if path.endswith("/img_hdr.txt"):
            text = sdac.directory_index(mission, path.rsplit("/", 1)[0])
            return (
                _not_found()
                if text is None
                else _Response(200, text.encode(), "text/plain", {"Accept-Ranges": "bytes"})
            )
        try:
            row = mission.lookup(path)
        except KeyError:
            if sdac.list_directory(mission, path) is not None:
                return _Response(301, b"", "text/html", {"Location": "/sdac/" + path + "/"})
            return _not_found()
        return self._file(row["product"], row["level"], path, headers)


#: Paths outside the network model (never delayed, limited or metered): the workflow's and the bench's own checks.
_UNMETERED = ("/health", "/network")


def _network_refusal(model: NetworkModel) -> _Response:
    """The answer beyond the model's connection limit: 429 (or 503) with Retry-After."""
    return _Response(model.refuse_status, b"too many connections (embedded archive network model)\n", "text/plain",
                     {"Retry-After": f"{model.retry_after_seconds:g}"})


def _export_number(path: str) -> int | None:
    """The export number of a ``/SUM0/D{number}/...`` path (None for any other)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "SUM0" and parts[2][1:].isdigit():
        return int(parts[2][1:])
    return None


def _storage_failure(err: OSError, path: str | None) -> _Response:
    """507 Insufficient Storage naming why the archive could not record a request (its access log is the evidence
    the tests and the demo read, so a request it cannot log is refused rather than served unrecorded)."""
    where = f" while writing {err.filename or path}" if err.filename or path else ""
    text = f"embedded archive: {err.strerror or err}{where}"
    with contextlib.suppress(OSError):  # into the archive's own log, when there is room for it
        print(text, file=sys.stderr, flush=True)
    phrase = "".join(ch if " " <= ch <= "~" else "?" for ch in text)  # a status line is one line of latin-1
    return _Response(507, (text + "\n").encode(), "text/plain", {"Connection": "close"},
                     reason=f"Insufficient Storage ({phrase})")


def _json(payload: dict) -> _Response:
    return _Response(200, json.dumps(payload).encode("latin-1", "replace"), "application/json")


def _not_found() -> _Response:
    return _Response(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html")


def _autoindex(path: str, entries, unsafe: bool) -> str:
    """An nginx ``autoindex on`` page: name padded to 50 columns, ``dd-Mon-YYYY HH:MM``, size or ``-``."""
    lines = [
        f"<html>\n<head><title>Index of {html.escape(path)}</title></head>\n<body>\n"
        f'<h1>Index of {html.escape(path)}</h1><hr><pre><a href="../">../</a>\n'
    ]
    items = [
        (e.name + ("/" if e.size is None else ""), e.mtime, "-" if e.size is None else str(e.size)) for e in entries
    ]
    if unsafe:
        items += [(name, dt.datetime(2000, 1, 1), "2880") for name in UNSAFE_NAMES]
    for name, mtime, size in items:
        shown = name if len(name) <= 50 else name[:47] + "..>"
        lines.append(
            f'<a href="{html.escape(name)}">{html.escape(shown)}</a>{" " * (51 - len(shown))}'
            f"{mtime:%d-%b-%Y %H:%M} {size:>19}\n"
        )
    lines.append("</pre><hr></body>\n</html>\n")
    return "".join(lines)
