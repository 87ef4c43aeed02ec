"""WebDataset shards of a synced experiment: bit-for-bit rows, SDOML-lite names, index, streaming, float16."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tarfile

import h5py
import numpy as np
import pytest

from heliocube.export.periods import export_month_params, month_shard_days, shard_name
from heliocube.export.shards import merge_shard_index, read_shards, write_month_shards

from .synced_fixture import make_synced

CHANNELS = ["AIA_0171", "LASCO_C2"]


def write_all(synced, out, period_days=1, float16=False, start="2010-12-30", finish="2011-01-02"):
    parts = []
    for month in ("2010-12", "2011-01"):
        names = [shard_name(d) for d in month_shard_days(month, start, finish, period_days)]
        parts.append(out / f"{month}.index.json")
        write_month_shards(synced, parts[-1], names, period_days=period_days, float16=float16)
    return merge_shard_index(parts, out / "index.json")


def synced_rows(path):
    with h5py.File(path, "r") as f:
        times = [t.decode() for t in f["time"][()]]
        return times, {c: f[p]["data"][()] for c, p in zip(CHANNELS, ["AIA171", "LASCO_C2"], strict=True)}


@pytest.fixture(params=[False, True], ids=["plain", "difference"])
def synced(tmp_path, request):
    return make_synced(tmp_path, difference=request.param)


def test_shards_stream_the_synced_rows_bit_for_bit(synced, tmp_path):
    out = tmp_path / "shards"
    index = write_all(synced, out)
    times, frames = synced_rows(synced)
    samples = list(read_shards(sorted(out.glob("*.tar")), shardshuffle=False))
    assert [s["__key__"] for s in samples] == [dt.datetime.fromisoformat(t).strftime("%Y/%m/%d/%H%M") for t in times]
    for i, sample in enumerate(samples):
        for channel in CHANNELS:
            got = sample[f"{channel.lower()}.npy"]
            assert got.dtype == np.float32
            assert got.tobytes() == frames[channel][i].tobytes()  # bit for bit, NaN and negative values included
        meta = sample["json"]
        assert meta["time"] == f"{times[i]}Z" and meta["channels"] == CHANNELS
        assert meta["frames"]["AIA_0171"]["record"].startswith("rec-1-")
        assert meta["frames"]["AIA_0171"]["header"]["EXPTIME"] in (1.0, 2.0, 3.0)
    # the index counts every row, one shard per day of the range (2010-12-30 .. 2011-01-02)
    per_day = {f"{day}.tar": sum(t.startswith(day) for t in times)
               for day in ("2010-12-30", "2010-12-31", "2011-01-01", "2011-01-02")}
    assert index["shards"] == per_day and sum(per_day.values()) == len(times)
    assert index["n_samples"] == len(times) and index["channels"] == CHANNELS and index["dtype"] == "float32"
    for name, digest in index["sha256"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_members_are_named_as_sdoml_lite_and_reruns_are_byte_identical(tmp_path):
    synced = make_synced(tmp_path)
    first = write_all(synced, tmp_path / "a")
    second = write_all(synced, tmp_path / "b")
    assert first["sha256"] == second["sha256"]
    with tarfile.open(tmp_path / "a" / "2010-12-30.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members[:3]] == ["2010/12/30/0000.AIA_0171.npy", "2010/12/30/0000.LASCO_C2.npy",
                                             "2010/12/30/0000.json"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, "", "", 0o644)}
    assert members[0].mtime == int(dt.datetime(2010, 12, 30, tzinfo=dt.UTC).timestamp())


def test_shard_shuffle_reorders_shards_and_loses_no_sample(tmp_path):
    synced = make_synced(tmp_path)
    out = tmp_path / "shards"
    write_all(synced, out)
    urls = sorted(out.glob("*.tar"))
    ordered = [s["__key__"] for s in read_shards(urls, shardshuffle=False)]
    orders = {tuple(s["__key__"] for s in read_shards(urls, shardshuffle=10, seed=seed)) for seed in range(6)}
    assert all(sorted(order) == ordered for order in orders)
    assert len(orders) > 1  # some seed puts another day first
    # samples stay whole: a shard's four rows stay together in time order
    for order in orders:
        days = [key[:10] for key in order]
        assert all(days[i] == days[i - i % 4] for i in range(len(days)))


def test_float16_option_halves_the_frames(tmp_path, caplog):
    synced = make_synced(tmp_path)
    index = write_all(synced, tmp_path / "half", float16=True)
    _, frames = synced_rows(synced)
    assert index["dtype"] == "float16"
    sample = next(iter(read_shards(sorted((tmp_path / "half").glob("*.tar")))))
    aia = sample["aia_0171.npy"]
    assert aia.dtype == np.float16
    np.testing.assert_array_equal(aia, frames["AIA_0171"][0].astype(np.float16))
    # LASCO brightness (~1e-9) is below float16's range: the log says so
    assert "float16 turned" in caplog.text


def test_longer_periods_start_on_the_first_of_each_month():
    days = month_shard_days("2010-10", "2010-10-09", "2010-10-31", 7)
    assert days == [dt.date(2010, 10, d) for d in (8, 15, 22, 29)]
    params = export_month_params({"products": ["AIA171"], "date_start": "2010-10-09", "date_finish": "2010-11-05",
                                  "variant": "v", "step": "6h"}, "2010-10", {"period": "7d", "float16": False})
    assert params["shard_names"] == ["2010-10-08.tar", "2010-10-15.tar", "2010-10-22.tar", "2010-10-29.tar"]
    assert (params["first_day"], params["last_day"]) == ("2010-10-09", "2010-10-31")


def test_weekly_shards_hold_their_days_and_stale_tars_go(tmp_path):
    synced = make_synced(tmp_path)
    out = tmp_path / "shards"
    write_all(synced, out, period_days=1)
    index = write_all(synced, out, period_days=7)
    assert index["shards"] == {"2010-12-29.tar": 8, "2011-01-01.tar": 8}  # Dec 29-31 and Jan 1-7 of the range
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(index["shards"])


def test_a_missing_shard_is_named_by_the_index_merge(tmp_path):
    synced = make_synced(tmp_path)
    out = tmp_path / "shards"
    write_all(synced, out)
    (out / "2010-12-31.tar").unlink()
    with pytest.raises(ValueError, match=r"2010-12-31.tar is missing.*remove .*2010-12.index.json"):
        merge_shard_index([out / "2010-12.index.json", out / "2011-01.index.json"], out / "index.json")
    assert json.loads((out / "2010-12.index.json").read_text())["shards"]["2010-12-31.tar"] == 4
