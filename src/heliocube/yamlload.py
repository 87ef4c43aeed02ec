"""YAML tables the package ships (the config schema, the product registry), parsed with libyaml when PyYAML has it.

Every job checks its config against the schema and reads the registry: PyYAML's pure-Python parser takes ~80 ms
for the two, libyaml ~5 ms, and both build the same Python objects from these plain tables
(``tests/test_config.py`` checks it). Users' config files keep ``yaml.safe_load``, as Snakemake reads them, so
their error messages stay Snakemake's.
"""

from __future__ import annotations

import yaml

__all__ = ["load_table"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_table(text: str):
    """The Python objects a shipped YAML table ``text`` holds (safe loading: plain types only)."""
    return yaml.load(text, Loader=_LOADER)  # a safe loader: the C build of yaml.SafeLoader
