"""DataLoader throughput of the ML exports and the export stage's speed and memory, on synthetic synced files.

Run: ``.venv/bin/python bench/bench_ml.py [samples] [export_frames]`` (defaults 360 and 10000).

1. Throughput (samples/s through ``torch.utils.data.DataLoader(num_workers=2, batch_size=8)``, one epoch) for
   C channels of 256² and 512², each read three ways from the same synced rows:

   - ``shards``: :class:`heliocube.ml.ShardDataset` over one-day WebDataset shards, 12-minute cadence like
     SDOML-lite (120 samples per tar, each tar streamed once);
   - ``zarr``: :class:`heliocube.ml.ZarrDataset` over the Zarr store written with one-frame chunks, shuffled;
   - ``reopen``: SDOML-lite's access pattern, a map-style dataset that opens the day's tar for every sample and
     looks its members up by name (``tarfile.open`` + ``extractfile``), shuffled.

   Goal (issue 14): shards >= 5x reopen.
2. Export: frames/s and the peak RSS of a fresh process writing the Zarr store (one year) and the shards (one month
   job per month) of ``export_frames`` rows x 8 channels of 512² (goal: RSS <= 500 MB, bounded by chunks, not by
   the number of frames). The synthetic frames are a smooth disk on integer steps, so the synced input file stays
   small (gzip) and the figure is the writers' cost, not the disk's.

The ``host check`` lines (bench_clean's fixed single-core workload, before and after) tell a busy shared host from
a slow reader.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check
from bench_exports import write_exports

from heliocube.export.channels import channel_names
from heliocube.export.periods import shard_name
from heliocube.ml import ShardDataset, ZarrDataset

PRODUCTS = ["AIA131", "AIA171", "AIA193", "AIA211", "AIA304", "AIA335", "AIA1700", "HMI_720s"]
START = pd.Timestamp("2010-01-01T00:00")
TEXT = h5py.string_dtype()
#: SDOML-lite's cadence: a day's shard holds 120 samples, whose member headers a reopening reader scans each time.
CADENCE = "12min"


def write_synced(path: Path, products: list[str], n: int, size: int, *, cadence: str = "1h",
                 compression: str | None = None) -> None:
    """A synced file in the sync writer's layout: ``n`` rows of ``products`` at ``size``², a disk that brightens."""
    times = pd.date_range(START, periods=n, freq=cadence)
    iso = np.array([t.strftime("%Y-%m-%dT%H:%M:%S") for t in times], dtype=object).astype(TEXT)
    y, x = np.mgrid[:size, :size] / size - 0.5
    disk = np.where(np.hypot(x, y) < 0.4, np.round(100 * np.cos(3 * np.hypot(x, y))), np.nan).astype(np.float32)
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs.update(experiment="bench", products=products, step=cadence)
        f["time"] = iso
        for number, product in enumerate(products):
            group = f.create_group(product)
            data = group.create_dataset("data", (n, size, size), np.float32, chunks=(1, size, size),
                                        compression=compression, fillvalue=np.nan)  # fmt: skip
            noise = None if compression else rng.normal(0, 1, (size, size)).astype(np.float32)
            for row in range(n):
                data[row] = disk + (row % 97 + number) if noise is None else disk + noise * (row % 7 + 1)
            group["obs_time"] = iso
            group["dt_seconds"] = np.zeros(n)
            group["present"] = np.ones(n, bool)
            group["frames/record_id"] = np.array([f"{product}-{i}" for i in range(n)], dtype=object).astype(TEXT)
            group["frames/EXPTIME"] = np.full(n, 2.0)
            group["headers"] = np.array(["EXPTIME =                  2.0\nEND"] * n, dtype=object).astype(TEXT)


