"""The canonical FITS header update for an image resized by a scale factor.

Every stage that changes the pixel grid (the embedded archive serving frames smaller than native, the clean stage
resizing frames) calls :func:`rescale_header`, so the world coordinates of a pixel survive any resize.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = ["CONVENTIONS", "FILE_CARDS", "JSOC_NUMERIC_TYPES", "PIXEL_CENTRE_KEYS", "PIXEL_RADIUS_KEYS",
           "SCALE_KEYWORD", "jsoc_value", "record_keywords", "rescale_header", "rescale_pixel_keys",
           "with_record_keywords"]

#: Keywords holding a length in pixels (radii): divided by the factor.
PIXEL_RADIUS_KEYS = ("R_SUN", "CROP_RAD", "SOLAR_R", "RSUN_PIX")
#: Keywords holding a 0-based pixel position (disk centre): mapped like CRPIX, with the 0-based convention.
PIXEL_CENTRE_KEYS = ("X0", "Y0", "X0_MP", "Y0_MP")
#: Keyword recording the cumulative scale factor (old pixels per new pixel) applied to the image.
SCALE_KEYWORD = "HC_SCALE"
#: Resize conventions: ``center`` for block binning/interpolation (new pixel centred on its block), ``corner`` for
#: subsampling that keeps pixel 0 of each block.
CONVENTIONS = ("center", "corner")
#: Cards that describe a FITS file, not an observation: never taken from an archive record.
FILE_CARDS = frozenset({"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT",
                         "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "CONTINUE",
                         "EXTNAME", SCALE_KEYWORD})
#: JSOC keyword types whose values are numbers.
JSOC_NUMERIC_TYPES = frozenset({"int", "short", "char", "long", "longlong", "float", "double"})
_JSOC_INTEGER = frozenset({"int", "short", "char", "long", "longlong"})


def _map_crpix(crpix: float, factor: float, convention: str) -> float:
    """Map a 1-based FITS pixel position onto the resized grid."""
    if convention == "center":
        return (crpix - 0.5) / factor + 0.5
    return (crpix - 1.0) / factor + 1.0


def rescale_pixel_keys(header: fits.Header, factor: float, convention: str = "center") -> None:
    """Divide the pixel radii (:data:`PIXEL_RADIUS_KEYS`) by ``factor`` and remap the 0-based disk centres
    (:data:`PIXEL_CENTRE_KEYS`) with ``convention``, in place; the part of :func:`rescale_header` that is not WCS."""
    def numeric(key: str) -> bool:
        value = header.get(key)
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for key in filter(numeric, PIXEL_RADIUS_KEYS):
        header[key] = header[key] / factor
    for key in filter(numeric, PIXEL_CENTRE_KEYS):  # 0-based position: the 1-based mapping shifted by one pixel
        header[key] = _map_crpix(header[key] + 1.0, factor, convention) - 1.0


def rescale_header(
    header: fits.Header,
    factor: float,
    *,
    convention: str = "center",
    history: str | None = None,
    naxis: tuple[int, int] | None = None,
    copy: bool = True,
) -> fits.Header:
    """Update a header for an image resized by ``factor`` (new pixels = old pixels / factor).

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header of the original image; not modified unless ``copy`` is False.
    factor : float
        Old pixels per new pixel along each axis: 4 for 1024 -> 256, 0.25 for 256 -> 1024.
    convention : {"center", "corner"}
        ``center`` when each new pixel covers a block of old pixels and sits at the block's centre (mean/sum/min/max
        binning, anti-aliased interpolation): ``crpix_new = (crpix_old - 0.5) / factor + 0.5``. ``corner`` for
        subsampling that keeps the first pixel of each block: ``crpix_new = (crpix_old - 1) / factor + 1``.
    history : str, optional
        HISTORY line to add; a default one naming the factor and convention is written when omitted.
    naxis : (int, int), optional
        New (NAXIS1, NAXIS2); by default the old sizes divided by ``factor`` and rounded.
    copy : bool
        False updates ``header`` itself and returns it (for a caller that owns the header: a copy costs ~10 us per
        card).

    Returns
    -------
    astropy.io.fits.Header
        A copy with NAXISi, CDELTi (or CDi_j) times ``factor``, CRPIXi remapped, pixel radii (R_SUN, CROP_RAD,
        SOLAR_R) divided by ``factor``, 0-based centres (X0, Y0, X0_MP, Y0_MP) remapped with the same convention,
        angular keys (RSUN_OBS, CRVALi) and rotation (PCi_j, CROTAi) unchanged, a HISTORY line and the cumulative
        factor in ``HC_SCALE``.

    Raises
    ------
    ValueError
        For a non-positive factor or an unknown convention.
    """
    factor = float(factor)
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown resize convention {convention!r}; choose one of {CONVENTIONS}")
    new = header.copy() if copy else header
    for axis in (1, 2):
        key = f"NAXIS{axis}"
        if naxis is not None:
            new[key] = int(naxis[axis - 1])
        elif key in new:
            new[key] = round(new[key] / factor)
        if f"CDELT{axis}" in new:
            new[f"CDELT{axis}"] = new[f"CDELT{axis}"] * factor
        if f"CRPIX{axis}" in new:
            new[f"CRPIX{axis}"] = _map_crpix(float(new[f"CRPIX{axis}"]), factor, convention)
        for other in (1, 2):
            if f"CD{axis}_{other}" in new:  # CD matrix: pixel -> world, scales with the pixel size
                new[f"CD{axis}_{other}"] = new[f"CD{axis}_{other}"] * factor
    rescale_pixel_keys(new, factor, convention)
    previous = new.get(SCALE_KEYWORD, 1.0)
    new[SCALE_KEYWORD] = (float(previous) * factor, "original pixels per pixel (cumulative)")
    new.add_history(history or f"heliocube rescale_header: factor {factor:g} ({convention} convention)")
    return new


def jsoc_value(text, jsoc_type: str):
    """A value as JSOC prints it (``rs_list``, drms with ``convert_numeric=False``) as a FITS card value.

    Integers may be hexadecimal (``QUALITY = 0x00000400``). Returns None when the value is missing (``MISSING``,
    NaN, empty: FITS has no NaN).
    """
    if text is None or (isinstance(text, float) and not math.isfinite(text)):
        return None
    text = str(text).strip()
    if jsoc_type in _JSOC_INTEGER:
        try:
            return int(text, 0)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if number.is_integer() else number
    if jsoc_type in JSOC_NUMERIC_TYPES:
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if text in ("", "Invalid KeyLink"):
        return None
    return text


def _number_or_text(text: str):
    """A printed keyword value as a number when it is one (``0x00000400`` included), else the stripped text."""
    text = text.strip()
    if not text or text in ("MISSING", "Invalid KeyLink"):
        return None
    for parse in (lambda t: int(t, 0), float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def record_keywords(product, row) -> str | None:
    """The ``keywords`` of a manifest or slot row that complete its file's header (:func:`with_record_keywords`),
    or None.

    Only JSOC files need them: an as-is segment file carries no keywords of its own
    (:func:`heliocube.header.with_record_keywords`); SDAC files carry theirs.
    """
    if not product.is_jsoc or row is None or not hasattr(row, "get"):
        return None
    value = row.get("keywords")
    return value if isinstance(value, str) and value else None


def with_record_keywords(header: fits.Header, keywords: Mapping | str | None) -> fits.Header:
    """``header``, updated in place, with the archive record's keywords it lacks.

    JSOC's ``as-is`` segment files carry little beyond their structure: a frame's geometry (CRPIX, CDELT, CRVAL,
    RSUN_OBS, DSUN_OBS, X0/Y0...) lives in the record's keywords, which the query stage keeps in the manifest
    (``keywords``, typed values by JSOC name). Without them the disk would be placed at the array centre with a
    guessed radius, the prior tool's bug. A card of the file wins over the record (a ``fits`` export carries all
    of them). The values describe the native grid: in a file served resampled (``HC_SCALE``, which only the
    embedded archive writes) the pixel keywords are mapped onto the file's grid with :func:`rescale_header`
    (centre convention, as the archive resamples).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The frame's header as read.
    keywords : mapping or JSON str or None
        JSOC keyword name (``DATE__OBS`` is the card ``DATE-OBS``) -> value; None values are skipped.
    """
    if isinstance(keywords, str):
        keywords = json.loads(keywords) if keywords.strip() else None
    if not isinstance(keywords, Mapping) or not keywords:
        return header
    from astropy.io import fits  # here: the JSOC query job types record values (jsoc_value) without astropy

    record = fits.Header()
    for name, value in keywords.items():
        card = name.replace("__", "-")
        if card in header or card in FILE_CARDS or len(card) > 8:
            continue
        if isinstance(value, str):  # manifests written before the values were typed hold JSOC's printed text
            value = _number_or_text(value)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        record[card] = value
    taken = len(record)
    if not taken:
        return header
    scale = float(header.get(SCALE_KEYWORD, 1.0) or 1.0)
    if scale != 1.0:
        record = rescale_header(record, scale, convention="center", copy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        for card in record.cards:
            if card.keyword not in (SCALE_KEYWORD, "HISTORY"):
                header[card.keyword] = card.value
    header.add_history(f"heliocube: {taken} keywords from the archive record"
                       + (f" (native grid mapped by 1/{scale:g})" if scale != 1.0 else ""))
    return header
