"""The SDOML v2-style Zarr store of a synced experiment: one group per year, streamed from the synced file.

Layout of ``{root}/exports/{experiment}.zarr`` (Zarr v3, consolidated metadata at the root and in each year)::

    zarr.json                      root group: experiment, years, channels, products, layout
    YYYY/                          one group per calendar year of the synced axis
        time                       int64 (T,)  CF-encoded UTC axis times ("nanoseconds since 1970-01-01")
        previous_time              int64 (T,)  axis time of each row's predecessor (running differences only)
        <CHANNEL>                  float32 (T, H, W), dims (time, y, x), chunks (chunk_frames, H, W), zstd, NaN
                                   fill; the synced rows bit for bit. Attributes: one list per header keyword
                                   with one value per row (SDOML v2's layout; None where a frame lacks it)
        <CHANNEL>_obs_time         int64 (T,)  CF-encoded observation time (NaT where the row has no frame)
        <CHANNEL>_dt_seconds       float64 (T,)  |obs_time - time|
        <CHANNEL>_present          bool (T,)   False only in rows kept without a frame (keep_missing)
        <CHANNEL>_record_id, <CHANNEL>_sha256   str (T,)  archive record and raw-file digest of the frame
        <CHANNEL>_qc_*             (T,)  every QC metric of the frame
        <CHANNEL>_previous_obs_time, <CHANNEL>_previous_record_id   the subtracted frame (running differences)

Channel names are :func:`~heliocube.export.channels.channel_name`'s (``AIA_0171``, ``HMI_M``, ``LASCO_C2``). The
rows of a year are the synced rows whose axis time falls in it, in time order, every channel on that one axis.
``xarray.open_zarr(store, group="2010")`` gives them as a Dataset with a decoded ``time`` coordinate; the
SDOML v2 notebook's steps (``da.from_array(group[channel])``, ``{key: values[i] for key, values in
array.attrs.items()}``, ``sunpy.map.Map((frame, header))``) work unchanged.

Memory is bounded by one block of frames (whole chunks: one chunk, or as many as fit in about 64 MB when chunks
are small), read into one buffer reused for every block of every channel, plus the per-frame header lists of one
channel: a year's frames are never all in memory. zarr encodes the buffer's chunks in place (``write_empty_chunks``
skips its all-fill check, which allocated three chunk-sized temporaries; all-NaN chunks are left out here, cheaply)
and the array is created a whole number of chunks long and trimmed at the end, so the last, partial chunk needs no
fill-and-merge copy either. Measured (bench/bench_ml.py, 8 channels of 512 x 512, 120-frame chunks of 126 MB):
peak RSS 393 MB at 1,000 rows, 400 MB at 10,000 (0.52 GB before, at 2,000 rows of 4 channels), of which ~145 MB
is the interpreter and its imports; the per-frame header lists (and the consolidated metadata holding them) are the
only part that grows with the rows (``exports.zarr.keywords`` trims them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .channels import channel_names

__all__ = ["LAYOUT", "consolidate_job", "consolidate_store", "export_year_job", "write_year"]

log = logging.getLogger(__name__)

LAYOUT = (
    "heliocube zarr v1: YYYY/{time (T,), <CHANNEL> float32 (T,H,W) with per-frame header lists in attrs, "
    "<CHANNEL>_{obs_time,dt_seconds,present,record_id,sha256,qc_*} (T,)}"
)
#: CF attributes of the int64 time arrays: xarray decodes them to datetime64[ns] with no custom code.
TIME_ATTRS = {"units": "nanoseconds since 1970-01-01", "calendar": "proleptic_gregorian"}
_NAT = np.iinfo(np.int64).min
#: Frames written per block: a whole number of chunks of about this many bytes (at least one chunk).
BLOCK_BYTES = 64 * 2**20
#: Header texts read at a time.
HEADER_BLOCK = 1024
#: Per-frame columns of the synced file exported as 1-D arrays (plus every ``qc_*`` column).
FRAME_COLUMNS = ("record_id", "sha256")
#: Header cards whose values are joined per frame rather than kept as one keyword each.
_MULTI_CARDS = ("COMMENT", "HISTORY")


def _text(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def _ns(times: Sequence[str]) -> np.ndarray:
    """ISO texts ('' for none) as int64 nanoseconds since 1970 (NaT's integer for none)."""
    parsed = pd.to_datetime(pd.Series(_text(np.asarray(times))).replace("", None), utc=True, format="ISO8601")
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def year_rows(times: Sequence[str], year: str) -> slice:
    """The rows of the time-ordered axis ``times`` (ISO texts) in calendar year ``year``."""
    years = np.array([t[:4] for t in _text(np.asarray(times))])
    rows = np.flatnonzero(years == year)
    if len(rows) == 0:
        return slice(0, 0)
    if rows[-1] - rows[0] + 1 != len(rows):
        raise ValueError(f"the synced axis is not in time order around {year}")
    return slice(int(rows[0]), int(rows[-1]) + 1)


def _card_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    return None  # astropy's Undefined (a keyword without a value)


def header_lists(headers: Iterable[str], keywords: Sequence[str] | None = None, n: int | None = None
                 ) -> dict[str, list]:
    """Per-keyword lists of header values, one per frame (SDOML v2's array attributes).

    Parameters
    ----------
    headers : iterable of str
        FITS header texts ('\\n'-separated cards, as the synced file keeps them; '' for a row without a frame).
    keywords : sequence of str, optional
        Keywords to keep (default every keyword of any header, in order of first appearance).
    n : int, optional
        Number of headers, when ``headers`` is an iterator (default ``len(headers)``).

    Returns
    -------
    dict of str to list
        ``lists[KEY][i]`` is frame ``i``'s value (None where it lacks the keyword); COMMENT and HISTORY cards
        are joined with newlines.
    """
    from astropy.io import fits

    n = len(headers) if n is None else n
    wanted = None if keywords is None else list(keywords)
    lists: dict[str, list] = {key: [None] * n for key in wanted or ()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-standard cards of old instruments: kept as astropy reads them
        for i, text in enumerate(headers):
            text = text.decode() if isinstance(text, bytes) else str(text)
            if not text:
                continue
            header = fits.Header.fromstring(text, sep="\n")
            multi: dict[str, list[str]] = {}
            for card in header.cards:
                key = card.keyword
                if not key or (wanted is not None and key not in lists):
                    continue
                if key in _MULTI_CARDS:
                    multi.setdefault(key, []).append(str(card.value))
                    continue
                lists.setdefault(key, [None] * n)[i] = _card_value(card.value)
            for key, values in multi.items():
                lists.setdefault(key, [None] * n)[i] = "\n".join(values)
    return lists


def _create(group, name: str, data: np.ndarray, attrs: Mapping[str, Any] | None = None, **options):
    """A 1-D array of ``data`` along ``time``, one chunk."""
    if data.dtype.kind in "OUS":
        # zarr's variable-length UTF-8 strings (a registered v3 extension; fixed-width UTF-32 has no v3 spec)
        dtype, fill = str, ""
        data = _text(data)
    else:
        dtype = data.dtype
        fill = {"f": np.nan, "b": False, "i": -1, "u": 0}.get(data.dtype.kind, 0)
    if attrs and "units" in attrs and "since" in str(attrs["units"]):
        fill = _NAT
    array = group.create_array(name, shape=data.shape, dtype=dtype, chunks=(max(len(data), 1),),
                               fill_value=fill, dimension_names=["time"], attributes=dict(attrs or {}), **options)
    if len(data):
        array[:] = data
    return array


def _blocks(dataset: h5py.Dataset, rows: slice, size: int) -> Iterator:
    for start in range(rows.start, rows.stop, size):
        yield from dataset[start:min(start + size, rows.stop)]


def _block_frames(chunk_frames: int, frame_bytes: int) -> int:
    return chunk_frames * max(1, BLOCK_BYTES // max(chunk_frames * frame_bytes, 1))


def _all_nan(frames: np.ndarray) -> bool:
    # frame by frame, stopping at the first with data: no chunk-sized temporary
    return all(np.isnan(frame).all() for frame in frames)


def _write_frames(array, data: h5py.Dataset, rows: slice, chunk_frames: int, buffer: np.ndarray) -> None:
    """Copy ``data[rows]`` into ``array`` (created ``n`` rounded up to whole chunks long), block by block through
    ``buffer`` (whole chunks), leaving all-NaN chunks unwritten (zarr's fill), then trim ``array`` to ``n``."""
    n = rows.stop - rows.start
    for start in range(0, n, len(buffer)):
        count = min(len(buffer), n - start)
        padded = -(-count // chunk_frames) * chunk_frames
        data.read_direct(buffer, np.s_[rows.start + start:rows.start + start + count], np.s_[:count])
        buffer[count:padded] = np.nan  # the last chunk's rows past the end: what zarr stores there anyway
        empty = [_all_nan(buffer[c:c + chunk_frames]) for c in range(0, padded, chunk_frames)]
        chunk = 0
        while chunk < len(empty):  # runs of chunks with data, each written whole (nothing read back or merged)
            if empty[chunk]:
                chunk += 1
                continue
            end = chunk
            while end < len(empty) and not empty[end]:
                end += 1
            array[start + chunk * chunk_frames:start + end * chunk_frames] = buffer[chunk * chunk_frames:
                                                                                    end * chunk_frames]
            chunk = end
    if array.shape[0] != n:
        array.resize((n, *array.shape[1:]))


def _write_channel(group, channel: str, source: h5py.Group, rows: slice, dims: Sequence[str], chunk_frames: int,
                   compressors, keywords: Sequence[str] | None, buffer: np.ndarray) -> None:
    data = source["data"]
    n = rows.stop - rows.start
    height, width = data.shape[1:]
    array = group.create_array(channel, shape=(-(-n // chunk_frames) * chunk_frames, height, width),
                               dtype=np.float32, chunks=(chunk_frames, height, width),
                               fill_value=np.float32(np.nan), compressors=compressors, dimension_names=list(dims),
                               config={"write_empty_chunks": True})  # fmt: skip
    _write_frames(array, data, rows, chunk_frames, buffer)
    # Per-frame header lists (SDOML v2): all of an array's attributes are lists, so {k: v[i]} is frame i's header
    texts = _blocks(source["headers"], rows, HEADER_BLOCK)  # the texts one block at a time, only the values kept
    array.attrs.update(header_lists(texts, keywords, n))
    _create(group, f"{channel}_obs_time", _ns(source["obs_time"][rows]), TIME_ATTRS)
    _create(group, f"{channel}_dt_seconds", source["dt_seconds"][rows], {"units": "s"})
    _create(group, f"{channel}_present", source["present"][rows])
    frames = source["frames"]
    for name in [c for c in FRAME_COLUMNS if c in frames] + sorted(c for c in frames if c.startswith("qc_")):
        _create(group, f"{channel}_{name}", frames[name][rows])
    if "previous" in source:
        previous = source["previous"]
        _create(group, f"{channel}_previous_obs_time", _ns(previous["obs_time"][rows]), TIME_ATTRS)
        if "record_id" in previous["frames"]:
            _create(group, f"{channel}_previous_record_id", previous["frames"]["record_id"][rows])


@contextlib.contextmanager
def _quiet_zarr() -> Iterator[None]:
    """Silence zarr's notes that consolidated metadata is not in the v3 spec yet (we rely on zarr-python's) and
    that Snakemake's ``.snakemake_timestamp`` in a year folder is no Zarr node."""
    from zarr.errors import ZarrUserWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=ZarrUserWarning)
        warnings.filterwarnings("ignore", message="Object at .snakemake_timestamp", category=ZarrUserWarning)
        yield


def _replace_dir(temp: Path, target: Path) -> None:
    """Move ``temp`` to ``target``; an existing ``target`` is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(temp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_year(synced_path: str | os.PathLike, store_path: str | os.PathLike, year: str, *, chunk_frames: int = 120,
               compression_level: int = 3, keywords: Sequence[str] | None = None) -> Path:
    """Write (or replace) the group ``year`` of a Zarr store from a synced file.

    Parameters
    ----------
    synced_path : path-like
        A synced experiment (:func:`heliocube.sync.write_synced`).
    store_path : path-like
        The store, ``{root}/exports/{experiment}.zarr``; created if missing. Other years are left untouched.
    year : str
        'YYYY'. A year without synced rows gets a group with zero-length arrays.
    chunk_frames : int
        Frames per chunk along time (SDOML v2: 120; 1 for random access to single frames).
    compression_level : int
        zstd level.
    keywords : sequence of str, optional
        Header keywords kept as per-frame lists (default all).

    Returns
    -------
    pathlib.Path
        The year group's folder. It is written under a hidden name beside the store and renamed into place
        complete; on any error nothing replaces the previous group.
    """
    import zarr
    from zarr.codecs import ZstdCodec

    store = Path(store_path)
    store.mkdir(parents=True, exist_ok=True)
    target = store / year
    temp = store.parent / f".{store.name}-{year}.partial-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    compressors = ZstdCodec(level=compression_level)
    try:
        with h5py.File(synced_path, "r") as synced, _quiet_zarr():
            products = [str(p) for p in synced.attrs["products"]]
            channels = channel_names(products)
            rows = year_rows(synced["time"][()], year)
            shapes = {synced[p]["data"].shape[1:] for p in products}
            group = zarr.open_group(temp, mode="w", zarr_format=3)
            _create(group, "time", _ns(synced["time"][rows]),
                    {**TIME_ATTRS, "standard_name": "time", "long_name": "synced axis time (UTC)"})
            if "previous_time" in synced:
                _create(group, "previous_time", _ns(synced["previous_time"][rows]),
                        {**TIME_ATTRS, "long_name": "axis time of the previous row (running difference)"})
            buffer = None
            for product, channel in zip(products, channels, strict=True):
                dims = ("time", "y", "x") if len(shapes) == 1 else ("time", f"y_{channel}", f"x_{channel}")
                shape = (_block_frames(chunk_frames, 4 * int(np.prod(synced[product]["data"].shape[1:]))),
                         *synced[product]["data"].shape[1:])
                if buffer is None or buffer.shape != shape:  # one block buffer for every channel of a size
                    buffer = None  # (the previous one let go first)
                    buffer = np.empty(shape, np.float32)
                _write_channel(group, channel, synced[product], rows, dims, chunk_frames, compressors, keywords,
                               buffer)
            group.attrs.update(_year_attrs(synced, products, channels, year, rows, chunk_frames))
            zarr.consolidate_metadata(temp)
        _replace_dir(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def _year_attrs(synced: h5py.File, products, channels, year, rows: slice, chunk_frames: int) -> dict:
    attrs = synced.attrs
    units = [str(u) for u in attrs.get("units", [""] * len(products))]
    return {
        "experiment": str(attrs.get("experiment", "")),
        "year": year,
        "channels": list(channels),
        "products": dict(zip(channels, products, strict=True)),
        "units": dict(zip(channels, units, strict=True)),
        "difference_channels": [c for c, p in zip(channels, products, strict=True)
                                if p in {str(d) for d in attrs.get("difference_products", [])}],
        "n_rows": rows.stop - rows.start,
        "first_row": rows.start,  # the year's first row in the synced file
        "step": str(attrs.get("step", "")),
        "chunk_frames": chunk_frames,
        "source": Path(synced.filename).name,
        "source_config_hash": str(attrs.get("config_hash", "")),
        "layout": LAYOUT,
    }


def consolidate_store(store_path: str | os.PathLike, years: Sequence[str], attrs: Mapping[str, Any] | None = None
                      ) -> Path:
    """Write the store's root group and its consolidated metadata over the year groups ``years``.

    Year groups not in ``years`` (a range that shrank) are removed first, so the store holds exactly the
    configured years.

    Returns
    -------
    pathlib.Path
        The root group's ``zarr.json``.

    Raises
    ------
    FileNotFoundError
        When a year of ``years`` has no group.
    """
    import zarr

    store = Path(store_path)
    for year in years:
        if not (store / year / "zarr.json").is_file():
            raise FileNotFoundError(f"{store / year} is not a year group: write it first (write_year)")
    for child in sorted(store.iterdir()) if store.is_dir() else ():
        if child.is_dir() and child.name.isdigit() and len(child.name) == 4 and child.name not in years:
            log.info("removing the year group %s: outside the configured range", child)
            shutil.rmtree(child)
    with _quiet_zarr():
        channels = list(zarr.open_group(store / years[0], mode="r", zarr_format=3).attrs["channels"]) if years else []
        root = zarr.open_group(store, mode="a", zarr_format=3, use_consolidated=False)
        root.attrs.put({**dict(attrs or {}), "years": list(years), "channels": channels, "layout": LAYOUT})
        zarr.consolidate_metadata(store)
    return store / "zarr.json"


def export_year_job(synced_path: str, year_dir: str, params: Mapping[str, Any]) -> None:
    """One export_zarr job: the year group ``year_dir`` (``{store}/{YYYY}``) from the synced file."""
    options = params["zarr"]
    target = Path(year_dir)
    write_year(synced_path, target.parent, target.name, chunk_frames=options["chunk_frames"],
               compression_level=options["compression_level"], keywords=options.get("keywords"))
    log.info("%s: written from %s", target, synced_path)


def consolidate_job(root_json: str, years: Sequence[str], experiment: str) -> None:
    """One export_zarr_consolidate job: the root group (``root_json`` is its ``zarr.json``) over ``years``."""
    path = consolidate_store(Path(root_json).parent, list(years), {"experiment": experiment})
    log.info("%s: root group over years %s", path, ", ".join(years))
