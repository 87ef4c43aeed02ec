"""``heliocube verify``: raw files, cleaned frames and cubes against their recorded digests, and the repair.

A one-day EIT tree is built by the workflow's own job functions at the workflow's paths. ``run_month`` plays
Snakemake's part for this one-month tree (a job runs when one of its outputs is missing, and so does every job
after it); ``test_workflow_repairs_a_corrupted_cache`` checks with snakemake itself that the outputs the repair
removes are the ones that make a real run rebuild.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.cli import main
from heliocube.fetch import sha256_of
from heliocube.jobs import clean_job, cube_job, fetch_job, master_job, query_job
from heliocube.variants import variants_of
from heliocube.verify import verify_tree

from .conftest import demo_config
from .corrupt import CORRUPTIONS, corrupt

DAYS = ["2010-10-15"]
PRODUCT = "EIT195"


class Tree:
    """The paths of a one-month, one-product tree and the jobs that build it (as the workflow lays them out)."""

    def __init__(self, config: dict):
        self.config = config
        self.root = Path(config["output_root"])
        (self.variant,) = (v.as_params() for v in variants_of(config))
        name = self.variant["name"]
        self.query_index = self.root / "manifests" / PRODUCT / "2010-10.index.csv"
        self.slots = self.root / "raw" / PRODUCT / "2010-10.slots.csv"
        self.ledger = self.root / "raw" / PRODUCT / "2010-10.ledger.csv"
        self.index = self.root / "frames" / name / PRODUCT / "2010-10.index.csv"
        self.clean_ledger = self.root / "frames" / name / PRODUCT / "2010-10.ledger.csv"
        self.year = self.root / "cubes" / name / PRODUCT / "2010.h5"
        self.master = self.root / "cubes" / name / f"{PRODUCT}.h5"

    def run_month(self) -> list[str]:
        """Run the jobs with a missing output, and every job after the first that runs; returns their names."""
        ran = []
        if not self.query_index.exists():
            query_job(self.config, PRODUCT, ["2010-10-14", *DAYS, "2010-10-16"], str(self.query_index))
        if ran or not (self.slots.exists() and self.ledger.exists()):
            fetch_job(self.config, PRODUCT, DAYS, str(self.slots), str(self.ledger))
            ran.append("fetch")
        if ran or not (self.index.exists() and self.clean_ledger.exists()):
            clean_job(self.config, PRODUCT, self.variant, DAYS, str(self.slots), str(self.index),
                      str(self.clean_ledger))
            ran.append("clean")
        if ran or not self.year.exists():
            cube_job(self.config, PRODUCT, self.variant, [str(self.index)], str(self.year))
            ran.append("cube")
        if ran or not self.master.exists():
            master_job([str(self.year)], str(self.master))
            ran.append("cube_master")
        return ran

    def cube(self) -> tuple[np.ndarray, list[str]]:
        with h5py.File(self.master, "r") as f:
            return f["data"][()], [s.decode() for s in f["frames/sha256"][()]]


@pytest.fixture
def tree(clean_archive, tmp_path) -> Tree:
    built = Tree(demo_config(clean_archive.url, tmp_path / "out", products=[PRODUCT], date_finish=DAYS[-1]))
    assert built.run_month() == ["fetch", "clean", "cube", "cube_master"]
    return built


def verify(root, *options, capsys) -> tuple[int, list[str]]:
    status = main(["verify", str(root), *options])
    return status, capsys.readouterr().out.splitlines()


def test_an_intact_tree_verifies(tree, capsys):
    status, lines = verify(tree.root, capsys=capsys)
    assert status == 0
    assert lines == ["checked 4 raw files, 4 handoffs, 4 frames, 4 cube rows: 0 mismatches"]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_a_corrupted_raw_file_is_named_then_fetched_again_and_everything_rebuilt(tree, capsys, how):
    """Truncated, replaced or flipped inside the image: verify names the file with both digests; the repair makes
    the next run fetch it again (a cache_mismatch ledger note), and the cube ends with an uncorrupted run's pixels."""
    slots = pd.read_csv(tree.slots)
    reference_pixels, reference_sha = tree.cube()
    victim = tree.root / slots["path"].iloc[1]
    original = victim.read_bytes()
    corrupt(victim, how, tree.root / slots["path"].iloc[2])
    found = sha256_of(victim)

    assert tree.run_month() == []  # what a plain rerun is: every output there, nothing runs, nothing is checked
    status, lines = verify(tree.root, capsys=capsys)
    assert status == 1
    assert lines[0] == (f"{slots['path'].iloc[1]}: raw file vs raw/{PRODUCT}/2010/2010-10-15.receipt.json: "
                        f"expected sha256 {slots['sha256'].iloc[1]}, found {found}")
    assert lines[1:] == ["checked 4 raw files, 4 handoffs, 4 frames, 4 cube rows: 1 mismatch",
                         f"next: heliocube verify {tree.root} --repair"]

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    assert status == 1 and f"removed raw/{PRODUCT}/2010-10.slots.csv" in "\n".join(lines)
    assert any(line.startswith("next:") for line in lines) and lines[-1] == f"then: heliocube verify {tree.root}"
    assert tree.run_month() == ["fetch", "clean", "cube", "cube_master"]

    assert victim.read_bytes() == original
    ledger = pd.read_csv(tree.ledger)
    notes = ledger[ledger["reason"] == "cache_mismatch"]
    assert list(notes["record_id"]) == [slots["record_id"].iloc[1]] and list(notes["value"]) == [found]
    pixels, sha = tree.cube()
    np.testing.assert_array_equal(pixels, reference_pixels)
    assert sha == reference_sha
    assert verify(tree.root, capsys=capsys) == (
        0, ["checked 4 raw files, 4 handoffs, 4 frames, 4 cube rows: 0 mismatches"])


