"""The calibration options: their defaults, validation and the tag they add to a variant's name."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["GEOMETRY_METHODS", "OPTION_DEFAULTS", "STEP_ORDER", "CalibrationOptions", "CalibrationUnavailable",
           "calibration_tag", "parse_options"]

#: The steps :func:`heliocube.calibrate.calibrate` runs, in this order, and the tag each adds to a variant name.
STEP_ORDER = (("exposure_normalise", "dns"), ("aia_degradation", "deg"), ("fixed_rsun_arcsec", "r{value}"),
              ("north_up", "north"))
#: How the geometric step (north-up, fixed radius) resamples: the first is the default.
GEOMETRY_METHODS = ("affine", "full_resolution")
#: Tag a non-default geometry method adds after the steps' tags.
_METHOD_TAGS = {"affine": "", "full_resolution": "fullres"}
#: Defaults of every option; :func:`parse_options` rejects any other key.
OPTION_DEFAULTS = {
    "exposure_normalise": False,
    "fixed_rsun_arcsec": None,
    "north_up": False,
    "aia_degradation": {"enabled": False, "correction_table": None},
    "method": GEOMETRY_METHODS[0],
}


class CalibrationUnavailable(RuntimeError):
    """A configured calibration step cannot run here (a missing package or an offline table)."""


@dataclasses.dataclass(frozen=True)
class CalibrationOptions:
    """Validated calibration options (see :mod:`heliocube.calibrate` for their meaning)."""

    exposure_normalise: bool = False
    fixed_rsun_arcsec: float | None = None
    north_up: bool = False
    aia_degradation: bool = False
    correction_table: str | None = None
    method: str = GEOMETRY_METHODS[0]

    @property
    def geometric(self) -> bool:
        """Whether the resampling step runs."""
        return self.north_up or self.fixed_rsun_arcsec is not None

    @property
    def any(self) -> bool:
        """Whether any step is enabled."""
        return self.exposure_normalise or self.aia_degradation or self.geometric


def _boolean(value, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"calibration option {key!r} must be true or false, got {value!r}")
    return bool(value)


def parse_options(options: Mapping | CalibrationOptions | None) -> CalibrationOptions:
    """Validate a mapping of calibration options; absent keys take :data:`OPTION_DEFAULTS`.

    Raises
    ------
    ValueError
        Naming the key, for an unknown option or a value of the wrong type or range.
    """
    if isinstance(options, CalibrationOptions):
        return options
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown calibration option(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(OPTION_DEFAULTS)}")
    fixed = options.get("fixed_rsun_arcsec")
    if fixed is not None:
        if isinstance(fixed, bool) or not isinstance(fixed, (int, float, np.integer, np.floating)):
            raise ValueError(f"calibration option 'fixed_rsun_arcsec' must be a number of arcsec or null, "
                             f"got {fixed!r}")
        fixed = float(fixed)
        if not (math.isfinite(fixed) and fixed > 0):
            raise ValueError(f"calibration option 'fixed_rsun_arcsec' must be positive, got {fixed!r}")
    degradation = options.get("aia_degradation") or {}
    if not isinstance(degradation, Mapping):
        raise ValueError("calibration option 'aia_degradation' must be a mapping {enabled, correction_table}, "
                         f"got {degradation!r}")
    unknown = sorted(set(degradation) - set(OPTION_DEFAULTS["aia_degradation"]))
    if unknown:
        raise ValueError(f"unknown aia_degradation option(s) {', '.join(map(repr, unknown))}; "
                         "known: enabled, correction_table")
    table = degradation.get("correction_table")
    if table is not None and not isinstance(table, (str, os.PathLike)):
        raise ValueError(f"calibration option 'aia_degradation.correction_table' must be a path, got {table!r}")
    method = options.get("method") or GEOMETRY_METHODS[0]
    if method not in GEOMETRY_METHODS:
        raise ValueError(f"calibration option 'method' must be one of {', '.join(GEOMETRY_METHODS)}, "
                         f"got {method!r}")
    return CalibrationOptions(
        exposure_normalise=_boolean(options.get("exposure_normalise"), "exposure_normalise"),
        fixed_rsun_arcsec=fixed,
        north_up=_boolean(options.get("north_up"), "north_up"),
        aia_degradation=_boolean(degradation.get("enabled"), "aia_degradation.enabled"),
        correction_table=None if table is None else os.fspath(table),
        method=method,
    )


def _number_tag(value: float) -> str:
    """``976.0 -> '976'``, ``959.63 -> '959p63'``: no dot, sign or exponent in a directory name."""
    return f"{value:.6g}".replace(".", "p").replace("+", "").replace("-", "m")


def calibration_tag(options: Mapping | CalibrationOptions | None) -> str:
    """Short, filesystem-safe name of the enabled steps, in :data:`STEP_ORDER` ('' when none).

    Examples: ``{}`` -> ``''``; ``{exposure_normalise: true, fixed_rsun_arcsec: 976, north_up: true}`` ->
    ``'dns-r976-north'``; with ``aia_degradation.enabled`` -> ``'dns-deg-r976-north'``. The full-resolution
    geometry (``method: full_resolution``) adds ``-fullres``: its pixels differ from the default's.
    """
    parsed = parse_options(options)
    parts = []
    if parsed.exposure_normalise:
        parts.append("dns")
    if parsed.aia_degradation:
        parts.append("deg")
    if parsed.fixed_rsun_arcsec is not None:
        parts.append(f"r{_number_tag(parsed.fixed_rsun_arcsec)}")
    if parsed.north_up:
        parts.append("north")
    if parsed.geometric and _METHOD_TAGS[parsed.method]:
        parts.append(_METHOD_TAGS[parsed.method])
    return "-".join(parts)
