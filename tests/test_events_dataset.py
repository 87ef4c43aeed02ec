"""heliocube.events.dataset: one event dataset built from frame tables and real cleaned FITS files, read back.

The events: A and B with overlapping windows (B's flare lies in A's post window), C across midnight at a month
end, D without any frame; A also has a second product. Frames: every 7th rejected by QC, every 11th missing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.events.dataset import ACCOUNTING_COLUMNS, OUTCOMES, build_event_dataset, sampling_settings

from .event_frames import event, expected_value, some_bad, write_events, write_frame_table

SETTINGS = {"sampling": {"seed": 1, "n_pre": 12, "n_post": 9, "labels": {"goes_class": True, "phase": True}}}


def _inputs(root: Path, rows=None) -> tuple[Path, dict]:
    rows = rows or [event("A", "2014-05-01T10:00:00", "2014-05-01T10:10:00", post=30, goes="X1.0"),
                    event("B", "2014-05-01T10:30:00", "2014-05-01T10:35:00", pre=30, goes="M2.0"),
                    event("C", "2014-05-31T23:58:30", "2014-06-01T00:01:20", pre=5, post=5, goes="M5.1"),
                    event("D", "2014-07-01T00:00:00", "2014-07-01T00:04:00", goes="C9.0")]
    events = write_events(root / "events" / "demo" / "events.csv", rows)
    tables = {}
    for row in rows:
        times = pd.DatetimeIndex([]) if row["event_id"] == "D" else None
        tables[row["event_id"]] = write_frame_table(root, row, status=some_bad, times=times)
    write_frame_table(root, rows[0], product="AIA171", wavelength=171, status=some_bad, append=True)
    return events, tables


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("events")
    events, tables = _inputs(root)
    build_event_dataset(events, tables, root, "demo", SETTINGS)
    return root, events, tables


def _out(root: Path) -> Path:
    return root / "events" / "demo" / "dataset"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(_out(root))): p.read_bytes() for p in sorted(_out(root).rglob("*")) if p.is_file()}


def test_outputs(built):
    root = built[0]
    names = set(_snapshot(root))
    assert {"labels.csv", "labels.tsv", "summary.csv", "summary.md", "accounting.csv", "events.h5"} <= names
    assert {f"sampling/{e}.csv" for e in "ABCD"} | {f"per_event/{e}.h5" for e in "ABCD"} <= names
    assert not any(name.startswith("fits/") for name in names)  # fits_copies off by default
    csv = pd.read_csv(_out(root) / "labels.csv", dtype=str)
    tsv = pd.read_csv(_out(root) / "labels.tsv", sep="\t", dtype=str)
    assert csv.equals(tsv) and list(csv.columns) == ["filename", "label", "goes_class", "phase"]
    assert list(csv["filename"]) == sorted(csv["filename"]) and csv["filename"].is_unique
    assert set(csv["label"]) == {"0", "1"} and (csv["label"] == "1").eq(csv["phase"] == "flare").all()


def test_same_seed_same_bytes_other_seed_same_counts(built, tmp_path):
    root, events, tables = built
    before = _snapshot(root)
    time.sleep(1.1)  # HDF5 stores object times in whole seconds: a file that kept them would now differ
    build_event_dataset(events, tables, root, "demo", SETTINGS)
    assert _snapshot(root) == before  # labels, logs, summary, accounting and every HDF5 file, byte for byte
    other = tmp_path / "other"
    shutil.copytree(root, other)
    moved = {key: other / Path(path).relative_to(root) for key, path in tables.items()}
    settings = {"sampling": {**SETTINGS["sampling"], "seed": 2}}
    build_event_dataset(other / "events" / "demo" / "events.csv", moved, other, "demo", settings)
    first, second = (pd.read_csv(_out(r) / "labels.csv") for r in (root, other))
    assert set(first["filename"]) != set(second["filename"])
    assert len(first) == len(second)
    assert pd.read_csv(_out(root) / "summary.csv").equals(pd.read_csv(_out(other) / "summary.csv"))


def test_summary_counts_equal_labels(built):
    root = built[0]
    summary = pd.read_csv(_out(root) / "summary.csv", dtype={"event_id": str})
    labels = pd.read_csv(_out(root) / "labels.csv")
    accounting = pd.read_csv(_out(root) / "accounting.csv", dtype=str, keep_default_na=False)
    total = summary[summary["event_id"] == "TOTAL"].iloc[0]
    assert total["total"] == len(labels) == (total["flare"] + total["pre"] + total["post"])
    assert total["flare"] == (labels["label"] == 1).sum()
    sampled = accounting[accounting["outcome"] == "sampled"]
    assert set(sampled["filename"]) == set(labels["filename"])
    for _, row in summary[summary["event_id"] != "TOTAL"].iterrows():
        mine = sampled[(sampled["event_id"] == row["event_id"]) & (sampled["product"] == row["product"])]
        assert {phase: (mine["phase"] == phase).sum() for phase in ("pre", "flare", "post")} == \
            {phase: row[phase] for phase in ("pre", "flare", "post")}
    a = summary[(summary["event_id"] == "A") & (summary["product"] == "AIA131")].iloc[0]
    assert (a["flare_minutes"], a["flare_minute_bins"]) == (10.0, 11)
    d = summary[summary["event_id"] == "D"]
    assert len(d) == 2 and (d["total"] == 0).all() and (d["pre_shortfall"] == 12).all()  # no frames: all short
    assert (d["flare_shortfall"] == 5).all()
    c = summary[(summary["event_id"] == "C") & (summary["product"] == "AIA131")].iloc[0]
    assert c["flare_minute_bins"] == 4  # 23:58, 23:59, 00:00, 00:01 across the month end
    markdown = (_out(root) / "summary.md").read_text()
    assert "| TOTAL |" in markdown and "10.0 → 11" in markdown and "2.8 → 4" in markdown


def test_every_frame_is_accounted_for(built):
    root, _, tables = built
    accounting = pd.read_csv(_out(root) / "accounting.csv", dtype=str, keep_default_na=False)
    assert list(accounting.columns) == list(ACCOUNTING_COLUMNS)
    assert set(accounting["outcome"]) <= set(OUTCOMES)
    for event_id, path in tables.items():
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        mine = accounting[accounting["event_id"] == event_id]
        assert len(mine) == len(table)
        assert sorted(mine["record"] + mine["product"]) == sorted(table["record"] + table["product"])
        owned = mine[mine["owner_event"] == event_id]
        for status in ("rejected", "missing"):
            expected = table[table["status"] == status].set_index("record")["reason"]
            got = owned[owned["outcome"] == status].set_index("record")["reason"]
            assert (got == expected.loc[got.index]).all() and (len(got) or event_id == "D")
    overlap = accounting[accounting["outcome"] == "overlap_relabelled"]
    assert len(overlap) and (overlap["owner_event"] != overlap["event_id"]).all()
    assert overlap["reason"].str.contains("of event").all()
    sampled = accounting[accounting["outcome"] == "sampled"]
    assert sampled["filename"].is_unique and (sampled["status"] == "ok").all()
    # a frame sampled by one event appears in another only as relabelled
    shared = accounting[accounting["filename"].isin(sampled["filename"])]
    assert set(shared["outcome"]) <= {"sampled", "overlap_relabelled"}


def test_hdf5_cubes(built):
    root = built[0]
    labels = pd.read_csv(_out(root) / "labels.csv").set_index("filename")
    with h5py.File(_out(root) / "events.h5", "r") as f:
        frames = f["frames"][:]
        names = f["filename"].asstr()[:]
        times = pd.to_datetime(f["time"].asstr()[:], format="ISO8601")
        assert frames.dtype == np.float32 and frames.shape == (len(labels), 8, 8)
        assert list(f["label"][:]) == list(labels.loc[names, "label"])
        assert list(f["phase"].asstr()[:]) == list(labels.loc[names, "phase"])
        assert [frame[0, 0] for frame in frames] == [expected_value(t) for t in times]
        assert set(f["provenance/record"].asstr()[:]) and f["provenance/file"].asstr()[0].startswith("frames/")
        assert f.attrs["n_frames"] == len(labels) and f.attrs["seed"] == 1
        event_ids = list(f["event_id"].asstr()[:])
        assert event_ids == sorted(event_ids)  # events.csv order, then product, then time
        products = list(f["product"].asstr()[:])
    stacked = []
    for event_id in "ABCD":
        with h5py.File(_out(root) / "per_event" / f"{event_id}.h5", "r") as f:
            assert set(f["event_id"].asstr()[:]) <= {event_id}
            stacked.append(f["frames"][:])
            if event_id == "D":
                assert f["frames"].shape == (0, 8, 8) and f.attrs["n_frames"] == 0
    assert np.array_equal(np.concatenate(stacked), frames)
    assert {"AIA131", "AIA171"} == set(products)


def test_multi_frame_day_files_across_midnight(tmp_path):
    """Frames in the clean stage's day files (an ``hdu`` column): each read from its own extension."""
    row = event("N", "2014-06-30T23:59:00", "2014-07-01T00:01:00", pre=3, post=3)
    events = write_events(tmp_path / "events.csv", [row])
    tables = {"N": write_frame_table(tmp_path, row, day_files=True)}
    build_event_dataset(events, tables, tmp_path, "demo", {"seed": 0, "n_pre": 4, "n_post": 4})
    with h5py.File(_out(tmp_path) / "events.h5", "r") as f:
        times = pd.to_datetime(f["time"].asstr()[:], format="ISO8601")
        assert [frame[0, 0] for frame in f["frames"][:]] == [expected_value(t) for t in times]
        assert len(set(f["provenance/file"].asstr()[:])) == 2 and f["provenance/hdu"][:].min() >= 1
    labels = pd.read_csv(_out(tmp_path) / "labels.csv")
    # flare bins 23:59, 00:00, 00:01; the 00:01 bin's only frame (00:01:00.57) is after the end: a shortfall
    assert list(labels.columns) == ["filename", "label"] and len(labels) == 4 + 2 + 4


