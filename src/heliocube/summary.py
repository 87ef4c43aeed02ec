"""What a run leaves behind, in a few lines: where the outputs are, what was filled, what was rejected and why.

The Snakefile's ``onsuccess:`` and ``onerror:`` handlers print it at the end of every run, e.g.::

    heliocube: outputs in /data/results/demo
      cubes: 10 in 2 variants (cubes/<variant>/<product>.h5), 4 seeded; synced: 2 (synced/<experiment>.h5)
      slots: 58 of 60 filled; 9 candidates rejected: quality 4, hole 3, streak 2; 0 frames failed to clean
      report: /data/results/demo/report/index.html

It reads only the output tree (the fetch and clean ledgers, the slot tables, the file names), so it also sums up
a tree built by an earlier run.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

__all__ = ["print_run_summary", "run_summary"]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _reasons(counts: Counter) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def run_summary(root: str | os.PathLike) -> str:
    """A few lines on the output tree ``root``: its place, cubes and synced files, slots filled, rejections by reason.

    Parameters
    ----------
    root : path
        The run's ``output_root``.

    Returns
    -------
    str
        Four lines: where the outputs are; master, seeded and synced files; slots filled of all slots, rejected
        candidates by reason (fetch ledgers) and frames that failed to clean (clean ledgers); the report's path,
        or that it was not built.
    """
    # imported here: the Snakefile imports this module at every parse (each SLURM job too), the tables only at the end
    from .report.collect import clean_ledgers, fetch_ledgers, slot_tables

    root = Path(root).absolute()
    masters = [p for p in root.glob("cubes/*/*.h5") if not p.name.endswith(".seeded.h5")]
    seeded = list(root.glob("cubes/*/*.seeded.h5"))
    synced = list(root.glob("synced/*.h5"))
    status = slot_tables(root)["status"]
    rejected = Counter(fetch_ledgers(root)["reason"])
    clean_failed = len(clean_ledgers(root))
    report = root / "report" / "index.html"
    variants = len({p.parent.name for p in masters})
    rejections = f"{_count(sum(rejected.values()), 'candidate')} rejected"
    if rejected:
        rejections += f": {_reasons(rejected)}"
    return "\n".join([
        f"heliocube: outputs in {root}",
        f"  cubes: {len(masters)} in {_count(variants, 'variant')} (cubes/<variant>/<product>.h5), "
        f"{len(seeded)} seeded; synced: {len(synced)} (synced/<experiment>.h5)",
        f"  slots: {int((status == 'ok').sum())} of {len(status)} filled; {rejections}; "
        f"{_count(clean_failed, 'frame')} failed to clean",
        f"  report: {report}" if report.exists() else f"  report: not built ({report})",
    ])


def print_run_summary(root: str | os.PathLike, *, failed: bool = False, stream: TextIO | None = None) -> None:
    """Print :func:`run_summary` of ``root`` (to ``stream``, default stdout); after a failed run, first say where
    the logs are, since the tree holds only what was finished."""
    stream = stream or sys.stdout
    if failed:
        print(f"heliocube: the run stopped on an error: see the failed jobs above and their logs in "
              f"{Path(root).absolute() / 'logs'}; finished so far:", file=stream)
    print(run_summary(root), file=stream, flush=True)
