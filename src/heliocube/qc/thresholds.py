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
    #: streaks: reject when at least this many segments are found
    streak_segments: int = 1
    #: cosmic rays: a pixel is a hit when it exceeds its 3x3 median by this many robust sigmas ...
    cosmic_ray_sigma: float = 12.0
    #: ... and by this factor of the median (for positive data)
    cosmic_ray_ratio: float = 1.5
    #: cosmic rays: reject when more than this many hit blobs are found in the valid region
    cosmic_ray_count: int = 15

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
