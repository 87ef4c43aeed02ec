"""Optional per-frame calibration at full resolution, applied before resizing.

:func:`calibrate` runs the enabled steps in a fixed order, :data:`STEP_ORDER`:

1. ``exposure_normalise`` -- divide by ``EXPTIME`` so count data are DN/s.
2. ``aia_degradation`` -- divide AIA frames by aiapy's time-dependent degradation factor.
3. ``north_up`` and ``fixed_rsun_arcsec`` -- one resampling that rotates solar north to +y, puts the disk centre
   on the image centre and rescales the disk to the fixed radius convention of SDOML.

Exposure and degradation are scalar divisions, so their relative order does not change the result; both come before
the resampling so that the interpolation sees the final units.

Options (one mapping, the ``calibration`` section of a config or variant; absent keys take the defaults):

======================================  =========  ===================================================================
option                                  default    meaning
======================================  =========  ===================================================================
``exposure_normalise``                  ``false``  divide count data by ``EXPTIME`` (DN -> DN/s)
``fixed_rsun_arcsec``                   ``null``   e.g. ``976.0``: rescale so the disk radius is this many arcsec at
                                                   the input plate scale (SDOML's convention)
``north_up``                            ``false``  rotate so solar north is +y (PC = identity)
``aia_degradation.enabled``             ``false``  aiapy degradation correction (AIA products only)
``aia_degradation.correction_table``    ``null``   local copy of aiapy's correction table (required when enabled)
======================================  =========  ===================================================================

Exposure normalisation, by the physical unit of the frame
---------------------------------------------------------
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

AIA degradation
---------------
Needs aiapy and a local correction table (aiapy downloads the table from JSOC/SSW, which needs the network). When
either is missing, :func:`check_available` (called by the config validation, before any download) and
:func:`calibrate` raise :class:`CalibrationUnavailable`. Non-AIA products are left alone: the option names its
instrument. The factor divided out is recorded as ``DEG_COR`` (SDOML v2's keyword).

Geometry: north-up and fixed solar radius in one resampling
-----------------------------------------------------------
Let ``J_in`` be the input's pixel -> helioprojective Jacobian at the disk centre (arcsec per pixel, from the
header's WCS as sunpy reads it: CDELT with CROTA, PC or CD), ``d_in = sqrt(|det J_in|)`` its plate scale,
``R`` the apparent solar radius (``RSUN_OBS``, else ``RSUN_ARC``, else LASCO's ``RSUN``, else sunpy's
``rsun_obs``, which is ``SOLAR_R * CDELT1`` for EIT), ``F`` the fixed radius option and ``s = F / R`` the
magnification (1 when ``fixed_rsun_arcsec`` is null). The output pixel grid has ``J_out = (d_in / s) * I`` with
north-up (``J_in / s`` without), and the disk centre (helioprojective 0, 0) on the array centre. Each output pixel
is interpolated from the input with :func:`sunpy.image.transform.affine_transform` (the function
:meth:`sunpy.map.GenericMap.rotate` calls), directly on the input-sized array: ``GenericMap.rotate`` pads the array
for the rotated corners and unpads it again, which drops valid pixels when the disk centre is off the array centre
and the image shrinks, so the output would need re-padding with NaN where data existed.

The header after the step tells a sunpy Map the true sky position of every pixel (the step moves pixels, not the
sky):

- ``CRPIX = ((NAXIS1 + 1) / 2, (NAXIS2 + 1) / 2)``, ``CRVAL = (0, 0)``; ``XCEN = YCEN = 0`` when present.
- north-up: ``PC = identity``, ``CDELT1 = CDELT2 = d_in * R / F`` arcsec (``CUNIT = arcsec``), CROTA*/CD* removed.
  Without north-up the rotation keywords stay and ``CDELT`` (or ``CD``) is divided by ``s``.
- ``RSUN_OBS = R`` arcsec, unchanged (written when the input had none), so the disk radius in output pixels is
  ``RSUN_OBS / CDELT = F / d_in``: a 976" Sun at the input plate scale (SDOML: 976 / 0.6 = 1626.7 px at 4096).
- Pixel radii (R_SUN, SOLAR_R, RSUN_PIX, CROP_RAD, RSUN_LF) are multiplied by ``s``: ``R_SUN = F / d_in`` when the
  input had ``R_SUN = RSUN_OBS / CDELT``. 0-based pixel positions (X0/Y0, X0_MP/Y0_MP, X0_LF/Y0_LF) are mapped like
  any pixel, so a disk-centre position lands on ``(NAXIS - 1) / 2``.
- ``HC_NORTH`` (north-up done), ``HC_RSUNF`` (= F) and ``HC_ZOOM`` (= s) record the step; ``HC_SCALE`` (resize
  factor of the grid, whose shape is unchanged) is not touched.
- The data keep their shape, become float32, are NaN where the output pixel falls outside the input (or too close to
  an input NaN), and are clipped to the input's range (no cubic overshoot). Interpolation: cubic spline
  (:data:`RESAMPLE_ORDER`) with scipy (:data:`RESAMPLE_METHOD`).

Caveats: the disk radius in pixels is ``F / d_in`` with the frame's own plate scale, as in SDOML, so it varies with
the tiny per-frame CDELT differences. EIT level-0 headers give the spacecraft roll only as ``SC_ROLL``, which is no
WCS keyword and which sunpy ignores; north-up follows the WCS, and a HISTORY line flags such frames.

Every step adds a HISTORY line. The input data and header are never modified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import logging
import math
import os
import re
import warnings
from collections.abc import Iterator, Mapping

import numpy as np
from astropy.io import fits

from .registry import Product, get_product

__all__ = [
    "MAGNETOGRAM_INSTRUMENTS",
    "OPTION_DEFAULTS",
    "RESAMPLE_METHOD",
    "RESAMPLE_ORDER",
    "STEP_ORDER",
    "CalibrationOptions",
    "CalibrationUnavailable",
    "calibrate",
    "calibration_tag",
    "check_available",
    "parse_options",
]

log = logging.getLogger(__name__)

#: The steps :func:`calibrate` runs, in this order, and the tag each adds to a variant name.
STEP_ORDER = (("exposure_normalise", "dns"), ("aia_degradation", "deg"), ("fixed_rsun_arcsec", "r{value}"),
              ("north_up", "north"))
#: Defaults of every option; :func:`parse_options` rejects any other key.
OPTION_DEFAULTS = {
    "exposure_normalise": False,
    "fixed_rsun_arcsec": None,
    "north_up": False,
    "aia_degradation": {"enabled": False, "correction_table": None},
}
#: Instruments whose products are magnetograms (Gauss): exposure normalisation does not apply.
MAGNETOGRAM_INSTRUMENTS = frozenset({"MDI", "HMI"})
#: Instrument that ``aia_degradation`` applies to (registry ``instrument``).
AIA_INSTRUMENT = "AIA"
#: Interpolation of the geometric step: spline order and :func:`sunpy.image.transform.affine_transform` method.
RESAMPLE_ORDER = 3
RESAMPLE_METHOD = "scipy"

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
#: Keywords describing the stored integer encoding, invalid once the data are float32.
_ENCODING_KEYS = ("BSCALE", "BZERO", "BLANK")
#: Pixel radii multiplied by the magnification of the geometric step.
_PIXEL_RADIUS_KEYS = ("R_SUN", "SOLAR_R", "RSUN_PIX", "CROP_RAD", "RSUN_LF")
#: Pairs of 0-based pixel positions mapped through the geometric step.
_PIXEL_POSITION_KEYS = (("X0", "Y0"), ("X0_MP", "Y0_MP"), ("X0_LF", "Y0_LF"))
#: Header keywords holding the apparent solar radius in arcsec, in order of preference.
_RSUN_ARCSEC_KEYS = ("RSUN_OBS", "RSUN_ARC", "RSUN")
_ROTATION_KEYS = ("CROTA", "CROTA1", "CROTA2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")


class CalibrationUnavailable(RuntimeError):
    """A configured calibration step cannot run here (a missing package or an offline table)."""


@dataclasses.dataclass(frozen=True)
class CalibrationOptions:
    """Validated calibration options (see the module docstring for their meaning)."""

    exposure_normalise: bool = False
    fixed_rsun_arcsec: float | None = None
    north_up: bool = False
    aia_degradation: bool = False
    correction_table: str | None = None

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
    return CalibrationOptions(
        exposure_normalise=_boolean(options.get("exposure_normalise"), "exposure_normalise"),
        fixed_rsun_arcsec=fixed,
        north_up=_boolean(options.get("north_up"), "north_up"),
        aia_degradation=_boolean(degradation.get("enabled"), "aia_degradation.enabled"),
        correction_table=None if table is None else os.fspath(table),
    )


def _number_tag(value: float) -> str:
    """``976.0 -> '976'``, ``959.63 -> '959p63'``: no dot, sign or exponent in a directory name."""
    return f"{value:.6g}".replace(".", "p").replace("+", "").replace("-", "m")


def calibration_tag(options: Mapping | CalibrationOptions | None) -> str:
    """Short, filesystem-safe name of the enabled steps, in :data:`STEP_ORDER` ('' when none).

    Examples: ``{}`` -> ``''``; ``{exposure_normalise: true, fixed_rsun_arcsec: 976, north_up: true}`` ->
    ``'dns-r976-north'``; with ``aia_degradation.enabled`` -> ``'dns-deg-r976-north'``.
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
    return "-".join(parts)


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
        Calibration options (see the module docstring).
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


