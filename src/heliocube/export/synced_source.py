"""Row-by-row reading of a synced experiment (``synced/{experiment}.h5``) for the exports, by channel name.

The exports never hold more than one frame per channel: :meth:`SyncedSource.frame` reads one row of one
product's ``(N, H, W)`` dataset (chunked one frame per chunk by the sync writer), as stored (float32, bit for bit).
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np

from ..h5xarray import read_column
from .channels import channel_names

__all__ = ["SyncedSource"]


def _utc_text(text: str) -> str | None:
    """The synced file's UTC time text with an explicit ``Z`` (None where absent)."""
    if not text:
        return None
    return text if text.endswith("Z") or "+" in text[10:] else f"{text}Z"


def _json_value(value: Any) -> Any:
    """A numpy scalar as a JSON-ready Python value (NaN as None: JSON has no NaN)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class SyncedSource:
    """An open synced file: its time axis, channels and per-row frames and metadata.

    Parameters
    ----------
    path : path-like
        A file written by :func:`heliocube.sync.write_synced`.

    Attributes
    ----------
    products : list of str
        Registry product names, in the file's order.
    channels : list of str
        Their export channel names (:func:`heliocube.export.channels.channel_name`), same order.
    times : numpy.ndarray
        ``datetime64[s]`` axis time of every row (UTC), ascending.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.file = h5py.File(self.path, "r")
        self.experiment = str(self.file.attrs.get("experiment", ""))
        self.products = [str(p) for p in self.file.attrs["products"]]
        self.channels = channel_names(self.products)
        self.product_of = dict(zip(self.channels, self.products, strict=True))
        self.times = np.asarray(read_column(self.file["time"]), dtype="datetime64[s]")
        self.previous_times = (np.asarray(read_column(self.file["previous_time"]), dtype="datetime64[s]")
                               if "previous_time" in self.file else None)
        self._metadata: dict[str, dict[str, np.ndarray]] = {}

    def __enter__(self) -> SyncedSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def __len__(self) -> int:
        return len(self.times)

    def rows_between(self, start: np.datetime64, end: np.datetime64) -> np.ndarray:
        """Indexes of the rows with ``start <= time < end``, ascending."""
        lo, hi = np.searchsorted(self.times, [np.datetime64(start, "s"), np.datetime64(end, "s")])
        return np.arange(lo, hi)

    def frame(self, channel: str, row: int) -> np.ndarray:
        """The stored frame (float32, NaN off-disk or where the product has no frame in this row)."""
        return self.file[self.product_of[channel]]["data"][int(row)]

    def frame_shape(self, channel: str) -> tuple[int, int]:
        return tuple(self.file[self.product_of[channel]]["data"].shape[1:])

    def _columns(self, channel: str) -> dict[str, np.ndarray]:
        # the per-row columns of one product, read once (a few bytes per row and column)
        if channel not in self._metadata:
            group = self.file[self.product_of[channel]]
            columns = {name: read_column(group[name]) for name in ("obs_time", "dt_seconds", "present")}
            columns.update({f"frames/{name}": read_column(column) for name, column in group["frames"].items()})
            if "previous" in group:
                columns["previous/obs_time"] = read_column(group["previous"]["obs_time"])
                frames = group["previous"]["frames"]
                if "record_id" in frames:
                    columns["previous/record_id"] = read_column(frames["record_id"])
            self._metadata[channel] = columns
        return self._metadata[channel]

    def row_metadata(self, channel: str, row: int) -> dict[str, Any]:
        """One channel's metadata of one row, JSON-ready.

        ``product``, ``obs_time``, ``dt_seconds`` (from the axis time), ``present``, ``record`` (record id) and
        ``sha256`` (of the raw file), ``header``: the frame's keyword columns the cube carries (upper-case names:
        WCS, ``EXPTIME``, ``RSUN_OBS``...), ``qc``: its quality metrics; for a running difference also
        ``previous`` (``obs_time``, ``record``) of the subtracted frame.
        """
        columns = self._columns(channel)
        get = {name: _json_value(values[row]) for name, values in columns.items()}
        frames = {name.split("/", 1)[1]: value for name, value in get.items() if name.startswith("frames/")}
        meta = {
            "product": self.product_of[channel],
            "obs_time": _utc_text(get["obs_time"]),
            "dt_seconds": get["dt_seconds"],
            "present": bool(get["present"]),
            "record": frames.get("record_id") or None,
            "sha256": frames.get("sha256") or None,
            "header": {k: v for k, v in frames.items() if k.isupper()},
            "qc": {k: v for k, v in frames.items() if k.startswith("qc_")},
        }
        if "previous/obs_time" in get:
            meta["previous"] = {"obs_time": _utc_text(get["previous/obs_time"]),
                                "record": get.get("previous/record_id") or None}
        return meta
