"""The events summary table (the prior notebook's "Final Summary Per Event"), as CSV and as Markdown.

One row per event and product: the flare's continuous duration in minutes and its discrete count of minute bins
(the notebook's ``103.4 → 104``), the frames sampled per phase, their total, what fell short of what was asked, and
how the window's other frames are accounted for; then a ``TOTAL`` row of sums. The counts are the sampled frames,
so ``total`` sums to the number of rows of ``labels.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from ..paths import atomic_path

__all__ = ["COUNT_COLUMNS", "SUMMARY_COLUMNS", "summary_markdown", "summary_table", "write_summary"]

#: Integer columns, summed in the TOTAL row.
COUNT_COLUMNS = ("flare_minute_bins", "flare", "pre", "post", "total", "flare_shortfall", "pre_shortfall",
                 "post_shortfall", "not_drawn", "rejected", "missing", "overlap_relabelled", "outside_window")
SUMMARY_COLUMNS = ("event_id", "event_date", "product", "goes_class", "start", "end", "flare_minutes",
                   *COUNT_COLUMNS)


def summary_table(rows: Iterable[Mapping]) -> pd.DataFrame:
    """The summary rows (mappings with :data:`SUMMARY_COLUMNS`) followed by a ``TOTAL`` row."""
    table = pd.DataFrame(list(rows), columns=list(SUMMARY_COLUMNS))
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype("int64")
    table["flare_minutes"] = table["flare_minutes"].astype(float).round(2)
    total = {column: "" for column in SUMMARY_COLUMNS}
    total.update({column: int(table[column].sum()) for column in COUNT_COLUMNS})
    total["event_id"] = "TOTAL"
    total["flare_minutes"] = round(float(table["flare_minutes"].sum()), 2)
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def summary_markdown(table: pd.DataFrame, title: str = "") -> str:
    """A GitHub-flavoured Markdown table of :func:`summary_table` (the notebook printed it with ``tabulate``)."""
    header = ["Event", "Date", "Product", "GOES class", "Flare minutes → minute bins", "Flare", "Pre-flare",
              "Post-flare", "Total", "Shortfall (flare/pre/post)", "Not drawn", "Rejected", "Missing", "Overlap"]
    lines = [f"# {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for _, row in table.iterrows():
        cells = [row["event_id"], row["event_date"], row["product"], row["goes_class"],
                 f"{float(row['flare_minutes']):.1f} → {int(row['flare_minute_bins'])}", row["flare"], row["pre"],
                 row["post"], row["total"],
                 f"{row['flare_shortfall']}/{row['pre_shortfall']}/{row['post_shortfall']}", row["not_drawn"],
                 row["rejected"], row["missing"], row["overlap_relabelled"]]  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(table: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike,
                  title: str = "") -> None:  # fmt: skip
    """Write :func:`summary_table` as CSV and Markdown, atomically."""
    with atomic_path(Path(csv_path)) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
    with atomic_path(Path(md_path)) as tmp:
        tmp.write_text(summary_markdown(table, title), encoding="utf-8")
