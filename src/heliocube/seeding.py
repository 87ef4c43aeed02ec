"""Metadata seeding: attach the JSOC keywords of exactly a cube's records to a new copy of the cube.

JSOC products fetched with ``url_quick`` / ``as-is`` exports carry minimal FITS headers, so their cubes lack the
WCS and solar keywords. :func:`seed_metadata` reads a cube's ``frames/record_id`` column, asks JSOC (through the
unmodified ``drms`` client) for the keywords of exactly those records -- comma-joined record sets, a bounded number
per ``rs_list`` call, never the whole series -- maps every answer back to its rows *by record* (T_REC and the other
prime keys, never by position), and writes a new cube whose per-frame headers are the archive keywords mapped onto
the cube's pixel grid by one call of :func:`heliocube.header.rescale_header`.

This replaces the prior tool's ``Retroactive_metadata_seeding.py``, which queried the whole (hard-coded MDI) series,
matched rows by position in a separate CSV and divided the solar keywords once per column.

Layout of the seeded cube (the source cube's layout, see :mod:`heliocube.cube`, plus the seeding)::

    /data            the source's frames, byte for byte (copied chunk by chunk, or frame by frame from a master)
    /frames/<col>    the source's per-frame columns, unchanged
    /headers         (T,) per-frame header text: the archive keywords of the row's record, rescaled once with the
                     row's HC_SCALE and the cube's resize convention, NAXIS1/2 the cube's frame size, plus the
                     source header's heliocube provenance cards (HC_*) and HISTORY; a row whose record was not found
                     (only with ``on_missing="ledger"``) keeps its source header
    /keywords/<KEY>  (T,) the raw archive value of each fetched keyword (JSOC spelling, e.g. DATE__OBS), *not*
                     rescaled: float64 when the series declares the keyword numeric and every value parses as a
                     number (NaN where missing), else UTF-8 strings (QUALITY stays JSOC's hex text); attrs
                     ``jsoc_type``, ``units``
    /seeded          (T,) bool: True where the row's record was found and its header seeded
    root attrs       the source's, plus seeded_from (source path, relative to the seeded cube), seeded_series,
                     seeded_keywords, seeded_convention, seeded_archive (JSOC base URL), seeded_created (UTC ISO),
                     seeded_batches, n_unseeded and unseeded_records

The output is written to a hidden temporary file beside ``out_path`` and renamed only when complete; every archive
query runs before the file is created, so a failure (archive unreachable after the retries, records missing)
leaves no output.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import drms
import h5py
import numpy as np
import pandas as pd
from astropy.io import fits

from .header import JSOC_NUMERIC_TYPES, SCALE_KEYWORD, jsoc_value, rescale_header
from .paths import atomic_path
from .query.jsoc import TRANSIENT, jsoc_client, jsoc_times_to_utc
from .registry import get_product
from .resize import HEADER_CONVENTION
from .retry import RetryableError, call_with_retries

__all__ = [
    "ALL_KEYWORDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_KEYWORDS",
    "MAX_RECORDSET_CHARS",
    "SeedingError",
    "SeedingResult",
    "seed_metadata",
    "seeded_header",
]

log = logging.getLogger(__name__)

#: The keywords a heliophysicist needs to place a frame on the Sun (JSOC spelling); only those the series has are
#: fetched. Pixel quantities among them (CRPIX, R_SUN, X0/Y0, CROP_RAD) are mapped onto the cube grid.
DEFAULT_KEYWORDS = (
    "T_REC", "T_OBS", "DATE__OBS",
    "CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2", "CROTA2", "PC1_1", "PC1_2", "PC2_1", "PC2_2",
    "CUNIT1", "CUNIT2", "CTYPE1", "CTYPE2", "WCSNAME",
    "RSUN_OBS", "R_SUN", "RSUN_REF", "X0", "Y0", "CROP_RAD",
    "DSUN_OBS", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS", "CAR_ROT", "OBS_VR", "OBS_VW", "OBS_VN",
    "EXPTIME", "QUALITY", "WAVELNTH", "INSTRUME", "TELESCOP", "BUNIT",
)
#: Pass as ``keywords`` to fetch every keyword of the series.
ALL_KEYWORDS = "**ALL**"
#: Records per ``rs_list`` call.
DEFAULT_BATCH_SIZE = 100
#: Upper bound on the URL-encoded length of one batch's record set (JSOC's web server refuses request lines much
#: beyond 8 kB; the keyword list and the rest of the URL need room too).
MAX_RECORDSET_CHARS = 4000
_RECORD_ID = re.compile(r"^\s*([\w.]+)((?:\[[^\]]*\])+)\s*$")
_STR = h5py.string_dtype(encoding="utf-8")
#: Headers built and written per block (memory does not grow with the number of frames).
_HEADER_BLOCK = 1024


class SeedingError(RuntimeError):
    """Seeding cannot complete: the archive did not answer, or records of the cube are missing from it."""


@dataclasses.dataclass(frozen=True)
class SeedingResult:
    """What :func:`seed_metadata` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The seeded cube.
    series : str
        JSOC series queried.
    keywords : tuple of str
        Keywords fetched (JSOC spelling), the ``/keywords`` columns.
    n_rows, n_records : int
        Rows of the cube; distinct records asked for.
    n_batches : int
        ``rs_list`` calls made (one per batch, retries not counted).
    unseeded_records : tuple of str
        Records the archive did not return (empty unless ``on_missing="ledger"``).
    """

    path: Path
    series: str
    keywords: tuple[str, ...]
    n_rows: int
    n_records: int
    n_batches: int
    unseeded_records: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Cube:
    """What seeding needs from the source cube."""

    record_ids: list[str]
    scales: np.ndarray
    frame_shape: tuple[int, int]
    attrs: dict


# ----------------------------------------------------------------------------------------------- record ids and keys
def _parse_record_id(record_id: str) -> tuple[str, list[str]]:
    """(series, prime-key values) of ``series[T_REC][other prime keys...]``."""
    match = _RECORD_ID.match(record_id)
    if not match:
        raise ValueError(f"{record_id!r} is not a JSOC record id (series[T_REC]...)")
    return match.group(1), [v.strip() for v in re.findall(r"\[([^\]]*)\]", match.group(2))]


def _time_keys(values: Sequence[str]) -> list[str]:
    """Comparable keys of JSOC times: the UTC instant when parseable (so spellings of one time agree), else the text."""
    texts = [str(v).strip() for v in values]
    try:
        parsed = list(jsoc_times_to_utc(texts))
    except ValueError:  # one malformed time spoils a vectorised parse: parse one by one
        parsed = []
        for text in texts:
            try:
                parsed.append(jsoc_times_to_utc([text])[0])
            except ValueError:
                parsed.append(pd.NaT)
    return [text if pd.isna(moment) else moment.isoformat() for text, moment in zip(texts, parsed, strict=True)]


def _prime_value_key(value: str) -> str:
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _record_keys(primes: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Match keys of prime-key value lists: T_REC as a time key, the others normalised (``171`` == ``171.0``)."""
    times = _time_keys([values[0] for values in primes])
    return [(t, *(_prime_value_key(v) for v in values[1:])) for t, values in zip(times, primes, strict=True)]


