"""Event datasets declared in a config (``events: [...]``), with their defaults resolved to plain values.

Each entry names one dataset built under ``events/{name}/``: where the events come from (HEK or a CSV table), which
of them are kept (:mod:`heliocube.events.selection`), the AIA (JSOC) channels whose frames are fetched over each
event's window at native cadence, the size those frames are cleaned to, and the sampling settings of
:mod:`heliocube.events.dataset`.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..registry import load_registry
from ..timegrid import parse_day, parse_duration
from ..variants import Variant, variant_of

__all__ = ["HEK_URL", "event_problems", "event_variant", "events_of", "hek_url"]

#: The production HEK search endpoint (sunpy's default); the embedded archive serves ``hek/her?`` below its URL.
HEK_URL = "https://www.lmsal.com/hek/her?"


def events_of(config: Mapping) -> dict[str, dict]:
    """Each event dataset by name as plain values (Snakemake params): defaults resolved from the config."""
    out = {}
    for entry in config.get("events") or []:
        spec = {key: value for key, value in entry.items() if key != "sampling"}
        spec.update(
            date_start=entry.get("date_start") or config["date_start"],
            date_finish=entry.get("date_finish") or config["date_finish"],
            image_size=entry.get("image_size") or config["image_size"],
            resize_method=entry.get("resize_method") or config["resize_method"],
            exclude=[str(item) for item in entry.get("exclude") or []],
            products=list(entry["products"]),
        )
        out[entry["name"]] = spec
    return out


def sampling_of(config: Mapping, name: str) -> dict:
    """The ``sampling`` settings of event dataset ``name`` (:func:`heliocube.events.dataset.build_event_dataset`)."""
    for entry in config.get("events") or []:
        if entry["name"] == name:
            return dict(entry.get("sampling") or {})
    raise KeyError(f"no event dataset named {name!r}")


def event_variant(config: Mapping, spec: Mapping) -> Variant:
    """The size, resize method and calibration an event dataset's frames are cleaned with (at native cadence)."""
    variant = variant_of(config, {"image_size": spec["image_size"], "resize_method": spec["resize_method"],
                                  "name": "x"})
    name = f"{variant.image_size}px-{variant.resize_method}-native"
    return Variant(name, variant.image_size, variant.resize_method, variant.cadence, variant.calibration)


def hek_url(config: Mapping, spec: Mapping, embedded_url: str | None) -> str:
    """The HEK search URL of an event dataset: its ``hek_url``, else the embedded archive's in demo mode, else HEK."""
    if spec.get("hek_url"):
        return spec["hek_url"]
    if config["mode"] == "demo":
        base = embedded_url or f"http://127.0.0.1:{config['archive']['embedded_port']}/"
        return (base if base.endswith("/") else base + "/") + "hek/her?"
    return HEK_URL


def event_problems(config: Mapping) -> list[tuple[str, str]]:
    """(key, message) for every event dataset that cannot be built from this config; empty when all can."""
    from ..config import native_size_of
    from .goes import goes_flux  # not .selection: pandas, in every job's config check

    registry = load_registry()
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, entry in enumerate(config.get("events") or []):
        key = f"events[{index}]"
        if entry["name"] in seen:
            problems.append((f"{key}.name", f"event dataset name {entry['name']!r} is used twice"))
        seen.add(entry["name"])
        if entry.get("source", "hek") == "csv" and not entry.get("csv"):
            problems.append((f"{key}.csv", "source csv needs the path of the event table"))
        for position, product in enumerate(entry["products"]):
            if product not in registry:
                problems.append((f"{key}.products[{position}]", f"unknown product {product!r}"))
            elif not registry[product].is_jsoc:
                problems.append((f"{key}.products[{position}]", f"{product} is not a JSOC product: event windows are "
                                 "fetched as JSOC record sets at native cadence (AIA, HMI)"))
        size = entry.get("image_size") or config["image_size"]
        for product in (p for p in entry["products"] if p in registry):
            native = native_size_of(registry[product], config)
            if size > native or native % size:
                problems.append((f"{key}.image_size", f"{size} does not divide the native size {native} of {product}"))
        for field in ("pre_buffer", "post_buffer"):
            try:
                parse_duration(entry.get(field, "180min"))
            except ValueError as err:
                problems.append((f"{key}.{field}", str(err)))
        for field in ("date_start", "date_finish"):
            if entry.get(field):
                try:
                    parse_day(entry[field])
                except ValueError as err:
                    problems.append((f"{key}.{field}", str(err)))
        if entry.get("min_goes_class") and goes_flux(entry["min_goes_class"]) is None:
            problems.append((f"{key}.min_goes_class", f"{entry['min_goes_class']!r} is not a GOES class (e.g. M1.0)"))
    return problems
