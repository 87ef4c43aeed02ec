"""Sync experiments declared in a config, with their defaults resolved against the config's range and variants."""

from __future__ import annotations

from collections.abc import Mapping

from .registry import coronagraphs
from .timegrid import format_duration, parse_day, parse_duration
from .variants import variants_of

__all__ = ["experiment_problems", "experiments_of"]


def experiments_of(config: Mapping) -> dict[str, dict]:
    """Each experiment by name as plain values (a Snakemake param): products, variant, range, step, options."""
    variants = {variant.name: variant for variant in variants_of(config)}
    first = next(iter(variants))
    out = {}
    for entry in config.get("experiments") or []:
        variant = entry.get("variant") or first
        cadence = variants[variant].cadence if variant in variants else None
        step = entry.get("step") or (format_duration(cadence) if cadence else None)
        difference = dict(entry.get("running_difference") or {})
        differenced = difference.get("products") or coronagraphs()  # default: the registry's (LASCO C2/C3)
        out[entry["name"]] = {
            "name": entry["name"],
            "products": list(entry["products"]),
            "variant": variant,
            "date_start": entry.get("date_start") or config["date_start"],
            "date_finish": entry.get("date_finish") or config["date_finish"],
            "step": step,
            "tolerance": entry.get("tolerance"),
            "keep_missing": bool(entry.get("keep_missing", False)),
            "running_difference": bool(difference.get("enabled", False)),
            "difference_products": [p for p in entry["products"] if p in differenced],
            "max_gap": difference.get("max_gap", "24h"),
            "prior_tool_layout": bool(entry.get("prior_tool_layout", False)),
        }
    return out


def experiment_problems(config: Mapping) -> list[tuple[str, str]]:
    """(key, message) for every experiment that cannot be built from this config; empty when all can."""
    from .sync.steps import check_step_multiple  # no pandas: the config check runs in every job

    variants = {variant.name: variant for variant in variants_of(config)}
    resolved = experiments_of(config)
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, entry in enumerate(config.get("experiments") or []):
        key = f"experiments[{index}]"
        spec = resolved[entry["name"]]
        if entry["name"] in seen:
            problems.append((f"{key}.name", f"experiment name {entry['name']!r} is used twice"))
        seen.add(entry["name"])
        for position, product in enumerate(spec["products"]):
            if product not in config["products"]:
                problems.append((f"{key}.products[{position}]", f"{product!r} is not among the configured products"))
        if spec["variant"] not in variants:
            problems.append((f"{key}.variant", f"unknown variant {spec['variant']!r}; known: {', '.join(variants)}"))
            continue
        try:
            start, finish = parse_day(spec["date_start"]), parse_day(spec["date_finish"])
        except ValueError as err:
            problems.append((f"{key}.date_start", str(err)))
            continue
        if start < parse_day(config["date_start"]) or finish > parse_day(config["date_finish"]) or finish < start:
            problems.append((f"{key}.date_start", f"{start}..{finish} is not within the configured range "
                             f"{config['date_start']}..{config['date_finish']}"))
        try:
            step = parse_duration(spec["step"])
            check_step_multiple(step, dict.fromkeys(spec["products"], variants[spec["variant"]].cadence))
        except ValueError as err:
            problems.append((f"{key}.step", str(err)))
            continue
        if spec["tolerance"] is not None:
            try:
                tolerance = parse_duration(spec["tolerance"])
            except ValueError as err:
                problems.append((f"{key}.tolerance", str(err)))
                continue
            if tolerance * 2 > step:
                problems.append((f"{key}.tolerance", f"{spec['tolerance']} is more than half the step {spec['step']}"))
        if spec["running_difference"] and not spec["difference_products"]:
            problems.append((f"{key}.running_difference.products", "none of the products to difference is in the "
                             f"experiment ({', '.join(spec['products'])})"))
        try:
            parse_duration(spec["max_gap"])
        except ValueError as err:
            problems.append((f"{key}.running_difference.max_gap", str(err)))
    return problems
