"""The few lines a run ends with, on a small output tree."""

from __future__ import annotations

import io

import pandas as pd

from heliocube.fetch.run import LEDGER_COLUMNS, SLOT_COLUMNS
from heliocube.summary import print_run_summary, run_summary


def _table(path, columns, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{**dict.fromkeys(columns), **row} for row in rows], columns=columns).to_csv(path, index=False)


def small_tree(root):
    """Masters of two variants, a seeded cube, a year cube (not counted), a synced file, slot tables, ledgers."""
    for name in ("cubes/64px-mean-6h/EIT195.h5", "cubes/64px-mean-6h/MDI_96m.h5",
                 "cubes/64px-mean-6h/MDI_96m.seeded.h5", "cubes/64px-mean-6h/EIT195/2010.h5",
                 "cubes/32px-mean-12h/EIT195.h5", "synced/euv.h5", "synced/euv.ledger.csv"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    _table(root / "raw/EIT195/2010-10.slots.csv", SLOT_COLUMNS,
           [{"status": "ok"}, {"status": "ok"}, {"status": "failed"}, {"status": "empty"}])
    _table(root / "raw/MDI_96m/2010-10.slots.csv", SLOT_COLUMNS, [{"status": "ok"}])
    _table(root / "raw/EIT195/2010-10.ledger.csv", LEDGER_COLUMNS,
           [{"reason": "quality"}, {"reason": "hole"}, {"reason": "quality"}, {"reason": "corrupt"}])
    _table(root / "raw/MDI_96m/2010-10.ledger.csv", LEDGER_COLUMNS, [])
    _table(root / "frames/64px-mean-6h/EIT195/2010-10.ledger.csv", LEDGER_COLUMNS, [{"reason": "clean_failed"}])
    _table(root / "frames/64px-mean-6h/MDI_96m/2010-10.ledger.csv", LEDGER_COLUMNS, [])


def test_summary_says_where_the_outputs_are_and_what_was_rejected(tmp_path):
    root = tmp_path / "out"
    small_tree(root)
    assert run_summary(root).splitlines() == [
        f"heliocube: outputs in {root}",
        "  cubes: 3 in 2 variants (cubes/<variant>/<product>.h5), 1 seeded; synced: 1 (synced/<experiment>.h5)",
        "  slots: 3 of 5 filled; 4 candidates rejected: quality 2, corrupt 1, hole 1; 1 frame failed to clean",
        f"  report: not built ({root}/report/index.html)",
    ]
    (root / "report").mkdir()
    (root / "report" / "index.html").write_text("<html></html>")
    assert run_summary(root).splitlines()[-1] == f"  report: {root}/report/index.html"


def test_summary_of_a_failed_run_points_at_the_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    print_run_summary("nothing-yet", failed=True, stream=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("heliocube: the run stopped on an error")
    assert str(tmp_path / "nothing-yet" / "logs") in lines[0]
    assert lines[1:4] == [
        f"heliocube: outputs in {tmp_path / 'nothing-yet'}",
        "  cubes: 0 in 0 variants (cubes/<variant>/<product>.h5), 0 seeded; synced: 0 (synced/<experiment>.h5)",
        "  slots: 0 of 0 filled; 0 candidates rejected; 0 frames failed to clean",
    ]
