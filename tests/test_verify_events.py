"""``heliocube verify`` over the event stage: the raw files its receipts name and its cleaned frames.

An event's frames are built by the event stage's own function (:func:`heliocube.events.frames.event_frames`) at the
workflow's paths; ``rebuild`` plays Snakemake's part (the event's job runs when its frame table is missing). That
the removed files make Snakemake itself rerun the event's job is checked by a dry run in
``test_snakemake_plans_the_events_job_after_the_repair``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits

from heliocube.cli import main
from heliocube.events.frames import event_frames
from heliocube.events.settings import event_variant
from heliocube.fetch import sha256_of
from heliocube.jobs import quality_gate
from heliocube.verify import verify_tree

from .corrupt import corrupt

AIA, NAME, EVENT = "AIA131", "flares", "FL1"
WINDOW = ("2010-10-16T06:00:00", "2010-10-16T06:01:30")


class EventTree:
    """One event's frames as the workflow lays them out, and the job that builds them."""

    def __init__(self, config, context):
        self.config, self.context = config, context
        self.root = Path(config["output_root"])
        self.table = self.root / "events" / NAME / "frames" / f"{EVENT}.csv"
        self.labels = self.root / "events" / NAME / "dataset" / "labels.csv"
        self.receipt = self.root / "events" / NAME / "frames" / EVENT / f"{AIA}.receipt.json"

    def rebuild(self) -> bool:
        """Run the event's job if its frame table is missing (as Snakemake would, its dataset's labels missing)."""
        if self.table.exists():
            return False
        row = pd.Series({"event_id": EVENT, "window_start": pd.Timestamp(WINDOW[0], tz="UTC"),
                         "window_end": pd.Timestamp(WINDOW[1], tz="UTC")})
        table = event_frames(row, [AIA], event_variant(self.config, {"image_size": 16, "resize_method": "mean"}),
                             self.context, self.root, directory=self.table.with_suffix(""),
                             gate_of=lambda product: quality_gate(self.config, product))
        self.table.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(self.table, index=False)
        self.labels.parent.mkdir(parents=True, exist_ok=True)
        self.labels.write_text("event_id\n")  # stands in for the dataset built from the tables
        return True

    def frames(self) -> pd.DataFrame:
        table = pd.read_csv(self.table, dtype=str, keep_default_na=False)
        return table[table["status"] == "ok"].reset_index(drop=True)


@pytest.fixture
def tree(clean_context_for) -> EventTree:
    built = EventTree(*clean_context_for(products=[AIA]))
    assert built.rebuild() and len(built.frames()) >= 4
    return built


def verify(root, *options, capsys) -> tuple[int, list[str]]:
    status = main(["verify", str(root), *options])
    return status, capsys.readouterr().out.splitlines()


def test_an_intact_event_verifies(tree, capsys):
    n = len(tree.frames())
    assert verify(tree.root, capsys=capsys) == (0, [f"checked {n} raw files, {n} event frames: 0 mismatches"])


def test_a_changed_event_frame_is_named_and_rebuilt(tree, capsys):
    """A cleaned frame changed in place (its table and the raw files intact) is named with both digests; the
    repair removes the event's frame table and its dataset's labels, and the event's job makes it again."""
    frames = tree.frames()
    victim = tree.root / frames["file"].iloc[1]
    original = victim.read_bytes()
    with fits.open(victim, mode="update") as hdul:
        hdul[0].data[3, 3] += 1
    found = sha256_of(victim)

    status, lines = verify(tree.root, capsys=capsys)
    table = f"events/{NAME}/frames/{EVENT}.csv"
    assert status == 1 and lines[0] == (f"{frames['file'].iloc[1]}: event frame vs {table}: "
                                        f"expected sha256 {frames['sha256'].iloc[1]}, found {found}")
    assert lines[1].endswith(": 1 mismatch")

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    removed = sorted(line.split()[1] for line in lines if line.startswith("removed "))
    assert status == 1 and removed == sorted([table, f"events/{NAME}/dataset/labels.csv"])
    assert tree.rebuild()
    assert victim.read_bytes() == original and tree.frames().equals(frames)
    assert verify_tree(tree.root).ok


def test_a_raw_file_only_an_event_names_is_checked_and_fetched_again(tree, capsys):
    """The raw files of an event's window that no month job fetched: the event's receipt is their only record."""
    receipt_slots = pd.DataFrame(pd.read_json(tree.receipt, typ="series")["slots"])
    victim_path = receipt_slots["path"].iloc[2]
    victim = tree.root / victim_path
    original = victim.read_bytes()
    corrupt(victim, "flipped", victim)

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    receipt = tree.receipt.relative_to(tree.root)
    assert status == 1 and lines[0].startswith(f"{victim_path}: raw file vs {receipt}: expected sha256 "
                                               f"{receipt_slots['sha256'].iloc[2]}, found {sha256_of(victim)}")
    assert f"removed events/{NAME}/frames/{EVENT}.csv" in "\n".join(lines)
    assert tree.rebuild() and victim.read_bytes() == original
    assert verify_tree(tree.root).ok