def test_fits_copies_and_stale_outputs(tmp_path):
    events, tables = _inputs(tmp_path)
    settings = {"seed": 3, "n_pre": 2, "n_post": 2, "fits_copies": True}
    build_event_dataset(events, tables, tmp_path, "demo", settings)
    labels = pd.read_csv(_out(tmp_path) / "labels.csv")
    copies = sorted(p.name for p in (_out(tmp_path) / "fits").iterdir())
    assert copies == sorted(labels["filename"])
    name = labels["filename"].iloc[0]
    with fits.open(_out(tmp_path) / "fits" / name) as hdul:
        hdul.verify("exception")
        assert hdul[0].header["HC_LABEL"] == labels["label"].iloc[0] and hdul[0].data.dtype == ">f4"
    # a rebuild without event A and without copies leaves none of their files behind
    kept = pd.read_csv(events, dtype=str, keep_default_na=False)
    kept[kept["event_id"] != "A"].to_csv(events, index=False)
    build_event_dataset(events, {k: v for k, v in tables.items() if k != "A"}, tmp_path, "demo", {"seed": 3})
    assert not (_out(tmp_path) / "per_event" / "A.h5").exists() and not (_out(tmp_path) / "sampling" / "A.csv").exists()
    assert not list((_out(tmp_path) / "fits").iterdir())


