"""The SLURM profile end to end on a real one-node SLURM cluster, against the local profile; and the data checksums.

The end-to-end test starts a SLURM cluster on 127.0.0.1 (tests/slurm_cluster.py, installing SLURM with apt-get when
missing) and one embedded archive, runs the demo workflow (a cut-down demo config) at the same time with
``--profile profiles/local`` and with ``--profile profiles/slurm`` into two work directories, and checks that every
job of the SLURM run went through sbatch and completed under SLURM, and that both output trees hold the same data
(tests/checksums.py). docs/cluster.md says what this proves and what it does not.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits

from tests.checksums import data_checksums, is_skipped
from tests.slurm_cluster import slurm_cluster

REPO = Path(__file__).resolve().parents[1]
#: One SDAC (SoHO) and one JSOC (SDO) product: both archive families and few jobs (test_workflow covers every
#: dialect). A stage's jobs then fit the node's two CPUs at once, so each stage costs one status-poll cycle.
PRODUCTS = ["EIT195", "HMI_720s"]
FRAME = 64
#: Wall-clock limit of the two snakemake runs; their process groups are killed beyond it.
RUN_TIMEOUT = 420
#: What the SLURM run adds to the profile for the test cluster. A first status check 5 s after a submission: with
#: the plugin's back-off (+10 s per check that finds nothing finished) checks fall 5, 20 and 45 s after it, which
#: suits these 15-25 s jobs (the profile's 20 s suits real month jobs). And successful jobs' SLURM logs kept.
SLURM_TEST_OPTIONS = ["--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def archive_url(tmp_path_factory):
    """One embedded archive for both runs (the URL is part of the data: it is written into slot tables)."""
    workdir = tmp_path_factory.mktemp("archive")
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "heliocube.archive", "serve", "--port", str(_free_port()), "--seed", "0",
         "--frame-size", str(FRAME), "--pidfile", str(workdir / "archive.pid"),
         "--access-log", str(workdir / "access.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), f"archive did not start (rc {process.poll()})"
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)


def _only_products(node, known: frozenset[str]):
    """``node`` with every list of product names cut down to PRODUCTS (whatever key holds it)."""
    if isinstance(node, dict):
        return {key: _only_products(value, known) for key, value in node.items()}
    if isinstance(node, list):
        if node and all(isinstance(item, str) and item in known for item in node):
            return [item for item in node if item in PRODUCTS]
        return [_only_products(item, known) for item in node]
    return node


def _write_config(workdir: Path, archive_url: str) -> Path:
    """The demo config cut down: two days of PRODUCTS (every product list in it restricted to them), one small
    variant, one experiment syncing both products; the shared archive; output_root relative, so that both trees
    compare file by file. Every key is written: Snakemake merges this file over config/config.yaml."""
    from heliocube.registry import product_names

    config = _only_products(yaml.safe_load((REPO / "config" / "config.yaml").read_text()),
                            frozenset(product_names()))
    config.update(products=list(PRODUCTS), date_start="2010-10-15", date_finish="2010-10-16", image_size=32,
                  output_root="out", variants=[{"image_size": 32, "resize_method": "mean"}],
                  experiments=[{"name": "soho-sdo-6h", "products": list(PRODUCTS)}])
    config["archive"].update(embedded_url=archive_url, embedded_frame_size=FRAME)
    config["events"] = [entry for entry in config.get("events", []) if entry["products"]]  # (the demo's are AIA's)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def _snakemake(workdir: Path, profile: str, env: dict, *args: str):
    """Start snakemake with ``profiles/<profile>`` in its own process group; yield (process, output file).

    Leaving the block kills the group if snakemake still runs (a SIGTERM alone makes it wait for its jobs)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
               "--profile", str(REPO / "profiles" / profile), "--configfile", str(workdir / "config.yaml"), *args]
    output = workdir / f"snakemake-{profile}.out"
    with open(output, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**env, "NO_PROXY": "127.0.0.1,localhost"}, start_new_session=True)
    try:
        yield process, output
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