def _batches(record_ids: Sequence[str], batch_size: int, max_chars: int) -> Iterator[list[str]]:
    """Consecutive groups of at most ``batch_size`` records whose comma-joined, URL-encoded set fits ``max_chars``."""
    batch: list[str] = []
    length = 0
    for record_id in record_ids:
        cost = len(quote(record_id, safe="")) + len(quote(",", safe=""))
        if cost > max_chars:
            raise ValueError(f"record id {record_id!r} alone exceeds the record-set limit of {max_chars} characters")
        if batch and (len(batch) >= batch_size or length + cost > max_chars):
            yield batch
            batch, length = [], 0
        batch.append(record_id)
        length += cost
    if batch:
        yield batch


# ------------------------------------------------------------------------------------------------------ source cube
def _read_column(group: h5py.Group, name: str) -> np.ndarray:
    ds = group[name]
    return np.asarray(ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()])


def _read_cube(path: Path, product) -> _Cube:
    with h5py.File(path, "r") as f:
        if "frames" not in f or "record_id" not in f["frames"]:
            raise ValueError(f"{path}: no frames/record_id column; only cubes of JSOC records can be seeded")
        record_ids = [str(r) for r in _read_column(f["frames"], "record_id")]
        n, height, width = f["data"].shape
        if SCALE_KEYWORD in f["frames"]:
            scales = np.asarray(_read_column(f["frames"], SCALE_KEYWORD), dtype=float)
        else:  # a cube without the column: its frames were resized once from the native grid
            scales = np.full(n, product.native_size / width, dtype=float)
        attrs = dict(f.attrs)
    bad = [i for i, s in enumerate(scales) if not (math.isfinite(s) and s > 0)]
    if bad:
        raise ValueError(f"{path}: rows {bad[:10]} have no valid {SCALE_KEYWORD}; their grid is unknown")
    return _Cube(record_ids, scales, (int(height), int(width)), attrs)


