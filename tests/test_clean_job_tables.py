"""The clean job reads its slot table and writes its frame index and ledger without pandas, and they are the bytes
the pandas path writes (``clean_days`` on ``pandas.read_csv`` of the same slot table, ``to_csv(index=False)``),
frames included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from heliocube.clean import clean_days, day_frames_path
from heliocube.variants import Variant

from .test_clean import MEAN_32
from .test_fetch import DAY, query_and_fetch

#: runs the clean job in a fresh interpreter; prints whether it imported pandas
JOB = ("import json, sys\nfrom heliocube.jobs import clean_job\n"
       "config, variant, paths = map(json.loads, sys.argv[1:])\n"
       "clean_job(config, 'HMI_720s', variant, [paths['day']], paths['slots'], paths['index'], paths['ledger'])\n"
       "print(json.dumps('pandas' in sys.modules))")


@pytest.fixture
def fetched(clean_context_for):
    """HMI_720s slots of one day, fetched without QC."""
    config, context = clean_context_for(products=["HMI_720s"])
    return config, query_and_fetch("HMI_720s", config, context)[0]


@pytest.mark.parametrize("variant", [MEAN_32, Variant("16px-subsample-12h", 16, "subsample", MEAN_32.cadence * 2, {})])
def test_the_clean_jobs_tables_are_the_pandas_paths_bytes_and_it_imports_no_pandas(fetched, tmp_path, variant):
    config, table = fetched
    root = config["output_root"]
    table = table.copy()  # JSOC: each slot's keywords are JSON (quotes, commas) in the slot table
    broken = Path(root, table["path"].iloc[2])  # 12:00, on both variants' grids
    broken.write_bytes(broken.read_bytes()[:1000])
    table.loc[table.index[2], "sha256"] = None  # a clean_failed ledger row (no recorded digest to refuse it by)
    slots_path = tmp_path / "2010-10.slots.csv"
    table.to_csv(slots_path, index=False)
    paths = {"day": DAY.isoformat(), "slots": str(slots_path), "index": str(tmp_path / "job.index.csv"),
             "ledger": str(tmp_path / "job.ledger.csv")}
    job = subprocess.run([sys.executable, "-c", JOB, json.dumps(config, default=str), json.dumps(variant.as_params()),
                          json.dumps(paths)], capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-3000:]
    assert json.loads(job.stdout.splitlines()[-1]) is False, "the clean job imported pandas"
    frames = day_frames_path(root, variant.name, "HMI_720s", DAY)
    job_frames = frames.read_bytes()

    index, ledger = clean_days("HMI_720s", variant, [DAY], pd.read_csv(slots_path), root, anchor=DAY)
    index.to_csv(tmp_path / "pandas.index.csv", index=False)
    ledger.to_csv(tmp_path / "pandas.ledger.csv", index=False)
    assert len(index) >= 1 and list(ledger["reason"]) == ["clean_failed"]
    assert Path(paths["index"]).read_bytes() == (tmp_path / "pandas.index.csv").read_bytes()
    assert Path(paths["ledger"]).read_bytes() == (tmp_path / "pandas.ledger.csv").read_bytes()
    assert frames.read_bytes() == job_frames
