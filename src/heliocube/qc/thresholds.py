"""QC thresholds: one frozen record, defaults tuned on the embedded archive's ground truth, overridable by config."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["Thresholds"]


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Rejection thresholds. Fractions are of the valid region (holes) or of the frame (MISSVALS).

    The embedded archive injects holes of 1-5 % of the valid region and EIT missing blocks of 32x32 native pixels
    (about 0.25 % of the EIT disk each); a clean frame has none, so any threshold well below those sizes separates
    them. Streak and cosmic-ray values are counts on the full-resolution frame.

    Cosmic rays: real full-resolution LASCO frames carry stars (not counted: their PSF spreads into the 4-neighbours
    of the peak) and a natural load of tens of sharp hits per 1024x1024 frame, so the limit is the larger of
    ``cosmic_ray_count`` and ``cosmic_ray_density`` x valid pixels (C2 ~64, C3 ~83 hits at 1024x1024; 15 at the
    embedded archive's small frames, whose cosmic-ray defect injects 20-200 hits).
    """

    #: reject when more than this fraction of the valid region is NaN, 0 or BLANK
    hole_fraction: float = 0.001
    #: reject when the header's N_MISSING_BLOCKS is above this
    missing_blocks: int = 0
    #: reject when the header's MISSVALS is above this fraction of the frame's pixels
    missvals_fraction: float = 0.001
    #: streaks: minimum length of a straight edge segment, as a fraction of the frame edge
    streak_min_length: float = 0.1
    #: streaks: largest gap bridged within one segment, as a fraction of the frame edge
    streak_max_gap: float = 0.005
    #: streaks: Hough accumulator votes, as a fraction of the frame edge
    streak_votes: float = 0.05
    #: streaks: Hough distance resolution in pixels
    streak_rho: float = 1.0
    #: streaks: ridges narrower than this fraction of the frame edge (white top-hat kernel) also vote
    streak_ridge_width: float = 0.015
    #: streaks: ridge contrast on the 0-255 log image (0 disables the ridge image: Canny edges only)
    streak_ridge_contrast: float = 40.0
    #: streaks: pixels removed along the occulter, the outer edge of the valid region and the frame border
    streak_margin: int = 3
    #: streaks: a pixel is saturated at and above this fraction of the camera's full scale: 2**14 - 1 DN for raw
    #: (integer) frames of SoHO's 14-bit cameras, the header's DSATVAL for calibrated frames that give it. LASCO's
    #: CCD fills its wells at 0.71-0.81 (C3) and 0.94-0.98 (C2) of the full scale: blooms sit on that plateau
    streak_saturation: float = 0.68
    #: streaks: a bloom is a run of at least this many saturated pixels along a row or column, as a fraction of
    #: the frame edge (12 px at 1024). Bright field stars saturate too: on the real C3 frames (19 s) their runs
    #: are 2-7 px; Saturn's, the faintest planet bloom there, is 20 px. A run's length measures the charge
    #: spilled past full well, i.e. the source's brightness: 12 px sits between the two with margin both ways
    streak_bloom_length: float = 0.012
    #: streaks, comet tails (:mod:`heliocube.qc.comet_tails`): a saturated group shorter than a bloom is a comet
    #: head when a straight ridge runs from it this far (fraction of the frame edge) ...
    streak_tail_length: float = 0.06
    #: ... within this many degrees of the anti-solar direction (ion tails: a few degrees of aberration) ...
    streak_tail_angle: float = 20.0
    #: ... brighter than the two parallel lines this far to its sides (fraction of the frame edge; tails are a
    #: few pixels wide, streamer rays wider) ...
    streak_tail_width: float = 0.005
    #: ... by more than this many robust sigmas of that excess (its spread over all directions tried; 0: no tail
    #: search) ...
    streak_tail_sigma: float = 4.0
    #: ... at this fraction of the samples at least (a continuous line, not a star or two on the way)
    streak_tail_fraction: float = 0.8
    #: streaks: the occulter's halo is the region brighter than this fraction of the saturation level that is
    #: connected to the occulter (searched out to ``streak_halo_reach`` x the inner radius); it and
    #: ``2 x streak_margin`` pixels around it leave the streak search's valid region
    streak_halo: float = 0.5
    #: streaks: how far the halo is followed, as a multiple of the valid region's inner radius
    streak_halo_reach: float = 1.5
    #: streaks: one exact value held by more than this fraction of the valid region of a float frame is a fill
    #: (level-1 LASCO fills the occulter, the pylon and the corners with a constant); it leaves the search region
    streak_fill_fraction: float = 0.01
    #: streaks: reject when at least this many segments are found
    streak_segments: int = 1
    #: streaks: only frames at least this many pixels on a side are searched (0: all). Below 256 px the annulus is
    #: too few pixels wide to tell a streak from streamers and noise: on the embedded archive's clean LASCO frames
    #: the detector's precision falls to 0.69 at 128 px and 0.46 at 64 px (1.00 at 256 and 1024 px)
    streak_min_size: int = 256
    #: cosmic rays: a pixel is a candidate when it exceeds its 3x3 median by this many robust sigmas ...
    cosmic_ray_sigma: float = 12.0
    #: ... and by this factor of the median (for positive data)
    cosmic_ray_ratio: float = 1.5
    #: cosmic rays: a group of candidates is a sharp hit (not a star) when, along its peak's row or column, both
    #: neighbours hold at most this fraction of the peak's excess over the local background
    cosmic_ray_psf_fraction: float = 0.15
    #: cosmic rays: reject when more sharp hits than this are found in the valid region ...
    cosmic_ray_count: int = 15
    #: ... or than this many per valid pixel, if larger (the natural cosmic-ray load grows with the frame's area)
    cosmic_ray_density: float = 1.0e-4

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> Thresholds:
        """Defaults overridden by ``values`` (e.g. a config's ``qc`` section); unknown keys raise ValueError."""
        values = dict(values or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown QC threshold(s) {unknown}; known: {sorted(known)}")
        converted = {}
        for key, value in values.items():
            kind = type(getattr(cls(), key))
            converted[key] = kind(value)
        return cls(**converted)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
