"""Entry points of the workflow's jobs: what each ``scripts/*.py`` adapter calls with the Snakemake values.

They set up logging, locate the archives (starting the embedded one in demo mode), and call the stage
functions. Keeping them here, not in the scripts, makes every job runnable and testable without Snakemake.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from .config import cadence_of, slot_tolerance_of, validate_config
from .fetch import fetch_days
from .paths import atomic_path
from .query import ArchiveContext, write_day_manifests
from .timegrid import parse_day

__all__ = ["archive_context", "configure_logging", "embedded_archive_url", "fetch_job", "query_job"]


def configure_logging(level: int = logging.INFO) -> None:
    """Log lines with time and module to stderr (the scripts point stderr at the rule's log file)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # its debug lines would carry full query strings


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
    )


def archive_context(config: dict) -> ArchiveContext:
    """The archive context of a job, after making sure the embedded archive runs when the config wants it."""
    return ArchiveContext.from_config(config, embedded_archive_url(config))


def _days(days: list[str]) -> list[dt.date]:
    return [parse_day(day) for day in days]


def query_job(config: dict, product: str, days: list[str], index_path: str) -> None:
    """One query job: per-day manifests of ``product`` for ``days`` and the span's index."""
    config = validate_config(config)
    write_day_manifests(product, _days(days), archive_context(config), config["output_root"], index_path)


def fetch_job(config: dict, product: str, days: list[str], slots_path: str, ledger_path: str, gate=None) -> None:
    """One fetch job: fill the slots of ``days`` and write the slot table and the ledger of rejections."""
    config = validate_config(config)
    slots, ledger = fetch_days(
        product, _days(days), archive_context(config), config["output_root"],
        cadence=cadence_of(config), tolerance=slot_tolerance_of(config), anchor=parse_day(config["date_start"]),
        gate=gate,
    )
    for table, path in ((slots, slots_path), (ledger, ledger_path)):
        with atomic_path(Path(path)) as tmp:
            table.to_csv(tmp, index=False)