def test_inputs_and_settings_errors(tmp_path):
    events, tables = _inputs(tmp_path)
    with pytest.raises(ValueError, match=r"no frame table for event\(s\) \['B'\]"):
        build_event_dataset(events, {k: v for k, v in tables.items() if k != "B"}, tmp_path, "demo", {})
    with pytest.raises(ValueError, match="n_pre must be a non-negative integer"):
        sampling_settings({"sampling": {"n_pre": -1}})
    with pytest.raises(ValueError, match="label_overlap"):
        sampling_settings({"label_overlap": "nearest"})
    assert sampling_settings({"name": "x", "sampling": {"n_post": 3}})["n_post"] == 3
    assert sampling_settings(None)["n_pre"] == 178 and sampling_settings({})["labels"]["phase"] is False


def test_event_dataset_with_dataloader_workers(built):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from heliocube.ml import EventDataset

    root = built[0]
    dataset = EventDataset(_out(root))
    labels = pd.read_csv(_out(root) / "labels.csv").set_index("filename")
    assert len(dataset) == len(labels)
    sample = dataset[0]
    assert sample["image"].shape == (1, 8, 8) and sample["image"].dtype == torch.float32
    assert sample["label"] == labels.loc[sample["filename"], "label"]
    seen = []
    for batch in DataLoader(dataset, batch_size=4, num_workers=2):
        assert batch["image"].shape[1:] == (1, 8, 8) and batch["label"].dtype == torch.int64
        seen += list(zip(batch["filename"], batch["label"].tolist(), batch["phase"], strict=True))
    assert sorted(name for name, _, _ in seen) == sorted(labels.index)
    assert all(labels.loc[name, "label"] == label and labels.loc[name, "phase"] == phase
               for name, label, phase in seen)  # fmt: skip
    flares = EventDataset(_out(root) / "events.h5", phases=["flare"], products=["AIA131"])
    assert set(flares.labels) == {1} and len(flares) == (labels["phase"] == "flare").sum() - sum(
        1 for i in range(len(dataset)) if dataset[i]["product"] == "AIA171" and dataset[i]["phase"] == "flare")
    one = EventDataset(_out(root) / "per_event" / "C.h5")
    assert {one[i]["event_id"] for i in range(len(one))} == {"C"}