def _convention(attrs: Mapping, resize_method: str | None, path: Path) -> str:
    method = resize_method or attrs.get("resize_method")
    if isinstance(method, bytes):
        method = method.decode()
    if not method:
        raise ValueError(f"{path}: no resize_method attribute; pass resize_method= to name how the cube was resized")
    if method not in HEADER_CONVENTION:
        raise ValueError(f"unknown resize method {method!r}; choose one of {sorted(HEADER_CONVENTION)}")
    return HEADER_CONVENTION[method]


def _refuse_resampling_calibration(attrs: Mapping, path: Path) -> None:
    """Archive keywords describe the unrotated, unzoomed image: a cube resampled by calibration cannot be seeded."""
    text = attrs.get("calibration")
    if text is None:
        return
    calibration = json.loads(text.decode() if isinstance(text, bytes) else str(text) or "{}") or {}
    if calibration.get("north_up") or calibration.get("fixed_rsun_arcsec"):
        raise ValueError(f"{path}: its frames were rotated or zoomed by calibration ({calibration}); archive keywords "
                         "describe the original image, so seeding would give the frames a wrong WCS")


# --------------------------------------------------------------------------------------------------------- archive
def _jsoc_type(info_keywords: pd.DataFrame, key: str) -> str:
    if key in info_keywords.index and "type" in info_keywords.columns:
        return str(info_keywords.loc[key, "type"]).strip().lower()
    return "string"


def _select_keywords(requested, info) -> list[str]:
    available = list(info.keywords.index)
    if requested is None:
        chosen = [k for k in DEFAULT_KEYWORDS if k in available]
    elif isinstance(requested, str) and requested == ALL_KEYWORDS:
        chosen = available
    else:
        chosen = list(dict.fromkeys([requested] if isinstance(requested, str) else requested))
        unknown = [k for k in chosen if k not in available]
        if unknown:
            raise ValueError(f"keywords {unknown} are not keywords of {info.name}")
    primes = [k for k in info.primekeys if k in available or k == "T_REC"]
    return list(dict.fromkeys([*primes, *chosen]))


def _with_retries(action, context, what: str, retry_on: tuple):
    """``call_with_retries``, with exhausted or refused archive calls turned into a :class:`SeedingError`."""
    try:
        return call_with_retries(action, context.policy, what, retry_on)
    except retry_on as err:
        raise SeedingError(f"{what}: JSOC at {context.jsoc_url} did not answer after {context.policy.retries + 1} "
                           f"attempts ({type(err).__name__}: {err}); nothing was written") from err
    except drms.DrmsError as err:
        raise SeedingError(f"{what}: JSOC refused the request ({err}); nothing was written") from err


def _match(batch: list[str], answers: list[dict[str, str]], primekeys: list[str], what: str) -> dict[str, dict]:
    """Each requested record's answer, found by its prime-key values (a record id may omit trailing prime keys)."""
    answer_keys = _record_keys([[row[k] for k in primekeys] for row in answers])
    by_prefix: dict[int, dict[tuple, list[dict[str, str]]]] = {}
    matched = {}
    for record_id, key in zip(batch, _record_keys([_parse_record_id(r)[1] for r in batch]), strict=True):
        key = key[: len(primekeys)]
        if len(key) not in by_prefix:
            index: dict[tuple, list[dict[str, str]]] = {}
            for row, answer_key in zip(answers, answer_keys, strict=True):
                index.setdefault(answer_key[: len(key)], []).append(row)
            by_prefix[len(key)] = index
        candidates = by_prefix[len(key)].get(key, [])
        distinct = {tuple(sorted(row.items())) for row in candidates}
        if len(distinct) > 1:
            raise SeedingError(f"{what}: record {record_id!r} matches {len(distinct)} archive records; name every "
                               f"prime key ({', '.join(primekeys)})")
        if candidates:
            matched[record_id] = candidates[0]
    return matched