def test_a_changed_frame_and_cube_row_are_named_and_rebuilt(tree, capsys):
    reference_pixels, _ = tree.cube()
    index = pd.read_csv(tree.index)
    frame_file = tree.root / index["frame_file"].iloc[0]
    with fits.open(frame_file, mode="update") as hdul:
        hdul[2].data[3, 3] += 1
    with h5py.File(tree.year, "r+") as f:
        f["data"][0, 5, 5] += 1
        record = f["frames/record_id"][0].decode()

    status, lines = verify(tree.root, capsys=capsys)
    assert status == 1
    name, year = tree.variant["name"], f"cubes/{tree.variant['name']}/{PRODUCT}/2010.h5"
    assert lines[0].startswith(f"{index['frame_file'].iloc[0]}[2]: frame vs frames/{name}/{PRODUCT}/2010-10.index.csv: "
                               f"expected sha256 {index['frame_sha256'].iloc[1]}, found ")
    assert lines[1].startswith(f"{year}[0]: cube row of {record} vs its frames/frame_sha256: expected sha256 ")
    assert lines[2] == "checked 4 raw files, 4 handoffs, 4 frames, 4 cube rows: 2 mismatches"

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    removed = sorted(line.split()[1] for line in lines if line.startswith("removed "))
    assert status == 1 and removed == sorted([f"frames/{name}/{PRODUCT}/2010-10.index.csv", year,
                                              f"cubes/{name}/{PRODUCT}.h5"])
    assert tree.run_month() == ["clean", "cube", "cube_master"]
    np.testing.assert_array_equal(tree.cube()[0], reference_pixels)
    assert verify_tree(tree.root).ok


def test_a_missing_raw_file_is_a_mismatch_and_repaired(tree, capsys):
    slots = pd.read_csv(tree.slots)
    (tree.root / slots["path"].iloc[0]).unlink()
    status, lines = verify(tree.root, "--repair", capsys=capsys)
    assert status == 1 and lines[0].endswith(f"expected sha256 {slots['sha256'].iloc[0]}, found no file")
    assert tree.run_month()[0] == "fetch" and verify_tree(tree.root).ok


@pytest.mark.parametrize("victim", ["receipt", "frame file", "frame index", "year cube"])
def test_a_file_that_no_longer_opens_is_named_and_rebuilt(tree, capsys, victim):
    """A receipt, a cleaned frame file, a frame index or a cube cut short where it no longer reads is a
    mismatch like a changed one, named with the error instead of stopping verify, and the repair rebuilds it and
    everything built from it (the fetch job going without the damaged receipt)."""
    reference_pixels, reference_sha = tree.cube()
    frame_file = pd.read_csv(tree.index)["frame_file"].iloc[0]
    path, rebuilt = {
        "receipt": (tree.root / "raw" / PRODUCT / "2010" / "2010-10-15.receipt.json",
                    ["fetch", "clean", "cube", "cube_master"]),
        "frame file": (tree.root / frame_file, ["clean", "cube", "cube_master"]),
        "frame index": (tree.index, ["clean", "cube", "cube_master"]),
        "year cube": (tree.year, ["cube", "cube_master"]),
    }[victim]
    with open(path, "r+b") as stream:
        stream.truncate(100)  # inside the first header block (FITS, HDF5) or the first line (JSON)

    status, lines = verify(tree.root, capsys=capsys)
    named = [line for line in lines if line.startswith(str(path.relative_to(tree.root)))]
    assert status == 1 and named and all(": found an unreadable file (" in line.replace(", found", ": found")
                                         for line in named), lines
    if victim != "frame file":  # a frame file's rows keep their recorded digests
        what = {"receipt": "receipt", "frame index": "frame index", "year cube": "cube"}[victim]
        assert named == [f"{path.relative_to(tree.root)}: {what}: "
                         f"expected a readable file, found {named[0].split(', found ')[1]}"]
    assert verify(tree.root, "--repair", capsys=capsys)[0] == 1
    assert tree.run_month() == rebuilt
    pixels, sha = tree.cube()
    np.testing.assert_array_equal(pixels, reference_pixels)
    assert sha == reference_sha and verify_tree(tree.root).ok