def _finish(run, deadline: float) -> tuple[int, str]:
    """Wait for a run started by :func:`_snakemake` until ``deadline`` (monotonic); (exit code, its output)."""
    process, output = run
    try:
        returncode = process.wait(max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{output.name}: snakemake ran over {RUN_TIMEOUT} s:\n{output.read_text()[-4000:]}")
    return returncode, output.read_text()


def _declared_outputs(workdir: Path) -> set[str]:
    """The outputs the workflow declares (``snakemake --summary``), relative to ``out``, logs and benchmarks aside."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), "--summary"],
        capture_output=True, text=True, timeout=120, check=True, env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
    paths = {line.split("\t")[0] for line in result.stdout.splitlines()[1:] if line.startswith("out/")}
    return {path.removeprefix("out/") for path in paths if path.split("/")[1] not in ("logs", "benchmarks")}


def _local_rules() -> set[str]:
    """Rules the Snakefile runs in the main process (its ``localrules:`` block): never submitted to SLURM."""
    text = (REPO / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", text, re.MULTILINE)
    return set(re.findall(r"\w+", block.group(1))) if block else {"all"}


def _rules_run(output: str) -> list[str]:
    """Rule names of the jobs snakemake reports finished (``Finished jobid: N (Rule: NAME)``)."""
    return sorted(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output))


@pytest.mark.slurm
@pytest.mark.workflow
def test_slurm_profile_runs_every_job_under_slurm_with_the_same_data_as_local(tmp_path, archive_url):
    local, on_slurm = tmp_path / "local", tmp_path / "slurm"
    _write_config(local, archive_url)
    _write_config(on_slurm, archive_url)

    with slurm_cluster(tmp_path / "cluster") as env:
        # Both runs at once: the SLURM run mostly waits for status polls, the local one fills the gaps.
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        with _snakemake(on_slurm, "slurm", env, *SLURM_TEST_OPTIONS) as slurm_run, \
                _snakemake(local, "local", dict(os.environ), "--cores", "2") as local_run:
            local_rc, local_out = _finish(local_run, deadline)
            local_seconds = time.monotonic() - started
            assert local_rc == 0, local_out[-4000:]  # leaving the block stops the SLURM run too
            slurm_rc, slurm_out = _finish(slurm_run, deadline)
            slurm_seconds = time.monotonic() - started
        queue = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i|%T"], env=env, capture_output=True,
                               text=True, timeout=30, check=True).stdout
    print(f"local run {local_seconds:.0f} s, SLURM run {slurm_seconds:.0f} s (concurrently)")
    assert slurm_rc == 0, slurm_out[-4000:]

    # Every job the SLURM run finished (the local rules aside, which Snakemake runs itself) was an sbatch
    # submission that SLURM ran to COMPLETED (a retried attempt would add a FAILED one).
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", slurm_out)
    states = dict(line.split("|") for line in queue.split())
    completed = [job for job in submitted if states.get(job) == "COMPLETED"]
    remote_rules = [rule for rule in _rules_run(slurm_out) if rule not in _local_rules()]
    assert remote_rules and len(completed) == len(remote_rules), (remote_rules, {j: states.get(j) for j in submitted})
    slurm_logs = {path.stem for path in (on_slurm / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert slurm_logs == set(submitted)
    # ... and the SLURM run did the same jobs as the local one
    assert _rules_run(slurm_out) == _rules_run(local_out)

    local_sums, slurm_sums = data_checksums(local / "out"), data_checksums(on_slurm / "out")
    # every declared output (the final ones included, whatever stages the workflow has by now) is compared
    declared = {path for path in _declared_outputs(local) if not is_skipped(Path(path))}
    uncovered = [path for path in declared  # a declared folder (a Zarr year group) is compared file by file
                 if path not in local_sums and not any(name.startswith(f"{path}/") for name in local_sums)]
    assert declared and not uncovered, sorted(uncovered)
    differing = sorted(name for name in local_sums.keys() | slurm_sums.keys()
                       if local_sums.get(name) != slurm_sums.get(name))
    assert not differing, differing[:20]


# ------------------------------------------------------------------------------------------------ data_checksums
def _tree(root: Path, *, created: str = "2026-01-01T00:00:00Z", date: str = "2026-01-01", value: float = 1.0,
          history: str = "processed 2026-01-01T00:00:00") -> Path:
    """A small output tree with one file of every kind data_checksums distinguishes."""
    (root / "cubes").mkdir(parents=True)
    (root / "logs").mkdir()
    (root / "logs" / "job.log").write_text(f"ran at {created}\n")
    header = fits.Header({"DATE": date, "EXPTIME": 1.5})
    header.add_history(history)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((4, 4), value, np.float32), header)]).writeto(
        root / "frame", checksum=True)  # no suffix, like EIT's raw files
    with h5py.File(root / "cubes" / "cube.h5", "w") as f:
        f.attrs.update(created=created, seeded_created=created, version_heliocube="0.1.0",
                       seeded_from=str(root.absolute() / "cubes" / "cube.h5"))
        f["data"] = np.full((2, 4, 4), value, np.float32)
        f.create_dataset("headers", data=["SIMPLE = T", f"EXPTIME = {value}"], dtype=h5py.string_dtype())
    pd.DataFrame({"slot": ["a", "b"], "value": [value, 2.0], "created": [created] * 2}).to_csv(
        root / "slots.csv", index=False)
    pd.DataFrame({"slot": ["a"], "value": [value]}).to_parquet(root / "manifest.parquet")
    (root / "receipt.json").write_text(f'{{"created": "{created}", "slots": [{{"value": {value}}}]}}')
    (root / ".hidden").write_text(created)
    return root


def test_data_checksums_ignore_volatile_fields_but_not_data(tmp_path):
    base = data_checksums(_tree(tmp_path / "a"))
    assert sorted(base) == ["cubes/cube.h5", "frame", "manifest.parquet", "receipt.json", "slots.csv"]
    # other times of writing, in another directory (whose absolute path is in an attribute)
    volatile = data_checksums(_tree(tmp_path / "b", created="2027-05-05T11:11:11Z", date="2027-05-05",
                                    history="processed 2027-05-05T11:11:11"))
    assert volatile == base
    changed = data_checksums(_tree(tmp_path / "c", value=1.25))
    assert {name for name in base if changed[name] != base[name]} == set(base)


def test_data_checksums_see_header_and_attribute_changes(tmp_path):
    base = data_checksums(_tree(tmp_path / "a"))
    changed = data_checksums(_tree(tmp_path / "b", history="processed with another method"))
    assert changed["frame"] != base["frame"]
    with h5py.File(tmp_path / "b" / "cubes" / "cube.h5", "a") as f:
        f.attrs["version_heliocube"] = "0.2.0"
    assert data_checksums(tmp_path / "b")["cubes/cube.h5"] != base["cubes/cube.h5"]
