"""The workflow end to end through snakemake: the demo path (auto-started archive), resume, and the big DAG."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sunpy.map
import yaml

from heliocube.frameio import read_frame
from heliocube.header import with_record_keywords
from tests.workflow_runs import DIALECT_PRODUCTS, REPO, VARIANT_NAMES, free_port, snakemake, stop_embedded_archive


def access_log(workdir: Path) -> list[dict]:
    (path,) = (workdir / "out" / "embedded-archive").glob("*.access.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.workflow
def test_demo_workflow_fetches_every_dialect_and_resumes_with_nothing_to_do(demo_run):
    workdir, config_file, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    for product in DIALECT_PRODUCTS:
        slots = pd.read_csv(root / "raw" / product / "2010-10.slots.csv")
        ledger = pd.read_csv(root / "raw" / product / "2010-10.ledger.csv")
        assert len(slots) == 8 and (slots["status"] == "ok").all(), (product, slots["status"].tolist())
        assert set(ledger["slot"]) <= set(slots["slot"])  # every rejection belongs to a slot that fell back
        for day in ("2010-10-15", "2010-10-16"):
            assert (root / "manifests" / product / "2010" / f"{day}.parquet").exists()
        first = root / slots["path"].iloc[0]
        # a raw file plus its record's keywords (as-is JSOC files have none of their own) is a map
        keywords = slots["keywords"].iloc[0] if isinstance(slots["keywords"].iloc[0], str) else None
        data, header = read_frame(first)
        assert sunpy.map.Map(data, with_record_keywords(header, keywords)).data.shape == (64, 64)
        assert (root / "logs" / "fetch" / product / "2010-10.log").exists()
        assert (root / "benchmarks" / "query" / product / "2010-10.tsv").exists()
    requests_before = len(access_log(workdir))
    again = snakemake(workdir, "--configfile", str(config_file))
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    assert len(access_log(workdir)) == requests_before
    # the email placeholder, like any email, never reaches a log
    logs = " ".join(p.read_text() for p in (root / "logs").rglob("*.log"))
    assert "@" not in logs.replace("@120s", "")


def ranked_candidates(root: Path, product: str, slots: pd.DataFrame) -> dict[str, list[str]]:
    """For every slot, the record ids of its candidates best first, recomputed from the manifests."""
    from heliocube.manifest import normalize_manifest, read_manifest
    from heliocube.slots import rank_candidates

    manifests = [read_manifest(p) for p in sorted((root / "manifests" / product).rglob("*.parquet"))]
    candidates = normalize_manifest(pd.concat([m for m in manifests if not m.empty], ignore_index=True))
    times = pd.DatetimeIndex(pd.to_datetime(slots["slot"], utc=True))
    ranked = rank_candidates(times, candidates, pd.Timedelta(hours=3))
    return {slot: [candidates["record_id"].iloc[i] for i in r] for slot, r in zip(slots["slot"], ranked, strict=True)}


@pytest.mark.workflow
def test_demo_ends_in_cubes_that_match_the_cleaned_frames_and_account_for_every_candidate(demo_run):
    """Both variants of the sweep end in cubes; every tried candidate is a cube row or a ledger row."""
    import h5py
    from astropy.io import fits

    from heliocube.cube import open_cube_xarray

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    for product in DIALECT_PRODUCTS:
        slots = pd.read_csv(root / "raw" / product / "2010-10.slots.csv")
        ledger = pd.read_csv(root / "raw" / product / "2010-10.ledger.csv")
        for variant, size, n_slots in zip(VARIANT_NAMES, (32, 16), (8, 4), strict=True):
            cube_path = root / "cubes" / variant / f"{product}.h5"
            with h5py.File(cube_path, "r") as cube:
                assert cube["data"].dtype == "float32" and cube["data"].shape == (n_slots, size, size)
                assert cube.attrs["variant"] == variant and len(cube.attrs["config_hash"]) == 64
                rows = {name: cube["frames"][name][()] for name in ("slot_time", "frame_file", "hdu", "record_id")}
                for i in range(n_slots):
                    frame_file = rows["frame_file"][i].decode()
                    with fits.open(root / frame_file) as hdul:
                        hdu = hdul[int(rows["hdu"][i])]
                        assert hdu.header["HC_SLOT"].startswith(rows["slot_time"][i].decode())
                        np.testing.assert_array_equal(cube["data"][i], hdu.data.astype(np.float32))
                header = fits.Header.fromstring(cube["headers"][0], sep="\n")
                assert header["NAXIS1"] == size and "HC_SCALE" in header
            with open_cube_xarray(cube_path) as ds:
                assert ds["data"].dims == ("time", "y", "x") and ds.sizes["time"] == n_slots
            assert (root / "cubes" / variant / f"{product}_times.csv").exists()
            frames = sunpy.map.Map(root / "frames" / variant / product / "2010" / "2010-10-15.fits")
            assert len(frames) == n_slots // 2 and frames[0].data.shape == (size, size)
        # the first variant keeps every slot: each candidate a slot tried is its cube row or a ledger row
        with h5py.File(root / "cubes" / VARIANT_NAMES[0] / f"{product}.h5", "r") as cube:
            in_cube = {r.decode() for r in cube["frames"]["record_id"][()]}
        ledger_ids = set(ledger["record_id"])
        for slot, ranked in ranked_candidates(root, product, slots).items():
            chosen = slots.loc[slots["slot"] == slot, "record_id"].iloc[0]
            tried = ranked[: ranked.index(chosen) + 1]
            assert chosen in in_cube, (product, slot)
            assert set(tried[:-1]) <= ledger_ids, (product, slot, tried)
    # both variants came from one download of each raw file
    data_file = re.compile(r"(\.fits|\.fts|/efz\d{8}\.\d{6})$")
    downloads = [entry["path"] for entry in access_log(workdir)
                 if entry["status"] == 200 and data_file.search(entry["path"])]
    # (the event stage takes every record of its windows, corrupt bodies too: those alone are fetched again, up to
    # fetch.retries times, and their rejection names the URL "unreadable ... (after N attempts)")
    retried = {path for receipt in (root / "events").glob("*/frames/*/*.receipt.json")
               for rejection in json.loads(receipt.read_text())["rejections"] if rejection["reason"] == "unreadable"
               for path in re.findall(r"https?://[^/]+(/\S+\.fits)", rejection["detail"])}  # fmt: skip
    once = [path for path in downloads if path not in retried]
    assert len(once) >= 5 * 8 and len(once) == len(set(once))


@pytest.mark.workflow
def test_demo_ends_in_synced_files_whose_frames_are_the_cube_rows(demo_run):
    """Both demo experiments: aligned float32 frames equal to (differences of) the recorded cube rows."""
    import h5py

    from heliocube.sync import open_synced_xarray

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    for name in ("soho-sdo-6h", "eit-lasco-difference-6h"):
        path = root / "synced" / f"{name}.h5"
        ledger = pd.read_csv(root / "synced" / f"{name}.ledger.csv")
        with h5py.File(path, "r") as synced:
            products = [str(p) for p in synced.attrs["products"]]
            differenced = {str(p) for p in synced.attrs["difference_products"]}
            n_rows = len(synced["time"])
            assert n_rows > 0 and n_rows + ledger.loc[ledger["dropped"], "time"].nunique() == 8
            for product in products:
                group = synced[product]
                assert group["data"].dtype == np.float32 and group["data"].shape[0] == n_rows
                with h5py.File(root / "cubes" / VARIANT_NAMES[0] / f"{product}.h5", "r") as cube:
                    for row, source in enumerate(group["source_index"][()]):
                        expected = cube["data"][source]
                        if product in differenced:
                            expected = expected - cube["data"][group["previous"]["source_index"][row]]
                        np.testing.assert_array_equal(group["data"][row], expected)
                    assert (group["frames"]["record_id"][()] == cube["frames"]["record_id"][()][
                        group["source_index"][()]]).all()
        with open_synced_xarray(path) as ds:
            assert ds.sizes["time"] == n_rows
        assert len(pd.read_csv(root / "synced" / f"{name}.csv")) == n_rows
    assert len(list((root / "synced" / "eit-lasco-difference-6h.prior-tool").glob("*_sync.h5"))) == 2


@pytest.mark.workflow
def test_demo_seeds_mdi_and_hmi_cubes_with_the_keywords_of_their_own_records(demo_run):
    import h5py

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    for product in ("MDI_96m", "HMI_720s"):
        cube_path = workdir / "out" / "cubes" / VARIANT_NAMES[0] / f"{product}.h5"
        with h5py.File(cube_path, "r") as cube, h5py.File(cube_path.with_suffix(".seeded.h5"), "r") as seeded:
            np.testing.assert_array_equal(seeded["data"][()], cube["data"][()])
            records = [r.decode() for r in seeded["frames"]["record_id"][()]]
            t_rec = [t.decode() for t in seeded["keywords"]["T_REC"][()]]
            assert len(records) == 8 and all(f"[{t}]" in r for r, t in zip(records, t_rec, strict=True))
            assert seeded["seeded"][()].all()


@pytest.mark.workflow
def test_demo_outputs_follow_the_umask_and_the_run_ends_with_a_summary(demo_run):
    """Every file of the run is as readable as the umask allows (none owner-only), and the run's last lines say
    where the outputs are, what was filled and rejected, and where the report is."""
    import stat

    from heliocube.summary import run_summary

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    umask = os.umask(0)
    os.umask(umask)
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    kinds = {Path(name).suffix for name in modes}
    assert {".parquet", ".json", ".csv", ".fits", ".h5", ".log", ".tsv", ".html"} <= kinds
    assert {name: oct(mode) for name, mode in modes.items() if mode != 0o666 & ~umask} == {}
    summary = run_summary(root)
    assert summary in result.stdout
    lines = summary.splitlines()
    assert lines[0] == f"heliocube: outputs in {root}" and lines[-1] == f"  report: {root / 'report' / 'index.html'}"
    n_rejected = sum(len(pd.read_csv(path)) for path in root.glob("raw/*/*.ledger.csv"))
    assert f"slots: 40 of 40 filled; {n_rejected} candidate{'s' * (n_rejected != 1)} rejected" in lines[2]


GOLDEN = REPO / "tests" / "data" / "golden" / "demo-window.json"


def _digest(dataset) -> str:
    import hashlib

    digest = hashlib.sha256()
    for i in range(dataset.shape[0]):
        digest.update(np.ascontiguousarray(dataset[i], dtype="<f4").tobytes())
    return digest.hexdigest()


@pytest.mark.workflow
def test_golden_window_data_are_unchanged(demo_run):
    """The pixels of the demo window's cubes and synced files equal a committed record, so a dependency upgrade
    cannot change the data silently. After an intended change: HELIOCUBE_UPDATE_GOLDEN=1 pytest -k golden."""
    import h5py

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    record = {}
    for path in sorted((root / "cubes").glob("*/*.h5")):
        with h5py.File(path, "r") as cube:
            record[str(path.relative_to(root))] = {
                "data": _digest(cube["data"]),
                "records": [r.decode() for r in cube["frames"]["record_id"][()]],
            }
    for path in sorted((root / "synced").glob("*.h5")):
        with h5py.File(path, "r") as synced:
            for product in synced.attrs["products"]:
                record[f"{path.relative_to(root)}:{product}"] = {"data": _digest(synced[str(product)]["data"])}
    if os.environ.get("HELIOCUBE_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert sorted(record) == sorted(golden)
    changed = [name for name in record if record[name] != golden[name]]
    assert not changed, f"data changed for {changed}"


@pytest.mark.workflow
def test_demo_writes_shards_and_a_normalization_per_experiment_equal_to_the_synced_rows(demo_run):
    """Each demo experiment's day shards stream (webdataset, shard shuffling) exactly its synced rows, bit for bit,
    and its normalization artifact counts every finite synced pixel of every channel."""
    import h5py

    from heliocube.export.channels import channel_name
    from heliocube.export.normalization import Normalizer
    from heliocube.export.shards import read_shards

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    for experiment in ("soho-sdo-6h", "eit-lasco-difference-6h"):
        shards = root / "exports" / experiment / "shards"
        index = json.loads((shards / "index.json").read_text())
        normalizer = Normalizer.load(root / "exports" / experiment / "normalization.json")
        assert normalizer.settings.preset == "minmax" and normalizer.meta["parts"] == ["2010.json"]
        with h5py.File(root / "synced" / f"{experiment}.h5", "r") as synced:
            times = [t.decode() for t in synced["time"][()]]
            frames = {channel_name(str(p)): synced[str(p)]["data"][()] for p in synced.attrs["products"]}
        assert index["channels"] == list(frames) and index["n_samples"] == len(times)
        assert sorted(index["shards"]) == sorted({f"{t[:10]}.tar" for t in times})  # one shard per day
        samples = sorted(read_shards([shards / name for name in index["shards"]], shardshuffle=5, seed=1),
                         key=lambda sample: sample["__key__"])
        assert [s["json"]["time"] for s in samples] == [f"{t}Z" for t in times]
        for channel, rows in frames.items():
            assert all(s[f"{channel.lower()}.npy"].tobytes() == row.tobytes() for s, row in zip(samples, rows,
                                                                                               strict=True))
            assert normalizer.stats[channel].count == np.isfinite(rows).sum()
            assert normalizer.stats[channel].min == float(np.nanmin(rows))
            scaled = normalizer.forward(rows, channel)
            assert np.nanmin(scaled) == 0.0 and np.nanmax(scaled) == 1.0
            assert np.array_equal(np.isnan(scaled), np.isnan(rows))


@pytest.mark.workflow
def test_demo_report_opens_in_chromium_with_every_section_and_image(demo_run, tmp_path):
    """The report rule wrote one self-contained page; Chromium renders every section and every image of it."""
    from .test_report import check_report_in_browser

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    report = workdir / "out" / "report" / "index.html"
    text = report.read_text()
    for variant in VARIANT_NAMES:
        for product in DIALECT_PRODUCTS:
            assert f"{product} · {variant}" in text
    # coverage, runtimes and a |dt| histogram per experiment; 6 thumbnails per 8-frame cube, 4 per 4-frame cube
    check_report_in_browser(report, tmp_path, min_images=4 + 5 * 6 + 5 * 4)
    assert (workdir / "out" / "logs" / "report.log").exists()
    assert (workdir / "out" / "benchmarks" / "report.tsv").exists()


@pytest.mark.workflow
def test_demo_exports_a_zarr_store_per_experiment_equal_to_the_synced_rows(demo_run):
    """Both demo experiments: a consolidated Zarr store whose 2010 group holds the synced rows bit for bit (every
    channel on the synced axis, decoded by xarray with no custom code) and a split for every synced row."""
    import h5py
    import xarray as xr
    import zarr

    from heliocube.export.channels import channel_name

    workdir, _, result = demo_run
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "out"
    for name in ("soho-sdo-6h", "eit-lasco-difference-6h"):
        store = zarr.open_consolidated(root / "exports" / f"{name}.zarr", mode="r")
        assert list(store.group_keys()) == ["2010"] and store.attrs["years"] == ["2010"]
        with h5py.File(root / "synced" / f"{name}.h5", "r") as synced:
            products = [str(p) for p in synced.attrs["products"]]
            times = pd.to_datetime([t.decode() for t in synced["time"][()]])
            assert store.attrs["channels"] == [channel_name(p) for p in products]
            ds = xr.open_zarr(root / "exports" / f"{name}.zarr", group="2010")
            np.testing.assert_array_equal(ds["time"].values, times.to_numpy())
            for product in products:
                channel = channel_name(product)
                expected = synced[product]["data"][()]
                np.testing.assert_array_equal(store["2010"][channel][:].view(np.uint32), expected.view(np.uint32))
                assert len(store["2010"][channel].attrs["NAXIS1"]) == len(times)
        splits = pd.read_csv(root / "exports" / name / "splits.csv")
        assert pd.to_datetime(splits["time"]).dt.tz_localize(None).tolist() == list(times)
        assert set(splits["split"]) <= {"train", "val", "test", "gap"}


@pytest.fixture(scope="module")
def new_year_run(tmp_path_factory):
    """EIT 195 over the last day of 2010 and the first of 2011, synced and exported, on its own port."""
    tmp_path = tmp_path_factory.mktemp("new-year")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(products=["EIT195"], date_start="2010-12-31", date_finish="2011-01-01", output_root="out",
                  image_size=32, variants=[], metadata_seeding={"products": []}, params={}, events=[],
                  experiments=[{"name": "eit", "products": ["EIT195"]}])
    config["archive"].update(embedded_port=free_port(), embedded_frame_size=64)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", str(config_file))
    yield tmp_path, config, result
    stop_embedded_archive(tmp_path / "out", config["archive"]["embedded_port"])


@pytest.mark.workflow
def test_extending_the_range_into_a_year_plans_one_zarr_job_for_that_year_only(new_year_run):
    import xarray as xr

    workdir, config, result = new_year_run
    assert result.returncode == 0, result.stderr[-3000:]
    store = workdir / "out" / "exports" / "eit.zarr"
    assert [len(xr.open_zarr(store, group=year)["time"]) for year in ("2010", "2011")] == [4, 4]
    extended = workdir / "extended.yaml"
    extended.write_text(yaml.safe_dump({**config, "date_finish": "2011-01-02"}))
    plan = snakemake(workdir, "--configfile", str(extended), "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    text = plan.stdout + plan.stderr
    jobs = re.findall(r"(?m)^(?:local)?rule export_zarr:\n(?:    .*\n)*?    wildcards: (.*)$", text)
    assert jobs == ["experiment=eit, year=2011"], text[-3000:]
