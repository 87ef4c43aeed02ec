"""GOES X-ray classes (``M1.2``) and their peak fluxes, without pandas: the config check that every job runs
needs :func:`goes_flux` too."""

from __future__ import annotations

import re

__all__ = ["goes_flux"]

_LETTERS = {"A": 1e-8, "B": 1e-7, "C": 1e-6, "M": 1e-5, "X": 1e-4}
_CLASS = re.compile(r"^\s*([ABCMX])\s*(\d+(?:\.\d*)?)?\s*$", re.IGNORECASE)


def goes_flux(goes_class) -> float | None:
    """Peak 1-8 A flux in W m^-2 of a GOES class such as ``M1.2`` (1.2e-5) or ``X11`` (1.1e-3); None if not one."""
    match = _CLASS.match(str(goes_class)) if isinstance(goes_class, str) else None
    if match is None:
        return None
    return _LETTERS[match.group(1).upper()] * float(match.group(2) or 1.0)