# ---------------------------------------------------------------------------------------------- exposure


def _exposure_skip_reason(header: fits.Header, product: Product) -> str | None:
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


def _divide_statistics(header: fits.Header, divisor: float) -> None:
    for card in list(header.cards):
        if _STATISTICS_KEYS.match(card.keyword) and isinstance(card.value, (int, float)) \
                and not isinstance(card.value, bool):
            header[card.keyword] = card.value / divisor


def _normalise_exposure(data: np.ndarray, header: fits.Header, product: Product) -> np.ndarray:
    reason = _exposure_skip_reason(header, product)
    if reason is not None:
        header.add_history(f"heliocube calibrate: exposure normalisation skipped: {reason}")
        return data
    exptime = _exposure_time(header, product)
    old_unit = header.get("BUNIT")
    header["BUNIT"] = ("DN/s", "data divided by EXPTIME")
    header["HC_EXPN"] = (True, "data are per second (divided by EXPTIME)")
    _divide_statistics(header, exptime)
    header.add_history(f"heliocube calibrate: divided by EXPTIME = {exptime:.6g} s; BUNIT "
                       f"{'(none)' if old_unit is None else repr(old_unit)} -> 'DN/s'")
    return data / exptime


# ---------------------------------------------------------------------------------------------- degradation


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