def test_snakemake_plans_the_events_job_after_the_repair(demo_run, tmp_path):
    """On a copy of the demo's tree: after the repair of a changed event frame, a dry run plans that event's job and
    its dataset's (a missing frame table alone would plan nothing: no job that runs needs it)."""
    import shutil

    import yaml

    from .workflow_runs import snakemake

    workdir, config_file, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    shutil.copytree(workdir / "out", tmp_path / "out", symlinks=True)  # modification times kept: nothing to redo
    config = yaml.safe_load(config_file.read_text())
    name = config["events"][0]["name"]
    tables = sorted((tmp_path / "out" / "events" / name / "frames").glob("*.csv"))
    frames = pd.read_csv(tables[0], dtype=str, keep_default_na=False)
    victim = tmp_path / "out" / frames.loc[frames["status"] == "ok", "file"].iloc[0]
    with fits.open(victim, mode="update") as hdul:
        hdul[0].data[1, 1] += 1
    assert main(["verify", str(tmp_path / "out"), "--repair"]) == 1

    planned = snakemake(tmp_path, "--configfile", str(config_file), "--dry-run", "--quiet", "rules")
    assert planned.returncode == 0, planned.stderr[-3000:]
    jobs = dict(line.split() for line in (planned.stdout + planned.stderr).splitlines()
                if line.startswith(("events_", "report ")))
    assert jobs == {"events_frames": "1", "events_dataset": "1", "report": "1"}, planned.stdout


def _dataset(tree: EventTree) -> Path:
    """The event dataset of the tree's event (its ``events.csv`` and frame table): ``events.h5`` and per_event."""
    from heliocube.events.dataset import build_event_dataset

    from .event_frames import event, write_events

    events_csv = write_events(tree.root / "events" / NAME / "events.csv",
                              [event(EVENT, "2010-10-16T06:00:30", "2010-10-16T06:01:00", pre=0.5, post=0.5)])
    build_event_dataset(events_csv, {EVENT: tree.table}, tree.root, NAME, {"n_pre": 2, "n_post": 2})
    return tree.root / "events" / NAME / "dataset" / "events.h5"


def test_an_event_datasets_rows_are_checked_against_their_frames(tree, capsys):
    """A row of ``events.h5`` changed in place (its frames intact) is named with the record, the frame's digest and
    the row's; the repair removes the dataset's labels.csv only (its job writes the cubes again)."""
    import h5py

    from heliocube.frameindex import frame_digest

    cube = _dataset(tree)
    with h5py.File(cube, "r") as f:
        n, record, file = len(f["frames"]), f["provenance/record"][1].decode(), f["provenance/file"][1].decode()
    status, lines = verify(tree.root, capsys=capsys)
    frames = len(tree.frames())
    assert n >= 2 and status == 0 and lines == [f"checked {frames} raw files, {frames} event frames, "
                                                 f"{2 * n} event dataset rows: 0 mismatches"]  # events.h5, per_event
    with h5py.File(cube, "r+") as f:
        expected = frame_digest(f["frames"][1])
        f["frames"][1, 2, 2] += 1
        found = frame_digest(f["frames"][1])

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    dataset = f"events/{NAME}/dataset"
    assert status == 1 and lines[0] == (f"{dataset}/events.h5[1]: event dataset row of {record} vs its frame {file}: "
                                        f"expected sha256 {expected}, found {found}")
    assert lines[1].endswith(": 1 mismatch")
    assert [line for line in lines if line.startswith("removed ")] == [
        f"removed {dataset}/labels.csv (the next workflow run rebuilds it and everything built from it)"]
    _dataset(tree)
    assert verify_tree(tree.root).ok


def test_an_event_dataset_built_from_an_older_frame_is_named(tree, capsys):
    """A frame cleaned again after the dataset was built (the frame table has the new digest, ``events.h5`` and
    ``per_event`` the old one): the frame is named against both cubes' /provenance/sha256, and the dataset rebuilt.
    A frame changed in place is named once, against the table and both cubes."""
    import h5py

    cube = _dataset(tree)
    with h5py.File(cube, "r") as f:
        file, old = f["provenance/file"][0].decode(), f["provenance/sha256"][0].decode()
    with fits.open(tree.root / file, mode="update") as hdul:
        hdul[0].data[3, 3] += 1
    new = sha256_of(tree.root / file)
    table = pd.read_csv(tree.table, dtype=str, keep_default_na=False)
    table.loc[table["file"] == file, "sha256"] = new
    table.to_csv(tree.table, index=False)

    status, lines = verify(tree.root, "--repair", capsys=capsys)
    dataset = f"events/{NAME}/dataset"
    assert status == 1 and lines[0] == (f"{file}: event frame vs {dataset}/events.h5, {dataset}/per_event/{EVENT}.h5: "
                                        f"expected sha256 {old}, found {new}")
    assert lines[1].endswith(": 1 mismatch")
    assert [line.split()[1] for line in lines if line.startswith("removed ")] == [f"{dataset}/labels.csv"]
    _dataset(tree)
    assert verify_tree(tree.root).ok

    with fits.open(tree.root / file, mode="update") as hdul:
        hdul[0].data[3, 3] += 1
    mismatches = verify_tree(tree.root).mismatches
    assert [(m.path, m.what) for m in mismatches] == [
        (file, f"event frame vs events/{NAME}/frames/{EVENT}.csv, {dataset}/events.h5, {dataset}/per_event/{EVENT}.h5")]


