"""What the report shows, gathered from an output tree: pure reading, nothing is written.

The tables come from the files the stages write (README "Outputs"): the fetch stage's slot tables
``raw/{product}/{YYYY-MM}.slots.csv`` and QC ledgers ``raw/{product}/{YYYY-MM}.ledger.csv``, the clean stage's
ledgers ``frames/{variant}/{product}/{YYYY-MM}.ledger.csv``, the sync ledgers ``synced/{experiment}.ledger.csv`` and
Snakemake's benchmark TSVs ``benchmarks/{rule}/...tsv``. Every reader returns a :class:`pandas.DataFrame` with its
columns also when no file exists, so an empty stage is an empty table, never an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..fetch.run import LEDGER_COLUMNS, SLOT_COLUMNS

__all__ = [
    "BENCHMARK_COLUMNS",
    "EMPTY",
    "FILLED",
    "benchmarks",
    "clean_ledgers",
    "coverage_by_day",
    "fetch_ledgers",
    "rejected_state",
    "rejections_by_period",
    "runtime_summary",
    "slot_states",
    "slot_tables",
    "sync_ledgers",
]

#: Slot states of the coverage map besides ``rejected_state(reason)``.
FILLED, EMPTY = "filled", "empty"
#: Columns of :func:`benchmarks`: the rule, the job's benchmark file (relative to the root) and Snakemake's
#: measurements (``s`` wall seconds, ``max_rss`` MB, ``cpu_time`` seconds).
BENCHMARK_COLUMNS = ["rule", "job", "s", "max_rss", "cpu_time"]
_SYNC_LEDGER_COLUMNS = ["experiment", "product", "time", "reason", "dropped"]


def rejected_state(reason: str) -> str:
    """The coverage state of a slot whose every candidate was rejected, ``reason`` the most common rejection."""
    return f"rejected: {reason}"


def _read_csvs(paths: list[Path], columns: list[str], **extra: list[str]) -> pd.DataFrame:
    """Concatenate CSV files (text columns kept as text); ``extra`` adds one column per keyword, a value per file."""
    tables = []
    for i, path in enumerate(paths):
        table = pd.read_csv(path, dtype={"record_id": str, "detail": str, "reason": str, "value": str})
        for name, values in extra.items():
            table.insert(0, name, values[i])
        tables.append(table)
    wanted = [*extra, *columns]
    if not any(len(table) for table in tables):
        return pd.DataFrame({name: pd.Series(dtype=object) for name in wanted})
    table = pd.concat([t for t in tables if len(t)], ignore_index=True)
    return table[[name for name in wanted if name in table.columns]]


def slot_tables(root: str | os.PathLike) -> pd.DataFrame:
    """Every slot the fetch stage filled or tried: the month slot tables of every product, in file order.

    Parameters
    ----------
    root : path-like
        The output root (``output_root`` of the config).

    Returns
    -------
    pandas.DataFrame
        The fetch stage's slot columns (``product, day, slot, status, record_id, dt_seconds, n_rejected, ...``);
        ``status`` is ``ok``, ``failed`` (every candidate rejected) or ``empty`` (no candidate).
    """
    return _read_csvs(sorted(Path(root).glob("raw/*/*.slots.csv")), SLOT_COLUMNS)


def fetch_ledgers(root: str | os.PathLike) -> pd.DataFrame:
    """The fetch stage's QC ledgers: one row per rejected candidate (``product, day, slot, reason, value, ...``)."""
    return _read_csvs(sorted(Path(root).glob("raw/*/*.ledger.csv")), LEDGER_COLUMNS)


def clean_ledgers(root: str | os.PathLike) -> pd.DataFrame:
    """The clean stage's ledgers (slots whose raw file could not be cleaned), with a ``variant`` column."""
    paths = sorted(Path(root).glob("frames/*/*/*.ledger.csv"))
    return _read_csvs(paths, LEDGER_COLUMNS, variant=[path.parent.parent.name for path in paths])


def sync_ledgers(root: str | os.PathLike) -> pd.DataFrame:
    """The sync ledgers: one row per (product, axis time) an experiment could not fill, with ``experiment``."""
    paths = sorted(Path(root).glob("synced/*.ledger.csv"))
    return _read_csvs(paths, _SYNC_LEDGER_COLUMNS[1:],
                      experiment=[path.name.removesuffix(".ledger.csv") for path in paths])


