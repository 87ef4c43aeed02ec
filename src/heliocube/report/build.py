"""Build the QC and coverage report of an output tree: :func:`build_report`."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

import pandas as pd

from ..paths import atomic_path
from . import collect, figures
from .cubes import master_cubes, sample_cube, synced_abs_dt, synced_files
from .html import Facts, Figure, Section, Table, Text, ThumbnailGrid, render_page
from .params import params_blocks
from .thumbnails import display_settings, thumbnail_png

__all__ = ["SECTIONS", "build_report"]

log = logging.getLogger(__name__)

#: The page's sections in order, as (anchor id, title); every report has all of them, empty ones say so.
SECTIONS = (
    ("overview", "Overview"),
    ("coverage", "Coverage"),
    ("rejections", "Rejections over time"),
    ("sync-dt", "Synced |dt|"),
    ("thumbnails", "Thumbnails"),
    ("params", "Image parameters"),
    ("runtimes", "Runtimes"),
    ("ledgers", "Ledgers"),
)
#: Rejection counts are shown per day up to this many days, per month beyond.
MAX_DAILY_BARS = 120
_LEDGER_COLUMNS = ["product", "day", "slot", "record_id", "time_utc", "reason", "value", "detail"]


def _status_counts(slots: pd.DataFrame) -> dict[str, int]:
    counts = slots["status"].value_counts()
    return {status: int(counts.get(status, 0)) for status in ("ok", "failed", "empty")}


def _overview(root: Path, slots, fetch_ledger, clean_ledger, sync_ledger, samples, experiments) -> list:
    counts = _status_counts(slots)
    days = sorted(set(slots["day"]))
    hashes = sorted({s.attrs["config_hash"] for s in samples if "config_hash" in s.attrs})
    versions = sorted({s.attrs["version_heliocube"] for s in samples if "version_heliocube" in s.attrs})
    dropped = sync_ledger.loc[sync_ledger["dropped"].astype(str) == "True"] if len(sync_ledger) else sync_ledger
    facts = [
        ("Output root", str(root)),
        ("Products", ", ".join(dict.fromkeys(slots["product"])) or "none"),
        ("Days", f"{days[0]} to {days[-1]} ({len(days)} days)" if days else "none"),
        ("Slots", f"{len(slots)}: {counts['ok']} filled, {counts['failed']} every candidate rejected, "
                  f"{counts['empty']} without a candidate"),
        ("Rejected candidates (fetch QC)", str(len(fetch_ledger))),
        ("Slots the clean stage could not clean", str(len(clean_ledger))),
        ("Variants", ", ".join(dict.fromkeys(s.variant for s in samples)) or "none"),
        ("Synced experiments", ", ".join(experiments) or "none"),
        ("Synced rows dropped (product, time)", str(len(dropped))),
        ("Config hash", ", ".join(hashes) or "unknown"),
        ("heliocube version", ", ".join(versions) or "unknown"),
        ("Report built", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    return [Facts(facts)]


def _coverage(slots, fetch_ledger) -> list:
    if slots.empty:
        return [Text("No slot tables (raw/{product}/{YYYY-MM}.slots.csv) under this root.")]
    coverage = collect.coverage_by_day(collect.slot_states(slots, fetch_ledger))
    return [Figure(figures.coverage_heatmap(coverage), "Coverage heatmap, product by day",
                   "Green: every slot of the day holds a frame. Otherwise the cell takes the most common state of the "
                   "day's unfilled slots (ties: a rejection first): 'rejected: <reason>' when every candidate of a "
                   "slot was rejected (the slot's most common reason), 'empty' when the archive listed no "
                   "candidate in the slot's window. White: no slot that day.")]


def _rejections(fetch_ledger) -> list:
    if fetch_ledger.empty:
        return [Text("No candidate was rejected by the fetch stage's QC.")]
    span = pd.to_datetime(fetch_ledger["day"])
    daily = (span.max() - span.min()).days < MAX_DAILY_BARS
    counts = collect.rejections_by_period(fetch_ledger, "D" if daily else "M")
    per_product = pd.crosstab(fetch_ledger["product"], fetch_ledger["reason"]).rename_axis(columns=None)
    per_product = per_product.reset_index()
    return [
        Figure(figures.rejections_over_time(counts), "Rejected candidates over time by reason",
               f"Candidates rejected per {'day' if daily else 'month'}, by reason. A rejected candidate makes its "
               "slot fall back to the next-ranked one, so rejections need not leave a slot unfilled."),
        Table(per_product, "Rejected candidates per product and reason"),
    ]


def _sync_dt(paths) -> list:
    if not paths:
        return [Text("No synced experiments under this root.")]
    blocks = []
    for path in paths:
        synced = synced_abs_dt(path)
        blocks.append(Figure(figures.dt_histograms(synced), f"|dt| histograms of {synced.experiment}",
                             f"{synced.experiment}: for every kept row, |observation time - axis time| of each "
                             "product's frame (dashed: the matching tolerance, when in range)."))
    return blocks


def _thumbnails(samples) -> list:
    if not samples:
        return [Text("No cubes under this root.")]
    blocks = [Text("Frames picked evenly over each master cube (first and last included), north up, in the "
                   "instrument's sunpy colormap, each clipped at its own 1st and 99.5th percentiles (magnetograms: "
                   "symmetric about zero).")]
    for sample in samples:
        items = [(thumbnail_png(frame, header, sample.product), slot[:16].replace("T", " "))
                 for frame, header, slot in zip(sample.frames, sample.headers, sample.slot_times, strict=True)]
        cmap = display_settings(sample.frames[0], sample.headers[0], sample.product)[0].name if items else "-"
        height, width = sample.frame_shape
        blocks.append(ThumbnailGrid(f"{sample.product} · {sample.variant}", items,
                                    f"{sample.n_frames} frames of {height}x{width} px; colormap {cmap}"))
    return blocks


def _runtimes(bench) -> list:
    if bench.empty:
        return [Text("No benchmarks (benchmarks/{rule}/...tsv) under this root.")]
    return [Figure(figures.runtimes(bench), "Job runtimes per rule",
                   "Wall time of each job from Snakemake's benchmark files (the report's own job is not shown)."),
            Table(collect.runtime_summary(bench), "Runtime per rule (s; memory: largest resident set, MB)")]


def _table_or_text(table: pd.DataFrame, caption: str, source: str, max_rows: int) -> list:
    if table.empty:
        return [Text(f"{caption}: no rows.")]
    return [Table(table, caption, max_rows=max_rows, source=source)]


def _ledgers(fetch_ledger, clean_ledger, sync_ledger, max_rows: int) -> list:
    return [
        *_table_or_text(fetch_ledger, "Fetch QC ledger: every rejected candidate with its reason and value",
                        "raw/{product}/{YYYY-MM}.ledger.csv", max_rows),
        *_table_or_text(clean_ledger, "Clean-stage ledger: slots whose raw file could not be cleaned",
                        "frames/{variant}/{product}/{YYYY-MM}.ledger.csv", max_rows),
        *_table_or_text(sync_ledger, "Sync ledgers: axis times a product could not fill",
                        "synced/{experiment}.ledger.csv", max_rows),
    ]


def build_report(root: str | os.PathLike, output_path: str | os.PathLike, *, thumbnails_per_cube: int = 6,
                 max_table_rows: int = 500, title: str | None = None) -> Path:
    """Write the QC and coverage report of an output tree as one self-contained HTML file.

    Parameters
    ----------
    root : path-like
        The workflow's output root (``output_root``): its ``raw/``, ``frames/``, ``cubes/``, ``synced/`` and
        ``benchmarks/`` are read, whatever of them exists.
    output_path : path-like
        The HTML file to write (atomically), e.g. ``{root}/report/index.html``.
    thumbnails_per_cube : int
        Frames shown per product and variant.
    max_table_rows : int
        Rows shown per ledger table; the page says where the rest is.
    title : str, optional
        Page title; by default names the root.

    Returns
    -------
    pathlib.Path
        ``output_path``.

    Notes
    -----
    The sections are :data:`SECTIONS`: an overview, a product x day coverage map, rejection reasons over time,
    per-product |dt| histograms of each synced experiment, thumbnail grids per product and variant, per-rule job
    runtimes, and the fetch, clean and sync ledgers as tables. Images are embedded as base64 PNG; the page loads
    nothing else.
    """
    root, output_path = Path(root), Path(output_path)
    started = time.perf_counter()
    slots, fetch_ledger = collect.slot_tables(root), collect.fetch_ledgers(root)
    clean_ledger, sync_ledger = collect.clean_ledgers(root), collect.sync_ledgers(root)
    fetch_ledger = fetch_ledger[[c for c in _LEDGER_COLUMNS if c in fetch_ledger.columns]]
    samples = [sample_cube(path, thumbnails_per_cube) for path in master_cubes(root)]
    synced = synced_files(root)
    log.info("read %d slots, %d ledger rows, %d cubes, %d synced files in %.1f s", len(slots), len(fetch_ledger),
             len(samples), len(synced), time.perf_counter() - started)
    builders = {
        "overview": lambda: _overview(root, slots, fetch_ledger, clean_ledger, sync_ledger, samples,
                                      [p.stem for p in synced]),
        "coverage": lambda: _coverage(slots, fetch_ledger),
        "rejections": lambda: _rejections(fetch_ledger),
        "sync-dt": lambda: _sync_dt(synced),
        "thumbnails": lambda: _thumbnails(samples),
        "params": lambda: params_blocks(root),
        "runtimes": lambda: _runtimes(collect.benchmarks(root)),
        "ledgers": lambda: _ledgers(fetch_ledger, clean_ledger, sync_ledger, max_table_rows),
    }
    sections = []
    for anchor, heading in SECTIONS:
        began = time.perf_counter()
        sections.append(Section(anchor, heading, builders[anchor]()))
        log.info("section %s in %.1f s", anchor, time.perf_counter() - began)
    page = render_page(title or f"heliocube report: {root}", sections)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("wrote %s (%.0f kB) in %.1f s", output_path, len(page) / 1024, time.perf_counter() - started)
    return output_path
