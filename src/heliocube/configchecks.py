"""The configuration checks a schema cannot express: what spans keys or needs the product registry.

:func:`heliocube.config.validate_config` runs them after the schema has filled the defaults; each error names the
offending key (:class:`heliocube.config.ConfigError`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .config import ConfigError, jsoc_email, native_size_of
from .registry import get_product, load_registry
from .timegrid import parse_day, parse_duration

__all__ = ["check_semantics", "missing_email", "operations_warnings"]


def _day(config: dict, key: str) -> dt.date:
    try:
        return parse_day(config[key])
    except ValueError as err:
        raise ConfigError(key, f"{config[key]!r} is not a calendar date ({err})") from None


def check_semantics(config: dict, *, require_email: bool = True) -> None:
    """The checks a schema cannot express. ``config`` must already have its defaults filled in.

    Raises
    ------
    ConfigError
        Naming the offending key.
    """
    registry = load_registry()
    for index, name in enumerate(config["products"]):
        if name not in registry:
            raise ConfigError(f"products[{index}]", f"unknown product {name!r}; known: {', '.join(registry)}")
    start, finish = _day(config, "date_start"), _day(config, "date_finish")
    if finish < start:
        raise ConfigError("date_finish", f"{finish} is before date_start {start}")
    _check_operations(config, registry, start, finish)
    _check_output_root(config["output_root"])
    cadence = _duration(config, "cadence")
    if config.get("slot_tolerance") is not None:
        tolerance = _duration(config, "slot_tolerance")
        if tolerance * 2 > cadence:
            raise ConfigError("slot_tolerance", f"{config['slot_tolerance']} is more than half the cadence "
                              f"{config['cadence']}: one frame could fill two slots")
    _check_sizes(config, "image_size", config["image_size"])
    _check_variants(config, cadence)
    _check_qc(config, registry)
    for index, name in enumerate(config["metadata_seeding"]["products"]):
        if name not in config["products"]:
            raise ConfigError(f"metadata_seeding.products[{index}]", f"{name!r} is not among the configured products")
        if not registry[name].is_jsoc:
            raise ConfigError(f"metadata_seeding.products[{index}]", f"{name} is not a JSOC product: its archive "
                              "files carry their full headers")
    from .experiments import experiment_problems

    for key, message in experiment_problems(config)[:1]:
        raise ConfigError(key, message)
    from .events.settings import event_problems

    for key, message in event_problems(config)[:1]:
        raise ConfigError(key, message)
    from .params.settings import params_problems

    for key, message in params_problems(config)[:1]:
        raise ConfigError(key, message)
    _check_export_splits(config["exports"]["splits"])
    if require_email and (problem := missing_email(config)):
        raise ConfigError("jsoc.email", problem)


def missing_email(config: dict) -> str | None:
    """Why a real run of ``config`` would be refused for want of a JSOC email, or None."""
    event_products = [name for entry in config.get("events") or [] for name in entry["products"]]
    needs_email = config["mode"] == "production" and any(get_product(n).is_jsoc
                                                          for n in [*config["products"], *event_products])
    if needs_email and not jsoc_email(config):
        return ("JSOC products need a registered email in production mode: set the environment variable "
                f"{config['jsoc']['email_env']} or jsoc.email")
    return None


def _operations_of(product) -> tuple[dt.date, dt.date]:
    """First and last day ``product`` can have data; an open end is today (UTC): no archive holds the future."""
    first, last = product.operations
    today = dt.datetime.now(dt.UTC).date()
    return (parse_day(first) if first else dt.date(1990, 1, 1)), (min(parse_day(last), today) if last else today)


def _check_operations(config: dict, registry, start: dt.date, finish: dt.date) -> None:
    """Refuse a range with days no configured product observed, or a product that observed none of it.

    Days outside one product's operations but inside another's are allowed (an MDI + HMI range across 2010);
    `operations_warnings` names them.
    """
    spans = {name: _operations_of(registry[name]) for name in config["products"]}
    for index, (name, (first, last)) in enumerate(spans.items()):
        if finish < first or start > last:
            raise ConfigError(f"products[{index}]", f"{name} has no data in {start}..{finish}: it observed "
                              f"{first}..{last}")
    earliest, latest = min(f for f, _ in spans.values()), max(last for _, last in spans.values())
    if start < earliest:
        raise ConfigError("date_start", f"{start} is before any configured product observed (the earliest, "
                          f"{', '.join(n for n, (f, _) in spans.items() if f == earliest)}, begins {earliest}): "
                          "those months would be planned and find nothing")
    if finish > latest:
        raise ConfigError("date_finish", f"{finish} is after every configured product's last data ({latest}): "
                          "those months would be planned and find nothing")


def operations_warnings(config: dict) -> list[str]:
    """One line per product whose operations cover only part of a validated config's range."""
    start, finish = parse_day(config["date_start"]), parse_day(config["date_finish"])
    lines = []
    for name in config["products"]:
        first, last = _operations_of(get_product(name))
        if start < first or finish > last:
            lines.append(f"{name} observed {first}..{last} only: its jobs outside that span of "
                         f"{start}..{finish} will find nothing")
    return lines


