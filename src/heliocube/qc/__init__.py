"""Frame quality control: header flags, holes in the valid region, shape, streaks and cosmic rays.

Every check is a small pure function returning a :class:`~heliocube.fetch.gate.Rejection` (reason code and the
measured value) or None; :class:`FrameQC` runs them in a fixed order as the fetch stage's quality gate.
Instrument differences come from the registry only (``quality_keyword``, ``valid_region``).
"""

from __future__ import annotations

from .checks import REASONS, cosmic_rays, header_flags, holes, shape, streaks
from .gate import FrameQC
from .geometry import DiskGeometry, disk_geometry, valid_region_mask
from .thresholds import Thresholds

__all__ = [
    "REASONS",
    "DiskGeometry",
    "FrameQC",
    "Thresholds",
    "cosmic_rays",
    "disk_geometry",
    "header_flags",
    "holes",
    "shape",
    "streaks",
    "valid_region_mask",
]
