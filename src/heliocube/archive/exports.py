"""The embedded JSOC's export desk: ``jsoc_fetch?op=exp_request|exp_status`` under the server's
:class:`~heliocube.archive.jsoc.ExportRules` and network model (staging, expiry), and what it records of them."""

from __future__ import annotations

import datetime as dt

from . import export_rules, jsoc
from .faults import UNSAFE_NAMES

__all__ = ["JsocExports", "export_number"]


class JsocExports:
    """The export requests and status checks of :class:`heliocube.archive.server.ArchiveServer` (a mixin: the
    server holds the state, ``_exports``, ``export_log``, ``peak_pending_exports``...)."""

    def meter_file_served(self, path: str) -> None:
        """Count an export file as served, whole (its export leaves flight once all its files have been)."""
        number = export_number(path)
        if number is not None:
            self.meter.export_file_served(number, path.rsplit("/", 1)[-1])

    def _export_files_expired(self, number: int | None) -> bool:
        """Whether export ``number``'s files are gone by :class:`ExportRules` ``expire_downloading_first``; counts
        the request as one of those answered when they are not."""
        with self._lock:
            left = self._files_left.get(number)
            if left is not None:
                self._files_left[number] = left - 1
        return left is not None and left <= 0


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
                return export_rules.too_large_answer(method, protocol, len(data), size, rules.max_bytes), len(data)
            if fails:
                return export_rules.failed_answer(), len(data)
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
            return export_rules.too_large_answer("url", protocol, len(data), size, rules.max_bytes), len(data)
        notify = params.get("notify", "")
        with self._lock:
            pending = [rid for rid, entry in self._exports.items() if entry["pending"] and entry["notify"] == notify]
            if rules.max_pending is not None and len(pending) >= rules.max_pending:
                return export_rules.busy_answer(notify, pending), len(data)
            number = len(self._exports) + 1
            requestid = f"JSOC_{dt.datetime.now(dt.UTC):%Y%m%d}_{number:03d}"
            self._exports[requestid] = {"data": data, "size": size, "polls": 0, "number": number, "protocol": protocol,
                                        "notify": notify, "pending": True, "fails": fails, "expires": expires}
            if not (fails or expires):  # an export that stages: its files may expire while they download
                self._lasting_exports += 1
                if self._lasting_exports <= rules.expire_downloading_first:  # after files_before_expiry answers
                    self._files_left[number] = rules.files_before_expiry
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
            return {**common, **export_rules.failed_answer(requestid)}
        if request["expires"]:
            return {**common, **export_rules.expired_answer(requestid)}
        return {
            "status": 0,
            **common,
            "dir": f"/SUM0/D{request['number']}/S00000",
            "count": len(request["data"]),
            "keywords": "",
            "tarfile": "",
            "data": request["data"],
        }


def export_number(path: str) -> int | None:
    """The export number of a ``/SUM0/D{number}/...`` path (None for any other)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "SUM0" and parts[2][1:].isdigit():
        return int(parts[2][1:])
    return None

