"""The reference geometric step: one cubic-spline resampling of the whole frame at its own resolution.

Each pixel of the calibrated grid (the input's shape, :mod:`~heliocube.calibrate.geometry`) is interpolated from the
input with :func:`sunpy.image.transform.affine_transform` (the function :meth:`sunpy.map.GenericMap.rotate` calls),
directly on the input-sized array: ``GenericMap.rotate`` pads the array for the rotated corners and unpads it
again, which drops valid pixels when the disk centre is off the array centre and the image shrinks, so the output
would need re-padding with NaN where data existed. The clean stage then resizes the result like any frame.

The data become float32, NaN where the output pixel falls outside the input (or too close to an input NaN), and are
clipped to the input's range (no cubic overshoot). Interpolation: cubic spline (:data:`RESAMPLE_ORDER`) with scipy
(:data:`RESAMPLE_METHOD`). Selected by ``calibration.method: full_resolution``: a 4096² AIA frame's clean stage takes
~2.85 s on one core against ~0.12 s with the default :mod:`~heliocube.calibrate.affine` step and ~0.10 s uncalibrated
(``bench/bench_clean.py``).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from .geometry import resampling, update_geometry_header
from .options import CalibrationOptions

__all__ = ["RESAMPLE_METHOD", "RESAMPLE_ORDER", "resample_full_resolution"]

#: Interpolation of the geometric step: spline order and :func:`sunpy.image.transform.affine_transform` method.
RESAMPLE_ORDER = 3
RESAMPLE_METHOD = "scipy"


def resample_full_resolution(data: np.ndarray, header: fits.Header, options: CalibrationOptions) -> np.ndarray:
    """The frame resampled onto the calibrated grid of its own shape; ``header`` is updated in place."""
    from sunpy.image.transform import affine_transform

    plan = resampling(data.shape, header, options)
    out = affine_transform(data, plan.matrix, order=RESAMPLE_ORDER, scale=1.0,
                           image_center=plan.geometry.sun_pixel, recenter=True, missing=np.nan,
                           method=RESAMPLE_METHOD, clip=True)
    update_geometry_header(header, options, plan, f"spline order {RESAMPLE_ORDER} ({RESAMPLE_METHOD}) at "
                           f"{data.shape[1]}x{data.shape[0]}, NaN outside the input")
    return out
