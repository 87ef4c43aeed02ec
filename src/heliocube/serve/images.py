"""Frames and parameter heatmaps as JPEG or PNG images for the read API.

A frame is shown in its instrument's colormap and stretch (:func:`heliocube.report.thumbnails.display_settings`,
from sunpy's map source classes), solar north up, resized to the requested edge. Heatmaps are drawn by
:func:`heliocube.params.heatmap.render_heatmap` (the same figure as the QC report's).
"""

from __future__ import annotations

import io
import re

import numpy as np
from astropy.io import fits
from PIL import Image

__all__ = ["FORMATS", "frame_image", "header_number", "heatmap_image", "parse_header"]

#: Image formats served: request name -> (PIL format, media type).
FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}


def parse_header(text: str) -> fits.Header:
    """A cube's stored header text (cards separated by newlines) as a FITS header."""
    return fits.Header.fromstring(text, sep="\n")


def header_number(text: str, keyword: str) -> float | None:
    """The numeric value of ``keyword`` in a stored header text, None when absent or not a number.

    A regular expression, not a FITS parse: the header routes read one keyword of many frames.
    """
    match = re.search(rf"^{re.escape(keyword):<8}= *([-+0-9.EeDd]+)", text, flags=re.MULTILINE)
    if match is None:
        return None
    try:
        return float(match.group(1).replace("D", "E").replace("d", "e"))
    except ValueError:
        return None


def _encode(image: Image.Image, size: int | None, fmt: str) -> bytes:
    if size is not None and size != image.width:
        height = max(1, round(image.height * size / image.width))
        image = image.resize((size, height), Image.Resampling.LANCZOS)
    pil_format, _ = FORMATS[fmt]
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=pil_format, **({"quality": 92} if pil_format == "JPEG" else {}))
    return buffer.getvalue()


def frame_image(data: np.ndarray, header_text: str, product: str, *, size: int | None, fmt: str) -> bytes:
    """One frame as ``fmt`` bytes, ``size`` pixels wide (default: the frame's own), solar north up."""
    from ..report.thumbnails import display_settings  # loads sunpy: only when an image is asked for

    cmap, norm = display_settings(data, parse_header(header_text), product)
    masked = np.ma.masked_invalid(data)
    rgba = cmap(norm(masked))
    rgba[np.ma.getmaskarray(masked)] = cmap.get_bad()
    pixels = (np.clip(rgba[::-1, :, :3], 0, 1) * 255).round().astype(np.uint8)  # FITS rows run south to north
    return _encode(Image.fromarray(pixels), size, fmt)


def heatmap_image(data: np.ndarray, grid: np.ndarray, name: str, units: str, *, title: str, size: int | None,
                  fmt: str) -> bytes:
    """The heatmap of one parameter's grid over its frame, ``size`` pixels wide (default: as drawn)."""
    from ..params.heatmap import render_heatmap  # matplotlib: only when a heatmap is asked for

    drawn = render_heatmap(data, grid, name, units, title=title, fmt="png")
    return _encode(Image.open(io.BytesIO(drawn)), size, fmt)