def slot_states(slots: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """The coverage state of every slot: ``filled``, ``empty`` or ``rejected: <reason>``.

    Parameters
    ----------
    slots : pandas.DataFrame
        Slot rows (:func:`slot_tables`).
    ledger : pandas.DataFrame
        Rejections (:func:`fetch_ledgers`).

    Returns
    -------
    pandas.DataFrame
        ``product, day, slot, state``. A slot with no accepted candidate takes the most common reason among its
        rejections (ties: alphabetical), ``unknown`` if the ledger has none for it.
    """
    out = slots[["product", "day", "slot"]].copy()
    if ledger.empty:
        reasons = pd.Series(dtype=object)
    else:
        reasons = ledger.groupby(["product", "slot"])["reason"].agg(lambda r: r.mode().iloc[0])
    keys = pd.MultiIndex.from_frame(slots[["product", "slot"]])
    reason = pd.Series(reasons.reindex(keys).to_numpy(), index=slots.index).fillna("unknown")
    state = reason.map(rejected_state)
    state[slots["status"] == "ok"] = FILLED
    state[slots["status"] == "empty"] = EMPTY
    out["state"] = state.astype(object)
    return out


def coverage_by_day(states: pd.DataFrame) -> pd.DataFrame:
    """One row per product and day: how many slots it had, how many were filled, and the day's state.

    Parameters
    ----------
    states : pandas.DataFrame
        :func:`slot_states`.

    Returns
    -------
    pandas.DataFrame
        ``product, day, n_slots, n_filled, state``: ``filled`` when every slot was filled, else the most common
        state among the unfilled slots (ties: a rejection before ``empty``, then alphabetical).
    """
    columns = ["product", "day", "n_slots", "n_filled", "state"]
    if states.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})

    def summarise(day: pd.DataFrame) -> pd.Series:
        unfilled = day.loc[day["state"] != FILLED, "state"]
        state = FILLED if unfilled.empty else min(unfilled.mode(), key=lambda s: (s == EMPTY, s))
        return pd.Series({"n_slots": len(day), "n_filled": len(day) - len(unfilled), "state": state})

    grouped = states.groupby(["product", "day"], sort=False)[["state"]].apply(summarise)
    return grouped.reset_index()[columns]


def rejections_by_period(ledger: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Rejected candidates counted per period (``freq``, a pandas period frequency: ``D`` days, ``M`` months) and
    reason.

    Returns
    -------
    pandas.DataFrame
        Index: the period starts (UTC days, no gaps between the first and the last); columns: the reasons,
        sorted; values: counts.
    """
    if ledger.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="period"))
    days = pd.to_datetime(ledger["day"])
    counts = pd.crosstab(days.dt.to_period(freq).dt.start_time, ledger["reason"])
    periods = pd.period_range(counts.index.min(), counts.index.max(), freq=freq).start_time
    counts = counts.reindex(periods, fill_value=0)
    counts.index.name, counts.columns.name = "period", None
    return counts[sorted(counts.columns)]


def benchmarks(root: str | os.PathLike, *, exclude: tuple[str, ...] = ("report",)) -> pd.DataFrame:
    """Every job's benchmark: ``benchmarks/{rule}/{wildcards...}.tsv`` (or ``benchmarks/{rule}.tsv``).

    Parameters
    ----------
    root : path-like
        The output root.
    exclude : tuple of str
        Rules left out; by default the report's own, which describes an earlier build of the report.

    Returns
    -------
    pandas.DataFrame
        :data:`BENCHMARK_COLUMNS`, one row per measurement (a job benchmarked with repeats has several).
    """
    base = Path(root) / "benchmarks"
    rows = []
    for path in sorted(base.rglob("*.tsv")):
        relative = path.relative_to(base)
        rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if rule in exclude:
            continue
        table = pd.read_csv(path, sep="\t")
        for _, row in table.iterrows():
            rows.append({"rule": rule, "job": relative.with_suffix("").as_posix(), "s": float(row["s"]),
                         "max_rss": pd.to_numeric(row.get("max_rss"), errors="coerce"),
                         "cpu_time": pd.to_numeric(row.get("cpu_time"), errors="coerce")})
    return pd.DataFrame(rows, columns=BENCHMARK_COLUMNS)


def runtime_summary(bench: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, total, median and maximum wall seconds, and the largest resident memory (MB).

    Sorted by total time, longest first.
    """
    summary = bench.groupby("rule").agg(
        jobs=("job", "nunique"), total_s=("s", "sum"), median_s=("s", "median"), max_s=("s", "max"),
        max_rss_mb=("max_rss", "max"))
    return summary.sort_values("total_s", ascending=False).reset_index()