def test_no_events(tmp_path):
    """A selection that kept nothing still gives every output: empty labels, a TOTAL row of zeros, an empty cube."""
    events = write_events(tmp_path / "events.csv", [])
    build_event_dataset(events, {}, tmp_path, "demo", {})
    assert (_out(tmp_path) / "labels.csv").read_text() == "filename,label\n"
    summary = pd.read_csv(_out(tmp_path) / "summary.csv")
    assert list(summary["event_id"]) == ["TOTAL"] and summary["total"].iloc[0] == 0
    with h5py.File(_out(tmp_path) / "events.h5", "r") as f:
        assert f["frames"].shape[0] == 0 and f.attrs["n_frames"] == 0
    # the events_dataset rule declares both folders as directory() outputs
    assert (_out(tmp_path) / "sampling").is_dir() and (_out(tmp_path) / "per_event").is_dir()


@pytest.mark.workflow
def test_the_demo_event_dataset(demo_run, tmp_path):
    """The demo's event dataset (frames fetched through HEKClient and drms, cleaned by the workflow): complete
    accounting, summary equal to the labels, a readable cube, and a rebuild from a copy of its inputs gives the
    workflow's files byte for byte."""
    workdir, config_file, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    import yaml

    entry = yaml.safe_load(config_file.read_text())["events"][0]
    root = workdir / "out"
    dataset = root / "events" / entry["name"] / "dataset"
    events = pd.read_csv(root / "events" / entry["name"] / "events.csv", dtype=str)
    labels = pd.read_csv(dataset / "labels.csv")
    summary = pd.read_csv(dataset / "summary.csv", dtype={"event_id": str})
    accounting = pd.read_csv(dataset / "accounting.csv", dtype=str, keep_default_na=False)
    tables = {e: root / "events" / entry["name"] / "frames" / f"{e}.csv" for e in events["event_id"]}
    assert len(accounting) == sum(len(pd.read_csv(path)) for path in tables.values())
    assert summary.loc[summary["event_id"] == "TOTAL", "total"].iloc[0] == len(labels) > 0
    assert (accounting["outcome"] == "sampled").sum() == len(labels)
    n_pre = entry["sampling"]["n_pre"]
    per_event = summary[summary["event_id"] != "TOTAL"]
    assert (per_event["pre"] + per_event["pre_shortfall"] == n_pre).all()
    with h5py.File(dataset / "events.h5", "r") as f:
        assert f["frames"].shape[0] == len(labels) and np.isfinite(f["frames"][0]).any()
        assert sorted(f["filename"].asstr()[:]) == list(labels["filename"])
    copy = tmp_path / "copy"
    shutil.copytree(root / "events" / entry["name"], copy / "events" / entry["name"],
                    ignore=shutil.ignore_patterns("dataset"))  # fmt: skip
    moved = {e: copy / Path(path).relative_to(root) for e, path in tables.items()}
    build_event_dataset(copy / "events" / entry["name"] / "events.csv", moved, copy, entry["name"], entry["sampling"])
    rebuilt = copy / "events" / entry["name"] / "dataset"
    # dot files are Snakemake's (.snakemake_timestamp in directory outputs)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file() and p.name[0] != ".")
    assert files == sorted(p.relative_to(rebuilt) for p in rebuilt.rglob("[!.]*") if p.is_file())
    assert all((dataset / name).read_bytes() == (rebuilt / name).read_bytes() for name in files)
