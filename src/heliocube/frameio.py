"""Reading one raw frame (data and header) from a downloaded FITS file, as fast as the file's layout allows
(:mod:`heliocube.framewrite` writes cleaned frames).

:func:`read_frame` returns what astropy returns for the first HDU holding an image (same header, same array after
``BSCALE``/``BZERO``, in native byte order), with one difference: an unscaled integer image keeps its integers,
``BLANK`` pixels included (the header keeps ``BLANK``), where astropy would turn it into floats with NaN.
:func:`blank_to_nan` gives astropy's array when a step needs it; QC counts ``BLANK`` pixels as holes directly, and
the clean stage converts only frames that have any (a 4096² int16 frame converted to float32 is ~15 ms and 64 MB
for nothing when no pixel is missing, the common case). It reads through one of three paths:

- a plain, unscaled 2-D primary image (EIT and LASCO files, the embedded archive's JSOC files): the header is
  parsed with ``Header.fromstring`` and the data are one ``frombuffer`` (astropy spends ~1 ms opening the HDU list);
- a ``RICE_1`` tile-compressed integer image after an empty primary HDU (JSOC's ``aia.lev1`` and ``hmi``
  segments): the table header is parsed with ``Header.fromstring`` and turned into the image header as astropy
  would (:func:`_image_header`), and :func:`heliocube.rice.decode_tiles` decodes every tile straight into the
  output array in one compiled call. astropy's tile loop (one Python call of cfitsio's decoder per tile, 4,096
  per AIA frame) took ~230 ms for a 4096² frame on the development machine; this path takes ~70 ms;
- anything else (other compressions, quantised floats, scaled data, odd layouts): astropy.

The tests check the fast paths against astropy on every layout they accept.
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.compressed.header import _bintable_header_to_image_header, _is_reserved_keyword

__all__ = ["blank_to_nan", "read_frame", "read_header", "stored_blank"]

#: BITPIX of the images this module decodes or writes itself (big-endian on disk)
_PLAIN_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_BITPIX = {np.dtype(dtype).newbyteorder("="): bitpix for bitpix, dtype in _PLAIN_DTYPES.items()}
#: cards :func:`write_frames` writes itself from the data, in the order the standard requires, or drops because
#: they described the source file's HDU (its checksums, its place among the source's extensions)
_STRUCTURAL = frozenset({"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT",
                         "GCOUNT", "GROUPS", "END", "CHECKSUM", "DATASUM", "EXTVER", "NEXTEND"})
#: Rice decoding: ZBITPIX -> the integer type cfitsio decodes to (8-bit Rice decodes unsigned bytes)
_RICE_DTYPES = {8: np.uint8, 16: np.int16, 32: np.int32}
#: cards of a compressed image's table header that describe the table (astropy's ``Header.strip``)
_TABLE_STRUCTURE = frozenset({"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS",
                              "TFIELDS", "THEAP", "CHECKSUM", "DATASUM"})
_NAXIS_N = re.compile(r"NAXIS(\d+)")
_END_CARD = b"END" + b" " * 77
_BLOCK = 2880
#: :func:`read_header` reads this many leading bytes first (an AIA file's headers are ~40 kB)
_HEAD_READ = 1 << 17
#: decoded images from this size up reuse their thread's last array (:func:`_image_array`)
_REUSED_BYTES = 8 << 20
_DECODED = threading.local()


def _header_end(buf: bytes, start: int) -> int:
    """Offset just past the END card of the header block starting at ``start``; -1 when there is none."""
    end = buf.find(_END_CARD, start)
    while end >= 0 and (end - start) % 80:
        end = buf.find(_END_CARD, end + 1)
    return -1 if end < 0 else end + 80


def _next_block(offset: int) -> int:
    """The first 2880-byte block boundary at or after ``offset`` (where the next header or the data start)."""
    return -(-offset // _BLOCK) * _BLOCK


def _is_scaled(header: fits.Header) -> bool:
    """Whether the header asks for BSCALE/BZERO scaling (astropy applies it, and BLANK with it)."""
    return float(header.get("BSCALE", 1.0)) != 1.0 or float(header.get("BZERO", 0.0)) != 0.0


def _read_plain(buf: bytes) -> tuple[np.ndarray, fits.Header] | None:
    """Data and header of a plain FITS file whose primary HDU is an unscaled 2-D image; None for anything else.

    Raises
    ------
    ValueError
        When the file is shorter than its header says (truncated download).
    """
    if not buf.startswith(b"SIMPLE  ="):
        return None
    end = _header_end(buf, 0)
    if end < 0:
        return None
    try:
        header = fits.Header.fromstring(buf[:end].decode("ascii"))
        naxis, bitpix = int(header.get("NAXIS", 0)), int(header["BITPIX"])
        scaled = _is_scaled(header)
    except Exception:  # astropy will say what is wrong
        return None
    if header.get("SIMPLE") is not True or naxis != 2 or bitpix not in _PLAIN_DTYPES:
        return None
    if header.get("GROUPS") or "XTENSION" in header or (scaled and not _scaled_like_float(header, bitpix)):
        return None
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    dtype = np.dtype(_PLAIN_DTYPES[bitpix])
    offset = _next_block(end)
    if len(buf) < offset + ny * nx * dtype.itemsize:
        raise ValueError(f"truncated FITS: {len(buf)} bytes, the header needs {offset + ny * nx * dtype.itemsize}")
    data = np.frombuffer(buf, dtype=dtype, count=ny * nx, offset=offset).reshape(ny, nx)
    if scaled:
        return _scale_as_astropy(data, header)
    return data.astype(dtype.newbyteorder("=")), header


def _scaled_like_float(header: fits.Header, bitpix: int) -> bool:
    """A scaled integer image that astropy turns into floats (BSCALE != 1: never an unsigned-integer convention):
    level-1 LASCO's int16 with BSCALE, BZERO and BLANK. Other scaled layouts are left to astropy."""
    try:
        bscale, bzero = header.get("BSCALE", 1), header.get("BZERO", 0)
        blank = header.get("BLANK")
    except Exception:
        return False
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (bscale, bzero))
    return bitpix in (16, 32) and numbers and bscale != 1 and (blank is None or type(blank) is int)


