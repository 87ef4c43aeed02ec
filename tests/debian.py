"""Installing Debian packages a test needs (SLURM's daemons, Chromium) when they are missing.

A developer machine without root or apt-get skips such a test; CI sets the test's ``require_env`` variable
(``HELIOCUBE_REQUIRE_SLURM``, ``HELIOCUBE_REQUIRE_BROWSER``), where it fails instead, so it never passes silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import pytest

__all__ = ["apt_install"]

_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


def apt_install(packages: Sequence[str], *, reason: str, require_env: str,
                timeout: float = 900) -> subprocess.CompletedProcess:
    """``apt-get install`` ``packages`` (running ``apt-get update`` first if the lists are stale).

    Skips the calling test (fails it where ``require_env`` is set) when this machine cannot install: not root or
    no apt-get. ``reason`` says what is missing. Returns apt-get's result; the caller checks what it needed.
    """
    cannot = pytest.fail if os.environ.get(require_env) else pytest.skip
    if os.geteuid() != 0:
        cannot(f"{reason}; not root, so cannot apt-get install {' '.join(packages)}")
    apt_get = shutil.which("apt-get", path=_SEARCH_PATH)
    if apt_get is None:
        cannot(f"{reason}; no apt-get to install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *packages]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run([apt_get, "update", "-o", "DPkg::Lock::Timeout=300"], env=env, capture_output=True,
                       timeout=timeout, check=False)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return result
