"""Entry points of the workflow's jobs: what each ``scripts/*.py`` adapter calls with the Snakemake values.

Each script runs its job inside :func:`heliocube.logs.job_log` (the log, warnings, and one line naming the cause
of a failure, a full disk included). The jobs locate the archives (starting the embedded one in demo mode) and
call the stage functions. Keeping them here, not in the scripts, makes every job runnable and testable without
Snakemake.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import json
import logging
from pathlib import Path

from .config import cadence_of, config_hash, qc_thresholds_of, slot_tolerance_of, validate_config
from .downstream import downstream_cleared
from .logs import configure_logging  # here too: the entry points' logging set-up, beside the entry points
from .paths import atomic_path
from .timegrid import parse_day
from .variants import Variant

# Each job imports its stage's modules when it runs, so that a job's start costs only what its stage needs (no
# pandas, astropy, requests or the fetch stack where they are not used; tests/test_job_start.py).

__all__ = [
    "archive_context",
    "clean_job",
    "clearing_downstream",
    "configure_logging",
    "cube_job",
    "embedded_archive_url",
    "fetch_job",
    "master_job",
    "quality_gate",
    "query_job",
    "seed_job",
    "sync_job",
    "sync_prior_tool_job",
]


def _clears_downstream(stage: str, output: str):
    """Make a job of ``stage`` first remove every output built from its own (the one named by its argument
    ``output``, and the others): Snakemake has already deleted the job's outputs, and a rerun that finds them
    missing while their consumers' outputs exist would call those up to date, so a failed or killed job must
    leave the consumers' outputs missing too (see :mod:`heliocube.downstream`). A job given no config (run
    outside the workflow) removes nothing."""
    def decorate(job):
        signature = inspect.signature(job)

        @functools.wraps(job)
        def run(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs).arguments
            if arguments.get("config") is None:
                return job(*args, **kwargs)
            with downstream_cleared(validate_config(arguments["config"]), stage, arguments[output]):
                return job(*args, **kwargs)

        return run

    return decorate


@contextlib.contextmanager
def clearing_downstream(config: dict, stage: str, output: str):
    """Run a job whose entry point lives in its stage's package (the exports) as the jobs here run: with every
    output built from its own removed first, ``output`` being its first declared output (see
    :func:`_clears_downstream`)."""
    with downstream_cleared(validate_config(config), stage, output):
        yield


def embedded_archive_url(config: dict) -> str | None:
    """In demo mode, the URL of a running embedded archive (started here if none answers); else None."""
    if config["mode"] != "demo":
        return None
    archive = config["archive"]
    if archive.get("embedded_url"):
        return archive["embedded_url"]
    from .archive.cli import ensure_running  # the server's imports are only needed in demo mode

    return ensure_running(
        f"http://127.0.0.1:{archive['embedded_port']}/",
        frame_size=archive["embedded_frame_size"],
        seed=archive["embedded_seed"],
        workdir=Path(config["output_root"], "embedded-archive"),
        network=archive.get("network"),
    )


def archive_context(config: dict):
    """The archive context (:class:`heliocube.query.ArchiveContext`) of a job, after making sure the embedded
    archive runs when the config wants it."""
    from .query import ArchiveContext

    return ArchiveContext.from_config(config, embedded_archive_url(config))


def _days(days: list[str]) -> list[dt.date]:
    return [parse_day(day) for day in days]


@_clears_downstream("query", output="index_path")
def query_job(config: dict, product: str, days: list[str], index_path: str) -> None:
    """One query job: per-day manifests of ``product`` for ``days`` and the span's index."""
    from .query import write_day_manifests

    config = validate_config(config)
    write_day_manifests(product, _days(days), archive_context(config), config["output_root"], index_path)


def quality_gate(config: dict, product: str):
    """The QC gate of ``product`` as configured (``qc.enabled`` false: accept every whole, readable file)."""
    if not config["qc"]["enabled"]:
        from .fetch.gate import AcceptAll

        return AcceptAll()
    from .handoff import HandoffSpec, HandoffWriter
    from .qc import FrameQC
    from .qc.layouts import LayoutStore
    from .variants import variants_of

    spec = HandoffSpec.for_variants(variants_of(config))  # the frame QC decoded, kept for the clean stage
    writer = None if spec is None else HandoffWriter(config["output_root"], spec)
    # the header layouts earlier jobs checked against sunpy: a job imports sunpy (~1.6-1.9 s CPU) only for a new one
    return FrameQC(product, qc_thresholds_of(config, product), handoff=writer,
                   layouts=LayoutStore.under(config["output_root"]))


def _write_tables(*pairs) -> None:
    for table, path in pairs:
        with atomic_path(Path(path)) as tmp:
            table.to_csv(tmp, index=False)