def _scale_as_astropy(raw: np.ndarray, header: fits.Header) -> tuple[np.ndarray, fits.Header]:
    """What astropy makes of a :func:`_scaled_like_float` image, operation for operation (so bit for bit): float32
    (float64 above 16 bits), times BSCALE, plus BZERO, NaN where the stored value is BLANK; the header loses
    BSCALE and BZERO (a blank card appended for each) and BLANK, and BITPIX says the float type. ~4x faster than
    astropy's second parse of the file."""
    dtype = np.dtype("float32" if int(header["BITPIX"]) <= 16 else "float64")
    bscale, bzero, blank = header.get("BSCALE", 1), header.get("BZERO", 0), header.get("BLANK")
    data = np.empty(raw.shape, dtype=dtype)
    step = max(1, 65536 // max(raw.shape[-1], 1))  # bands of rows in the cache: per-pixel steps, the same bits
    for start in range(0, raw.shape[0], step):
        part, stored = data[start : start + step], raw[start : start + step]
        part[...] = stored
        np.multiply(part, bscale, part)
        if bzero != 0:
            part += bzero
        if blank:  # astropy tests BLANK for truth: a BLANK of 0 is not applied
            part[stored == blank] = np.nan
    for keyword in ("BSCALE", "BZERO"):  # the header is _read_plain's own: no copy (1 ms on 300 cards)
        if keyword in header:
            del header[keyword]
            header.append()
    header["BITPIX"] = -32 if dtype == np.float32 else -64
    header.pop("BLANK", None)
    return data, header


def _rice_layout(table: fits.Header) -> dict | None:
    """How to decode a tile-compressed image table, or None when :func:`_read_rice` does not handle it.

    Handled: ``RICE_1``, 2-D, integer ``ZBITPIX`` with ``BYTEPIX`` equal to its width, one ``COMPRESSED_DATA``
    column (so no ``ZSCALE``/``ZZERO``/``ZBLANK`` columns, no uncompressed fallback tiles), no quantisation.
    """
    if not table.get("ZIMAGE") or table.get("ZCMPTYPE") != "RICE_1" or table.get("ZNAXIS") != 2:
        return None
    zbitpix = table.get("ZBITPIX")
    if zbitpix not in _RICE_DTYPES or table.get("TFIELDS") != 1 or table.get("TTYPE1") != "COMPRESSED_DATA":
        return None
    if any(key in table for key in ("ZSCALE", "ZZERO", "ZBLANK", "ZQUANTIZ")):  # quantised or null-valued floats
        return None
    form = str(table.get("TFORM1", "")).strip().upper()
    if form.startswith("1PB"):
        descriptor = ">i4"
    elif form.startswith("1QB"):
        descriptor = ">i8"
    else:
        return None
    if _compression_setting(table, "BYTEPIX", 4) != zbitpix // 8:
        return None
    nx, ny = int(table["ZNAXIS1"]), int(table["ZNAXIS2"])
    rows, row_bytes = int(table["NAXIS2"]), int(table["NAXIS1"])
    return {
        "dtype": _RICE_DTYPES[zbitpix],
        "shape": (ny, nx),
        "tile": (int(table.get("ZTILE2", 1)), int(table.get("ZTILE1", nx))),
        "rows": rows,
        "row_bytes": row_bytes,
        "heap_start": int(table.get("THEAP", rows * row_bytes)),
        "data_bytes": rows * row_bytes + int(table.get("PCOUNT", 0)),  # descriptor table + heap
        "descriptor": descriptor,
        "blocksize": int(_compression_setting(table, "BLOCKSIZE", 32)),
    }


def _compression_setting(table: fits.Header, name: str, default):
    """A ``ZNAMEn``/``ZVALn`` setting the way astropy (and cfitsio) look it up: the first ``ZNAMEn`` equal to
    ``name`` in any case."""
    index = 1
    while f"ZNAME{index}" in table:
        if str(table[f"ZNAME{index}"]).lower() == name.lower():
            return table.get(f"ZVAL{index}")
        index += 1
    return default


def _image_array(shape: tuple[int, int], dtype) -> np.ndarray:
    """An uninitialised array to decode into: this thread's last one when its shape and type fit and nothing holds
    it any more (no caller, no view), else a new one, remembered for the next decode.

    A 4096² int16 frame is 32 MiB: glibc maps every allocation that large afresh and the kernel zeroes its pages
    on first touch, ~4.5 ms a frame for nothing when each frame is dropped before the next is read (QC's case).
    """
    dtype = np.dtype(dtype)
    if int(np.prod(shape)) * dtype.itemsize < _REUSED_BYTES:
        return np.empty(shape, dtype=dtype)
    last, probe = getattr(_DECODED, "image", None), getattr(_DECODED, "probe", None)
    if probe is None:
        _DECODED.probe = probe = object()
    # no more references than an object only the thread-local holds, counted the same way (what getrefcount counts
    # for a local varies between Python versions): no caller, no view sees it
    if (last is not None and last.shape == tuple(shape) and last.dtype == dtype
            and sys.getrefcount(last) == sys.getrefcount(probe)):
        return last
    _DECODED.image = image = np.empty(shape, dtype=dtype)
    return image


def _decode_rice(buf: bytes, data_offset: int, layout: dict) -> np.ndarray:
    """Decode every tile of a ``RICE_1`` table whose data start at ``data_offset`` into one native array."""
    from .rice import decode_tiles  # numba-compiled: only JSOC products need it; keeps the SoHO path free of it

    if layout["row_bytes"] != 2 * np.dtype(layout["descriptor"]).itemsize:  # (decode_tiles checks the tile count)
        raise ValueError(f"compressed table rows of {layout['row_bytes']} bytes are no tile descriptors")
    end = data_offset + layout["data_bytes"]  # the table's data end with its heap (PCOUNT): tiles lie inside
    if len(buf) < end:
        raise ValueError(f"truncated FITS: {len(buf)} bytes, the compressed table needs {end}")
    if not layout["rows"] * layout["row_bytes"] <= layout["heap_start"] <= layout["data_bytes"]:
        raise ValueError(f"compressed table's heap starts at {layout['heap_start']}, inside its rows or past its data")
    descriptors = np.frombuffer(buf, layout["descriptor"], count=2 * layout["rows"], offset=data_offset)
    lengths, offsets = descriptors[0::2].astype(np.int64), descriptors[1::2].astype(np.int64)
    if (lengths <= 0).any():  # a tile stored elsewhere (uncompressed column): not this layout
        raise ValueError("compressed table has empty tiles")
    image = _image_array(layout["shape"], layout["dtype"])
    # decode_tiles refuses tiles outside the buffer it is given: the heap, no further
    decode_tiles(np.frombuffer(buf, dtype=np.uint8, count=end), data_offset + layout["heap_start"], lengths, offsets,
                 image, layout["tile"], layout["blocksize"])  # fmt: skip
    return image


def stored_blank(data: np.ndarray, header: fits.Header) -> int | None:
    """The ``BLANK`` value that marks missing pixels of ``data`` as read, or None when none does.

    ``BLANK`` names a stored integer: it applies to integer data that were not scaled (on scaled data astropy has
    put NaN at those pixels already).
    """
    blank = header.get("BLANK")
    if not isinstance(blank, int | np.integer) or data.dtype.kind not in "iu" or _is_scaled(header):
        return None  # a BLANK that is no integer is ignored, as astropy ignores it (with a warning)
    return int(blank)


def blank_to_nan(data: np.ndarray, header: fits.Header) -> np.ndarray:
    """astropy's view of an unscaled integer image with ``BLANK``: floats with NaN at the ``BLANK`` pixels.

    Returns ``data`` itself when it is not an integer array, the header has no ``BLANK`` or has ``BSCALE``/``BZERO``
    (astropy scaled those data and put NaN at their ``BLANK`` pixels already), or no pixel is ``BLANK``.
    The float type is astropy's (float32 for 8- and 16-bit integers, float64 for wider ones). One difference:
    ``BLANK = 0`` marks missing pixels here, as the FITS standard says; astropy ignores a BLANK of 0.
    """
    blank = stored_blank(data, header)
    if blank is None:
        return data
    info = np.iinfo(data.dtype)
    # the usual BLANK (JSOC: -32768) is the type's extreme: one min() or max() pass says whether any pixel holds it
    if (blank == info.min and data.min() != blank) or (blank == info.max and data.max() != blank):
        return data
    missing = data == blank
    if not missing.any():
        return data
    result = data.astype(np.float32 if data.dtype.itemsize <= 2 else np.float64)
    result[missing] = np.nan
    return result


def _image_header(table: fits.Header) -> fits.Header:
    """The image header astropy derives from a compressed image's table header, built without astropy's copies.

    astropy's conversion (``fits.open`` then ``CompImageHDU.header``) copies the table header and deletes the
    table and compression cards one by one, each deletion re-indexing the header: ~8 ms of a 4096² AIA frame's
    ~150 ms clean stage. Here the image header is the structural cards from ``ZBITPIX``/``ZNAXISn`` followed by the
    table's other cards, in order. Headers with cases this does not reproduce (blank cards, repeated keywords,
    ``ZSIMPLE``, ``ZEXTEND``, ``ZBLOCKED``, ``BSCALE``/``BZERO``, a ``ZTENSION`` other than ``IMAGE``) go through
    astropy's own conversion; the tests compare both on every layout :func:`_rice_layout` accepts.
    """
    keywords = [card.keyword for card in table.cards]
    named = [keyword for keyword in keywords if keyword not in ("COMMENT", "HISTORY")]
    if ("" in keywords or len(set(named)) != len(named) or table.get("ZTENSION", "IMAGE") != "IMAGE"
            or any(key in table for key in ("ZSIMPLE", "ZEXTEND", "ZBLOCKED", "BSCALE", "BZERO"))):
        return _bintable_header_to_image_header(table)
    comments = table.comments
    naxis = int(table["ZNAXIS"])
    cards = [fits.Card("XTENSION", "IMAGE", comments["ZTENSION"] if "ZTENSION" in table else ""),
             fits.Card("BITPIX", table["ZBITPIX"], comments["ZBITPIX"]),
             fits.Card("NAXIS", naxis, comments["ZNAXIS"])]
    cards += [fits.Card(f"NAXIS{i}", table[f"ZNAXIS{i}"], comments[f"ZNAXIS{i}"]) for i in range(1, naxis + 1)]
    cards += [fits.Card("PCOUNT", table["ZPCOUNT"], comments["ZPCOUNT"]) if "ZPCOUNT" in table
              else fits.Card("PCOUNT", 0),
              fits.Card("GCOUNT", table["ZGCOUNT"], comments["ZGCOUNT"]) if "ZGCOUNT" in table
              else fits.Card("GCOUNT", 1)]  # fmt: skip
    table_axes = {f"NAXIS{i}" for i in range(1, int(table.get("NAXIS", 0)) + 1)}
    for card in table.cards:
        keyword = card.keyword
        if keyword in _TABLE_STRUCTURE or keyword in table_axes or _is_reserved_keyword(keyword):
            continue
        axis = _NAXIS_N.fullmatch(keyword)
        if axis and int(axis[1]) > naxis:
            continue  # an axis the image does not have
        cards.append(card)
    header = fits.Header(cards)
    for source, target in (("ZHECKSUM", "CHECKSUM"), ("ZDATASUM", "DATASUM")):
        if source in table:  # where astropy's set puts a new card: after the last non-commentary one
            header.set(target, table[source], comments[source])
    if header.get("EXTNAME") == "COMPRESSED_IMAGE":  # astropy's default name, dropped after the cards above
        del header["EXTNAME"]
    return header


def _read_rice(buf: bytes) -> tuple[np.ndarray, fits.Header] | None:
    """Data and header of a file whose first extension is a ``RICE_1``-compressed integer image after an empty
    primary HDU (JSOC's layout); None for anything else (astropy reads it)."""
    primary_end = _header_end(buf, 0)
    if not buf.startswith(b"SIMPLE  =") or primary_end < 0:
        return None
    table_start = _next_block(primary_end)
    table_end = _header_end(buf, table_start)
    if table_end < 0 or not buf.startswith(b"XTENSION= 'BINTABLE'", table_start):
        return None
    try:
        primary = fits.Header.fromstring(buf[:primary_end].decode("ascii"))
        table = fits.Header.fromstring(buf[table_start:table_end].decode("ascii"))
        if primary.get("SIMPLE") is not True or primary.get("NAXIS", 0) or primary.get("GROUPS"):
            return None
        layout = _rice_layout(table)
        header = None if layout is None else _image_header(table)
    except Exception:  # astropy will say what is wrong
        return None
    if layout is None or _is_scaled(header):
        return None
    return _decode_rice(buf, _next_block(table_end), layout), header


def _read_astropy(path: Path | str) -> tuple[np.ndarray, fits.Header] | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.header.get("NAXIS", 0) or getattr(hdu, "is_image", False):
                    data = hdu.data
                    if data is not None:
                        data = np.asarray(data)
                        return data.astype(data.dtype.newbyteorder("=")), hdu.header
    return None


def read_frame(path: Path | str) -> tuple[np.ndarray, fits.Header]:
    """Data and header of the first HDU holding data (compressed JSOC files: the first extension).

    The data come back in native byte order and writable; the header belongs to the caller. An unscaled integer
    image stays integer with its ``BLANK`` pixels as stored (see :func:`blank_to_nan`).

    Raises
    ------
    ValueError
        When the file is unreadable, truncated or holds no image data.
    """
    try:
        with open(path, "rb") as handle:
            buf = handle.read()
        frame = _read_plain(buf)
        if frame is None and b"ZCMPTYPE" in buf[: 40 * _BLOCK]:  # a tile-compressed image in the first HDUs
            frame = _read_rice(buf)
        if frame is None:
            frame = _read_astropy(path)
    except Exception as exc:  # astropy raises many kinds on broken files
        raise ValueError(f"unreadable FITS: {type(exc).__name__}: {exc}") from exc
    if frame is None:
        raise ValueError("no HDU holds image data")
    return frame


def read_header(path: Path | str) -> fits.Header | None:
    """The header :func:`read_frame` returns for ``path``, without reading the image: for the files its fast paths
    read (plain unscaled images, ``RICE_1`` tables after an empty primary HDU); None for the others."""
    with open(path, "rb") as handle:
        buf = handle.read(_HEAD_READ)
        try:
            end = _header_end(buf, 0)
            if end < 0 and len(buf) == _HEAD_READ:  # a header longer than the first bytes
                buf += handle.read()
                end = _header_end(buf, 0)
            if not buf.startswith(b"SIMPLE  =") or end < 0:
                return None
            header = fits.Header.fromstring(buf[:end].decode("ascii"))
            if (header.get("SIMPLE") is True and int(header.get("NAXIS", 0)) == 2 and not header.get("GROUPS")
                    and int(header["BITPIX"]) in _PLAIN_DTYPES and not _is_scaled(header) and "XTENSION" not in header):
                return header  # _read_plain's file
            table_start = _next_block(end)
            table_end = _header_end(buf, table_start)
            if table_end < 0:
                buf += handle.read()  # nothing more when the first read had the whole file
                table_end = _header_end(buf, table_start)
            if (b"ZCMPTYPE" not in buf[: 40 * _BLOCK] or header.get("SIMPLE") is not True or header.get("NAXIS", 0)
                    or header.get("GROUPS") or table_end < 0
                    or not buf.startswith(b"XTENSION= 'BINTABLE'", table_start)):
                return None
            table = fits.Header.fromstring(buf[table_start:table_end].decode("ascii"))
            if _rice_layout(table) is None:
                return None
            image = _image_header(table)
        except Exception:  # read_frame hands such files to astropy
            return None
    return None if _is_scaled(image) else image  # _read_rice's file