class ReopenTar(Dataset):
    """SDOML-lite's pattern: every sample opens its day's tar and extracts its channels by member name."""

    def __init__(self, shards: Path, channels: list[str], n: int, cadence: pd.Timedelta):
        self.shards, self.channels = shards, channels
        self.times = [START + i * cadence for i in range(n)]

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, item: int) -> dict:
        time_ = self.times[item]
        key = time_.strftime("%Y/%m/%d/%H%M")
        with tarfile.open(self.shards / shard_name(time_.date())) as tar:
            frames = [np.load(io.BytesIO(tar.extractfile(f"{key}.{channel}.npy").read())) for channel in self.channels]
        return {"image": torch.from_numpy(np.stack(frames)), "time": time_.isoformat()}


def throughput(dataset, *, shuffle: bool | None = None) -> float:
    """Samples per second of one epoch through a 2-worker DataLoader (batches of 8)."""
    loader = DataLoader(dataset, batch_size=8, num_workers=2, shuffle=shuffle, collate_fn=collate)
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += batch.shape[0]
    elapsed = time.perf_counter() - start
    assert count == len(dataset), (count, len(dataset))
    return count / elapsed


def collate(samples: list[dict]) -> torch.Tensor:
    return torch.stack([sample["image"] for sample in samples])


def bench_throughput(samples: int, channels: int) -> None:
    products = PRODUCTS[:channels]
    names = channel_names(products)
    for size in (256, 512):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_synced(root / "bench.h5", products, samples, size, cadence=CADENCE)
            write_exports(root / "bench.h5", root / "exports")
            shards = root / "exports" / "bench" / "shards"
            rates = {
                "shards": throughput(ShardDataset(shards, shuffle=True, seed=0)),
                "zarr": throughput(ZarrDataset(root / "exports" / "bench.zarr"), shuffle=True),
                "reopen": throughput(ReopenTar(shards, names, samples, pd.Timedelta(CADENCE)), shuffle=True),
            }
        for what, rate in rates.items():
            megabytes = rate * channels * size * size * 4 / 2**20
            print(f"{channels} x {size}² {what:7s} {rate:8.1f} samples/s  {megabytes:7.1f} MB/s  "
                  f"({rate / rates['reopen']:.1f}x reopen)")  # fmt: skip
        verdict = "meets" if rates["shards"] >= 5 * rates["reopen"] else "MISSES"
        print(f"{channels} x {size}² shards/reopen {rates['shards'] / rates['reopen']:.1f}x ({verdict} 5x)"
              f"   host check: {host_check():.2f} ms")  # fmt: skip


#: The export job alone in a fresh interpreter (no torch imported), reporting its own peak RSS and time.
_EXPORT_CHILD = """
import resource, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
import bench_exports
start = time.perf_counter()
bench_exports.write_exports(Path({synced!r}), Path({exports!r}), zarr_store={zarr}, shards={shards})
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench_export(frames: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synced = root / "bench.h5"
        start = time.perf_counter()
        write_synced(synced, PRODUCTS, frames, 512, cadence="1h", compression="gzip")
        print(f"export: synthetic synced file of {frames} rows x 8 x 512² written in "
              f"{time.perf_counter() - start:.0f} s ({synced.stat().st_size / 2**20:.0f} MB, gzip)")  # fmt: skip
        for what in ("zarr", "shards"):
            code = _EXPORT_CHILD.format(bench=str(Path(__file__).resolve().parent), synced=str(synced),
                                        exports=str(root / what), zarr=what == "zarr", shards=what == "shards")
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
            elapsed, peak = map(float, out.split()[-2:])
            verdict = "meets" if peak <= 500 else "MISSES"
            print(f"export {what:6s} {frames} frames x 8 x 512²: {frames / elapsed:7.1f} frames/s "
                  f"({frames * 8 / elapsed:7.1f} channel frames/s), peak RSS {peak:6.0f} MB ({verdict} 500 MB)"
                  f"   host check: {host_check():.2f} ms")  # fmt: skip


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 360
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    print(f"torch {torch.__version__}, {samples} samples per loader, 2 DataLoader workers, {dt.date.today()}")
    print(f"host check (before): {host_check():.2f} ms")
    if samples:
        bench_throughput(samples, 4)
    if frames:
        bench_export(frames)
    print(f"host check (after):  {host_check():.2f} ms")


if __name__ == "__main__":
    main()
