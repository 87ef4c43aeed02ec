"""Frames as small PNG thumbnails in their instrument's colormap.

The colormap and stretch come from sunpy's map source classes (``EITMap`` -> ``sohoeit195``, ``AIAMap`` ->
``sdoaia171`` with an asinh stretch, ``LASCOMap`` -> ``soholasco2``), so the instrument knowledge stays in sunpy and
the registry. Magnetograms are recognised by their registry unit (a magnetic flux density, e.g. Gauss): sunpy 7 gives
full-disk MDI and HMI magnetograms no colormap of their own, so they get sunpy's ``hmimag`` on a range symmetric about
zero, where white and black are the two polarities.
"""

from __future__ import annotations

import io
import warnings

import astropy.units as u
import matplotlib
import matplotlib.image
import numpy as np
from astropy.io import fits
from astropy.visualization import ImageNormalize, LinearStretch

__all__ = ["MAGNETOGRAM_COLORMAP", "display_settings", "is_magnetogram", "thumbnail_png"]

MAGNETOGRAM_COLORMAP = "hmimag"
#: Percentiles of the finite pixels mapped to the ends of the colormap (magnetograms: of |B|, symmetric).
PERCENTILES = (1.0, 99.5)


def is_magnetogram(product: str) -> bool:
    """Whether the registry's unit of ``product`` is a magnetic flux density; False for an unknown product."""
    from ..registry import get_product

    try:
        unit = u.Unit(get_product(product).units)
    except (KeyError, ValueError):
        return False
    return unit.physical_type == "magnetic flux density"


def _limits(data: np.ndarray, symmetric: bool) -> tuple[float, float]:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    if symmetric:
        top = float(np.percentile(np.abs(finite), PERCENTILES[1])) or 1.0
        return -top, top
    low, high = (float(v) for v in np.percentile(finite, PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def display_settings(data: np.ndarray, header: fits.Header, product: str):
    """The colormap and normalisation to show one frame with.

    Parameters
    ----------
    data : numpy.ndarray
        The frame.
    header : astropy.io.fits.Header
        Its FITS header (from the cube's ``headers``): sunpy picks the map source class, hence the colormap.
    product : str
        Registry name of the product.

    Returns
    -------
    (matplotlib.colors.Colormap, astropy.visualization.ImageNormalize)
        The norm keeps sunpy's stretch for the instrument and clips at :data:`PERCENTILES` of the frame.
    """
    import sunpy.map
    import sunpy.visualization.colormaps  # registers the instrument colormaps with matplotlib

    symmetric = is_magnetogram(product)
    cmap_name, stretch = "gray", LinearStretch()
    if symmetric:
        cmap_name = MAGNETOGRAM_COLORMAP
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a thumbnail needs the source class, not every header remark
                settings = sunpy.map.Map(data, header).plot_settings
            cmap = settings["cmap"]
            cmap_name = cmap if isinstance(cmap, str) else cmap.name
            stretch = getattr(settings.get("norm"), "stretch", None) or stretch
        except Exception:  # a header sunpy cannot read still gets a gray thumbnail
            pass
    vmin, vmax = _limits(data, symmetric)
    cmap = matplotlib.colormaps.get(cmap_name) or matplotlib.colormaps["gray"]  # sunpy may name one it lacks
    return cmap, ImageNormalize(vmin=vmin, vmax=vmax, stretch=stretch, clip=True)


def thumbnail_png(data: np.ndarray, header: fits.Header, product: str) -> bytes:
    """One frame as PNG bytes, one pixel per frame pixel, solar north up (FITS rows run south to north).

    NaN pixels take the colormap's "bad" colour.
    """
    cmap, norm = display_settings(data, header, product)
    masked = np.ma.masked_invalid(data)
    rgba = cmap(norm(masked))
    rgba[np.ma.getmaskarray(masked)] = cmap.get_bad()
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, rgba, format="png", origin="lower")
    return buffer.getvalue()
