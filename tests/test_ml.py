"""heliocube.ml: PyTorch datasets over the Zarr store and the WebDataset shards, read by a real DataLoader.

The exports are written by the export stage's own writers from a small synced file (two channels, rows across a
year boundary, NaN off-disk pixels and negative values as running differences have); every sample is compared with
the synced rows bit for bit.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from heliocube.export.normalization import Settings, gather_statistics, write_year_statistics
from heliocube.export.periods import month_shard_days, shard_name
from heliocube.export.shards import merge_shard_index, write_month_shards
from heliocube.export.splits import assign_splits, write_splits
from heliocube.export.zarr_store import consolidate_store, write_year
from heliocube.ml import ShardDataset, ZarrDataset
from heliocube.ml.preprocess import downsample

PRODUCTS = {"AIA171": "AIA_0171", "HMI_720s": "HMI_M"}
SHAPE = (12, 12)
TIMES = pd.date_range("2010-12-29T00:00", "2011-01-02T18:00", freq="6h")  # 20 rows, two years, five days
REPO = Path(__file__).resolve().parents[1]


def write_synced_file(path: Path) -> dict[str, np.ndarray]:
    """A synced file in the sync writer's layout (what the exports read); returns channel -> (N, H, W) frames."""
    rng = np.random.default_rng(7)
    frames = {}
    text = h5py.string_dtype()
    n = len(TIMES)
    with h5py.File(path, "w") as f:
        f.attrs.update(experiment="exp", products=list(PRODUCTS), units=["DN/s", "Gauss"], step="6h")
        f["time"] = np.array([t.strftime("%Y-%m-%dT%H:%M:%S") for t in TIMES], dtype=object).astype(text)
        for number, (product, channel) in enumerate(PRODUCTS.items()):
            data = rng.normal(0, 100, (n, *SHAPE)).astype(np.float32)  # negative values, as in differences
            data[:, :2, :3] = np.nan  # an off-disk corner
            data[3] = np.nan  # a row without this product's frame
            frames[channel] = data
            group = f.create_group(product)
            group.create_dataset("data", data=data, chunks=(1, *SHAPE))
            obs = [(t + pd.Timedelta(seconds=7 + number)).strftime("%Y-%m-%dT%H:%M:%S") for t in TIMES]
            group["obs_time"] = np.array(obs, dtype=object).astype(text)
            group["dt_seconds"] = np.full(n, 7.0 + number)
            group["present"] = np.ones(n, bool)
            group["source_index"] = np.arange(n)
            group["frames/record_id"] = np.array([f"{product}-{i}" for i in range(n)], dtype=object).astype(text)
            group["frames/sha256"] = np.array([f"{i:064x}" for i in range(n)], dtype=object).astype(text)
            group["frames/qc_score"] = rng.random(n)
            group["frames/EXPTIME"] = np.arange(n) + 0.5 + number
            headers = [f"SIMPLE  =                    T\nEXPTIME =                 {i + 0.5 + number}\nEND"
                       for i in range(n)]  # fmt: skip
            group["headers"] = np.array(headers, dtype=object).astype(text)
    return frames


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``{root}/exports/exp.zarr`` (one-frame chunks), the day shards, their index and a split manifest."""
    root = tmp_path_factory.mktemp("ml")
    synced = root / "synced" / "exp.h5"
    synced.parent.mkdir()
    frames = write_synced_file(synced)
    store = root / "exports" / "exp.zarr"
    for year in ("2010", "2011"):
        write_year(synced, store, year, chunk_frames=1)
    consolidate_store(store, ["2010", "2011"], {"experiment": "exp"})
    shards = root / "exports" / "exp" / "shards"
    shards.mkdir(parents=True)
    parts = []
    for month in ("2010-12", "2011-01"):
        days = month_shard_days(month, "2010-12-29", "2011-01-02")
        parts.append(shards / f"{month}.index.json")
        write_month_shards(synced, parts[-1], [shard_name(day) for day in days])
    merge_shard_index(parts, shards / "index.json")
    ranges = [{"split": "val", "start": "2011-01-01", "finish": "2011-01-01"},
              {"split": "test", "start": "2011-01-02", "finish": "2011-01-02"}]
    table = assign_splits(TIMES, ranges=ranges, default="train", gap="1d")
    write_splits(root / "exports" / "exp" / "splits.csv", table)
    split = table["split"].to_numpy()
    assert {"train", "val", "test", "gap"} <= set(split)
    return {"frames": frames, "store": store, "shards": shards, "split": split}


def iso(index: int) -> str:
    return TIMES[index].strftime("%Y-%m-%dT%H:%M:%S")


def load_all(dataset, workers: int = 2) -> list[dict]:
    return list(DataLoader(dataset, batch_size=None, num_workers=workers))


def assert_bitwise(image: torch.Tensor, expected: np.ndarray) -> None:
    assert image.dtype == torch.float32 and tuple(image.shape) == expected.shape
    np.testing.assert_array_equal(image.numpy().view(np.uint32), expected.astype(np.float32).view(np.uint32))


def test_torch_is_the_locked_cpu_build():
    locked = re.search(r"^torch==(\S+)$", (REPO / "requirements.lock").read_text(), re.M).group(1)
    assert locked.endswith("+cpu") and torch.__version__ == locked


@pytest.mark.parametrize("kind", ["zarr", "shards"])
def test_every_row_once_equal_to_the_synced_rows_bit_for_bit(exported, kind):
    dataset = (ZarrDataset(exported["store"], header_keys=["EXPTIME"]) if kind == "zarr"
               else ShardDataset(exported["shards"], header_keys=["EXPTIME"]))  # fmt: skip
    samples = load_all(dataset)
    assert sorted(s["index"] for s in samples) == list(range(len(TIMES))) and len(dataset) == len(TIMES)
    for sample in samples:
        i = sample["index"]
        assert sample["time"] == iso(i) and sample["channels"] == ["AIA_0171", "HMI_M"]
        assert_bitwise(sample["image"], np.stack([exported["frames"][c][i] for c in sample["channels"]]))
        assert sample["header"] == {"AIA_0171": {"EXPTIME": i + 0.5}, "HMI_M": {"EXPTIME": i + 1.5}}


def test_shards_split_over_two_ranks_of_two_workers_without_duplicates_or_losses(exported):
    for options in ({}, {"step": 3}, {"split": "train", "shuffle": True, "seed": 5}):
        per_rank = [[s["index"] for s in load_all(ShardDataset(exported["shards"], rank=rank, world_size=2,
                                                                **options))] for rank in (0, 1)]  # fmt: skip
        every = [i for indexes in per_rank for i in indexes]
        expected = np.arange(len(TIMES))
        if "step" in options:
            expected = expected[::3]
        if "split" in options:
            expected = expected[exported["split"] == "train"]
        assert sorted(every) == expected.tolist(), options  # each sample exactly once
        assert abs(len(per_rank[0]) - len(per_rank[1])) <= 1  # ranks stay in step


@pytest.mark.parametrize("kind", ["zarr", "shards"])
def test_channel_selection_temporal_step_and_nan_aware_downsampling(exported, kind):
    options = {"channels": ["HMI_M", "AIA_0171"], "step": 3, "downsample": 5}
    dataset = ZarrDataset(exported["store"], **options) if kind == "zarr" else ShardDataset(exported["shards"],
                                                                                            **options)
    samples = sorted(load_all(dataset), key=lambda s: s["index"])
    assert [s["index"] for s in samples] == list(range(0, len(TIMES), 3))
    for sample in samples:
        assert sample["channels"] == ["HMI_M", "AIA_0171"]
        full = np.stack([exported["frames"][c][sample["index"]] for c in ("HMI_M", "AIA_0171")])
        expected = np.full((2, 3, 3), np.nan, np.float32)  # 12 px by 5: blocks of 5, 5 and the last 2
        for c in range(2):
            for by in range(3):
                for bx in range(3):
                    block = full[c, 5 * by:5 * by + 5, 5 * bx:5 * bx + 5]
                    if np.isfinite(block).any():
                        expected[c, by, bx] = np.float32(block[np.isfinite(block)].mean(dtype=np.float32))
        np.testing.assert_allclose(sample["image"].numpy(), expected, rtol=1e-6, atol=1e-4)
        assert np.array_equal(np.isnan(sample["image"].numpy()), np.isnan(expected))
    all_nan = np.full((1, 4, 4), np.nan, np.float32)
    assert np.isnan(downsample(all_nan, 2)).all() and downsample(all_nan, 2).shape == (1, 2, 2)


def test_shard_shuffle_is_deterministic_by_seed_and_epoch(exported):
    def order(seed, epoch):
        dataset = ShardDataset(exported["shards"], shuffle=True, seed=seed, buffer_size=4)
        dataset.set_epoch(epoch)
        return [s["index"] for s in load_all(dataset)]

    first = order(1, 0)
    assert first == order(1, 0) and sorted(first) == list(range(len(TIMES)))
    assert first != list(range(len(TIMES)))
    assert order(1, 1) != first and sorted(order(1, 1)) == sorted(first)
    assert order(2, 0) != first


@pytest.mark.parametrize("kind", ["zarr", "shards"])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_split_keeps_only_the_rows_of_that_split(exported, kind, split):
    dataset = (ZarrDataset(exported["store"], split=split) if kind == "zarr"
               else ShardDataset(exported["shards"], split=split))  # fmt: skip
    indexes = sorted(s["index"] for s in load_all(dataset))
    assert indexes == np.flatnonzero(exported["split"] == split).tolist() and len(dataset) == len(indexes)
    assert not set(indexes) & set(np.flatnonzero(exported["split"] == "gap").tolist())


class Scale:
    """A normalizer: ``forward(array, channel)`` as :class:`heliocube.export.normalization.Normalizer` has it."""

    def forward(self, array, channel):
        return array * (2.0 if channel == "HMI_M" else 10.0)


@pytest.mark.parametrize("kind", ["zarr", "shards"])
def test_normalization_is_applied_per_channel_before_downsampling(exported, kind):
    options = {"normalize": Scale(), "downsample": 2}
    dataset = ZarrDataset(exported["store"], **options) if kind == "zarr" else ShardDataset(exported["shards"],
                                                                                            **options)
    sample = dataset[4] if kind == "zarr" else next(iter(dataset))
    i = sample["index"]
    full = np.stack([exported["frames"]["AIA_0171"][i] * 10.0, exported["frames"]["HMI_M"][i] * 2.0])
    np.testing.assert_allclose(sample["image"].numpy(), downsample(full.astype(np.float32), 2), rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="normalization"):
        ZarrDataset(exported["store"], normalize=True)


def test_zarr_dataset_random_access_and_errors(exported):
    dataset = ZarrDataset(exported["store"], channels=["HMI_M"])
    assert dataset[-1]["index"] == len(TIMES) - 1 and dataset[-1]["time"] == iso(len(TIMES) - 1)
    with pytest.raises(IndexError):
        dataset[len(TIMES)]
    with pytest.raises(ValueError, match="AIA_0171"):
        ZarrDataset(exported["store"], channels=["EIT_0195"])
    with pytest.raises(ValueError, match="train, val, test"):
        ShardDataset(exported["shards"], split="gap")
    counts = collections.Counter(s["index"] for s in load_all(dataset))
    assert set(counts.values()) == {1} and len(counts) == len(TIMES)


@pytest.mark.parametrize("kind", ["zarr", "shards"])
def test_the_export_stage_normalization_artifact(exported, kind, tmp_path):
    synced = exported["store"].parents[1] / "synced" / "exp.h5"
    settings = Settings(preset="zscore")
    parts = [write_year_statistics(synced, year, settings, tmp_path / f"{year}.json") for year in (2010, 2011)]
    normalizer = gather_statistics(parts, settings, tmp_path / "normalization.json")
    options = {"normalize": tmp_path / "normalization.json", "channels": ["HMI_M"]}
    dataset = ZarrDataset(exported["store"], **options) if kind == "zarr" else ShardDataset(exported["shards"],
                                                                                            **options)
    for sample in load_all(dataset):
        expected = normalizer.forward(exported["frames"]["HMI_M"][sample["index"]], "HMI_M")
        assert_bitwise(sample["image"], np.asarray(expected, np.float32)[None])
        if sample["index"] != 3:  # row 3 has no frame (all NaN)
            assert abs(float(np.nanmean(sample["image"].numpy()))) < 1  # z-scored


def test_float16_shards_widen_exactly_and_a_truncated_shard_is_named(exported, tmp_path):
    # the shard reader reads .npy payloads itself (not np.load): float16 frames must widen as numpy widens them,
    # and a shard cut inside a frame must fail naming the shard, not yield a half-read image
    synced = tmp_path / "exp.h5"
    write_synced_file(synced)
    shards = tmp_path / "half"
    shards.mkdir()
    days = month_shard_days("2010-12", "2010-12-29", "2010-12-31")
    write_month_shards(synced, shards / "2010-12.index.json", [shard_name(day) for day in days], float16=True)
    merge_shard_index([shards / "2010-12.index.json"], shards / "index.json")
    samples = load_all(ShardDataset(shards))
    assert sorted(s["index"] for s in samples) == list(range(12))
    for sample in samples:
        i = sample["index"]
        expected = np.stack([exported["frames"][c][i].astype(np.float16) for c in sample["channels"]])
        assert_bitwise(sample["image"], expected.astype(np.float32))
    tar = shards / shard_name(days[0])
    tar.write_bytes(tar.read_bytes()[:3000])
    with pytest.raises(ValueError, match=re.escape(str(tar))):
        list(ShardDataset(shards))


def test_shard_batches_hold_every_sample_once_bit_for_bit_in_shared_memory(exported):
    # batch_size: the reader reads the frames straight into one batch tensor (shared memory inside a worker)
    for options in ({}, {"shuffle": True, "seed": 3, "split": "train"}, {"downsample": 2}):
        dataset = ShardDataset(exported["shards"], batch_size=3, header_keys=["EXPTIME"], **options)
        batches = list(DataLoader(dataset, batch_size=None, num_workers=2))
        assert all(b["image"].is_shared() and len(b["index"]) == len(b["time"]) <= 3 for b in batches), options
        indexes = [int(i) for b in batches for i in b["index"]]
        expected = np.arange(len(TIMES))[exported["split"] == "train"] if "split" in options else np.arange(len(TIMES))
        assert sorted(indexes) == expected.tolist(), options
        for batch in batches:
            for image, i, time, header in zip(batch["image"], batch["index"], batch["time"], batch["header"],
                                              strict=True):  # fmt: skip
                frames = np.stack([exported["frames"][c][int(i)] for c in batch["channels"]])
                assert_bitwise(image, downsample(frames, 2) if "downsample" in options else frames)
                assert time == iso(int(i)) and header["AIA_0171"] == {"EXPTIME": int(i) + 0.5}
    with pytest.raises(ValueError, match="batch_size"):
        ShardDataset(exported["shards"], batch_size=0)