@_clears_downstream("fetch", output="slots_path")
def fetch_job(config: dict, product: str, days: list[str], slots_path: str, ledger_path: str) -> None:
    """One fetch job: fill the slots of ``days`` and write the slot table and the ledger of rejections."""
    from .allocator import fix_malloc_thresholds
    from .fetch import fetch_days

    # QC handles one large frame after another: their temporaries reuse memory instead of page-faulting it afresh
    fixed = fix_malloc_thresholds()
    logging.getLogger(__name__).info("malloc thresholds: %s",
                                     "fixed (mmap 32 MB, trim 128 MB)" if fixed else "the C library's own")
    config = validate_config(config)
    slots, ledger = fetch_days(
        product, _days(days), archive_context(config), config["output_root"],
        cadence=cadence_of(config), tolerance=slot_tolerance_of(config), anchor=parse_day(config["date_start"]),
        gate=quality_gate(config, product),
    )
    _write_tables((slots, slots_path), (ledger, ledger_path))


@_clears_downstream("clean", output="index_path")
def clean_job(config: dict, product: str, variant: dict, days: list[str], slots_path: str, index_path: str,
              ledger_path: str) -> None:
    """One clean job: the month's kept slots as calibrated, resized frames of ``variant`` (its params dict).

    Its tables are read and written as rows (:mod:`heliocube.tablecsv`, the bytes pandas would write): no pandas."""
    from .clean import INDEX_COLUMNS, check_cache_ledger, clean_slot_rows
    from .fetch.gate import LEDGER_COLUMNS
    from .tablecsv import read_rows, write_rows

    config = validate_config(config)
    index, ledger = clean_slot_rows(
        product, Variant.from_params(variant), _days(days), read_rows(slots_path), config["output_root"],
        anchor=parse_day(config["date_start"]), per_frame_fits=config["outputs"]["per_frame_fits"],
    )
    check_cache_ledger(ledger, config["output_root"])  # a raw file changed since its fetch fails the job, loudly
    write_rows(index, INDEX_COLUMNS, index_path)
    write_rows(ledger, LEDGER_COLUMNS, ledger_path)


@_clears_downstream("cube", output="cube_path")
def cube_job(config: dict, product: str, variant: dict, index_paths: list[str], cube_path: str) -> None:
    """One cube job: the year's frames of one product-variant streamed into an HDF5 cube (+ times CSV)."""
    from .assemble import build_year_cube
    from .registry import get_product

    config = validate_config(config)
    spec = Variant.from_params(variant)
    attrs = {"variant": spec.name, "product": product, "config_hash": config_hash(config),
             "image_size": spec.image_size, "resize_method": spec.resize_method,
             "cadence": variant["cadence"], "calibration": json.dumps(spec.calibration, sort_keys=True)}
    n = build_year_cube(index_paths, config["output_root"], cube_path, frame_size=spec.image_size,
                        units=get_product(product).units, attrs=attrs, compression=config["cube"])
    logging.getLogger(__name__).info("%s: %d frames", cube_path, n)


@_clears_downstream("cube_master", output="master_path")
def master_job(year_paths: list[str], master_path: str, config: dict | None = None) -> None:
    """The product-variant master cube over its per-year cubes (HDF5 virtual datasets) and its times CSV
    (``config``: the workflow's, for the removal of what is built from the master)."""
    from .assemble import build_product_master

    build_product_master(master_path, year_paths)


@_clears_downstream("sync", output="synced_path")
def sync_job(config: dict, experiment: dict, cube_paths: list[str], synced_path: str, ledger_path: str) -> None:
    """One sync job: the experiment's master cubes onto one time axis (``experiment`` is its params dict)."""
    from .cube import compression_options
    from .sync import sync_experiment

    config = validate_config(config)
    result = sync_experiment(
        synced_path, dict(zip(experiment["products"], cube_paths, strict=True)),
        experiment=experiment["name"], start=experiment["date_start"], finish=experiment["date_finish"],
        step=experiment["step"], tolerance=experiment["tolerance"], anchor=config["date_start"],
        keep_missing=experiment["keep_missing"], running_difference=experiment["running_difference"],
        difference_products=experiment["difference_products"], max_gap=experiment["max_gap"],
        config_hash=config_hash(config), attrs={"variant": experiment["variant"]},
        **compression_options(config["cube"]),
    )
    _write_tables((result.table.ledger, ledger_path))
    logging.getLogger(__name__).info("%s: %d synced rows, %d ledger rows", synced_path, len(result.table.time),
                                     len(result.table.ledger))


@_clears_downstream("sync_prior_tool", output="directory")
def sync_prior_tool_job(synced_path: str, directory: str, config: dict | None = None) -> None:
    """The prior tool's per-product synced files, written into ``directory`` (created here; ``config``: the
    workflow's, for the removal of what is built from it)."""
    import os
    import shutil

    from .sync.prior_tool import write_prior_tool_files

    target = Path(directory)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        write_prior_tool_files(synced_path, partial)
        os.replace(partial, target)  # the directory appears complete or not at all
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@_clears_downstream("seed_metadata", output="seeded_path")
def seed_job(config: dict, product: str, cube_path: str, seeded_path: str) -> None:
    """One seeding job: the archive keywords of the cube's records attached to a new cube file."""
    from .seeding import seed_metadata

    config = validate_config(config)
    options = config["metadata_seeding"]
    result = seed_metadata(cube_path, seeded_path, archive_context(config), product=product,
                           keywords=options["keywords"], batch_size=options["batch_size"])
    logging.getLogger(__name__).info("%s: %d rows seeded from %s in %d batches", seeded_path, result.n_rows,
                                     result.series, result.n_batches)
