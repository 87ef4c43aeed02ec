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

from .header import seeded_header
from .jsoc import ALL_KEYWORDS, DEFAULT_BATCH_SIZE, DEFAULT_KEYWORDS, MAX_RECORDSET_CHARS, SeedingError
from .run import SeedingResult, seed_metadata

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
