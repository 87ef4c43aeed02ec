"""The seeding entry point, :func:`seed_metadata`: checks the cube, queries the archive, writes the seeded copy."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import h5py
from astropy.io import fits

from ..query.jsoc import TRANSIENT, jsoc_client
from ..registry import get_product
from ..retry import RetryableError
from .cube_io import _convention, _read_cube, _refuse_resampling_calibration, _write
from .header import seeded_header
from .jsoc import (
    DEFAULT_BATCH_SIZE,
    MAX_RECORDSET_CHARS,
    SeedingError,
    _fetch,
    _jsoc_type,
    _parse_record_id,
    _select_keywords,
    _with_retries,
)

log = logging.getLogger(__package__)  # heliocube.seeding, the logger name its log lines carried before the split


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