def _fetch(client, context, series: str, primekeys: list[str], keys: list[str], record_ids: list[str],
           batch_size: int, max_chars: int) -> tuple[dict[str, dict[str, str]], int]:
    """Keyword values of every record found (record id -> {key: text}) and the number of rs_list calls."""
    found: dict[str, dict[str, str]] = {}
    batches = list(_batches(record_ids, batch_size, max_chars))
    for number, batch in enumerate(batches, start=1):
        recordset = ",".join(batch)
        what = f"JSOC rs_list {series} batch {number}/{len(batches)} ({len(batch)} records)"
        table = _with_retries(lambda rs=recordset: client.query(rs, key=keys, convert_numeric=False), context, what,
                              TRANSIENT)
        if table is None or table.empty:
            continue
        absent = [k for k in primekeys if k not in table.columns]
        if absent:
            raise SeedingError(f"{what}: the answer lacks the prime keys {absent}")
        answers = table.astype(str).to_dict("records")
        for record_id, row in _match(batch, answers, primekeys, what).items():
            found[record_id] = {k: row.get(k, "") for k in keys}
    return found, len(batches)


# ---------------------------------------------------------------------------------------------------------- headers
def seeded_header(keywords: Mapping[str, str], jsoc_types: Mapping[str, str], scale: float, convention: str,
                  frame_shape: tuple[int, int], *, record_id: str = "",
                  source_header: fits.Header | None = None) -> fits.Header:
    """One frame's header from its record's archive keywords, mapped onto the cube grid once.

    Parameters
    ----------
    keywords : mapping
        JSOC keyword name -> printed value, as ``rs_list`` answers (``DATE__OBS`` becomes the card ``DATE-OBS``).
    jsoc_types : mapping
        JSOC keyword name -> JSOC type (``int``, ``double``, ``string``, ``time``...); missing means string.
    scale : float
        The row's ``HC_SCALE``: original (archive) pixels per cube pixel.
    convention : {"center", "corner"}
        The cube's resize convention (:data:`heliocube.resize.HEADER_CONVENTION` of its resize method).
    frame_shape : (int, int)
        (H, W) of the cube's frames; NAXIS1 = W, NAXIS2 = H.
    record_id : str, optional
        Named in the HISTORY line.
    source_header : astropy.io.fits.Header, optional
        The frame's previous header: its HISTORY lines (how the pixels were made) and heliocube provenance cards
        (``HC_*`` except ``HC_SCALE``) are kept; nothing else of it (its geometry is replaced, not rescaled again).

    Returns
    -------
    astropy.io.fits.Header
        BITPIX -32, NAXIS 2, the archive keywords (missing values left out; ``DATE__OBS`` as ``DATE-OBS``) passed
        once through :func:`heliocube.header.rescale_header` (which sets ``HC_SCALE = scale`` and adds the last
        HISTORY line), the kept provenance, and ``HC_RECID``.
    """
    height, width = frame_shape
    header = fits.Header()
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = int(width)
    header["NAXIS2"] = int(height)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long names become HIERARCH cards
        for name, text in keywords.items():
            card = name.replace("__", "-")
            if card in header or card == SCALE_KEYWORD:  # never a second scale: the rescale below is the only one
                continue
            value = jsoc_value(text, jsoc_types.get(name, "string"))
            if value is not None:
                header[card] = value
        if source_header is not None:  # how the pixel data were made: before the line naming the seeding
            for line in source_header.get("HISTORY", []):
                header.add_history(str(line))
        history = (f"heliocube seeding: header rebuilt from the JSOC keywords of {record_id or 'the record'}, "
                   f"mapped once onto the {width}x{height} cube grid (factor {scale:g}, {convention} convention)")
        header = rescale_header(header, scale, convention=convention, history=history, naxis=(width, height))
        if source_header is not None:
            for card in source_header.cards:
                if card.keyword.startswith("HC_") and card.keyword != SCALE_KEYWORD and card.keyword not in header:
                    header[card.keyword] = (card.value, card.comment)
        if record_id and "HC_RECID" not in header:
            header["HC_RECID"] = (record_id, "archive record")
    return header


# ----------------------------------------------------------------------------------------------------------- output
def _copy_dataset(source: h5py.Dataset, group: h5py.Group, name: str) -> None:
    """Copy a dataset; a virtual one (a master's) is materialised, frame by frame for 3-D data."""
    if not source.is_virtual:
        group.copy(source, name)
        return
    if source.ndim == 3:
        n, height, width = source.shape
        target = group.create_dataset(name, shape=source.shape, maxshape=(None, height, width), dtype=source.dtype,
                                      chunks=(1, height, width), compression="gzip", compression_opts=4,
                                      shuffle=True)
        for i in range(n):
            target[i] = source[i]
    else:
        target = group.create_dataset(name, data=source[()], dtype=source.dtype)
    for key, value in source.attrs.items():
        target.attrs[key] = value


