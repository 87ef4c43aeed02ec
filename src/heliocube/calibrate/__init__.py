"""Optional per-frame calibration, applied by the clean stage before or while resizing.

:func:`calibrate_frame` (the clean stage's call) and :func:`calibrate` run the enabled steps in a fixed order,
:data:`STEP_ORDER`:

1. ``exposure_normalise`` -- divide by ``EXPTIME`` so count data are DN/s (:mod:`.exposure`).
2. ``aia_degradation`` -- divide AIA frames by aiapy's time-dependent degradation factor (:mod:`.degradation`).
3. ``north_up`` and ``fixed_rsun_arcsec`` -- one resampling that rotates solar north to +y, puts the disk centre
   on the image centre and rescales the disk to the fixed radius convention of SDOML (:mod:`.geometry`), either
   straight onto the output grid (``method: affine``, the default, :mod:`.affine`: ~16 ms per 4096² frame more than
   an uncalibrated clean) or at the input's resolution before resizing (``method: full_resolution``,
   :mod:`.full_resolution`: ~2.75 s more).

Exposure and degradation are scalar divisions, so their relative order does not change the result, nor does doing
them before or after the (linear) resampling.

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
``method``                              affine     resampling of north-up / fixed radius: ``affine`` (prefiltered,
                                                   straight to the output grid) or ``full_resolution`` (cubic spline
                                                   of the whole frame, then the resize; adds ``-fullres`` to the
                                                   variant name)
======================================  =========  ===================================================================

Every step adds a HISTORY line. The input data and header are never modified (unless a caller of
:func:`calibrate_frame` hands over its header).
"""

from ..lazy import lazy_names

#: Where each public name lives. The package loads a submodule when one of its names is first used: the config
#: check of every job asks only :func:`check_available` and :func:`calibration_tag`, which need neither OpenCV nor
#: astropy.io.fits (together ~0.4 s of every job's start).
_HOMES = {
    "AIA_INSTRUMENT": "degradation",
    "check_available": "degradation",
    "MAGNETOGRAM_INSTRUMENTS": "exposure",
    "RESAMPLE_METHOD": "full_resolution",
    "RESAMPLE_ORDER": "full_resolution",
    "GEOMETRY_METHODS": "options",
    "OPTION_DEFAULTS": "options",
    "STEP_ORDER": "options",
    "CalibrationOptions": "options",
    "CalibrationUnavailable": "options",
    "calibration_tag": "options",
    "parse_options": "options",
    "calibrate": "pipeline",
    "calibrate_frame": "pipeline",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)

__all__ = [
    "AIA_INSTRUMENT",
    "GEOMETRY_METHODS",
    "MAGNETOGRAM_INSTRUMENTS",
    "OPTION_DEFAULTS",
    "RESAMPLE_METHOD",
    "RESAMPLE_ORDER",
    "STEP_ORDER",
    "CalibrationOptions",
    "CalibrationUnavailable",
    "calibrate",
    "calibrate_frame",
    "calibration_tag",
    "check_available",
    "parse_options",
]
