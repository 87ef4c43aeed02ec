"""Helioprojective ``x``/``y`` (arcsec) of the pixel centres of a stack of frames, from their per-frame WCS keys.

Cubes and synced files record each frame's ``CRPIX1/2``, ``CDELT1/2``, ``CRVAL1/2`` and ``CROTA2`` as per-frame
columns (``frames/<KEY>``, see :data:`heliocube.clean.WCS_KEYS`). :func:`helioprojective_axes` turns them into
axis coordinates with the FITS (1-based) pixel convention::

    x[i] = CRVAL1 + CDELT1 * (i + 1 - CRPIX1)      i = 0 .. W-1 (the array's last axis)
    y[j] = CRVAL2 + CDELT2 * (j + 1 - CRPIX2)      j = 0 .. H-1

These are the linear (intermediate) coordinates of the ``HPLN-TAN``/``HPLT-TAN`` projection: exact at the
reference pixel and within about ``θ³/3`` of the full gnomonic projection ``θ`` away from it (under 0.01 arcsec
on the solar disk, about 2 arcsec at 6 solar radii, a small fraction of a pixel at the frame sizes of a dataset).
Use :func:`astropy.wcs.WCS` on a frame's header (``/headers``) when the exact projection matters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["LINEAR_KEYS", "WCS_TOLERANCE_PX", "HelioprojectiveAxes", "helioprojective_axes"]

#: Per-frame columns the coordinates are computed from (``CROTA2`` is only checked).
LINEAR_KEYS = ("CRPIX1", "CRPIX2", "CDELT1", "CDELT2", "CRVAL1", "CRVAL2")
#: How far (in pixels, anywhere in the frame) a frame's rotation, or another frame's WCS, may move a pixel centre
#: before one shared 1-D axis per direction would misplace it: a tenth of a pixel.
WCS_TOLERANCE_PX = 0.1
#: Header keywords of a rotation matrix, which the per-frame columns do not record.
_MATRIX_KEY = re.compile(r"^(PC|CD)\d_\d\s*=", re.MULTILINE)
_CTYPES = {1: ("HPLN", "SOLAR-X"), 2: ("HPLT", "SOLAR-Y")}


@dataclass(frozen=True)
class HelioprojectiveAxes:
    """Helioprojective coordinates of the pixel centres of a stack of frames, or why there are none.

    Attributes
    ----------
    x, y : numpy.ndarray or None
        Arcsec. Shape ``(W,)``/``(H,)`` when every frame has the same WCS (within :data:`WCS_TOLERANCE_PX`),
        ``(T, W)``/``(T, H)`` per frame when they differ (NaN in rows without a frame), None when the frames are
        rotated or have no usable WCS.
    note : str
        One line saying which case applies and why.
    """

    x: np.ndarray | None
    y: np.ndarray | None
    note: str

    @property
    def per_frame(self) -> bool:
        """True when ``x``/``y`` are 2-D, one row per frame."""
        return self.x is not None and self.x.ndim == 2


def _centres(crval: np.ndarray, cdelt: np.ndarray, crpix: np.ndarray, n: int) -> np.ndarray:
    # FITS pixel numbers start at 1 at the centre of the first pixel
    return crval[..., None] + cdelt[..., None] * (np.arange(n) + 1.0 - crpix[..., None])


def _header_check(header: str | None) -> tuple[float, float] | str:
    """Factors from the first frame's CUNIT1/2 to arcsec (1 when absent), or why its header rules coordinates out:
    a rotation matrix the columns do not record, axes that are not helioprojective, units that are not angles."""
    if not header:
        return 1.0, 1.0
    import astropy.units as u
    from astropy.io import fits

    if _MATRIX_KEY.search(header):
        return "the frames carry a PCi_j/CDi_j matrix, which the per-frame columns do not record"
    cards = fits.Header.fromstring(header, sep="\n")
    factors = []
    for axis, accepted in _CTYPES.items():
        ctype = str(cards.get(f"CTYPE{axis}", "") or "").strip().upper()
        if ctype and not ctype.startswith(accepted):
            return f"CTYPE{axis} is {ctype!r}, not a helioprojective axis"
        unit = str(cards.get(f"CUNIT{axis}", "") or "").strip()
        try:
            factors.append(u.Unit(unit).to(u.arcsec) if unit else 1.0)
        except (ValueError, u.UnitConversionError):
            return f"CUNIT{axis} is {unit!r}, not an angle"
    return factors[0], factors[1]


def helioprojective_axes(
    columns: Mapping[str, np.ndarray],
    frame_shape: tuple[int, int],
    *,
    present: np.ndarray | None = None,
    first_header: str | None = None,
) -> HelioprojectiveAxes:
    """Helioprojective ``x``/``y`` of the pixel centres of frames of shape ``frame_shape`` (H, W).

    Parameters
    ----------
    columns : mapping of str to numpy.ndarray
        Per-frame values (length T) of :data:`LINEAR_KEYS` and, when recorded, ``CROTA2``.
    frame_shape : (int, int)
        (H, W).
    present : numpy.ndarray of bool, optional
        Which of the T rows hold a frame (a synced file's ``present``); all by default.
    first_header : str, optional
        The FITS header text of the first present frame, to check what the columns do not record (a PCi_j/CDi_j
        matrix, the axis types and units).

    Returns
    -------
    HelioprojectiveAxes
        1-D axes when every frame's WCS places every pixel centre within :data:`WCS_TOLERANCE_PX` pixel of the
        first frame's; per-frame 2-D axes when they differ by more; none when a frame is rotated (``CROTA2``, a
        missing ``CROTA2`` being 0 as in FITS) so that a pixel moves by more than :data:`WCS_TOLERANCE_PX` (x
        would then depend on both pixel indices), or when a key is missing.
    """
    height, width = (int(s) for s in frame_shape)
    missing = [key for key in LINEAR_KEYS if key not in columns]
    if missing:
        return HelioprojectiveAxes(None, None, f"none: no per-frame {'/'.join(missing)} columns")
    n = len(columns["CRPIX1"])
    rows = np.ones(n, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    if not rows.any():
        return HelioprojectiveAxes(None, None, "none: no frames")
    values = {key: np.asarray(columns[key], dtype=np.float64)[rows] for key in LINEAR_KEYS}
    for key, value in values.items():
        bad = ~np.isfinite(value) | ((value == 0) if key.startswith("CDELT") else False)
        if bad.any():
            return HelioprojectiveAxes(None, None, f"none: {key} is missing or zero in {int(bad.sum())} frames")
    factors = _header_check(first_header)
    if isinstance(factors, str):
        return HelioprojectiveAxes(None, None, f"none: {factors}")
    crota = np.asarray(columns.get("CROTA2", np.zeros(n)), dtype=np.float64)[rows]
    crota = np.where(np.isfinite(crota), crota, 0.0)
    # a rotation by θ moves a point r pixels from the reference pixel by 2 r |sin(θ/2)|; r is largest at a corner
    reach = np.hypot(np.maximum(values["CRPIX1"] - 1, width - values["CRPIX1"]),
                     np.maximum(values["CRPIX2"] - 1, height - values["CRPIX2"]))
    shift = 2 * reach * np.abs(np.sin(np.deg2rad(crota) / 2))
    if shift.max() > WCS_TOLERANCE_PX:
        worst = crota[np.argmax(shift)]
        return HelioprojectiveAxes(None, None, f"none: frames are rotated (CROTA2 up to {worst:.4g} deg moves pixels "
                                               f"by {shift.max():.2g} px > {WCS_TOLERANCE_PX} px)")
    x = _centres(values["CRVAL1"], values["CDELT1"], values["CRPIX1"], width) * factors[0]
    y = _centres(values["CRVAL2"], values["CDELT2"], values["CRPIX2"], height) * factors[1]
    # x and y are linear in the pixel index, so the largest difference between two frames is at an end
    drift = max(np.abs(x[:, [0, -1]] - x[0, [0, -1]]).max() / abs(x[0, 1] - x[0, 0]) if width > 1 else 0.0,
                np.abs(y[:, [0, -1]] - y[0, [0, -1]]).max() / abs(y[0, 1] - y[0, 0]) if height > 1 else 0.0)
    if drift <= WCS_TOLERANCE_PX:
        return HelioprojectiveAxes(x[0], y[0], f"1-D: the same WCS in every frame (within {WCS_TOLERANCE_PX} px), "
                                               "linear from CRPIX/CDELT/CRVAL")
    full_x = np.full((n, width), np.nan)
    full_y = np.full((n, height), np.nan)
    full_x[rows], full_y[rows] = x, y
    return HelioprojectiveAxes(full_x, full_y, f"per frame: the WCS differs between frames by up to {drift:.3g} px, "
                                               "linear from each frame's CRPIX/CDELT/CRVAL")
