"""Exposure normalisation: which frames are count data to divide by ``EXPTIME``, and the header update.

- Magnetograms (instruments in :data:`MAGNETOGRAM_INSTRUMENTS`: MDI, HMI; Gauss) have no exposure to divide by: the
  step is a no-op that leaves a HISTORY note. A no-op rather than an error so that one dataset-wide option can
  cover a mixed AIA + HMI dataset, as in SDOML.
- Frames already per second (``HC_EXPN = T``, or a ``BUNIT`` such as ``DN/s``) and calibrated brightness
  (``BUNIT = 'MSB'``, or LASCO with ``LEVEL`` >= 1, whose calibration already divided by the exposure) are left
  alone the same way.
- Count data (a ``LEVEL`` keyword below 1, i.e. raw telemetry, whatever ``BUNIT`` says; otherwise ``BUNIT``
  missing, ``DN``, ``counts``, ``counts / pixel`` or ``ADU``) are divided by ``EXPTIME``; ``BUNIT`` becomes
  ``'DN/s'``, ``EXPTIME`` is kept for provenance, ``HC_EXPN = T`` says the data are per second, and the linear
  statistics keywords (DATAMIN, DATAMEAN, DATAPnn...) are divided too. A missing, non-numeric or non-positive
  ``EXPTIME`` is a ``ValueError`` naming the key.
- Any other ``BUNIT`` is a ``ValueError``: the step refuses to guess whether the unit includes the exposure.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from ..registry import Product

if TYPE_CHECKING:  # annotations only: the config check imports this module, astropy.io.fits costs ~0.3 s
    from astropy.io import fits

__all__ = ["MAGNETOGRAM_INSTRUMENTS", "divide_statistics", "exposure_divisor"]

#: Instruments whose products are magnetograms (Gauss): exposure normalisation does not apply.
MAGNETOGRAM_INSTRUMENTS = frozenset({"MDI", "HMI"})
#: BUNIT spellings (lower case, spaces removed) of raw detector counts.
_COUNT_UNITS = frozenset({"", "dn", "counts", "count", "ct", "cts", "adu", "datanumber", "dn/pixel", "dn/pix",
                          "counts/pixel", "counts/pix", "ct/pix", "ct/pixel", "cts/pixel"})
#: BUNIT spellings of calibrated brightness whose calibration already divided by the exposure (LASCO level 1).
_BRIGHTNESS_UNITS = frozenset({"msb", "b/bsun", "bsun"})
#: Instruments whose data from this ``LEVEL`` on are calibrated brightness (LASCO level 1: MSB), whatever BUNIT says.
_BRIGHTNESS_FROM_LEVEL = {"LASCO": 1.0}
_MAGNETIC_UNITS = frozenset({"gauss", "g", "mx/cm^2", "mx/cm2", "mxcm-2"})
_RATE_UNIT = re.compile(r"(/s|/sec|/second|s-1|s\^-1|s\*\*-1)(\b|/|$)")
_STATISTICS_KEYS = re.compile(r"^(DATAMIN|DATAMAX|DATAMEAN|DATAMEDN|DATARMS|DATAAVG|DATASIG|DATAP\d\d)$")


def _skip_reason(header: fits.Header, product: Product) -> str | None:
    """Why exposure normalisation does not apply to this frame, or None when it is count data to divide."""
    if product.instrument in MAGNETOGRAM_INSTRUMENTS:
        return f"{product.instrument} data are magnetograms (Gauss), which have no exposure to normalise"
    if header.get("HC_EXPN") is True:
        return "the data are already per second (HC_EXPN)"
    level = _level(header)
    if level is not None and level < 1:
        return None  # raw telemetry is in DN whatever BUNIT a template left behind
    brightness_level = _BRIGHTNESS_FROM_LEVEL.get(product.instrument)
    if level is not None and brightness_level is not None and level >= brightness_level:
        return (f"{product.instrument} level {level:g} data are a calibrated brightness that already accounts for "
                "the exposure")
    raw_unit = header.get("BUNIT")
    unit = "" if raw_unit is None else re.sub(r"\s+", "", str(raw_unit)).lower()
    if unit in _COUNT_UNITS:
        return None
    if _RATE_UNIT.search(unit):
        return f"BUNIT {raw_unit!r} is already per second"
    if unit in _BRIGHTNESS_UNITS:
        return f"BUNIT {raw_unit!r} is a calibrated brightness that already accounts for the exposure"
    if unit in _MAGNETIC_UNITS:
        return f"BUNIT {raw_unit!r} is a magnetic field, which has no exposure to normalise"
    raise ValueError(f"exposure normalisation of {product.name}: cannot tell whether BUNIT {raw_unit!r} includes "
                     "the exposure; expected counts (DN, counts, ADU) or a rate (DN/s)")


def _level(header: fits.Header) -> float | None:
    """The ``LEVEL`` keyword as a number (LASCO writes e.g. '0.5' or '1.0'), or None."""
    try:
        return float(str(header["LEVEL"]).strip())
    except (KeyError, TypeError, ValueError):
        return None


def _exposure_time(header: fits.Header, product: Product) -> float:
    if "EXPTIME" not in header:
        raise ValueError(f"exposure normalisation of {product.name}: header keyword EXPTIME is missing")
    try:
        exptime = float(header["EXPTIME"])
    except (TypeError, ValueError):
        raise ValueError(f"exposure normalisation of {product.name}: header keyword EXPTIME is not a number "
                         f"({header['EXPTIME']!r})") from None
    if not (math.isfinite(exptime) and exptime > 0):
        raise ValueError(f"exposure normalisation of {product.name}: header keyword EXPTIME must be positive, "
                         f"got {exptime!r}")
    return exptime


def divide_statistics(header: fits.Header, divisor: float) -> None:
    """Divide the linear statistics keywords (DATAMIN, DATAMEAN, DATAPnn...) by ``divisor``, in place."""
    for card in list(header.cards):
        if _STATISTICS_KEYS.match(card.keyword) and isinstance(card.value, (int, float)) \
                and not isinstance(card.value, bool):
            header[card.keyword] = card.value / divisor


def exposure_divisor(header: fits.Header, product: Product) -> float | None:
    """Update ``header`` for exposure normalisation and return what to divide the data by (None: leave them).

    The header gets ``BUNIT = 'DN/s'``, ``HC_EXPN``, divided statistics and a HISTORY line, or a HISTORY line
    saying why the step was skipped. Dividing is the caller's: a scalar division commutes with the resampling, so
    the affine path divides its small output instead of the full frame.
    """
    reason = _skip_reason(header, product)
    if reason is not None:
        header.add_history(f"heliocube calibrate: exposure normalisation skipped: {reason}")
        return None
    exptime = _exposure_time(header, product)
    old_unit = header.get("BUNIT")
    header["BUNIT"] = ("DN/s", "data divided by EXPTIME")
    header["HC_EXPN"] = (True, "data are per second (divided by EXPTIME)")
    divide_statistics(header, exptime)
    header.add_history(f"heliocube calibrate: divided by EXPTIME = {exptime:.6g} s; BUNIT "
                       f"{'(none)' if old_unit is None else repr(old_unit)} -> 'DN/s'")
    return exptime
