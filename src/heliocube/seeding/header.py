"""One seeded frame header: a record's archive keywords mapped once onto the cube's pixel grid."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from astropy.io import fits

from ..header import SCALE_KEYWORD, jsoc_value, rescale_header


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

