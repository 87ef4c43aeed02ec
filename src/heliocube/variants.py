"""Dataset variants: everything that changes pixels (size, resize method, cadence, calibration), named for paths.

A config builds one variant from its top-level ``image_size``, ``resize_method``, ``cadence`` and ``calibration``
keys, or several from a ``variants`` list (a sweep) whose entries override those keys. Every variant is built from
the same manifests and raw downloads: the fetch stage fills the slot grid of the top-level ``cadence`` (the finest
one), and a variant with a coarser cadence keeps the slots on its own grid. That is why a variant's cadence must be
a whole multiple of the top-level cadence.

Names read ``{size}px-{method}-{cadence}`` plus a calibration tag, e.g. ``128px-mean-6h`` or
``512px-interp-12min-dns-r976-north``; a ``name`` key overrides it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping

from .timegrid import format_duration, parse_duration

__all__ = ["Variant", "calibration_tag", "variant_of", "variants_of"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,100}$")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One dataset variant.

    Attributes
    ----------
    name : str
        Directory name under ``frames/`` and ``cubes/``.
    image_size : int
        Output edge in pixels.
    resize_method : str
        One of :data:`heliocube.resize.METHODS`.
    cadence : datetime.timedelta
        Spacing of the slots kept (a multiple of the fetch cadence).
    calibration : dict
        Calibration options (see :mod:`heliocube.calibrate`); empty when none is enabled.
    """

    name: str
    image_size: int
    resize_method: str
    cadence: dt.timedelta
    calibration: dict

    def as_params(self) -> dict:
        """Plain values for a Snakemake ``params`` entry (a change of any of them reruns the variant's jobs)."""
        return {"name": self.name, "image_size": self.image_size, "resize_method": self.resize_method,
                "cadence": format_duration(self.cadence), "calibration": dict(self.calibration)}

    @classmethod
    def from_params(cls, params: Mapping) -> Variant:
        """Inverse of :meth:`as_params`."""
        return cls(params["name"], int(params["image_size"]), params["resize_method"],
                   parse_duration(params["cadence"]), dict(params.get("calibration") or {}))


def calibration_tag(calibration: Mapping | None) -> str:
    """Short name of the enabled calibration steps ('' when none); delegates to :mod:`heliocube.calibrate`."""
    if not calibration:
        return ""
    from .calibrate import calibration_tag as tag  # sunpy-heavy module: imported only when calibrating

    return tag(calibration)


def variant_of(config: Mapping, entry: Mapping | None = None) -> Variant:
    """The variant given by ``entry`` (one item of ``variants``) over the config's top-level defaults."""
    entry = dict(entry or {})
    size = int(entry.get("image_size", config["image_size"]))
    method = entry.get("resize_method", config["resize_method"])
    cadence_text = entry.get("cadence", config["cadence"])
    cadence = parse_duration(cadence_text)
    calibration = _enabled(entry.get("calibration", config.get("calibration") or {}))
    name = entry.get("name")
    if not name:
        parts = [f"{size}px", method, format_duration(cadence)]
        tag = calibration_tag(calibration)
        name = "-".join(parts + ([tag] if tag else []))
    return Variant(name, size, method, cadence, calibration)


def variants_of(config: Mapping) -> list[Variant]:
    """Every variant a config builds, in config order (one from the top-level keys when ``variants`` is empty)."""
    entries = config.get("variants") or [None]
    return [variant_of(config, entry) for entry in entries]


def _enabled(calibration: Mapping) -> dict:
    """Only the steps that do something, so an explicit ``false`` and an absent key name the same variant.

    ``method`` (how north-up and the fixed radius resample) is kept, with its default filled in, only when one of
    those steps is enabled: its change then reruns the variant's clean jobs, and it changes nothing else.
    """
    out = {}
    for key, value in dict(calibration).items():
        if key == "method":
            continue
        if isinstance(value, Mapping):
            if value.get("enabled"):
                out[key] = dict(value)
        elif value not in (None, False):
            out[key] = value
    if out.get("north_up") or out.get("fixed_rsun_arcsec") is not None:
        out["method"] = calibration.get("method") or "affine"
    return out


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be a directory name, or None."""
    if not _NAME.match(name):
        return "letters, digits and . _ + - only (starting with a letter or digit)"
    return None