def test_an_event_dataset_cube_that_no_longer_opens_is_named_and_rebuilt(tree, capsys):
    """``events.h5`` cut short: verify names it (instead of stopping) and the repair removes the dataset's labels."""
    cube = _dataset(tree)
    with open(cube, "r+b") as stream:
        stream.truncate(100)
    status, lines = verify(tree.root, "--repair", capsys=capsys)
    dataset = f"events/{NAME}/dataset"
    assert status == 1 and lines[0].startswith(f"{dataset}/events.h5: event dataset cube: expected a readable file, "
                                               "found an unreadable file (OSError: ")
    assert [line.split()[1] for line in lines if line.startswith("removed ")] == [f"{dataset}/labels.csv"]
    _dataset(tree)
    assert verify_tree(tree.root).ok


def test_the_repair_of_an_event_whose_id_holds_a_dot_removes_its_own_frame_table(tmp_path):
    """Event ids may hold dots (``AR11158.1``): a damaged receipt of such an event leads to that event's frame table
    (``AR11158.1.csv``, not ``AR11158.csv``) and its dataset's labels."""
    from heliocube.verify import arrange_rebuild

    frames = tmp_path / "events" / "regions" / "frames"
    (frames / "AR11158.1").mkdir(parents=True)
    (frames / "AR11158.1" / "AIA171.receipt.json").write_text("{")
    for table in ("AR11158.1.csv", "AR11158.csv"):
        (frames / table).write_text("status,file,sha256\n")
    (tmp_path / "events" / "regions" / "dataset").mkdir()
    (tmp_path / "events" / "regions" / "dataset" / "labels.csv").write_text("event_id\n")
    (mismatch,) = verify_tree(tmp_path).mismatches
    assert mismatch.path == "events/regions/frames/AR11158.1/AIA171.receipt.json"
    assert arrange_rebuild(tmp_path, [mismatch]) == ["events/regions/dataset/labels.csv",
                                                      "events/regions/frames/AR11158.1.csv"]
    assert (frames / "AR11158.csv").exists()


def test_a_damaged_event_receipt_does_not_let_a_changed_download_through(tree, capsys):
    """An event's receipt damaged and a raw file only it recorded changed since (still valid FITS): the event's job
    downloads the file again rather than reuse it unchecked and record the changed bytes' digest."""
    slots = pd.DataFrame(json.loads(tree.receipt.read_text())["slots"])
    victim = tree.root / slots["path"].iloc[2]
    original = victim.read_bytes()
    corrupt(victim, "flipped", victim)
    tree.receipt.write_text('{"slots": [')
    status, lines = verify(tree.root, "--repair", capsys=capsys)
    assert status == 1 and lines[0].startswith(f"{tree.receipt.relative_to(tree.root)}: receipt: ")
    assert tree.rebuild()
    assert victim.read_bytes() == original and verify_tree(tree.root).ok


@pytest.mark.parametrize(("cut", "error"), [(10, "KeyError"), (-20, "ValueError")])
def test_a_damaged_event_frame_table_is_named_and_rebuilt(tree, capsys, cut, error):
    """An event's frame table cut short (inside its header line, or inside an ok row's digest): named, and the
    repair removes it with its dataset's labels so that the event's job runs again."""
    text = tree.table.read_text()
    assert text.splitlines()[-1].split(",")[3] == "ok"  # the last row's digest is what -20 cuts
    tree.table.write_text(text[:cut] if cut > 0 else text.rstrip("\n")[:cut])
    status, lines = verify(tree.root, "--repair", capsys=capsys)
    table = tree.table.relative_to(tree.root)
    assert status == 1 and lines[0].startswith(f"{table}: event frame table: expected a readable file, found an "
                                               f"unreadable file ({error}: ")
    assert [line.split()[1] for line in lines if line.startswith("removed ")] == [
        f"events/{NAME}/dataset/labels.csv", str(table)]


@pytest.mark.parametrize("name", ["flares", "dataset"])
def test_the_repair_of_an_event_dataset_removes_its_own_labels(name):
    """The labels.csv beside a dataset's cubes, found by position: an event set may itself be named "dataset"."""
    from heliocube.verify.events import dataset_labels

    for cube in ("events.h5", "per_event/FL1.h5"):
        assert dataset_labels(f"events/{name}/dataset/{cube}") == f"events/{name}/dataset/labels.csv"
