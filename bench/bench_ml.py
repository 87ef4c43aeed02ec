"""DataLoader throughput of the ML exports and the export stage's speed and memory, on synthetic synced files.

Run: ``.venv/bin/python bench/bench_ml.py [samples] [export_frames]`` (defaults 360 and 10000).

1. Throughput (samples/s through ``torch.utils.data.DataLoader(num_workers=2, batch_size=8)``, collated in the
   workers into shared memory, one epoch) for C channels of 256² and 512², each read these ways from the same
   synced rows, side by side in one run:

   - ``shards``: :class:`heliocube.ml.ShardDataset` over one-day shards, 12-minute cadence (120 samples per tar,
     each tar passed over once, frames read straight into the sample's image);
   - ``shard batch``: the same with ``batch_size=8`` (``DataLoader(batch_size=None)``): frames read straight into
     a shared-memory batch in the worker, no collation copy;
   - ``sdoml-lite``: SDOML-lite's own loader as it reads (:class:`SdomlLite`: a cached member index, the tar
     reopened for every member, ``np.load`` from a ``BytesIO``), shuffled: the baseline;
   - ``webdataset``: the library's stream alone (``np.load`` decoding, shards split by worker);
   - ``zarr``: :class:`heliocube.ml.ZarrDataset` over the Zarr store written with one-frame chunks, shuffled;
   - ``reopen+scan``: the earlier bench's baseline (a tar opened per sample, members looked up by name, which
     scans the tar's headers), dearer than SDOML-lite's loader;
   - ``ceiling``: no file, one copy of a resident image per sample: the DataLoader's own cost bounds every reader.

   Goal (issue 14): shards >= 5x sdoml-lite. Each line also gives the CPU milliseconds per sample (main process
   and workers): the wall rate follows the shared host's load, the CPU cost much less.
2. Export: rows/s (and frames/s: 8 per row) and the peak RSS of a fresh process writing the Zarr store with
   SDOML's 120-frame chunks (also one-frame chunks, and the shards, at the smaller size) from ``export_frames // 10``
   and ``export_frames`` rows x 8 channels of 512², 45 minutes apart (10,000 rows fit in one year group). Goal:
   RSS <= 500 MB, bounded by chunks, not by the number of frames (the two sizes side by side). The synthetic
   frames are a smooth disk on integer steps whose deflated chunks are written directly, so the 80,000-frame input
   takes about a minute and the figure is the writers' cost, not the disk's.

The ``host check`` lines (bench_clean's fixed single-core workload, before and after) tell a busy shared host from
a slow reader.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
import webdataset as wds
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clean import host_check
from bench_exports import write_exports

from heliocube.export.channels import channel_names
from heliocube.export.periods import shard_name
from heliocube.export.shards import read_shards
from heliocube.ml import ShardDataset, ZarrDataset

PRODUCTS = ["AIA131", "AIA171", "AIA193", "AIA211", "AIA304", "AIA335", "AIA1700", "HMI_720s"]
START = pd.Timestamp("2010-01-01T00:00")
TEXT = h5py.string_dtype()
#: SDOML-lite's cadence: a day's shard holds 120 samples, whose member headers a reopening reader scans each time.
CADENCE = "12min"


def write_synced(path: Path, products: list[str], n: int, size: int, *, cadence: str = "1h",
                 compression: str | None = None) -> None:
    """A synced file in the sync writer's layout: ``n`` rows of ``products`` at ``size``², a disk that brightens.

    With ``compression="gzip"`` the frames cycle through 97 brightness steps whose deflated chunks are made once
    and written with ``write_direct_chunk`` (the same bytes h5py's gzip filter writes), so 80,000 frames take
    about a minute instead of the ~11 minutes of compressing every frame.
    """
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
            if compression == "gzip":
                deflated = [zlib.compress((disk + (step + number)).tobytes(), 4) for step in range(min(n, 97))]
                for row in range(n):
                    data.id.write_direct_chunk((row, 0, 0), deflated[row % 97])
            else:
                noise = rng.normal(0, 1, (size, size)).astype(np.float32)
                for row in range(n):
                    data[row] = disk + noise * (row % 7 + 1)
            group["obs_time"] = iso
            group["dt_seconds"] = np.zeros(n)
            group["present"] = np.ones(n, bool)
            group["frames/record_id"] = np.array([f"{product}-{i}" for i in range(n)], dtype=object).astype(TEXT)
            group["frames/EXPTIME"] = np.full(n, 2.0)
            group["headers"] = np.array(["EXPTIME =                  2.0\nEND"] * n, dtype=object).astype(TEXT)


class SdomlLite(Dataset):
    """SDOML-lite's loader (oxai4science/sdoml-lite ``dataset.py``: ``TarRandomAccess``, ``WebDataset``,
    ``SDOMLlite``), reproduced as it reads.

    Its index (their pickle cache) maps every member name to ``(tar, TarInfo)``, built once here. A sample then
    reads every ``.npy`` member of its key, each by reopening the tar (``tarfile.open``, which probes gzip, bz2 and
    xz before plain tar) and ``extractfile(TarInfo)`` (a seek, no header scan), decodes ``np.load(BytesIO(...))``,
    stacks the channels and returns ``torch.from_numpy``. Our ``.json`` members are left out (theirs has none).
    """

    def __init__(self, shards: Path):
        self.index = {}
        for tar_file in sorted(shards.glob("*.tar")):
            with tarfile.open(tar_file) as tar:
                for info in tar.getmembers():
                    self.index[info.name] = (tar.name, info)
        self.samples: dict[str, list[str]] = {}
        for name in self.index:
            prefix, postfix = name.split(".", 1)
            if postfix.endswith(".npy"):
                self.samples.setdefault(prefix, []).append(postfix)
        self.prefixes = list(self.samples)

    def __len__(self) -> int:
        return len(self.prefixes)

    def __getitem__(self, item: int) -> dict:
        prefix = self.prefixes[item]
        frames = []
        for postfix in self.samples[prefix]:
            tar_file, info = self.index[f"{prefix}.{postfix}"]
            with tarfile.open(tar_file) as tar:
                data = io.BytesIO(tar.extractfile(info).read())
            frames.append(np.load(data))
        return {"image": torch.from_numpy(np.stack(frames)), "time": prefix}


class ReopenScan(Dataset):
    """The earlier bench's stand-in: one ``tarfile.open`` per sample, members looked up by name (``extractfile``
    of a name scans every header of the tar first). Dearer than SDOML-lite's own loader; kept for comparison."""

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