def _check_output_root(root: str) -> None:
    """A non-empty path whose existing part is made of directories (a file in the way fails every job)."""
    if not root.strip():
        raise ConfigError("output_root", "is empty: give a directory such as results/my-dataset")
    path = Path(root).expanduser()
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                what = "is" if part == path else f"lies under {part}, which is"
                raise ConfigError("output_root", f"{root!r} {what} not a directory")
            break


def _check_sizes(config: dict, key: str, size: int) -> None:
    for name in config["products"]:
        native = native_size_of(get_product(name), config)
        if size > native or native % size:
            raise ConfigError(key, f"{size} does not divide the native size {native} of {name}; "
                              f"use a divisor such as {native // 2}, {native // 4} or {native // 8}")


def _check_variants(config: dict, cadence: dt.timedelta) -> None:
    """Each variant's size divides every native size, its cadence is a multiple of the fetch cadence, names differ."""
    from .variants import check_name, variant_of

    entries = config["variants"] or [None]
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        key = "variants" if entry is None else f"variants[{index}]"
        if entry is not None and "cadence" in entry:
            _duration(entry, "cadence", f"{key}.cadence")
        try:
            variant = variant_of(config, entry)
        except ValueError as err:
            raise ConfigError(f"{key}.calibration", str(err)) from None
        if entry is not None and "image_size" in entry:
            _check_sizes(config, f"{key}.image_size", variant.image_size)
        step, base = variant.cadence.total_seconds(), cadence.total_seconds()
        if step % base:
            raise ConfigError(f"{key}.cadence", f"{variant.cadence} is not a whole multiple of the fetch cadence "
                              f"{config['cadence']}: its slots would not be on the downloaded grid")
        if (why := check_name(variant.name)) is not None:
            raise ConfigError(f"{key}.name", f"{variant.name!r}: {why}")
        if variant.name in seen:
            raise ConfigError(f"{key}", f"variant name {variant.name!r} repeats {seen[variant.name]}")
        seen[variant.name] = key
        if variant.calibration:
            from .calibrate import check_available

            for name in config["products"]:
                try:
                    check_available(variant.calibration, name)
                except (RuntimeError, ValueError) as err:
                    raise ConfigError(f"{key}.calibration" if entry else "calibration", str(err)) from None


def _check_export_splits(splits: dict) -> None:
    """Fractions that sum to 1, a duration for the gap, explicit ranges in order and apart."""
    total = sum(splits["fractions"].values())
    if abs(total - 1) > 1e-9:
        raise ConfigError("exports.splits.fractions", f"train, val and test sum to {total:g}, not 1")
    if _duration(splits, "gap", "exports.splits.gap") < dt.timedelta(0):
        raise ConfigError("exports.splits.gap", f"{splits['gap']} is negative")
    spans = []
    for index, entry in enumerate(splits["ranges"]):
        key = f"exports.splits.ranges[{index}]"
        try:
            start, finish = parse_day(entry["start"]), parse_day(entry["finish"])
        except ValueError as err:
            raise ConfigError(key, f"not a calendar date ({err})") from None
        if finish < start:
            raise ConfigError(f"{key}.finish", f"{finish} is before its start {start}")
        for other, (first, last) in enumerate(spans):
            if start <= last and first <= finish:
                raise ConfigError(key, f"{start}..{finish} overlaps exports.splits.ranges[{other}] ({first}..{last})")
        spans.append((start, finish))


def _check_qc(config: dict, registry) -> None:
    from .qc.thresholds import Thresholds

    qc = config["qc"]
    try:
        base = Thresholds.from_mapping(qc["thresholds"])
    except (TypeError, ValueError) as err:
        raise ConfigError("qc.thresholds", str(err)) from None
    for name, overrides in qc["products"].items():
        if name not in registry:
            raise ConfigError(f"qc.products.{name}", f"unknown product {name!r}")
        try:
            Thresholds.from_mapping({**base.as_dict(), **overrides})
        except (TypeError, ValueError) as err:
            raise ConfigError(f"qc.products.{name}", str(err)) from None


def _duration(config: dict, key: str, name: str | None = None) -> dt.timedelta:
    try:
        return parse_duration(config[key])
    except ValueError as err:
        raise ConfigError(name or key, str(err)) from None
