"""``heliocube verify`` over the event stage: the raw files its receipts name and its cleaned frames.

An event's frames are built by the event stage's own function (:func:`heliocube.events.frames.event_frames`) at the
workflow's paths; ``rebuild`` plays Snakemake's part (the event's job runs when its frame table is missing). That
the removed files make Snakemake itself rerun the event's job is checked by a dry run in
``test_snakemake_plans_the_events_job_after_the_repair``.
"""

from __future__ import annotations

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
