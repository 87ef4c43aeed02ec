"""AIA degradation correction with aiapy, and the check that it can run before any download.

Needs aiapy and a local correction table (aiapy downloads the table from JSOC/SSW, which needs the network). When
either is missing, :func:`check_available` (called by the config validation, before any download) and
:func:`heliocube.calibrate.calibrate` raise :class:`CalibrationUnavailable`. Non-AIA products are left alone: the
option names its instrument. The factor divided out is recorded as ``DEG_COR`` (SDOML v2's keyword).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..registry import Product, get_product
from .exposure import divide_statistics
from .options import CalibrationOptions, CalibrationUnavailable, parse_options

if TYPE_CHECKING:  # annotations only: the config check imports this module, astropy.io.fits costs ~0.3 s
    from astropy.io import fits

__all__ = ["AIA_INSTRUMENT", "check_available", "degradation_divisor"]

#: Instrument that ``aia_degradation`` applies to (registry ``instrument``).
AIA_INSTRUMENT = "AIA"


def _product(product: str | Product) -> Product:
    return product if isinstance(product, Product) else get_product(product)


def _aiapy_available() -> bool:
    try:
        return importlib.util.find_spec("aiapy") is not None
    except (ImportError, ValueError):
        return False


def check_available(options: Mapping | CalibrationOptions | None, product: str | Product) -> None:
    """Raise now if ``options`` cannot run for ``product``, so a run fails before any download.

    Parameters
    ----------
    options : mapping
        Calibration options (see :mod:`heliocube.calibrate`).
    product : str or Product
        Registry product name (or entry).

    Raises
    ------
    ValueError
        Invalid options.
    CalibrationUnavailable
        ``aia_degradation`` is enabled for an AIA product but aiapy is not installed or no readable local
        correction table is configured.
    """
    parsed = parse_options(options)
    entry = _product(product)
    if not (parsed.aia_degradation and entry.instrument == AIA_INSTRUMENT):
        return
    problems = []
    if not _aiapy_available():
        problems.append("aiapy is not installed (pip install aiapy)")
    if parsed.correction_table is None:
        problems.append("aia_degradation.correction_table is not set")
    elif not os.path.isfile(parsed.correction_table):
        problems.append(f"aia_degradation.correction_table {parsed.correction_table!r} is not a readable file")
    if problems:
        raise CalibrationUnavailable(
            f"AIA degradation correction for {entry.name} cannot run: {'; '.join(problems)}. It needs aiapy and a "
            "local copy of aiapy's degradation correction table, which aiapy otherwise downloads from JSOC/SSW "
            "(network access that compute nodes often lack). Fetch the table once on a machine with network (the "
            "file aiapy.calibrate.utils.get_correction_table reads) and set aia_degradation.correction_table to "
            "it, or set aia_degradation.enabled to false."
        )


def _aiapy_calibrate():
    """aiapy.calibrate and the module holding get_correction_table ('utils' since aiapy 0.11, 'util' before)."""
    try:
        calibrate_module = importlib.import_module("aiapy.calibrate")
    except ImportError as exc:
        raise CalibrationUnavailable(f"AIA degradation correction needs aiapy, which cannot be imported: {exc}") \
            from exc
    for name in ("aiapy.calibrate.utils", "aiapy.calibrate.util"):
        with contextlib.suppress(ImportError):
            return calibrate_module, importlib.import_module(name)
    raise CalibrationUnavailable("this aiapy has no aiapy.calibrate.utils.get_correction_table")


@functools.lru_cache(maxsize=4)
def _correction_table(path: str, mtime_ns: int):
    """The correction table read once per file version (mtime in the key, so an updated file is re-read)."""
    _, utils = _aiapy_calibrate()
    return utils.get_correction_table(path)  # first positional argument: a file path in every aiapy version


def _degradation_factor(header: fits.Header, product: Product, table_path: str) -> float:
    import astropy.units as u
    from sunpy.time import parse_time

    calibrate_module, _ = _aiapy_calibrate()
    table = _correction_table(table_path, os.stat(table_path).st_mtime_ns)
    wavelength = header.get("WAVELNTH", product.wavelength)
    obstime = header.get(product.time_keyword) or header.get("DATE-OBS")
    if wavelength is None or not obstime:
        raise ValueError(f"AIA degradation of {product.name}: header needs WAVELNTH and {product.time_keyword}")
    factor = calibrate_module.degradation(float(wavelength) * u.angstrom, parse_time(str(obstime)),
                                          correction_table=table)
    factor = float(np.squeeze(getattr(factor, "value", factor)))
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"AIA degradation of {product.name}: aiapy returned the factor {factor!r}")
    return factor


def degradation_divisor(header: fits.Header, product: Product, options: CalibrationOptions) -> float | None:
    """Update ``header`` for the degradation correction and return the factor to divide by (None: not AIA)."""
    if product.instrument != AIA_INSTRUMENT:
        return None
    check_available(options, product)
    factor = _degradation_factor(header, product, options.correction_table)
    import aiapy

    header["DEG_COR"] = (factor, "AIA degradation factor divided out (aiapy)")
    divide_statistics(header, factor)
    header.add_history(f"heliocube calibrate: divided by the AIA degradation factor {factor:.6g} (aiapy "
                       f"{getattr(aiapy, '__version__', '?')}, table {os.path.basename(options.correction_table)})")
    return factor
