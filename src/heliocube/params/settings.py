"""Settings of the image parameters, per product, with the defaults chosen where the reference is silent.

Every parameter is computed on *gray levels*: the frame's values ``x`` (in the cube's units) are clipped to the
product's ``range`` ``[lo, hi]``, put on the ``scale`` (``log10`` or ``linear``) and mapped linearly onto
``[0, L - 1]`` with ``L = levels``::

    z = (L - 1) * (s(clip(x, lo, hi)) - s(lo)) / (s(hi) - s(lo))

This is what a byte image (Helioviewer JP2, ``L = 256``) holds, which is what the GSU dataset was computed on,
and it fixes the histogram per product, so entropy and uniformity are comparable across frames, days and
years (a per-frame range would make them measure the frame's own contrast stretch instead).

Defaults (every one is recorded in the output's ``settings`` attribute):

==========================  ===========================================================================
range, scale                Magnetograms (units Gauss): linear over [-1500, 1500] G. Everything else
                            (DN, counts): log10 over [1, full scale], the registry's ``full_scale_dn``
                            (14-bit cameras: 16383) where given, else 16383; a variant made with the
                            ``sum`` resize holds sums of (native/size)**2 pixels, so its range is scaled
                            by that factor (a ``mean`` or ``interp`` variant keeps DN per pixel).
levels                      256 gray levels (one histogram bin per level, bins centred on 0..L-1).
clip                        true: values outside the range take its bounds. false: they are left out of
                            every parameter, as NaN pixels always are.
edge_threshold              12: pixels with Prewitt magnitude |dG| = (|dH| + |dV|) / 2 above it are the
                            edge pixels of the fractal dimension (gradients of the unnormalised 3x3
                            Prewitt kernels on gray levels, as Tamura et al. 1978 used on 8-bit images).
direction_threshold         12: Tamura's threshold t on |dG| for the directionality histogram.
direction_bins              16: Tamura's n, bins of the angle histogram over [0, pi).
peak_fraction               0.5: a local maximum of the angle histogram is a peak when it holds at least
                            this fraction of the histogram's largest bin.
smoothness_scaled           true: relative smoothness uses sigma**2 / (L - 1)**2 (Gonzalez & Woods), so it
                            spans [0, 1) instead of being ~1 for every cell.
==========================  ===========================================================================
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping

__all__ = ["DEFAULTS", "ParamSettings", "cell_shape", "params_problems", "settings_for"]

#: Setting names a config may give (``params.defaults`` for every product, ``params.settings.<product>`` for one).
DEFAULTS = {
    "scale": None, "range": None, "levels": 256, "clip": True, "edge_threshold": 12.0,
    "direction_threshold": 12.0, "direction_bins": 16, "peak_fraction": 0.5, "smoothness_scaled": True,
}
_MAGNETOGRAM_RANGE = (-1500.0, 1500.0)
_DN_FULL_SCALE = 16383.0


@dataclasses.dataclass(frozen=True)
class ParamSettings:
    """Everything the ten parameters of one product-variant depend on (see the module's table)."""

    grid: int = 64
    scale: str = "log10"
    range: tuple[float, float] = (1.0, _DN_FULL_SCALE)
    levels: int = 256
    clip: bool = True
    edge_threshold: float = 12.0
    direction_threshold: float = 12.0
    direction_bins: int = 16
    peak_fraction: float = 0.5
    smoothness_scaled: bool = True
    product: str = ""
    variant: str = ""

    def __post_init__(self):
        lo, hi = self.range
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"range {list(self.range)} must be two finite values, low < high")
        if self.scale not in ("log10", "linear"):
            raise ValueError(f"scale {self.scale!r} is not log10 or linear")
        if self.scale == "log10" and lo <= 0:
            raise ValueError(f"range {list(self.range)}: a log10 scale needs a positive low bound")
        if self.levels < 2 or self.direction_bins < 2 or self.grid < 1:
            raise ValueError("levels and direction_bins must be at least 2, grid at least 1")
        if not 0 < self.peak_fraction <= 1:
            raise ValueError(f"peak_fraction {self.peak_fraction} is not in (0, 1]")

    def to_json(self) -> str:
        """Every setting as JSON text (what the output's ``settings`` attribute holds)."""
        return json.dumps({**dataclasses.asdict(self), "range": list(self.range)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ParamSettings:
        values = json.loads(text)
        return cls(**{**values, "range": tuple(values["range"])})


def cell_shape(frame_shape: tuple[int, int], grid: int) -> tuple[int, int]:
    """(h, w) of the cells of a ``grid`` x ``grid`` partition of a frame; the grid must divide both edges."""
    height, width = frame_shape
    if height % grid or width % grid:
        raise ValueError(f"a {grid}x{grid} grid does not divide a {height}x{width} frame into whole cells; "
                         f"set params.grid to a divisor of the variant's image size")
    return height // grid, width // grid


def _product_defaults(product: str, resize_method: str, image_size: int) -> dict:
    from ..registry import get_product

    entry = get_product(product)
    if entry.units.lower().startswith("gauss"):
        return {"scale": "linear", "range": _MAGNETOGRAM_RANGE}
    factor = (entry.native_size / image_size) ** 2 if resize_method == "sum" else 1.0
    return {"scale": "log10", "range": (factor, factor * float(entry.full_scale_dn or _DN_FULL_SCALE))}


def settings_for(params_config: Mapping, product: str, variant: Mapping) -> ParamSettings:
    """The settings of one product-variant: the product's defaults, then ``params.defaults``, then
    ``params.settings[product]`` (each only where it gives a value).

    Parameters
    ----------
    params_config : mapping
        The validated config's ``params`` section.
    product : str
        Registry name.
    variant : mapping
        :meth:`heliocube.variants.Variant.as_params` of the cube's variant.
    """
    values = {k: v for k, v in DEFAULTS.items() if v is not None}
    values.update(_product_defaults(product, variant["resize_method"], int(variant["image_size"])))
    for layer in (params_config.get("defaults") or {}, (params_config.get("settings") or {}).get(product) or {}):
        values.update({k: v for k, v in layer.items() if v is not None})
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown parameter settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    values["range"] = tuple(float(v) for v in values["range"])
    return ParamSettings(grid=int(params_config.get("grid", 64)), product=product, variant=variant["name"],
                         **values)


def params_problems(config: Mapping) -> list[tuple[str, str]]:
    """(key, message) for each ``params`` setting the schema cannot judge: products and variants not configured, a
    grid that does not divide a variant's image size into cells of at least 2 px, settings that contradict."""
    from ..variants import variants_of

    section = config.get("params") or {}
    problems = []
    for index, name in enumerate(section.get("products", [])):
        if name not in config["products"]:
            problems.append((f"params.products[{index}]", f"{name!r} is not among the configured products"))
    variants = {v.name: v for v in variants_of(config)}
    chosen = section.get("variants")
    for index, name in enumerate(chosen or []):
        if name not in variants:
            problems.append((f"params.variants[{index}]", f"{name!r} is not a variant of this config "
                                                          f"({', '.join(variants)})"))
    grid = section.get("grid", 64)
    for name, variant in variants.items():
        if not section.get("products") or (chosen and name not in chosen):
            continue  # no parameters of this variant: any grid will do
        size = variant.image_size
        if size % grid or size // grid < 2:
            problems.append(("params.grid", f"{grid} does not divide variant {name}'s {size} px frames into cells "
                                            f"of at least 2x2 px"))
    for name in section.get("settings") or {}:
        if name not in section.get("products", []):
            problems.append((f"params.settings.{name}", f"{name!r} is not among params.products"))
    for product in section.get("products", []):
        for variant in variants.values():
            try:
                settings_for(section, product, variant.as_params())
            except (ValueError, KeyError) as err:
                problems.append((f"params.settings.{product}", str(err)))
    return problems
