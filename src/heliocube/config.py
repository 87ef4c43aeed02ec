"""Loading and checking the workflow configuration.

The JSON schema (``schemas/config.schema.yaml``) checks each key on its own and fills defaults; the
semantic checks here catch what spans keys or needs the registry. Every error names the offending key and
is raised before any job runs, so a bad config writes nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

from .registry import get_product, load_registry
from .timegrid import parse_day, parse_duration
from .yamlload import load_table

__all__ = [
    "JSOC_DATA_KEYS",
    "SCHEMA_PATH",
    "ConfigError",
    "archive_urls",
    "cadence_of",
    "check_semantics",
    "config_hash",
    "jsoc_email",
    "load_config",
    "load_schema",
    "missing_email",
    "native_size_of",
    "operations_warnings",
    "printable_config",
    "qc_thresholds_of",
    "read_config_file",
    "slot_tolerance_of",
    "validate_config",
]

#: The schema file, also handed to Snakemake's ``validate``.
SCHEMA_PATH = Path(str(files("heliocube").joinpath("schemas/config.schema.yaml")))

#: Placeholder identity used against the embedded archive (it accepts any address).
DEMO_EMAIL = "heliocube-demo@localhost"


class ConfigError(ValueError):
    """A configuration value is invalid; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


@functools.cache
def _schema_text() -> str:
    return SCHEMA_PATH.read_text()


def load_schema() -> dict:
    """The configuration JSON schema as a dict."""
    return load_table(_schema_text())


@functools.cache
def _validator():
    """The schema's validator, built once per process (a job checks its config more than once)."""
    return _with_defaults(jsonschema.Draft202012Validator)(load_schema())


def _with_defaults(validator_class):
    """A validator class that also writes each property's schema default into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key_of(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:  # spelled like the semantic checks: variants[0].name
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error.validator == "required":  # the missing key is named in the message, not the path
        missing = error.message.split("'")[1]
        path = f"{path}.{missing}" if path else missing
    elif error.validator == "additionalProperties":
        path = f"{path}.<unknown>" if path else "<unknown>"
    return path or "<root>"


def validate_config(config: dict, *, require_email: bool = True) -> dict:
    """Check ``config`` against the schema and the semantic rules; return a copy with defaults filled in.

    ``require_email=False`` lets a config without the JSOC email through (a dry run plans without contacting
    JSOC; `missing_email` then says what a real run would refuse).

    Raises
    ------
    ConfigError
        Naming the first offending key.
    """
    filled = copy.deepcopy(config)
    errors = sorted(_validator().iter_errors(filled), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise ConfigError(_key_of(errors[0]), errors[0].message)
    check_semantics(filled, require_email=require_email)
    return filled


def read_config_file(path: str | os.PathLike) -> dict:
    """The mapping a YAML (or JSON) config file holds, as Snakemake's ``--configfile`` reads it.

    Raises
    ------
    ConfigError
        When the file cannot be read, is not YAML (naming the file, line and column) or holds no mapping.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError("<file>", f"cannot read {path}: {err.strerror or err}") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark, start = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        detail = getattr(err, "problem", None) or str(err).splitlines()[0]
        if getattr(err, "context", None):  # e.g. an unclosed quote: say where it opened
            at = f" at line {start.line + 1}, column {start.column + 1}" if start is not None else ""
            detail += f" ({err.context}{at})"
        raise ConfigError("<file>", f"{where}: not valid YAML: {detail}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError("<root>", f"{path} does not hold a mapping of keys to values")
    return config


def load_config(path: str | os.PathLike) -> dict:
    """Read a config file and validate it exactly as the workflow does with ``--configfile path``.

    The file is the whole config: keys it leaves out take the schema's defaults, never the demo's values.
    """
    return validate_config(read_config_file(path))


def printable_config(config: dict) -> dict:
    """``config`` safe to print or log: the JSOC email, if written in it, is replaced by a marker."""
    shown = copy.deepcopy(config)
    if shown.get("jsoc", {}).get("email"):
        shown["jsoc"]["email"] = "<set, not shown>"
    return shown


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


def qc_thresholds_of(config: dict, product: str) -> dict:
    """QC threshold overrides for ``product``: the common ones, then the product's own."""
    qc = config["qc"]
    return {**qc["thresholds"], **qc["products"].get(product, {})}


#: The ``jsoc`` keys that change the raw files: ``protocol`` (as-is exports are bare images, fits exports carry
#: the full headers). The others say who asks and how fast, not what comes back.
JSOC_DATA_KEYS = frozenset({"protocol"})


def config_hash(config: dict) -> str:
    """SHA-256 of what decides the data: the validated config without where it is written or how fast.

    Left out: ``output_root``, the embedded archive's port and URL, ``fetch`` (connections, retries, timeouts)
    and every ``jsoc`` key but :data:`JSOC_DATA_KEYS` (email, polling, export batching and retries), so a rerun
    elsewhere or with other throttles carries the same hash.
    """
    import hashlib
    import json

    kept = {k: v for k, v in config.items() if k not in ("output_root", "fetch", "jsoc")}
    kept["jsoc"] = {k: v for k, v in config.get("jsoc", {}).items() if k in JSOC_DATA_KEYS}
    kept["archive"] = {k: v for k, v in config.get("archive", {}).items() if k not in ("embedded_port", "embedded_url")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _duration(config: dict, key: str, name: str | None = None) -> dt.timedelta:
    try:
        return parse_duration(config[key])
    except ValueError as err:
        raise ConfigError(name or key, str(err)) from None


def cadence_of(config: dict) -> dt.timedelta:
    """The slot spacing."""
    return parse_duration(config["cadence"])


def slot_tolerance_of(config: dict) -> dt.timedelta:
    """Largest |t - slot| accepted: the configured value, or half the cadence capped at one day."""
    if config.get("slot_tolerance") is not None:
        return parse_duration(config["slot_tolerance"])
    return min(cadence_of(config) / 2, dt.timedelta(days=1))


def native_size_of(product, config: dict) -> int:
    """Full-resolution edge of ``product`` as the configured archive serves it.

    The embedded archive serves every product at ``archive.embedded_frame_size`` to keep demos fast, so in
    demo mode that is the native size; in production it is the registry's.
    """
    if config.get("mode", "demo") == "demo":
        return config["archive"]["embedded_frame_size"]
    return product.native_size


def jsoc_email(config: dict) -> str | None:
    """The JSOC notify address: config, then the environment; a placeholder in demo mode. Never log it."""
    email = config["jsoc"].get("email") or os.environ.get(config["jsoc"]["email_env"])
    if not email and config["mode"] == "demo":
        return DEMO_EMAIL
    return email


def archive_urls(config: dict, embedded_url: str | None = None) -> dict[str, str]:
    """Base URLs per dialect family: ``{"jsoc": ..., "sdac": ...}``.

    In demo mode both point into the embedded archive at ``embedded_url`` (``archive.embedded_url`` or the
    local port); in production they come from ``archive.jsoc_url`` and ``archive.sdac_url``.
    """
    archive = config["archive"]
    if config["mode"] == "demo":
        base = embedded_url or archive.get("embedded_url") or f"http://127.0.0.1:{archive['embedded_port']}/"
        base = base if base.endswith("/") else base + "/"
        return {"jsoc": base, "sdac": base + "sdac/"}
    return {"jsoc": archive["jsoc_url"], "sdac": archive["sdac_url"]}
