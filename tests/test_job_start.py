"""A job imports only what its stage needs: each stage's entry, imported in a fresh interpreter, leaves the heavy
modules other stages need unimported (their CPU at job start is measured in bench/bench_aia_year.py, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: heavy modules (hundreds of ms to import, or side effects such as drms's root log handler)
HEAVY = ("pandas", "astropy.io.fits", "requests", "drms", "sunpy", "scipy", "h5py", "cv2", "numba", "zarr", "torch",
         "matplotlib", "heliocube.query", "heliocube.fetch.run", "heliocube.calibrate", "heliocube.archive")
#: stage -> (modules its job imports when it runs, beyond its script's imports; heavy modules it must not import)
STAGES = {
    "query": (["heliocube.query"], {"sunpy", "scipy", "h5py", "cv2", "numba", "zarr", "torch", "matplotlib",
                                    "heliocube.calibrate", "heliocube.archive"}),
    "fetch": (["heliocube.fetch.run", "heliocube.qc", "heliocube.handoff"],
              {"sunpy", "scipy", "h5py", "numba", "zarr", "torch", "matplotlib", "heliocube.calibrate",
               "heliocube.archive"}),
    "clean": (["heliocube.clean", "heliocube.handoff"],
              {"requests", "drms", "sunpy", "scipy", "h5py", "numba", "zarr", "torch", "matplotlib",
               "heliocube.query", "heliocube.fetch.run", "heliocube.calibrate", "heliocube.archive"}),
    "cube": (["heliocube.assemble"], {"requests", "drms", "sunpy", "scipy", "cv2", "numba", "zarr", "torch",
                                      "matplotlib", "heliocube.query", "heliocube.fetch.run", "heliocube.calibrate",
                                      "heliocube.archive"}),
}


def _imported(code: str) -> set[str]:
    """The heavy modules a fresh interpreter has after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120,
                            check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def _script_imports(stage: str) -> list[str]:
    return [line for line in (REPO / "scripts" / f"{stage}.py").read_text().splitlines()
            if line.startswith(("import ", "from "))]


def test_the_job_entry_points_import_no_stage_stack():
    """What every script imports (heliocube.jobs, heliocube.logs) pulls in none of the heavy modules."""
    assert _imported("import heliocube.jobs, heliocube.logs") == set()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_imports_only_what_it_needs(stage):
    modules, forbidden = STAGES[stage]
    code = "\n".join(_script_imports(stage) + [f"import {module}" for module in modules])
    assert _imported(code) & forbidden == set()
