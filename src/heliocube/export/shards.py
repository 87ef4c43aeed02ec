"""WebDataset shards of a synced experiment, named as SDOML-lite names them, byte-identical on every rerun.

Layout under ``{root}/exports/{experiment}/shards/``::

    2010-10-15.tar       one tar per period (default one day), named by the period's first day, holding per row
                         (sample) of the synced file, in time order:
        2010/10/15/0000.AIA_0171.npy   one float32 (or float16) frame per channel, as ``numpy.save`` writes it
        2010/10/15/0000.HMI_M.npy      (channel names: :mod:`heliocube.export.channels`)
        2010/10/15/0000.json           times and per-channel metadata (:func:`sample_metadata`)
    2010-10.index.json   the month's shards, their sample counts, sizes and sha256 (one per shard job)
    index.json           {"shards": {"2010-10-15.tar": 4, ...}, "channels": [...], "dtype": "float32",
                         "n_samples", "bytes", "sha256", "shapes", "period_days"}

The webdataset key of a sample is ``YYYY/MM/DD/HHMM`` (the axis time), so rows must be at least a minute apart.
Periods start on the first of each month (days 1-7, 8-14... for ``period_days=7``), so a shard never spans two
months and one job per experiment-month writes its month's shards. A period of the range without synced rows
still gets its (empty) tar, as Snakemake expects every declared output, and a count of 0 in the index.

Tars are deterministic: members in time then channel order, each with the sample's axis time as mtime, uid and gid
0, no user or group names, mode 0644; written under a hidden temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import tarfile
from pathlib import Path

import numpy as np

from ..fetch.download import sha256_of
from ..paths import atomic_path
from .periods import month_shard_days, shard_name
from .synced_source import SyncedSource

__all__ = [
    "INDEX_NAME",
    "merge_shard_index",
    "month_shard_days",
    "read_shards",
    "sample_key",
    "sample_metadata",
    "shard_name",
    "write_month_shards",
    "write_shard",
]

log = logging.getLogger(__name__)
INDEX_NAME = "index.json"
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _period_end(day: dt.date, period_days: int) -> dt.date:
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return min(day + dt.timedelta(days=period_days), next_month)


def sample_key(time: np.datetime64) -> str:
    """``YYYY/MM/DD/HHMM`` of an axis time (the webdataset key of its sample)."""
    return dt.datetime.fromisoformat(str(np.datetime64(time, "s"))).strftime("%Y/%m/%d/%H%M")


def _iso(time: np.datetime64) -> str | None:
    return None if np.isnat(time) else f"{np.datetime64(time, 's')}Z"


def sample_metadata(source: SyncedSource, row: int) -> dict:
    """The ``.json`` member of a sample: key, experiment, ``time`` (ISO UTC with ``Z``), ``previous_time`` (running
    differences), ``channels`` (in order) and ``frames``: per channel :meth:`SyncedSource.row_metadata`."""
    meta = {"key": sample_key(source.times[row]), "experiment": source.experiment, "time": _iso(source.times[row])}
    if source.previous_times is not None:
        meta["previous_time"] = _iso(source.previous_times[row])
    meta["channels"] = list(source.channels)
    meta["frames"] = {channel: source.row_metadata(channel, row) for channel in source.channels}
    return meta


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(payload))


def _as_float16(frame: np.ndarray, where: str) -> np.ndarray:
    half = frame.astype(np.float16)
    overflow = int(np.count_nonzero(np.isfinite(frame) & ~np.isfinite(half)))
    underflow = int(np.count_nonzero((frame != 0) & (half == 0)))
    if overflow or underflow:
        # float16 holds |x| <= 65504 and loses |x| < 6e-8 (LASCO brightness is ~1e-11: export it as float32)
        log.warning("%s: float16 turned %d pixels into infinities and %d into zeros", where, overflow, underflow)
    return half


def write_shard(source: SyncedSource, rows: np.ndarray, path: str | os.PathLike, *, float16: bool = False) -> int:
    """Write the samples of ``rows`` of ``source`` into the tar ``path`` (atomically); return their number.

    Raises
    ------
    ValueError
        When two rows share a key (axis times less than a minute apart).
    """
    keys = [sample_key(source.times[row]) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: rows less than a minute apart share a YYYY/MM/DD/HHMM key")
    with atomic_path(path) as temp, tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
        for row, key in zip(rows, keys, strict=True):
            mtime = int(np.datetime64(source.times[row], "s").astype(np.int64))
            for channel in source.channels:
                frame = source.frame(channel, row)
                if float16:
                    frame = _as_float16(frame, f"{key}.{channel}")
                _add_member(tar, f"{key}.{channel}.npy", _npy_bytes(frame), mtime)
            payload = json.dumps(sample_metadata(source, int(row)), sort_keys=False).encode()
            _add_member(tar, f"{key}.json", payload, mtime)
    return len(rows)


def write_month_shards(synced_path: str | os.PathLike, index_path: str | os.PathLike, shard_names: list[str], *,
                       period_days: int = 1, float16: bool = False) -> dict:
    """Write one experiment-month's shards beside its index part ``{YYYY-MM}.index.json``, then the part.

    Parameters
    ----------
    synced_path : path-like
        ``synced/{experiment}.h5``.
    index_path : path-like
        ``shards/{YYYY-MM}.index.json``, written last: ``{"shards": {name: samples}, "bytes": {name: size},
        "sha256": {name: digest}, "channels", "dtype", "period_days", "shapes"}``. Snakemake cannot declare a list
        of outputs that depends on the config without a checkpoint, so the rule declares this part and the part
        names the tars.
    shard_names : list of str
        ``YYYY-MM-DD.tar`` of the month (:func:`~heliocube.export.periods.month_shard_days`): each holds the rows
        from its day for ``period_days`` days, never past the month's end. Other tars of the month in the
        directory (left by another period or a longer range) are removed.
    period_days : int
        Length of a period.
    float16 : bool
        Store frames as float16 (half the size; see :func:`_as_float16` for what it cannot hold).

    Returns
    -------
    dict
        The index part written.
    """
    index_path = Path(index_path)
    month = index_path.name.removesuffix(".index.json")
    counts, sizes, digests = {}, {}, {}
    with SyncedSource(synced_path) as source:
        for name in shard_names:
            day = dt.date.fromisoformat(name.removesuffix(".tar"))
            if f"{day:%Y-%m}" != month:
                raise ValueError(f"shard {name} is not of the month {month}")
            rows = source.rows_between(np.datetime64(day), np.datetime64(_period_end(day, period_days)))
            path = index_path.parent / name
            counts[name] = write_shard(source, rows, path, float16=float16)
            sizes[name], digests[name] = path.stat().st_size, sha256_of(path)
        part = {"experiment": source.experiment, "channels": list(source.channels),
                "dtype": "float16" if float16 else "float32", "period_days": int(period_days),
                "shapes": {c: list(source.frame_shape(c)) for c in source.channels},
                "shards": counts, "bytes": sizes, "sha256": digests}
    for stale in index_path.parent.glob(f"{month}-[0-3][0-9].tar"):
        if stale.name not in counts:
            stale.unlink()
    with atomic_path(index_path) as temp:
        Path(temp).write_text(json.dumps(part, indent=1) + "\n")
    return part


def merge_shard_index(part_paths: list[str | os.PathLike], index_path: str | os.PathLike) -> dict:
    """Join the months' index parts into ``index.json`` (shards in time order, total samples).

    Raises
    ------
    ValueError
        When parts disagree on channels, dtype or period (written under different settings), or a shard a part
        names is missing or has another size (remove that month's part to have it rewritten).
    """
    shards: dict[str, int] = {}
    sizes: dict[str, int] = {}
    digests: dict[str, str] = {}
    common = None
    for path in map(Path, part_paths):
        part = json.loads(path.read_text())
        settings = {k: part[k] for k in ("experiment", "channels", "dtype", "period_days", "shapes")}
        if common is not None and settings != common:
            raise ValueError(f"{path} was written with {settings}, other months with {common}: rebuild it")
        common = settings
        for name, size in part["bytes"].items():
            tar = path.parent / name
            if not tar.exists() or tar.stat().st_size != size:
                raise ValueError(f"{tar} is missing or not the {size} bytes {path.name} recorded: remove {path} and "
                                 "rerun to rewrite the month")
        shards.update(part["shards"])
        sizes.update(part["bytes"])
        digests.update(part["sha256"])
    index = {**(common or {}), "key": "YYYY/MM/DD/HHMM", "n_samples": sum(shards.values()),
             "shards": dict(sorted(shards.items())), "bytes": dict(sorted(sizes.items())),
             "sha256": dict(sorted(digests.items()))}
    with atomic_path(index_path) as temp:
        Path(temp).write_text(json.dumps(index, indent=1) + "\n")
    return index


def read_shards(urls, *, shardshuffle: int | bool = False, seed: int = 0, **kwargs):
    """A :class:`webdataset.WebDataset` over ``urls`` decoding ``.npy`` to arrays and ``.json`` to dicts.

    Sample keys: ``__key__`` (``YYYY/MM/DD/HHMM``), ``json`` and one ``<channel>.npy`` per channel, the
    channel name lower-cased (webdataset lower-cases member suffixes): ``aia_0171.npy``, ``hmi_m.npy``.
    ``shardshuffle`` is webdataset's (False: shards in the given order; an int: a shuffle buffer of shards).
    """
    import webdataset as wds

    urls = [os.fspath(url) for url in urls] if not isinstance(urls, str) else urls
    return wds.WebDataset(urls, shardshuffle=shardshuffle, seed=seed, empty_check=False, **kwargs).decode()