def test_a_damaged_receipt_does_not_let_a_changed_download_through(tree, capsys):
    """A day's receipt damaged and one of its raw files changed since (still valid FITS): no digest of the file is
    left to check it against, so the fetch job downloads the day's files again rather than pass the changed one into
    the cube with a new digest recorded over it."""
    slots = pd.read_csv(tree.slots)
    reference_pixels, reference_sha = tree.cube()
    victim = tree.root / slots["path"].iloc[1]
    original = victim.read_bytes()
    corrupt(victim, "flipped", victim)
    (tree.root / "raw" / PRODUCT / "2010" / "2010-10-15.receipt.json").write_text('{"slots": [')

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    assert status == 1 and lines[0].startswith(f"raw/{PRODUCT}/2010/2010-10-15.receipt.json: receipt: expected a "
                                               "readable file, found an unreadable file (JSONDecodeError: ")
    assert tree.run_month() == ["fetch", "clean", "cube", "cube_master"]
    assert victim.read_bytes() == original
    pixels, sha = tree.cube()
    np.testing.assert_array_equal(pixels, reference_pixels)
    assert sha == reference_sha and verify_tree(tree.root).ok


def test_verify_refuses_what_is_not_a_directory(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "not a directory" in capsys.readouterr().err



@pytest.mark.workflow
@pytest.mark.timeout(1800)
def test_workflow_repairs_a_corrupted_cache(tmp_path):
    """With snakemake itself: after ``verify --repair`` the next run rebuilds a changed cube row and synced row,
    then a changed frame, then a raw file whose bytes flipped (which a plain rerun leaves alone), each ending with
    the first run's data and a tree that verifies."""

    import yaml

    from .workflow_runs import REPO, free_port, snakemake, stop_embedded_archive

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(products=[PRODUCT], date_start=DAYS[0], date_finish=DAYS[-1], output_root="out", image_size=32,
                  variants=[{"image_size": 32, "resize_method": "mean"}], metadata_seeding={"products": []},
                  params={}, events=[],
                  experiments=[{"name": "eit", "products": [PRODUCT]}])
    config["archive"].update(embedded_port=free_port(), embedded_frame_size=64)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    root, name = tmp_path / "out", "32px-mean-6h"
    year, synced = root / "cubes" / name / PRODUCT / "2010.h5", root / "synced" / "eit.h5"

    def run() -> None:
        result = snakemake(tmp_path, "--configfile", str(config_file))
        assert result.returncode == 0, result.stderr[-3000:]

    def data() -> dict[str, np.ndarray]:
        with h5py.File(root / "cubes" / name / f"{PRODUCT}.h5", "r") as cube, h5py.File(synced, "r") as sync:
            return {"cube": cube["data"][()], "synced": sync[PRODUCT]["data"][()]}

    def repaired(n_mismatches: int) -> None:
        result = verify_tree(root)
        assert len(result.mismatches) == n_mismatches, [str(m) for m in result.mismatches]
        assert main(["verify", str(root), "--repair"]) == 1
        run()
        assert verify_tree(root).ok
        for key, value in data().items():
            np.testing.assert_array_equal(value, reference[key])

    try:
        run()
        reference = data()
        assert verify_tree(root).ok
        with h5py.File(year, "r+") as f:
            f["data"][1, 2, 2] += 1
        with h5py.File(synced, "r+") as f:
            f[PRODUCT]["data"][0, 2, 2] += 1
        repaired(2)

        index = pd.read_csv(root / "frames" / name / PRODUCT / "2010-10.index.csv")
        with fits.open(root / index["frame_file"].iloc[0], mode="update") as hdul:
            hdul[3].data[1, 1] += 1
        repaired(1)

        slots = pd.read_csv(root / "raw" / PRODUCT / "2010-10.slots.csv")
        victim = root / slots["path"].iloc[2]
        original = victim.read_bytes()
        corrupt(victim, "flipped", victim)
        run()  # a plain rerun: every output is newer than its inputs, nothing runs
        assert victim.read_bytes() != original
        repaired(1)
        assert victim.read_bytes() == original
        ledger = pd.read_csv(root / "raw" / PRODUCT / "2010-10.ledger.csv")
        assert list(ledger.loc[ledger["reason"] == "cache_mismatch", "record_id"]) == [slots["record_id"].iloc[2]]
    finally:
        stop_embedded_archive(root, config["archive"]["embedded_port"])
