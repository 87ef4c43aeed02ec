"""North-up and fixed solar radius: where the disk is, the affine map of the resampling, and the header update.

Let ``J_in`` be the input's pixel -> helioprojective Jacobian at the disk centre (arcsec per pixel, from the
header's WCS as sunpy reads it: CDELT with CROTA, PC or CD), ``d_in = sqrt(|det J_in|)`` its plate scale,
``R`` the apparent solar radius (``RSUN_OBS``, else ``RSUN_ARC``, else LASCO's ``RSUN``, else sunpy's
``rsun_obs``, which is ``SOLAR_R * CDELT1`` for EIT), ``F`` the fixed radius option and ``s = F / R`` the
magnification (1 when ``fixed_rsun_arcsec`` is null). The calibrated grid has the input's shape,
``J_out = (d_in / s) * I`` with north-up (``J_in / s`` without), and the disk centre (helioprojective 0, 0) on the
array centre. Both resampling methods (:mod:`~heliocube.calibrate.full_resolution`,
:mod:`~heliocube.calibrate.affine`) use this map; the affine one samples it on the output grid directly.

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
- ``HC_NORTH`` (north-up done), ``HC_RSUNF`` (= F), ``HC_ZOOM`` (= s) and ``HC_GEOM`` (the resampling method)
  record the step.

Caveats: the disk radius in pixels is ``F / d_in`` with the frame's own plate scale, as in SDOML, so it varies with
the tiny per-frame CDELT differences. EIT level-0 headers give the spacecraft roll only as ``SC_ROLL``, which is no
WCS keyword and which sunpy ignores; north-up follows the WCS, and a HISTORY line flags such frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import warnings
from collections.abc import Iterator

import numpy as np
from astropy.io import fits

from .options import CalibrationOptions

__all__ = ["Geometry", "Resampling", "input_geometry", "resampling", "update_geometry_header"]

log = logging.getLogger(__name__)

#: Pixel radii multiplied by the magnification of the geometric step.
_PIXEL_RADIUS_KEYS = ("R_SUN", "SOLAR_R", "RSUN_PIX", "CROP_RAD", "RSUN_LF")
#: Pairs of 0-based pixel positions mapped through the geometric step.
_PIXEL_POSITION_KEYS = (("X0", "Y0"), ("X0_MP", "Y0_MP"), ("X0_LF", "Y0_LF"))
#: Header keywords holding the apparent solar radius in arcsec, in order of preference.
_RSUN_ARCSEC_KEYS = ("RSUN_OBS", "RSUN_ARC", "RSUN")
_ROTATION_KEYS = ("CROTA", "CROTA1", "CROTA2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")


@contextlib.contextmanager
def quiet_sunpy() -> Iterator[None]:
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
class Geometry:
    """Where the disk is in the input."""

    sun_pixel: np.ndarray  # (x, y), 0-based, of helioprojective (0, 0) in the input
    jacobian: np.ndarray  # input pixel offset -> arcsec, at the disk centre
    rsun_arcsec: float
    rsun_source: str


def _celestial_wcs(smap):
    """The pixel <-> world part of ``smap.wcs``, built from the same sunpy properties but without the observer.

    ``GenericMap.wcs`` also resolves the observer's coordinate (~8 ms a frame, most of it in astropy's frame
    transforms), which the pixel arithmetic never uses. The tests check this against sunpy's own WCS.
    """
    import astropy.units as u
    import astropy.wcs

    units = smap.spatial_units
    wcs = astropy.wcs.WCS(naxis=2)
    wcs.wcs.crpix = [float(v.to_value(u.pix)) + 1.0 for v in smap.reference_pixel]
    wcs.wcs.cdelt = [smap.scale[i].to_value(units[i] / u.pix) for i in (0, 1)]
    wcs.wcs.crval = [float(smap.meta.get(f"crval{i + 1}", 0.0)) for i in (0, 1)]
    wcs.wcs.ctype = list(smap.coordinate_system)
    wcs.wcs.cunit = [str(unit) for unit in units]
    wcs.wcs.pc = smap.rotation_matrix
    wcs.wcs.set()
    return wcs


def _wrapped_arcsec(values: np.ndarray, unit) -> np.ndarray:
    """World longitudes/latitudes in ``unit`` as arcsec in (-180, 180] degrees (wcslib may return 0..360)."""
    import astropy.units as u

    degrees = (np.asarray(values, dtype=float) * u.Unit(unit)).to_value(u.deg)
    return (np.mod(degrees + 180.0, 360.0) - 180.0) * 3600.0


def input_geometry(shape: tuple[int, int], header: fits.Header) -> Geometry:
    """The disk centre, local Jacobian and solar radius of a frame of ``shape`` with ``header``.

    Raises
    ------
    ValueError
        When the header's WCS is not helioprojective or does not locate the disk centre.
    """
    import astropy.units as u
    import sunpy.map

    with quiet_sunpy():
        smap = sunpy.map.Map(np.broadcast_to(np.float32(0), shape), header)  # the header is what counts
        ctype = [str(c)[:4] for c in smap.coordinate_system]
        if ctype != ["HPLN", "HPLT"]:
            raise ValueError(f"north-up / fixed radius need a helioprojective WCS, got {ctype}")
        wcs = _celestial_wcs(smap)
        lon_unit, lat_unit = wcs.world_axis_units
        zero_lon = (0.0 * u.arcsec).to_value(lon_unit)
        sun = np.array([float(v) for v in wcs.world_to_pixel_values(zero_lon, (0.0 * u.arcsec).to_value(lat_unit))])
        # central differences at the disk centre: the local linear WCS, whatever keywords encode it
        offsets = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        px = sun[:, None] + offsets.T
        lon, lat = wcs.pixel_to_world_values(px[0], px[1])
        tx, ty = _wrapped_arcsec(lon, lon_unit), _wrapped_arcsec(lat, lat_unit)
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
    return Geometry(sun, jacobian, rsun, source)


@dataclasses.dataclass(frozen=True)
class Resampling:
    """The geometric step's map from the calibrated grid (the input's shape) to the input."""

    geometry: Geometry
    zoom: float  # magnification s
    out_scale: float  # arcsec per pixel of the calibrated grid
    matrix: np.ndarray  # calibrated pixel offset from the array centre -> input pixel offset from the disk centre
    centre: np.ndarray  # (x, y) 0-based array centre of the calibrated grid


def resampling(shape: tuple[int, int], header: fits.Header, options: CalibrationOptions) -> Resampling:
    """The map of the geometric step for a frame of ``shape`` (rows, columns) with ``header``."""
    geometry = input_geometry(shape, header)
    plate_scale = math.sqrt(abs(np.linalg.det(geometry.jacobian)))
    zoom = 1.0 if options.fixed_rsun_arcsec is None else options.fixed_rsun_arcsec / geometry.rsun_arcsec
    out_scale = plate_scale / zoom
    out_jacobian = out_scale * np.eye(2) if options.north_up else geometry.jacobian / zoom
    matrix = np.linalg.solve(geometry.jacobian, out_jacobian)
    centre = np.array([(shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0])
    return Resampling(geometry, zoom, out_scale, matrix, centre)


@functools.cache
def _warn_roll_once(instrument: str) -> None:
    """One warning per instrument and process: a rolled EIT season would otherwise warn on every frame."""
    log.warning("%s frames give the spacecraft roll only as SC_ROLL, which is no WCS keyword (sunpy ignores it); "
                "north-up follows the WCS (CROTA/PC/CD) and such frames get a HISTORY note", instrument or "Some")


def update_geometry_header(header: fits.Header, options: CalibrationOptions, plan: Resampling, how: str) -> None:
    """Update ``header`` (in place) for the calibrated grid of the input's shape, as the module docstring says.

    ``how`` ends the HISTORY line: the interpolation and where it resampled.
    """
    geometry, zoom, out_scale, centre = plan.geometry, plan.zoom, plan.out_scale, plan.centre
    inverse = np.linalg.inv(plan.matrix)
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
        header["HC_RSUNF"] = (options.fixed_rsun_arcsec, "[arcsec] fixed solar radius, input plate scale")
        header["HC_ZOOM"] = (zoom, "magnification of the fixed-radius rescale")
        steps.append(f"solar radius {geometry.rsun_arcsec:.6g} arcsec ({geometry.rsun_source}) rescaled to "
                     f"{options.fixed_rsun_arcsec:g} arcsec at the input scale (zoom {zoom:.6g}, disk radius "
                     f"{geometry.rsun_arcsec / out_scale:.6g} px)")
    header["HC_GEOM"] = (options.method, "resampling of north-up / fixed radius")
    sun_x, sun_y = geometry.sun_pixel
    header.add_history(f"heliocube calibrate: {' + '.join(steps)} in one resampling; disk centre ({sun_x:.3f}, "
                       f"{sun_y:.3f}) -> image centre; CDELT {out_scale:.6g} arcsec; {how}")