def _keyword_column(values: list[str | None], jsoc_type: str) -> tuple[np.ndarray, object]:
    if jsoc_type in JSOC_NUMERIC_TYPES:
        numbers = []
        for value in values:
            if value is None or str(value).strip() in ("", "MISSING", "Invalid KeyLink"):
                numbers.append(np.nan)
                continue
            try:
                numbers.append(float(value))
            except ValueError:
                break
        else:
            return np.asarray(numbers, dtype=np.float64), np.float64
    return np.asarray(["" if v is None else str(v) for v in values], dtype=object), _STR


def _write(out_path: Path, source_path: Path, cube: _Cube, rows_keywords: list[dict[str, str] | None],
           header_for, keys: list[str], info_keywords: pd.DataFrame, attrs: dict) -> None:
    """Write the seeded cube atomically; ``header_for(row, source_header_text)`` gives each row's header text."""
    n = len(cube.record_ids)
    with (
        atomic_path(out_path) as tmp,
        h5py.File(source_path, "r") as src,
        h5py.File(tmp, "w", libver="latest") as out,
    ):
        _copy_dataset(src["data"], out, "data")
        frames = out.create_group("frames")
        for name in src["frames"]:
            _copy_dataset(src["frames"][name], frames, name)
        headers = out.create_dataset("headers", shape=(n,), maxshape=(None,), dtype=_STR, chunks=(256,))
        source_headers = src["headers"].asstr() if "headers" in src else None
        for start in range(0, n, _HEADER_BLOCK):  # a block of headers in memory at a time
            stop = min(n, start + _HEADER_BLOCK)
            texts = source_headers[start:stop] if source_headers is not None else [""] * (stop - start)
            headers[start:stop] = np.asarray([header_for(start + i, str(text)) for i, text in enumerate(texts)],
                                             dtype=object)
        group = out.create_group("keywords")
        for key in keys:
            jsoc_type = _jsoc_type(info_keywords, key)
            values, dtype = _keyword_column([None if r is None else r.get(key) for r in rows_keywords],
                                            jsoc_type)
            ds = group.create_dataset(key, data=values, dtype=dtype)
            ds.attrs["jsoc_type"] = jsoc_type
            if key in info_keywords.index and "units" in info_keywords.columns:
                ds.attrs["units"] = str(info_keywords.loc[key, "units"])
        out.create_dataset("seeded", data=np.asarray([r is not None for r in rows_keywords], dtype=bool))
        for key, value in cube.attrs.items():
            out.attrs[key] = value
        for key, value in attrs.items():
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                out.attrs.create(key, data=np.asarray(value, dtype=object), dtype=_STR)
            else:
                out.attrs[key] = value


