"""The embedded archive's answers: one :class:`Response` per request, and the common ones (JSON, 404, 507, an
nginx-style directory listing)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import json
import sys

__all__ = ["Response", "autoindex", "json_response", "not_found", "storage_failure"]



@dataclasses.dataclass
class Response:
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


def storage_failure(err: OSError, path: str | None) -> Response:
    """507 Insufficient Storage naming why the archive could not record a request (its access log is the evidence
    the tests and the demo read, so a request it cannot log is refused rather than served unrecorded)."""
    where = f" while writing {err.filename or path}" if err.filename or path else ""
    text = f"embedded archive: {err.strerror or err}{where}"
    with contextlib.suppress(OSError):  # into the archive's own log, when there is room for it
        print(text, file=sys.stderr, flush=True)
    phrase = "".join(ch if " " <= ch <= "~" else "?" for ch in text)  # a status line is one line of latin-1
    return Response(507, (text + "\n").encode(), "text/plain", {"Connection": "close"},
                     reason=f"Insufficient Storage ({phrase})")


def json_response(payload: dict) -> Response:
    return Response(200, json.dumps(payload).encode("latin-1", "replace"), "application/json")


def not_found() -> Response:
    return Response(404, b"<html><body><h1>404 Not Found</h1></body></html>\n", "text/html")


def autoindex(path: str, entries, unsafe_names=()) -> str:
    """An nginx ``autoindex on`` page: name padded to 50 columns, ``dd-Mon-YYYY HH:MM``, size or ``-``."""
    lines = [
        f"<html>\n<head><title>Index of {html.escape(path)}</title></head>\n<body>\n"
        f'<h1>Index of {html.escape(path)}</h1><hr><pre><a href="../">../</a>\n'
    ]
    items = [
        (e.name + ("/" if e.size is None else ""), e.mtime, "-" if e.size is None else str(e.size)) for e in entries
    ]
    items += [(name, dt.datetime(2000, 1, 1), "2880") for name in unsafe_names]
    for name, mtime, size in items:
        shown = name if len(name) <= 50 else name[:47] + "..>"
        lines.append(
            f'<a href="{html.escape(name)}">{html.escape(shown)}</a>{" " * (51 - len(shown))}'
            f"{mtime:%d-%b-%Y %H:%M} {size:>19}\n"
        )
    lines.append("</pre><hr></body>\n</html>\n")
    return "".join(lines)