class Webdataset(IterableDataset):
    """webdataset's own stream over the shards (``read_shards``: tar stream, ``.npy`` decoded by ``np.load``), split
    by DataLoader worker (webdataset's ``split_by_worker``): what a user gets from the library alone."""

    def __init__(self, shards: Path, channels: list[str]):
        self.urls = [str(shards / name) for name in sorted(json.loads((shards / "index.json").read_text())["shards"])]
        self.keys = [f"{channel.lower()}.npy" for channel in channels]
        self.length = json.loads((shards / "index.json").read_text())["n_samples"]

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        for sample in read_shards(self.urls, nodesplitter=None, workersplitter=wds.split_by_worker):
            yield {"image": torch.from_numpy(np.stack([sample[key] for key in self.keys]))}


class Ceiling(IterableDataset):
    """No file at all: each sample is one copy of a resident ``(C, H, W)`` image, split between the workers. The
    DataLoader's own cost per sample (a fresh image, collation into shared memory, IPC) bounds any reader."""

    def __init__(self, n: int, channels: int, size: int):
        self.n, self.shape = n, (channels, size, size)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        template = np.random.default_rng(0).random(self.shape, dtype=np.float32)
        for _ in range(worker.id, self.n, worker.num_workers):
            yield {"image": torch.from_numpy(template.copy())}


def throughput(dataset, *, shuffle: bool | None = None) -> tuple[float, float]:
    """Samples per second of one epoch through a 2-worker DataLoader (batches of 8, collated in the workers), and
    the CPU milliseconds per sample of the main process and its workers together (reaped when the epoch ends): on a
    shared host the wall rate follows the load, the CPU cost much less."""
    batched = getattr(dataset, "batch_size", None) is not None  # ShardDataset(batch_size=8) batches itself
    loader = (DataLoader(dataset, batch_size=None, num_workers=2) if batched
              else DataLoader(dataset, batch_size=8, num_workers=2, shuffle=shuffle, collate_fn=collate))  # fmt: skip
    cpu = _cpu_seconds()
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += (batch["image"] if batched else batch).shape[0]
    elapsed = time.perf_counter() - start
    del loader  # its workers are joined at the end of the epoch: their CPU time is in RUSAGE_CHILDREN now
    assert count == len(dataset), (count, len(dataset))
    return count / elapsed, (_cpu_seconds() - cpu) / count * 1e3


