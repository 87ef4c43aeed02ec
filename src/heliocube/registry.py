"""The product registry: what every product is, where it lives, and how to check it.

The table itself is ``data/products.yaml``; this module turns it into typed, immutable records. Adding a
product is adding one entry there, never a branch in code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from importlib.resources import files

from .timegrid import parse_duration
from .yamlload import load_table

__all__ = ["DIALECTS", "Product", "ValidRegion", "coronagraphs", "get_product", "load_registry", "product_names"]

#: Archive protocols the query and fetch stages speak.
DIALECTS = ("jsoc", "sdac_eit", "sdac_lasco")


@dataclasses.dataclass(frozen=True)
class ValidRegion:
    """Where a frame must have data, in solar radii from disk centre (``disk``: inner 0)."""

    shape: str
    inner: float
    outer: float


@dataclasses.dataclass(frozen=True)
class Product:
    """One registry entry. See ``data/products.yaml`` for what each field means."""

    name: str
    mission: str
    instrument: str
    detector: str | None
    dialect: str
    series: dict[str, str]
    wavelength: int | None
    segment: str | None
    cadence: dt.timedelta
    query_step: dt.timedelta | None
    native_size: int
    level: str
    levels: tuple[str, ...]
    time_keyword: str
    quality_keyword: str | None
    valid_region: ValidRegion
    operations: tuple[str | None, str | None]
    units: str = "DN"
    full_scale_dn: int | None = None
    segment_file: str | None = None

    def series_for(self, level: str | None = None) -> str:
        """The JSOC series or archive path pattern of ``level`` (default: the product's default level)."""
        level = self.level if level is None else str(level)
        if level not in self.series:
            raise KeyError(f"product {self.name} has no level {level!r}; choose one of {sorted(self.series)}")
        return self.series[level]

    @property
    def is_jsoc(self) -> bool:
        return self.dialect == "jsoc"

    @property
    def is_coronagraph(self) -> bool:
        """Its valid region is an annulus around an occulter (streak checks, running differences)."""
        return self.valid_region.shape == "annulus"

    @property
    def listing_step(self) -> dt.timedelta:
        """Spacing of the candidates a query lists (the native cadence unless the registry thins it)."""
        return self.query_step or self.cadence


def _product_from_entry(name: str, entry: dict) -> Product:
    fields = dict(entry)
    if fields["dialect"] not in DIALECTS:
        raise ValueError(f"registry entry {name}: unknown dialect {fields['dialect']!r}")
    fields["series"] = {str(level): path for level, path in fields["series"].items()}
    fields["cadence"] = parse_duration(fields["cadence"])
    fields["query_step"] = parse_duration(fields["query_step"]) if fields.get("query_step") else None
    fields["level"] = str(fields["level"])
    fields["levels"] = tuple(str(level) for level in fields["levels"])
    fields["valid_region"] = ValidRegion(**fields["valid_region"])
    fields["operations"] = tuple(fields["operations"])
    return Product(name=name, **fields)


@functools.cache
def load_registry() -> dict[str, Product]:
    """All products of the registry, keyed by name, in the table's order."""
    table = load_table(files("heliocube").joinpath("data/products.yaml").read_text())
    return {name: _product_from_entry(name, entry) for name, entry in table["products"].items()}


def product_names() -> list[str]:
    """Names of every registered product."""
    return list(load_registry())


def coronagraphs() -> tuple[str, ...]:
    """Names of the coronagraph products (:attr:`Product.is_coronagraph`): what running differences default to."""
    return tuple(name for name, product in load_registry().items() if product.is_coronagraph)


def get_product(name: str) -> Product:
    """The registry entry called ``name``.

    Raises
    ------
    KeyError
        Naming the known products, when ``name`` is not one of them.
    """
    registry = load_registry()
    if name not in registry:
        raise KeyError(f"unknown product {name!r}; known products: {', '.join(registry)}")
    return registry[name]
