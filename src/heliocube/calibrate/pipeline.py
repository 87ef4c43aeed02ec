"""The entry points: :func:`calibrate` (a calibrated frame of the input's size) and :func:`calibrate_frame` (a
calibrated frame on a variant's output grid, the clean stage's call)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import numpy as np
from astropy.io import fits

from ..header import rescale_header
from ..registry import get_product
from ..resize import HEADER_CONVENTION, resize_factor, resize_frame
from .affine import affine_resample, supports
from .degradation import check_available, degradation_divisor
from .exposure import exposure_divisor
from .full_resolution import resample_full_resolution
from .geometry import resampling, update_geometry_header
from .options import CalibrationOptions, parse_options

__all__ = ["calibrate", "calibrate_frame"]

log = logging.getLogger(__name__)

#: Keywords describing the stored integer encoding, invalid once the data are float32.
_ENCODING_KEYS = ("BSCALE", "BZERO", "BLANK")


def _finish_header(header: fits.Header, data: np.ndarray) -> None:
    """The data are float32 now: no integer encoding, BITPIX -32, DATAMIN/DATAMAX of the new values."""
    for key in _ENCODING_KEYS:
        header.remove(key, ignore_missing=True, remove_all=True)
    if "BITPIX" in header:
        header["BITPIX"] = -32
    if "DATAMIN" in header or "DATAMAX" in header:
        finite = data[np.isfinite(data)]
        for key, func in (("DATAMIN", np.min), ("DATAMAX", np.max)):
            if key in header:
                if finite.size:
                    # float32's shortest text: a float64 repr can need 17 digits, more than a card's 20 characters
                    header[key] = float(str(np.float32(func(finite))))
                else:  # FITS headers cannot hold NaN
                    del header[key]


def _checked(data: np.ndarray) -> np.ndarray:
    array = np.asarray(data)
    if array.ndim != 2:
        raise ValueError(f"calibrate needs a 2-D frame, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"calibrate needs real numeric data, got dtype {array.dtype}")
    return array


def _divisors(header: fits.Header, product, options: CalibrationOptions) -> list[float]:
    """The scalar steps (exposure, degradation) in :data:`~heliocube.calibrate.STEP_ORDER`: header updated, the
    divisors returned."""
    divisors = []
    if options.exposure_normalise:
        divisors.append(exposure_divisor(header, product))
    if options.aia_degradation:
        divisors.append(degradation_divisor(header, product, options))
    return [d for d in divisors if d is not None]


def calibrate(data: np.ndarray, header: fits.Header, options: Mapping | CalibrationOptions | None,
              product_name: str) -> tuple[np.ndarray, fits.Header]:
    """Apply the enabled calibration steps to one frame at its own size, in :data:`STEP_ORDER`.

    The geometric step is the full-resolution resampling (:mod:`~heliocube.calibrate.full_resolution`) whatever
    ``method`` says: the output keeps the input's shape. :func:`calibrate_frame` gives the output grid.

    Parameters
    ----------
    data : numpy.ndarray
        2-D frame, any real dtype; not modified.
    header : astropy.io.fits.Header
        Its header; not modified.
    options : mapping
        Calibration options (see :mod:`heliocube.calibrate`).
    product_name : str
        Registry product the frame belongs to (decides which steps apply).

    Returns
    -------
    data : numpy.ndarray
        float32 array of the input's shape (a new array even when no step is enabled).
    header : astropy.io.fits.Header
        A new header, updated as :mod:`heliocube.calibrate` describes, with a HISTORY line per step.

    Raises
    ------
    ValueError
        Invalid options, non-2-D or non-numeric data, a count frame without a positive EXPTIME, a BUNIT whose
        relation to the exposure is unknown, or a WCS that does not locate the disk centre.
    CalibrationUnavailable
        AIA degradation enabled without aiapy or without a local correction table.
    """
    parsed = parse_options(options)
    product = get_product(product_name)
    check_available(parsed, product)
    array = _checked(data)
    work = array.astype(np.float64)  # native byte order, a copy: the caller's array is never touched
    new = header.copy()
    for divisor in _divisors(new, product, parsed):
        work = work / divisor
    if parsed.geometric:
        new["NAXIS1"], new["NAXIS2"] = int(work.shape[1]), int(work.shape[0])
        work = resample_full_resolution(work, new, dataclasses.replace(parsed, method="full_resolution"))
    out = work.astype(np.float32)
    if parsed.any:
        _finish_header(new, out)
    return out, new


def calibrate_frame(data: np.ndarray, header: fits.Header, options: Mapping | CalibrationOptions | None,
                    product_name: str, size: int, resize_method: str, *,
                    copy_header: bool = True) -> tuple[np.ndarray, fits.Header]:
    """Calibrate one frame onto a ``size x size`` output grid resized by ``resize_method``: the clean stage's step.

    With a geometric step and ``method: affine`` (the default) for ``mean``, ``sum`` and ``subsample``, one affine
    resampling from the input grid straight to the output grid (:mod:`~heliocube.calibrate.affine`); the scalar
    steps divide the small output. Otherwise (``method: full_resolution``, another resize method, or no geometric
    step) :func:`calibrate` at the input's size then :func:`heliocube.resize.resize_frame`, the reference. The
    header is the reference's in both cases (same WCS, radii, provenance keywords) but for HISTORY and ``HC_GEOM``.
    The input may have any size the output divides (a binned frame with its binned WCS included).

    ``copy_header=False`` lets the steps update ``header`` itself (a caller that owns it); the data are never
    modified. Raises as :func:`calibrate` does, and ``ValueError`` when ``size`` does not divide the frame.
    """
    parsed = parse_options(options)
    if not parsed.geometric or parsed.method != "affine" or not supports(resize_method):
        if parsed.geometric and parsed.method == "affine":
            log.debug("resize method %s has no affine form: %s resampled at full resolution", resize_method,
                      product_name)
            parsed = dataclasses.replace(parsed, method="full_resolution")
        out, new = calibrate(data, header, parsed, product_name)
        return resize_frame(out, new, size, resize_method, copy_header=False)
    product = get_product(product_name)
    check_available(parsed, product)
    array = _checked(data)
    f = resize_factor(array.shape, size)
    new = header.copy() if copy_header else header
    divisors = _divisors(new, product, parsed)
    n = int(array.shape[0])
    new["NAXIS1"], new["NAXIS2"] = n, n
    plan = resampling(array.shape, new, parsed)
    out, how = affine_resample(array, plan, size, resize_method)
    update_geometry_header(new, parsed, plan, how)
    for divisor in divisors:  # scalar steps commute with the (linear) resampling: divide the small output
        out /= divisor
    out = out.astype(np.float32)
    convention = HEADER_CONVENTION[resize_method]
    rescale_header(new, f, convention=convention, naxis=(int(size), int(size)), copy=False,
                   history=f"heliocube resize: {resize_method} {n}x{n} -> {size}x{size} (factor {f}, {convention} "
                           "convention) in the calibration's affine resampling")
    _finish_header(new, out)
    return out, new