def seed_metadata(cube_path: str | os.PathLike, out_path: str | os.PathLike, context, *, product: str | None = None,
                  keywords: Sequence[str] | str | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                  max_recordset_chars: int = MAX_RECORDSET_CHARS, on_missing: str = "error",
                  resize_method: str | None = None) -> SeedingResult:
    """Write a copy of a cube whose headers carry the JSOC keywords of each row's record.

    Parameters
    ----------
    cube_path : path-like
        A per-year cube or a master (virtual datasets are materialised in the copy) of one JSOC product.
    out_path : path-like
        The seeded cube; must differ from ``cube_path``. Written atomically (temporary file, then rename).
    context : heliocube.query.ArchiveContext
        ``jsoc_url``, ``email`` and the retry ``policy``.
    product : str, optional
        Registry product of the cube; default the cube's ``product`` attribute. Its series (at the context's level)
        is queried, and every record id of the cube must belong to it.
    keywords : sequence of str or "**ALL**", optional
        JSOC keyword names to fetch; default :data:`DEFAULT_KEYWORDS` that the series has; :data:`ALL_KEYWORDS` for
        every keyword of the series. T_REC and the other prime keys are always fetched (they match answers to rows).
        A named keyword the series lacks is a ValueError.
    batch_size : int
        Records per ``rs_list`` call (one ``client.query`` per batch, with retries).
    max_recordset_chars : int
        Upper bound on the URL-encoded length of one batch's comma-joined record set.
    on_missing : {"error", "ledger"}
        When the archive does not return some records: ``error`` raises :class:`SeedingError` naming them and writes
        nothing; ``ledger`` writes the cube anyway, those rows keeping their source header, ``/seeded`` False, empty
        ``/keywords`` values, and the records listed in the ``unseeded_records`` attribute and the result.
    resize_method : str, optional
        The cube's resize method (names the header convention); default the cube's ``resize_method`` attribute.

    Returns
    -------
    SeedingResult

    Raises
    ------
    SeedingError
        The archive did not answer after the retries, refused a query, or (``on_missing="error"``) lacks records.
    ValueError
        Bad arguments, a cube without record ids or valid ``HC_SCALE``, record ids of another series, or a cube
        whose calibration rotated or zoomed its frames (archive keywords cannot describe that grid).
    """
    cube_path, out_path = Path(cube_path), Path(out_path)
    if cube_path.resolve() == out_path.resolve():
        raise ValueError("seeding writes a new cube: out_path must differ from cube_path")
    if on_missing not in ("error", "ledger"):
        raise ValueError(f"on_missing must be 'error' or 'ledger', got {on_missing!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    with h5py.File(cube_path, "r") as f:
        source_attrs = dict(f.attrs)
    name = product or source_attrs.get("product")
    if isinstance(name, bytes):
        name = name.decode()
    if not name:
        raise ValueError(f"{cube_path}: no product attribute; pass product=")
    entry = get_product(str(name))
    if not entry.is_jsoc:
        raise ValueError(f"product {entry.name} is not a JSOC product; seeding fetches JSOC keywords")
    series = entry.series_for(context.level_for(entry))
    cube = _read_cube(cube_path, entry)
    convention = _convention(cube.attrs, resize_method, cube_path)
    _refuse_resampling_calibration(cube.attrs, cube_path)
    foreign = sorted({rid for rid in cube.record_ids if _parse_record_id(rid)[0].lower() != series.lower()})
    if foreign:
        raise ValueError(f"{cube_path}: records {foreign[:5]} are not records of {series} ({entry.name})")

    client = _with_retries(lambda: jsoc_client(context.jsoc_url, context.email), context, "JSOC address check",
                           (*TRANSIENT, RetryableError))
    info = _with_retries(lambda: client.info(series), context, f"JSOC series_struct {series}", TRANSIENT)
    keys = _select_keywords(keywords, info)
    primekeys = list(info.primekeys)
    records = sorted(set(cube.record_ids))  # archive order, whatever the cube's row order
    found, n_batches = _fetch(client, context, series, primekeys, keys, records, int(batch_size),
                              int(max_recordset_chars))
    missing = [r for r in records if r not in found]
    if missing and on_missing == "error":
        raise SeedingError(f"JSOC returned no record for {len(missing)} of {len(records)} records of {cube_path} "
                           f"(first: {missing[:5]}); nothing was written (on_missing='ledger' writes them as "
                           "unseeded)")

    types = {k: _jsoc_type(info.keywords, k) for k in keys}
    rows_keywords = [found.get(record_id) for record_id in cube.record_ids]

    def header_for(row: int, source_text: str) -> str:
        values = rows_keywords[row]
        if values is None:  # not in the archive (on_missing="ledger"): the row keeps its header
            return source_text
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            source = fits.Header.fromstring(source_text, sep="\n") if source_text.strip() else None
            header = seeded_header(values, types, float(cube.scales[row]), convention, cube.frame_shape,
                                   record_id=cube.record_ids[row], source_header=source)
            return header.tostring(sep="\n", endcard=False, padding=False)

    attrs = {
        # relative, like a master's sources, so the output tree can be moved as a whole
        "seeded_from": os.path.relpath(cube_path.resolve(), Path(out_path).resolve().parent),
        "seeded_series": series,
        "seeded_keywords": list(keys),
        "seeded_convention": convention,
        "seeded_archive": str(context.jsoc_url),
        "seeded_created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seeded_batches": n_batches,
        "n_unseeded": len(missing),
        "unseeded_records": list(missing),
    }
    _write(out_path, cube_path, cube, rows_keywords, header_for, keys, info.keywords, attrs)
    log.info("%s: seeded %d rows (%d records, %d rs_list calls) from %s; %d records missing", out_path,
             len(cube.record_ids), len(records), n_batches, series, len(missing))
    return SeedingResult(out_path, series, tuple(keys), len(cube.record_ids), len(records), n_batches,
                         tuple(missing))
