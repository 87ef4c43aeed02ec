"""What is downstream of each job, its removal when a job starts, and a real run that fails, reruns and rebuilds.

Snakemake does not rebuild a missing intermediate file whose consumers' outputs exist, so a job that failed or
was killed (its outputs deleted by Snakemake) must not leave those consumers' outputs behind
(:mod:`heliocube.downstream`).
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
from pathlib import Path

import pytest
import yaml

from heliocube import jobs
from heliocube.archive.server import ArchiveServer, FaultConfig
from heliocube.config import validate_config
from heliocube.downstream import STAGES, clear_downstream, downstream_outputs, job_of, outputs_of

from .checksums import data_checksums
from .test_resilience import run, snakemake_command, write_config
from .test_workflow import REPO

V64, V32 = "64px-mean-6h", "32px-subsample-12h"
SYNC_BOTH = ["synced/both.h5", "synced/both.csv", "synced/both.ledger.csv"]
SYNC_HMI = ["synced/hmi-12h.h5", "synced/hmi-12h.csv", "synced/hmi-12h.ledger.csv"]
REPORT = ["report/index.html"]
ZARR_BOTH, ZARR_HMI = ["exports/both.zarr/zarr.json"], ["exports/hmi-12h.zarr/zarr.json"]
SPLITS_BOTH, SPLITS_HMI = ["exports/both/splits.csv"], ["exports/hmi-12h/splits.csv"]
SHARDS_BOTH = ["exports/both/shards/2010-12.index.json", "exports/both/shards/2011-01.index.json"]
SHARDS_HMI = ["exports/hmi-12h/shards/2010-12.index.json", "exports/hmi-12h/shards/2011-01.index.json"]
INDEX_BOTH, INDEX_HMI = ["exports/both/shards/index.json"], ["exports/hmi-12h/shards/index.json"]
NORM_BOTH, NORM_HMI = ["exports/both/normalization.json"], ["exports/hmi-12h/normalization.json"]
EVENT_DATASET = [f"events/flares/dataset/{name}" for name in ("labels.csv", "labels.tsv", "summary.csv", "summary.md",
                                                               "accounting.csv", "events.h5", "per_event", "sampling")]
#: One job of each stage in the config below.
SAMPLE_JOBS = {
    "query": {"product": "HMI_720s", "month": "2011-01"}, "fetch": {"product": "HMI_720s", "month": "2011-01"},
    "clean": {"variant": V32, "product": "HMI_720s", "month": "2011-01"},
    "cube": {"variant": V32, "product": "HMI_720s", "year": "2011"},
    "cube_master": {"variant": V32, "product": "HMI_720s"}, "seed_metadata": {"variant": V32, "product": "HMI_720s"},
    "sync": {"experiment": "both"}, "sync_prior_tool": {"experiment": "both"},
    "export_zarr": {"experiment": "both", "year": "2010"}, "export_zarr_consolidate": {"experiment": "both"},
    "export_splits": {"experiment": "hmi-12h"}, "export_shards": {"experiment": "both", "month": "2010-12"},
    "export_shard_index": {"experiment": "both"}, "export_stats": {"experiment": "hmi-12h", "year": "2010"},
    "export_normalization": {"experiment": "both"},
    "events_select": {"name": "flares"}, "events_frames": {"name": "flares", "event_id": "FL20101231T101500"},
    "events_dataset": {"name": "flares"},
    "params": {"variant": V32, "product": "HMI_720s", "year": "2011"}, "report": {},
}


@pytest.fixture
def config(tmp_path):
    """Two products, two variants, two months in two years, seeding of HMI, and two experiments (one of them
    also in the prior tool's layout)."""
    return validate_config({
        "products": ["EIT195", "HMI_720s"], "date_start": "2010-12-30", "date_finish": "2011-01-02",
        "output_root": str(tmp_path / "out"),
        "variants": [{"image_size": 64}, {"image_size": 32, "resize_method": "subsample", "cadence": "12h"}],
        "metadata_seeding": {"products": ["HMI_720s"]},
        "experiments": [{"name": "both", "products": ["EIT195", "HMI_720s"], "prior_tool_layout": True},
                        {"name": "hmi-12h", "products": ["HMI_720s"], "variant": V32}],
        "events": [{"name": "flares", "products": ["AIA131"]}],
    })


def relative(config, paths) -> list[str]:
    return [Path(p).relative_to(config["output_root"]).as_posix() for p in paths]


def test_a_fetch_job_has_everything_built_from_its_month_downstream_in_pipeline_order(config):
    assert relative(config, downstream_outputs(config, "fetch", product="HMI_720s", month="2011-01")) == [
        f"frames/{V64}/HMI_720s/2011-01.index.csv", f"frames/{V64}/HMI_720s/2011-01.ledger.csv",
        f"frames/{V32}/HMI_720s/2011-01.index.csv", f"frames/{V32}/HMI_720s/2011-01.ledger.csv",
        f"cubes/{V64}/HMI_720s/2011.h5", f"cubes/{V64}/HMI_720s/2011_times.csv",
        f"cubes/{V32}/HMI_720s/2011.h5", f"cubes/{V32}/HMI_720s/2011_times.csv",
        f"cubes/{V64}/HMI_720s.h5", f"cubes/{V64}/HMI_720s_times.csv",
        f"cubes/{V32}/HMI_720s.h5", f"cubes/{V32}/HMI_720s_times.csv",
        f"cubes/{V64}/HMI_720s.seeded.h5", f"cubes/{V32}/HMI_720s.seeded.h5",
        *SYNC_BOTH, *SYNC_HMI, "synced/both.prior-tool", "exports/both.zarr/2011", "exports/hmi-12h.zarr/2011",
        *ZARR_BOTH, *ZARR_HMI, *SPLITS_BOTH, *SPLITS_HMI, *SHARDS_BOTH, *SHARDS_HMI, *INDEX_BOTH, *INDEX_HMI,
        "exports/both/stats/2011.json", "exports/hmi-12h/stats/2011.json", *NORM_BOTH, *NORM_HMI, *REPORT]


@pytest.mark.parametrize(("stage", "wildcards", "expected"), [
    ("query", {"product": "EIT195", "month": "2010-12"}, [
        "raw/EIT195/2010-12.slots.csv", "raw/EIT195/2010-12.ledger.csv",
        f"frames/{V64}/EIT195/2010-12.index.csv", f"frames/{V64}/EIT195/2010-12.ledger.csv",
        f"frames/{V32}/EIT195/2010-12.index.csv", f"frames/{V32}/EIT195/2010-12.ledger.csv",
        f"cubes/{V64}/EIT195/2010.h5", f"cubes/{V64}/EIT195/2010_times.csv",
        f"cubes/{V32}/EIT195/2010.h5", f"cubes/{V32}/EIT195/2010_times.csv",
        f"cubes/{V64}/EIT195.h5", f"cubes/{V64}/EIT195_times.csv", f"cubes/{V32}/EIT195.h5",
        f"cubes/{V32}/EIT195_times.csv", *SYNC_BOTH, "synced/both.prior-tool",
        "exports/both.zarr/2010", "exports/both.zarr/2011", *ZARR_BOTH, *SPLITS_BOTH, *SHARDS_BOTH, *INDEX_BOTH,
        "exports/both/stats/2010.json", "exports/both/stats/2011.json", *NORM_BOTH, *REPORT]),
    # the other year's files are not built from this month; the month before's shards are (a row can match a frame
    # across the month's edge)
    ("clean", {"variant": V64, "product": "EIT195", "month": "2011-01"}, [
        f"cubes/{V64}/EIT195/2011.h5", f"cubes/{V64}/EIT195/2011_times.csv", f"cubes/{V64}/EIT195.h5",
        f"cubes/{V64}/EIT195_times.csv", *SYNC_BOTH, "synced/both.prior-tool", "exports/both.zarr/2011",
        *ZARR_BOTH, *SPLITS_BOTH, *SHARDS_BOTH, *INDEX_BOTH, "exports/both/stats/2011.json", *NORM_BOTH, *REPORT]),
    # no experiment syncs EIT at 32 px, and EIT is not seeded
    ("cube", {"variant": V32, "product": "EIT195", "year": "2010"},
     [f"cubes/{V32}/EIT195.h5", f"cubes/{V32}/EIT195_times.csv", *REPORT]),
    # the Zarr years read the synced file as `ancient`: a new master alone rewrites the splits, not the years
    ("cube_master", {"variant": V64, "product": "HMI_720s"},
     [f"cubes/{V64}/HMI_720s.seeded.h5", *SYNC_BOTH, "synced/both.prior-tool", *SPLITS_BOTH, *REPORT]),
    ("cube_master", {"variant": V32, "product": "HMI_720s"},
     [f"cubes/{V32}/HMI_720s.seeded.h5", *SYNC_HMI, *SPLITS_HMI, *REPORT]),
    ("seed_metadata", {"variant": V32, "product": "HMI_720s"}, REPORT),
    ("sync", {"experiment": "both"}, ["synced/both.prior-tool", *SPLITS_BOTH, *REPORT]),
    ("sync", {"experiment": "hmi-12h"}, [*SPLITS_HMI, *REPORT]),
    ("sync_prior_tool", {"experiment": "both"}, REPORT),
    ("export_zarr", {"experiment": "hmi-12h", "year": "2011"}, [*ZARR_HMI, *REPORT]),
    ("export_zarr_consolidate", {"experiment": "both"}, REPORT),
    ("export_splits", {"experiment": "both"}, REPORT),
    ("export_shards", {"experiment": "both", "month": "2010-12"}, [*INDEX_BOTH, *REPORT]),
    ("export_shard_index", {"experiment": "hmi-12h"}, REPORT),
    ("export_stats", {"experiment": "hmi-12h", "year": "2010"}, [*NORM_HMI, *REPORT]),
    ("export_normalization", {"experiment": "hmi-12h"}, REPORT),
    # the frame tables are read from events.csv by the checkpoint's consumers: only the dataset is known from config
    ("events_select", {"name": "flares"}, [*EVENT_DATASET, *REPORT]),
    ("events_frames", {"name": "flares", "event_id": "FL20101231T101500"}, [*EVENT_DATASET, *REPORT]),
    ("events_dataset", {"name": "flares"}, REPORT),
    ("report", {}, []),
])
def test_downstream_of_each_stage(config, stage, wildcards, expected):
    assert relative(config, downstream_outputs(config, stage, **wildcards)) == expected


def test_without_exports_nothing_downstream_is_an_export(config):
    config = {**config, "exports": {**config["exports"], "enabled": False}}
    assert relative(config, downstream_outputs(config, "cube", variant=V64, product="HMI_720s", year="2010")) == [
        f"cubes/{V64}/HMI_720s.h5", f"cubes/{V64}/HMI_720s_times.csv", f"cubes/{V64}/HMI_720s.seeded.h5",
        *SYNC_BOTH, "synced/both.prior-tool", *REPORT]
    assert relative(config, downstream_outputs(config, "sync", experiment="hmi-12h")) == REPORT


@pytest.mark.parametrize(("stage", "wildcards", "message"), [
    ("fetch", {"product": "EIT195", "month": "2010-11"}, "month='2010-11' is not a month of this config"),
    ("fetch", {"product": "AIA171", "month": "2010-12"}, "product='AIA171' is not a product"),
    ("cube", {"variant": V64, "product": "EIT195", "month": "2010-12"}, "takes wildcards"),
    ("merge", {}, "unknown stage"),
])
def test_a_job_the_config_does_not_have_is_an_error(config, stage, wildcards, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        downstream_outputs(config, stage, **wildcards)


def test_a_job_is_found_from_its_first_output_and_only_at_the_workflows_paths(config, tmp_path, monkeypatch):
    root = Path(config["output_root"])
    assert job_of(config, "cube", root / V64 / "x.h5") is None
    assert job_of(config, "cube", root / "cubes" / V64 / "EIT195" / "2011.h5") == {
        "variant": V64, "product": "EIT195", "year": "2011"}
    assert job_of(config, "cube", root / "cubes" / V64 / "EIT195" / "2012.h5") is None  # not a year of the range
    assert job_of(config, "fetch", tmp_path / "elsewhere" / "raw" / "EIT195" / "2010-12.slots.csv") is None
    assert job_of(config, "query", tmp_path / "q.index.csv") is None  # a job run by hand on paths of its own
    assert list(SAMPLE_JOBS) == list(STAGES)
    monkeypatch.chdir(tmp_path)
    relative_config = {**config, "output_root": "out"}  # as the workflow's demo has it: relative to the run
    for stage, wildcards in SAMPLE_JOBS.items():  # every job's first output leads back to it
        first = outputs_of(relative_config, stage, **wildcards)[0]
        assert job_of(relative_config, stage, first) == wildcards
        assert job_of(relative_config, stage, tmp_path / first) == wildcards


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_clearing_removes_the_downstream_outputs_only_and_logs_each(config, tmp_path, caplog):
    root = Path(config["output_root"])
    own = [touch(p) for p in outputs_of(config, "fetch", product="HMI_720s", month="2011-01")]
    downstream = downstream_outputs(config, "fetch", product="HMI_720s", month="2011-01")
    for path in downstream:  # the prior-tool folders and Zarr year groups are directories
        touch(path / "HMI_720s" / "zarr.json" if re.fullmatch(r"\d{4}|.+\.prior-tool", path.name) else path)
    precious = touch(tmp_path / "elsewhere" / "index.html")
    (root / "report" / "index.html").unlink()
    (root / "report" / "index.html").symlink_to(precious)  # a link is removed, never what it points to
    kept = [touch(root / p) for p in (
        "raw/HMI_720s/2011/2011-01-01/hmi.m_720s.20110101_000000_TAI.1.magnetogram.fits",  # the raw download cache
        "raw/HMI_720s/2011/2011-01-01.receipt.json", "manifests/HMI_720s/2011/2011-01-01.parquet",
        "manifests/HMI_720s/2011-01.index.csv", f"frames/{V64}/HMI_720s/2011/2011-01-01.fits",  # undeclared frames
        "raw/HMI_720s/2010-12.slots.csv", f"frames/{V64}/HMI_720s/2010-12.index.csv",  # another month's
        f"cubes/{V64}/HMI_720s/2010.h5", f"cubes/{V64}/EIT195.h5", "synced/other.h5",  # and year's, product's
        "exports/both.zarr/2010/HMI_720s/zarr.json")]
    with caplog.at_level(logging.INFO, logger="heliocube.downstream"):
        removed = clear_downstream(config, "fetch", own[0])
    assert removed == downstream
    assert not any(p.exists() or p.is_symlink() for p in downstream)
    assert all(p.exists() for p in [*own, *kept, precious])
    logged = re.findall(r"removed stale downstream output (\S+) so the next run rebuilds it", caplog.text)
    assert logged == [str(p) for p in downstream]
    assert clear_downstream(config, "fetch", own[0]) == []  # nothing left to remove
    assert clear_downstream(config, "fetch", tmp_path / "f.slots.csv") == []  # not a workflow job


def test_a_failing_job_leaves_nothing_built_from_its_outputs(config, caplog):
    root = Path(config["output_root"])
    variant = {"name": V64, "image_size": 64, "resize_method": "mean", "cadence": "6h", "calibration": {}}
    built = [touch(p) for p in downstream_outputs(config, "cube", variant=V64, product="HMI_720s", year="2011")
             if not re.fullmatch(r"\d{4}|.+\.prior-tool", p.name)]
    year_cube = root / "cubes" / V64 / "HMI_720s" / "2011.h5"
    with caplog.at_level(logging.INFO), pytest.raises(FileNotFoundError):  # its frame index is missing
        jobs.cube_job(config, "HMI_720s", variant, [str(root / "frames" / V64 / "HMI_720s" / "2011-01.index.csv")],
                      str(year_cube))
    assert not any(p.exists() for p in built)
    assert f"removed stale downstream output {root / 'report' / 'index.html'}" in caplog.text
    assert f"the job failed: {len(built) + 2} of the {len(built) + 2} outputs built from its outputs are missing" \
        in caplog.text  # the Zarr year group and the prior-tool folder were not there to remove
    built = [touch(p) for p in downstream_outputs(config, "cube_master", variant=V64, product="HMI_720s")
             if not p.name.endswith(".prior-tool")]
    with pytest.raises(FileNotFoundError):  # its year cube is missing
        jobs.master_job([str(year_cube)], str(root / "cubes" / V64 / "HMI_720s.h5"), config=config)
    assert not any(p.exists() for p in built)


def test_every_script_gives_its_job_the_config():
    """A job removes what is downstream only when it has the config: each script passes it, to its job in
    heliocube.jobs or to jobs.clearing_downstream around the entry point of its stage's package (the exports).
    The report has nothing downstream."""
    for script in sorted((REPO / "scripts").glob("*.py")):
        tree = ast.parse(script.read_text())
        calls = [c for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        wrapped = [c for c in calls if c.func.id == "clearing_downstream"]
        jobs_called = [c for c in calls if c.func.id != "clearing_downstream" and hasattr(jobs, c.func.id)
                       and "config" in inspect.signature(getattr(jobs, c.func.id)).parameters]
        given = [c for c in wrapped + jobs_called
                 if "snakemake.config" in [ast.unparse(a) for a in c.args] + [ast.unparse(k.value) for k in c.keywords]]
        if script.stem == "report":
            assert not given
        else:
            assert given, f"{script.name} runs its job without the config: nothing downstream would be removed"
        for call in wrapped:  # the stage named is the script's rule
            assert ast.literal_eval(call.args[1]) == script.stem, script.name


# ------------------------------------------------------------------------------------------- a real workflow run
def planned_jobs(workdir: Path, config_file: Path, *options: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run with ``options`` plans, in its order (``all`` left out)."""
    result = run(snakemake_command(workdir, config_file, "-n", *options))
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if match := re.fullmatch(r"(?:local)?rule (\w+):", line):
            jobs.append((match.group(1), []))
        elif line.startswith("output:") and jobs:
            jobs[-1][1].extend(p.strip() for p in line.removeprefix("output:").split(","))
    return [(rule, outputs) for rule, outputs in jobs if rule != "all"]


def check_listing_against_snakemake(workdir: Path, config_file: Path) -> int:
    """For every job of the workflow, what ``--forcerun`` on it plans is what :func:`downstream_outputs` lists."""
    config = validate_config(yaml.safe_load(config_file.read_text()))
    jobs = planned_jobs(workdir, config_file, "--forceall")
    for rule, own in jobs:
        assert rule in STAGES, f"rule {rule} is missing from heliocube.downstream.OUTPUTS (and consumers_of)"
        wildcards = job_of(config, rule, own[0])
        assert wildcards is not None and [str(p) for p in outputs_of(config, rule, **wildcards)] == own, (rule, own)
        planned = [p for _, outputs in planned_jobs(workdir, config_file, "--forcerun", own[0]) for p in outputs]
        listed = [str(p) for p in downstream_outputs(config, rule, **wildcards)]
        assert sorted(set(planned) - set(own)) == sorted(listed), f"downstream of {rule} {wildcards}"
    return len(jobs)


@pytest.mark.workflow
@pytest.mark.timeout(1200)
def test_a_failed_query_leaves_a_rerun_that_rebuilds_and_matches_a_clean_run(mission, tmp_path):
    """The archive is down while ``--forcerun query`` lists a day again: the query fails after its retries.
    Before, its month index was a missing intermediate and the rerun said "Nothing to be done" over the old
    slot tables, frames, cubes, synced files and report; now the rerun does the work, and once the archive is
    back the tree equals the clean run's."""
    with ArchiveServer(mission) as server:
        config_file = write_config(
            tmp_path, server, products=["EIT195"], variants=[{"image_size": 32, "resize_method": "mean"}],
            metadata_seeding={"products": []},
            experiments=[{"name": "eit", "products": ["EIT195"], "prior_tool_layout": True}])
        first = run(snakemake_command(tmp_path, config_file))
        assert first.returncode == 0, first.stderr[-3000:]
        root = tmp_path / "out"
        clean_run = data_checksums(root)
        assert check_listing_against_snakemake(tmp_path, config_file) >= 15  # every rule, exports included

        # a day's manifest is deleted so the query lists the day again (as the foreign_host hint says), and
        # the archive answers every request with a 500 meanwhile
        (root / "manifests" / "EIT195" / "2010" / "2010-10-15.parquet").unlink()
        server.faults = FaultConfig(rate=1.0, kinds=("http500",))
        failed = run(snakemake_command(tmp_path, config_file, "--forcerun", "query"))
        assert failed.returncode != 0
        assert not (root / "cubes" / "32px-mean-6h" / "EIT195.h5").exists()
        # the first attempt removed the files (its log is shown by the profile); the last one's log says so too
        assert "removed stale downstream output out/cubes/32px-mean-6h/EIT195.h5 so the next run rebuilds it" \
            in failed.stdout + failed.stderr
        config = validate_config(yaml.safe_load(config_file.read_text()))
        listed = len(downstream_outputs(config, "query", product="EIT195", month="2010-10"))
        assert f"the job failed: {listed} of the {listed} outputs built from its outputs are missing" \
            in (root / "logs" / "query" / "EIT195" / "2010-10.log").read_text()
        rerun = run(snakemake_command(tmp_path, config_file))
        assert "Nothing to be done" not in rerun.stdout + rerun.stderr
        assert rerun.returncode != 0  # the archive is still down

        server.faults = FaultConfig()
        restored = run(snakemake_command(tmp_path, config_file))
        assert restored.returncode == 0, restored.stderr[-3000:]
    assert data_checksums(root) == clean_run
    assert (root / "report" / "index.html").exists()
