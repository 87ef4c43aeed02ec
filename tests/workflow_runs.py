"""Running the workflow from tests: snakemake in a subprocess on a work directory, a free port, the demo's sweep."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIALECT_PRODUCTS = ["EIT195", "LASCO_C2", "MDI_96m", "AIA171", "HMI_720s"]
#: A two-variant sweep: the second keeps every other slot, at a quarter of the served size.
VARIANTS = [{"image_size": 32, "resize_method": "mean"},
            {"image_size": 16, "resize_method": "subsample", "cadence": "12h"}]
VARIANT_NAMES = ["32px-mean-6h", "16px-subsample-12h"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--profile", str(REPO / "profiles" / "local"), "--cores", "2", *args]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def stop_embedded_archive(root: Path, port: int) -> None:
    """Stop the archive a workflow run under output_root ``root`` started on ``port`` (nothing if it is not running)."""
    pidfile = root / "embedded-archive" / f"archive-127.0.0.1-{port}.pid"
    subprocess.run([sys.executable, "-m", "heliocube.archive", "stop", "--pidfile", str(pidfile)], check=False,
                   capture_output=True, timeout=60)
