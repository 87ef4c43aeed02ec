"""The QC and coverage report: one self-contained HTML page summarising an output tree.

:func:`build_report` reads what the stages wrote (slot tables, ledgers, cubes, synced files, benchmarks) and writes
the page. Its parts are modules of their own: :mod:`~heliocube.report.collect` (tables from the output tree),
:mod:`~heliocube.report.cubes` (frames and |dt| from HDF5 files), :mod:`~heliocube.report.figures` and
:mod:`~heliocube.report.thumbnails` (PNG images), :mod:`~heliocube.report.html` (the page).
"""

from .build import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]
