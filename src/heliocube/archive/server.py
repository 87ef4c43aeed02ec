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

import json
import os
import threading
import time
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote

from . import hek, jsoc, sdac
from .exports import JsocExports, export_number
from .faults import FAULT_KINDS, UNSAFE_NAMES, FaultConfig, apply_faults
from .handler import Handler
from .mission import SyntheticMission
from .network import NetworkMeter, NetworkModel
from .responses import Response, autoindex, json_response, not_found

__all__ = ["FAULT_KINDS", "UNSAFE_NAMES", "ArchiveServer", "FaultConfig"]


class ArchiveServer(JsocExports):
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
        self._lasting_exports = 0
        self._files_left: dict[int, int] = {}  # export number -> its files answered before the rest expire
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
        httpd = ThreadingHTTPServer((self.host, self.port), Handler)
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

    # ------------------------------------------------------------------ faults
    def _apply_faults(self, path: str, query: str, response: Response) -> Response:
        return apply_faults(self.faults, self._counts, self._lock, path, query, response)

    # ------------------------------------------------------------------ routing
    def _route(self, path: str, query: str, headers) -> Response:
        path = unquote(path)
        if ".." in path.split("/") or "\\" in path or "\x00" in path or "//" in path:
            return not_found()
        params = dict(parse_qsl(query, keep_blank_values=True))
        if path == "/health":
            answer = {"status": "ok", "seed": self.mission.seed, "frame_size": self.mission.frame_size}
            return json_response(answer if self.network is None else {**answer, "network": self.network.as_json()})
        if path == "/network":
            summary = self.meter.summary(timeline=params.get("timeline") == "1") if self.meter else {"model": None}
            return json_response(summary)
        if path.startswith("/cgi-bin/ajax/"):
            return self._jsoc(path[len("/cgi-bin/ajax/") :], params)
        if path.startswith("/SUM"):
            if self.meter is not None and self.meter.export_expired(export_number(path)):
                return not_found()
            if self._export_files_expired(export_number(path)):
                return not_found()
            found = jsoc.resolve_sums_path(self.mission, path)
            if found is None:
                return not_found()
            # /SUM{p}/...: the archive's own segment file (as-is); /SUM0/...: a url/fits export with full headers
            return self._file(*found, headers, minimal_header=not path.startswith("/SUM0/"))
        if path == "/sdac" or path.startswith("/sdac/"):
            return self._sdac(path[len("/sdac/") :], headers)
        if path == "/hek/her":
            try:
                return json_response(hek.search(self.mission.seed, params))
            except hek.HEKQueryError as err:
                return Response(400, json.dumps({"error": str(err)}).encode(), "application/json")
        return not_found()

    def _jsoc(self, cgi: str, params: dict) -> Response:
        mission = self.mission
        try:
            if cgi == "checkAddress.sh":
                return json_response({"status": 2, "msg": "Address registered (heliocube embedded archive)"})
            if cgi in ("show_series", "showextseries"):
                names = [
                    {"name": s, "primekeys": ",".join(e["primekeys"]), "note": f"synthetic {s}"}
                    for s, e in mission.jsoc_series.items()
                ]
                return json_response({"names": names, "n": len(names), "status": 0})
            if cgi == "jsoc_info":
                op = params.get("op")
                if op == "series_struct":
                    return json_response(jsoc.series_struct(mission, params.get("ds", "").split("[")[0]))
                if op == "rs_list":
                    return json_response(jsoc.rs_list(mission, params))
                if op == "rs_summary":
                    return json_response(jsoc.rs_summary(mission, params))
                return json_response({"status": 1, "error": f"unsupported op {op!r}"})
            if cgi == "jsoc_fetch":
                op = params.get("op")
                if op == "exp_request":
                    return json_response(self._export_request(params))
                if op == "exp_status":
                    return json_response(self._export_status(params.get("requestid", "")))
                return json_response({"status": 4, "error": f"unsupported op {op!r}"})
        except jsoc.RecordSetError as err:
            return json_response({"status": 1, "error": str(err)})
        return not_found()


    def _file(self, product: str, level: str, record_id: str, headers, minimal_header: bool = False) -> Response:
        try:
            row = self.mission.lookup(record_id, product=product, level=level)
            blob = self.mission.render_fits(product, record_id, level=level, minimal_header=minimal_header)
        except KeyError:
            return not_found()
        cut = len(blob) // 2 if row["truncated"] else None
        response = Response(200, blob, "application/fits", {"Accept-Ranges": "bytes"}, cut_at=cut)
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
                return Response(416, b"", "text/plain", {"Content-Range": f"bytes */{total}"})
            response.status, response.body = 206, blob[start : end + 1]
            response.headers["Content-Range"] = f"bytes {start}-{end}/{total}"
            response.cut_at = None if cut is None or cut > end else max(cut - start, 0)
        return response

    def _sdac(self, path: str, headers) -> Response:
        mission = self.mission
        if path == "" or path.endswith("/"):
            entries = sdac.list_directory(mission, path)
            if entries is None:
                return not_found()
            unsafe = UNSAFE_NAMES if self.faults.unsafe_names else ()
            return Response(200, autoindex("/sdac/" + path, entries, unsafe).encode(), "text/html")
        if path.endswith("/img_hdr.txt"):
            text = sdac.directory_index(mission, path.rsplit("/", 1)[0])
            return (
                not_found()
                if text is None
                else Response(200, text.encode(), "text/plain", {"Accept-Ranges": "bytes"})
            )
        try:
            row = mission.lookup(path)
        except KeyError:
            if sdac.list_directory(mission, path) is not None:
                return Response(301, b"", "text/html", {"Location": "/sdac/" + path + "/"})
            return not_found()
        return self._file(row["product"], row["level"], path, headers)