def _cpu_seconds() -> float:
    usages = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def collate(samples: list[dict]) -> torch.Tensor:
    # default_collate stacks into shared memory when it runs in a worker, so the batch crosses to the main process
    # without a further copy (a plain torch.stack would be copied into shared memory when pickled)
    return default_collate([sample["image"] for sample in samples])


def bench_throughput(samples: int, channels: int) -> None:
    products = PRODUCTS[:channels]
    names = channel_names(products)
    for size in (256, 512):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_synced(root / "bench.h5", products, samples, size, cadence=CADENCE)
            write_exports(root / "bench.h5", root / "exports")
            shards = root / "exports" / "bench" / "shards"
            runs = {
                "shards": throughput(ShardDataset(shards, shuffle=True, seed=0)),
                "shard batch": throughput(ShardDataset(shards, shuffle=True, seed=0, batch_size=8)),
                "sdoml-lite": throughput(SdomlLite(shards), shuffle=True),
                "webdataset": throughput(Webdataset(shards, names)),
                "zarr": throughput(ZarrDataset(root / "exports" / "bench.zarr"), shuffle=True),
                "reopen+scan": throughput(ReopenScan(shards, names, samples, pd.Timedelta(CADENCE)), shuffle=True),
                "ceiling": throughput(Ceiling(samples, channels, size)),
            }
        check = host_check()
        base_rate, base_cpu = runs["sdoml-lite"]
        for what, (rate, cpu) in runs.items():
            megabytes = rate * channels * size * size * 4 / 2**20
            print(f"{channels} x {size}² {what:11s} {rate:7.1f} samples/s {megabytes:7.1f} MB/s "
                  f"({rate / base_rate:4.1f}x sdoml-lite), CPU {cpu:6.2f} ms/sample "
                  f"({base_cpu / cpu:4.1f}x less)   host check: {check:.2f} ms")  # fmt: skip
        best = max(("shards", "shard batch"), key=lambda what: runs[what][0])
        ratio = runs[best][0] / base_rate
        print(f"{channels} x {size}² {best}/sdoml-lite {ratio:.1f}x wall ({'meets' if ratio >= 5 else 'MISSES'} 5x), "
              f"{base_cpu / runs[best][1]:.1f}x in CPU per sample; ceiling/sdoml-lite "
              f"{runs['ceiling'][0] / base_rate:.1f}x wall, {base_cpu / runs['ceiling'][1]:.1f}x CPU   "
              f"host check: {check:.2f} ms")  # fmt: skip


#: The export job alone in a fresh interpreter (no torch imported), reporting its own peak RSS and time.
_EXPORT_CHILD = """
import resource, sys, time
from pathlib import Path
sys.path.insert(0, {bench!r})
import bench_exports
start = time.perf_counter()
bench_exports.write_exports(Path({synced!r}), Path({exports!r}), zarr_store={zarr}, shards={shards},
                            chunk_frames={chunk})
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
#: Shards are uncompressed (8 MiB a row here): the shard writer, one frame at a time, runs on at most this many rows.
SHARD_ROWS = 1000


def bench_export(frames: int) -> None:
    """The writers at ``frames // 10`` and ``frames`` rows: peak RSS must not grow with the rows."""
    for rows in sorted({max(frames // 10, 1), frames}):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            synced = root / "bench.h5"
            start = time.perf_counter()
            write_synced(synced, PRODUCTS, rows, 512, cadence="45min", compression="gzip")
            print(f"export: synthetic synced file of {rows} rows x 8 x 512² written in "
                  f"{time.perf_counter() - start:.0f} s ({synced.stat().st_size / 2**20:.0f} MB, gzip)")  # fmt: skip
            runs = [("zarr", 120)] + ([("zarr", 1)] if rows < frames or frames < 1000 else [])
            if rows <= SHARD_ROWS:
                runs.append(("shards", 1))
            for what, chunk in runs:
                out = root / what
                code = _EXPORT_CHILD.format(bench=str(Path(__file__).resolve().parent), synced=str(synced),
                                            exports=str(out), zarr=what == "zarr", shards=what == "shards",
                                            chunk=chunk)  # fmt: skip
                result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
                elapsed, peak = map(float, result.stdout.split()[-2:])
                shutil.rmtree(out)
                verdict = "meets" if peak <= 500 else "MISSES"
                label = f"{what} ({chunk}-frame chunks)" if what == "zarr" else what
                print(f"export {label:24s} {rows:6d} rows x 8 x 512²: {rows / elapsed:6.1f} rows/s "
                      f"({rows * 8 / elapsed:6.1f} frames/s), peak RSS {peak:4.0f} MB ({verdict} 500 MB)"
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
