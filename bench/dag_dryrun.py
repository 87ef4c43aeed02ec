"""Time `snakemake -n` on the full-mission example configs (run: .venv/bin/python bench/dag_dryrun.py).

Prints one line per config: jobs and wall seconds of a fresh dry run. Targets (issue 2): < 20 s here.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(config: Path) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
             "--configfile", str(config), "--directory", workdir],
            capture_output=True, text=True, check=True,
            env={**os.environ, "HELIOCUBE_JSOC_EMAIL": os.environ.get("HELIOCUBE_JSOC_EMAIL", "bench@example.org")})
        elapsed = time.perf_counter() - start
    total = next(int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("total"))
    return total, elapsed


if __name__ == "__main__":
    for config in sorted((REPO / "config" / "examples").glob("*.yaml")):
        jobs, seconds = dry_run(config)
        print(f"{config.name}: {jobs} jobs, dry run {seconds:.1f} s")