def _correct_degradation(data: np.ndarray, header: fits.Header, product: Product,
                         options: CalibrationOptions) -> np.ndarray:
    if product.instrument != AIA_INSTRUMENT:
        return data
    check_available(options, product)
    factor = _degradation_factor(header, product, options.correction_table)
    import aiapy

    header["DEG_COR"] = (factor, "AIA degradation factor divided out (aiapy)")
    _divide_statistics(header, factor)
    header.add_history(f"heliocube calibrate: divided by the AIA degradation factor {factor:.6g} (aiapy "
                       f"{getattr(aiapy, '__version__', '?')}, table {os.path.basename(options.correction_table)})")
    return data / factor


# ---------------------------------------------------------------------------------------------- geometry


@contextlib.contextmanager
def _quiet_sunpy() -> Iterator[None]:
    """Silence sunpy's metadata warnings and info logs (e.g. the assumed observer of LASCO headers)."""
    from sunpy import log as sunpy_log

    level = sunpy_log.level
    sunpy_log.setLevel("WARNING")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sunpy_log.setLevel(level)


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where the disk is in the input and how the output grid relates to it."""

    sun_pixel: np.ndarray  # (x, y), 0-based, of helioprojective (0, 0) in the input
    jacobian: np.ndarray  # input pixel offset -> arcsec, at the disk centre
    rsun_arcsec: float
    rsun_source: str


def _input_geometry(data: np.ndarray, header: fits.Header) -> _Geometry:
    import astropy.units as u
    import sunpy.map
    from astropy.coordinates import SkyCoord
    from sunpy.coordinates import Helioprojective

    with _quiet_sunpy():
        smap = sunpy.map.Map(data, header)
        frame = smap.coordinate_frame
        if not isinstance(frame, Helioprojective):
            raise ValueError(f"north-up / fixed radius need a helioprojective WCS, got {type(frame).__name__}")
        centre = SkyCoord(0 * u.arcsec, 0 * u.arcsec, frame=frame)
        sun = np.array([float(v) for v in smap.wcs.world_to_pixel(centre)])
        # central differences at the disk centre: the local linear WCS, whatever keywords encode it
        offsets = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        world = smap.pixel_to_world(*((sun[:, None] + offsets.T) * u.pix))
        tx, ty = world.Tx.to_value(u.arcsec), world.Ty.to_value(u.arcsec)
        jacobian = np.array([[tx[0] - tx[1], tx[2] - tx[3]], [ty[0] - ty[1], ty[2] - ty[3]]]) / 2.0
        rsun, source = None, "sunpy rsun_obs"
        for key in _RSUN_ARCSEC_KEYS:
            value = header.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                    and value > 0:
                rsun, source = float(value), key
                break
        if rsun is None:
            rsun = float(smap.rsun_obs.to_value(u.arcsec))
    if not np.all(np.isfinite(sun)) or not np.all(np.isfinite(jacobian)) or abs(np.linalg.det(jacobian)) == 0:
        raise ValueError("north-up / fixed radius: the header's WCS does not locate the disk centre")
    return _Geometry(sun, jacobian, rsun, source)


def _resample(data: np.ndarray, header: fits.Header, options: CalibrationOptions) -> np.ndarray:
    from sunpy.image.transform import affine_transform

    geometry = _input_geometry(data, header)
    plate_scale = math.sqrt(abs(np.linalg.det(geometry.jacobian)))
    zoom = 1.0 if options.fixed_rsun_arcsec is None else options.fixed_rsun_arcsec / geometry.rsun_arcsec
    out_scale = plate_scale / zoom
    out_jacobian = out_scale * np.eye(2) if options.north_up else geometry.jacobian / zoom
    # output pixel offset from the array centre -> input pixel offset from the disk centre
    matrix = np.linalg.solve(geometry.jacobian, out_jacobian)
    n_rows, n_cols = data.shape
    centre = np.array([(n_cols - 1) / 2.0, (n_rows - 1) / 2.0])
    out = affine_transform(data, matrix, order=RESAMPLE_ORDER, scale=1.0, image_center=geometry.sun_pixel,
                           recenter=True, missing=np.nan, method=RESAMPLE_METHOD, clip=True)
    _update_geometry_header(header, options, geometry, matrix, centre, zoom, out_scale)
    return out


@functools.cache
def _warn_roll_once(instrument: str) -> None:
    """One warning per instrument and process: a rolled EIT season would otherwise warn on every frame."""
    log.warning("%s frames give the spacecraft roll only as SC_ROLL, which is no WCS keyword (sunpy ignores it); "
                "north-up follows the WCS (CROTA/PC/CD) and such frames get a HISTORY note", instrument or "Some")


def _update_geometry_header(header: fits.Header, options: CalibrationOptions, geometry: _Geometry,
                            matrix: np.ndarray, centre: np.ndarray, zoom: float, out_scale: float) -> None:
    inverse = np.linalg.inv(matrix)
    for key_x, key_y in _PIXEL_POSITION_KEYS:
        x, y = header.get(key_x), header.get(key_y)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
            new = centre + inverse @ (np.array([x, y], dtype=float) - geometry.sun_pixel)
            header[key_x], header[key_y] = float(new[0]), float(new[1])
    for key in _PIXEL_RADIUS_KEYS:
        value = header.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            header[key] = value * zoom
    header["CRPIX1"], header["CRPIX2"] = float(centre[0] + 1.0), float(centre[1] + 1.0)
    header["CRVAL1"], header["CRVAL2"] = 0.0, 0.0
    for key in ("XCEN", "YCEN"):  # world position of the image centre, now the disk centre
        if key in header:
            header[key] = 0.0
    if options.north_up:
        rolled = "SC_ROLL" in header and abs(float(header["SC_ROLL"] or 0.0)) > 1.0 and not any(
            key in header for key in (*_ROTATION_KEYS, "PC1_1", "PC1_2", "PC2_1", "PC2_2"))
        for key in _ROTATION_KEYS:
            header.remove(key, ignore_missing=True, remove_all=True)
        header["CDELT1"], header["CDELT2"] = out_scale, out_scale
        header["CUNIT1"], header["CUNIT2"] = "arcsec", "arcsec"
        header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = 1.0, 0.0, 0.0, 1.0
        header["HC_NORTH"] = (True, "rotated so solar north is +y (PC = identity)")
        if rolled:
            _warn_roll_once(str(header.get("INSTRUME", "")).strip())
            header.add_history(f"heliocube calibrate: SC_ROLL = {header['SC_ROLL']} ignored (not a WCS keyword)")
    else:
        for key in ("CDELT1", "CDELT2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
            if isinstance(header.get(key), (int, float)):
                header[key] = header[key] / zoom
    if "RSUN_OBS" not in header:
        header["RSUN_OBS"] = (geometry.rsun_arcsec, "[arcsec] apparent solar radius")
    steps = []
    if options.north_up:
        steps.append("north-up")
    if options.fixed_rsun_arcsec is not None:
        header["HC_RSUNF"] = (options.fixed_rsun_arcsec, "[arcsec] fixed solar radius at the input plate scale")
        header["HC_ZOOM"] = (zoom, "magnification of the fixed-radius rescale")
        steps.append(f"solar radius {geometry.rsun_arcsec:.6g} arcsec ({geometry.rsun_source}) rescaled to "
                     f"{options.fixed_rsun_arcsec:g} arcsec at the input scale (zoom {zoom:.6g}, disk radius "
                     f"{geometry.rsun_arcsec / out_scale:.6g} px)")
    sun_x, sun_y = geometry.sun_pixel
    header.add_history(f"heliocube calibrate: {' + '.join(steps)} in one resampling; disk centre ({sun_x:.3f}, "
                       f"{sun_y:.3f}) -> image centre; CDELT {out_scale:.6g} arcsec; spline order {RESAMPLE_ORDER} "
                       f"({RESAMPLE_METHOD}), NaN outside the input")


# ---------------------------------------------------------------------------------------------- entry point


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


def calibrate(data: np.ndarray, header: fits.Header, options: Mapping | CalibrationOptions | None,
              product_name: str) -> tuple[np.ndarray, fits.Header]:
    """Apply the enabled calibration steps to one full-resolution frame, in :data:`STEP_ORDER`.

    Parameters
    ----------
    data : numpy.ndarray
        2-D frame, any real dtype; not modified.
    header : astropy.io.fits.Header
        Its header; not modified.
    options : mapping
        Calibration options (``exposure_normalise``, ``fixed_rsun_arcsec``, ``north_up``, ``aia_degradation``; see
        the module docstring).
    product_name : str
        Registry product the frame belongs to (decides which steps apply).

    Returns
    -------
    data : numpy.ndarray
        float32 array of the input's shape (a new array even when no step is enabled).
    header : astropy.io.fits.Header
        A new header, updated as the module docstring describes, with a HISTORY line per step.

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
    array = np.asarray(data)
    if array.ndim != 2:
        raise ValueError(f"calibrate needs a 2-D frame, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"calibrate needs real numeric data, got dtype {array.dtype}")
    work = array.astype(np.float64)  # native byte order, a copy: the caller's array is never touched
    new = header.copy()
    if parsed.exposure_normalise:
        work = _normalise_exposure(work, new, product)
    if parsed.aia_degradation:
        work = _correct_degradation(work, new, product, parsed)
    if parsed.geometric:
        new["NAXIS1"], new["NAXIS2"] = int(work.shape[1]), int(work.shape[0])
        work = _resample(work, new, parsed)
    out = work.astype(np.float32)
    if parsed.any:
        _finish_header(new, out)
    return out, new
