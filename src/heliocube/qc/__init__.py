"""Frame quality control: header flags, holes in the valid region, shape, streaks and cosmic rays.

Every check is a small pure function returning a :class:`~heliocube.fetch.gate.Rejection` (reason code and the
measured value) or None; :class:`FrameQC` runs them in a fixed order as the fetch stage's quality gate, and
:meth:`FrameQC.inspect` also returns the metrics measured on the way (kept for accepted files:
:meth:`FrameQC.metrics_of`). Instrument differences come from the registry only (``quality_keyword``,
``valid_region``). The disk geometry and the valid-region mask are computed once per header layout / geometry and
cached (:func:`region_masks`), so that a 1024x1024 frame is read and checked in a few milliseconds.
"""

from __future__ import annotations

import importlib

#: Where each public name lives; imported on first use, so the config check (which needs only ``Thresholds``)
#: does not load OpenCV, scipy and sunpy into every Snakemake process.
_HOMES = {
    "REASONS": "checks", "cosmic_ray_limit": "checks", "cosmic_rays": "checks", "header_flags": "checks",
    "holes": "checks", "shape": "checks", "streaks": "checks", "FrameQC": "gate", "DiskGeometry": "geometry",
    "RegionMasks": "geometry", "disk_geometry": "geometry", "region_masks": "geometry",
    "valid_region_mask": "geometry", "Thresholds": "thresholds",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REASONS",
    "DiskGeometry",
    "FrameQC",
    "RegionMasks",
    "Thresholds",
    "cosmic_ray_limit",
    "cosmic_rays",
    "disk_geometry",
    "header_flags",
    "holes",
    "region_masks",
    "shape",
    "streaks",
    "valid_region_mask",
]
