"""The report's figures, each returned as PNG bytes.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``): no global state and no GUI backend,
so they render the same in a Snakemake job, a test or a notebook. A modest DPI keeps the page small and fast.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .collect import EMPTY, FILLED
from .cubes import SyncedDt

__all__ = ["DPI", "coverage_heatmap", "dt_histograms", "rejections_over_time", "runtimes", "state_colors"]

DPI = 80
#: Above this many cells the coverage map drops its per-cell "filled/slots" labels (they would not be readable).
MAX_LABELLED_CELLS = 400
_FILLED_COLOR, _EMPTY_COLOR = "#2ca02c", "#c7c7c7"
#: Rejection reasons get warm and violet colours, away from the green of "filled" and the grey of "empty".
_REASON_COLORS = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#1f77b4",
                  "#f7b6d2", "#ffbb78", "#c5b0d5", "#9edae5"]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def state_colors(states) -> dict[str, str]:
    """A colour per coverage state: green filled, grey empty, one distinct colour per rejection reason."""
    rejected = sorted(set(states) - {FILLED, EMPTY})
    colors = {FILLED: _FILLED_COLOR, EMPTY: _EMPTY_COLOR}
    colors.update({state: _REASON_COLORS[i % len(_REASON_COLORS)] for i, state in enumerate(rejected)})
    return colors


def _day_ticks(ax, days: list[str], axis: str = "x") -> None:
    step = max(1, int(np.ceil(len(days) / 15)))
    positions = list(range(0, len(days), step))
    if axis == "x":
        ax.set_xticks(positions, [days[i] for i in positions], rotation=45, ha="right")
    else:
        ax.set_yticks(positions, [days[i] for i in positions])


def coverage_heatmap(coverage: pd.DataFrame) -> bytes:
    """Product x day map of the coverage states (:func:`heliocube.report.collect.coverage_by_day`).

    A cell is green when every slot of the day was filled, else the colour of the most common state of its unfilled
    slots; white where the product had no slot that day. Small maps label each cell ``filled/slots``.
    """
    products = list(dict.fromkeys(coverage["product"]))
    days = sorted(set(coverage["day"]))
    colors = state_colors(coverage["state"])
    states = list(colors)
    codes = np.full((len(products), len(days)), np.nan)
    row_of, col_of = {p: i for i, p in enumerate(products)}, {d: j for j, d in enumerate(days)}
    for product, day, state in coverage[["product", "day", "state"]].itertuples(index=False):
        codes[row_of[product], col_of[day]] = states.index(state)
    fig = Figure(figsize=(min(14, 3 + 0.35 * len(days)) if len(days) < 40 else 14, 1.2 + 0.45 * len(products)))
    ax = fig.add_subplot()
    cmap = ListedColormap([colors[s] for s in states]).with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(codes), cmap=cmap, vmin=-0.5, vmax=len(states) - 0.5, aspect="auto",
              interpolation="nearest")
    if codes.size <= MAX_LABELLED_CELLS:
        for row in coverage.itertuples(index=False):
            ax.text(col_of[row.day], row_of[row.product], f"{row.n_filled}/{row.n_slots}", ha="center",
                    va="center", fontsize=8, color="black")
    ax.set_yticks(range(len(products)), products)
    _day_ticks(ax, days)
    ax.set_xlabel("day (UTC)")
    ax.legend(handles=[Patch(color=colors[s], label=s) for s in states], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title("Slot coverage per product and day (label: filled/slots)")
    return _png(fig)


def rejections_over_time(counts: pd.DataFrame) -> bytes:
    """Stacked bars of rejected candidates per period and reason (:func:`~heliocube.report.collect.
    rejections_by_period`), coloured like the reasons of the coverage map."""
    from .collect import rejected_state

    colors = state_colors([rejected_state(reason) for reason in counts.columns])
    labels = [period.strftime("%Y-%m-%d") for period in counts.index]
    fig = Figure(figsize=(min(14, 4 + 0.3 * len(labels)), 3.2))
    ax = fig.add_subplot()
    bottom = np.zeros(len(counts))
    for reason in counts.columns:
        values = counts[reason].to_numpy()
        ax.bar(range(len(counts)), values, bottom=bottom, color=colors[rejected_state(reason)], label=reason,
               width=0.85)
        bottom += values
    _day_ticks(ax, labels)
    ax.set_ylabel("rejected candidates")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title("Rejected candidates over time, by reason")
    return _png(fig)


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds >= 2 * 3600:
        return "h", 3600.0
    if seconds >= 120:
        return "min", 60.0
    return "s", 1.0


def dt_histograms(synced: SyncedDt) -> bytes:
    """One |dt| histogram per product of an experiment, on a shared axis up to the largest |dt| (the matching
    tolerance, the most a frame may be off, is marked when it falls in that range)."""
    products = list(synced.abs_dt)
    largest = max([float(v.max()) for v in synced.abs_dt.values() if v.size] or [1.0]) * 1.05 or 1.0
    unit, scale = _time_unit(largest)
    fig = Figure(figsize=(min(14, 1 + 2.6 * len(products)), 2.8), layout="constrained")
    axes = fig.subplots(1, len(products), squeeze=False, sharex=True)[0]
    bins = np.linspace(0, largest / scale, 25)
    for ax, product in zip(axes, products, strict=True):
        values = synced.abs_dt[product] / scale
        ax.hist(values, bins=bins, color="#1f77b4")
        ax.set_title(f"{product} (n={values.size})", fontsize=9)
        ax.set_xlabel(f"|dt| ({unit})")
        ax.yaxis.get_major_locator().set_params(integer=True)
        if synced.tolerance_seconds <= largest:
            ax.axvline(synced.tolerance_seconds / scale, color="#d62728", linestyle="--", linewidth=1)
    axes[0].set_ylabel("synced rows")
    tolerance = synced.tolerance_seconds / _time_unit(synced.tolerance_seconds)[1]
    fig.suptitle(f"{synced.experiment}: |frame time - axis time| (tolerance {tolerance:g} "
                 f"{_time_unit(synced.tolerance_seconds)[0]})", fontsize=10)
    return _png(fig)


def runtimes(bench: pd.DataFrame) -> bytes:
    """Wall time of every job per rule (box and points), rules ordered by their total time."""
    order = bench.groupby("rule")["s"].sum().sort_values().index.tolist()
    fig = Figure(figsize=(8, 0.9 + 0.4 * len(order)))
    ax = fig.add_subplot()
    values = [bench.loc[bench["rule"] == rule, "s"].to_numpy() for rule in order]
    ax.boxplot(values, orientation="horizontal", widths=0.6, showfliers=False)
    for i, v in enumerate(values, start=1):
        jitter = np.random.default_rng(i).uniform(-0.15, 0.15, v.size)  # seeded: the same page for the same data
        ax.scatter(v, i + jitter, s=10, color="#1f77b4", alpha=0.7, zorder=3)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.set_xscale("log" if bench["s"].max() > 50 * max(bench["s"].min(), 0.01) else "linear")
    ax.set_xlabel("wall time per job (s)")
    ax.set_title("Job runtimes per rule (Snakemake benchmarks)")
    return _png(fig)
