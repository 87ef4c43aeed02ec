"""The package installs beyond the tested set: ranges in pyproject.toml, exact pins only in requirements.lock."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(text) for text in PROJECT["dependencies"]] + [
    Requirement(text) for extra in PROJECT["optional-dependencies"].values() for text in extra]


def locked_versions() -> dict[str, Version]:
    """``requirements.lock``: canonical name -> the exact version CI installs."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"requirements.lock must pin exactly: {line}"
            pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_python_versions_beyond_the_tested_one_may_install():
    allowed = SpecifierSet(PROJECT["requires-python"])
    assert all(version in allowed for version in ("3.11.7", "3.12.0", "3.13.0", "3.14.0"))
    assert "3.10.12" not in allowed


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=str)
def test_dependencies_are_ranges_that_the_lock_satisfies(requirement):
    """A range (no exact pin) whose lower bound the lock, the tested set, meets."""
    assert not any(spec.operator in ("==", "===") for spec in requirement.specifier), (
        f"{requirement}: pin exact versions in requirements.lock, give the package a range")
    assert any(spec.operator == ">=" for spec in requirement.specifier), f"{requirement}: no lowest tested version"
    locked = locked_versions().get(canonicalize_name(requirement.name))
    assert locked is not None, f"{requirement.name} is a dependency but not in requirements.lock"
    assert requirement.specifier.contains(locked, prereleases=True), f"the lock's {locked} is outside {requirement}"
