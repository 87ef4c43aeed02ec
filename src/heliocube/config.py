"""Loading and checking the workflow configuration.

The JSON schema (``schemas/config.schema.yaml``) checks each key on its own and fills defaults; the semantic
checks (:mod:`heliocube.configchecks`) catch what spans keys or needs the registry. Every error names the
offending key and is raised before any job runs, so a bad config writes nothing.
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

from .timegrid import parse_duration
from .yamlload import load_table

__all__ = [
    "JSOC_DATA_KEYS",
    "SCHEMA_PATH",
    "ConfigError",
    "archive_urls",
    "cadence_of",
    "config_hash",
    "jsoc_email",
    "load_config",
    "load_schema",
    "native_size_of",
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
    JSOC; :func:`heliocube.configchecks.missing_email` then says what a real run would refuse).

    Raises
    ------
    ConfigError
        Naming the first offending key.
    """
    filled = copy.deepcopy(config)
    errors = sorted(_validator().iter_errors(filled), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        raise ConfigError(_key_of(errors[0]), errors[0].message)
    from .configchecks import check_semantics  # it imports this module's accessors

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


def qc_thresholds_of(config: dict, product: str) -> dict:
    """QC threshold overrides for ``product``: the common ones, then the product's own."""
    qc = config["qc"]
    return {**qc["thresholds"], **qc["products"].get(product, {})}


#: The ``jsoc`` keys that change the raw files: ``protocol`` (as-is exports are bare images, fits exports carry
#: the full headers). The others say who asks and how fast, not what comes back.
JSOC_DATA_KEYS = frozenset({"protocol"})


def config_hash(config: dict) -> str:
    """SHA-256 of what decides the data: the validated config without where it is written or how fast.

    Left out: ``output_root``, the embedded archive's port, URL and network model (latency, bandwidth, connection
    cap, staging), ``fetch`` (connections, retries, timeouts) and every ``jsoc`` key but :data:`JSOC_DATA_KEYS`
    (email, polling, export batching and retries), so a rerun elsewhere or with other throttles carries the same hash.
    """
    import hashlib
    import json

    kept = {k: v for k, v in config.items() if k not in ("output_root", "fetch", "jsoc")}
    kept["jsoc"] = {k: v for k, v in config.get("jsoc", {}).items() if k in JSOC_DATA_KEYS}
    kept["archive"] = {k: v for k, v in config.get("archive", {}).items()
                       if k not in ("embedded_port", "embedded_url", "network")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


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
