"""Progress lines of long jobs: a fake clock for the reporter, and the fetch and clean month jobs' own lines."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest

from heliocube.clean import clean_days
from heliocube.fetch import fetch_days
from heliocube.progress import DEFAULT_EVERY, Progress, progress_interval
from heliocube.variants import Variant

from .test_fetch import DAY, SIX_HOURS, query_and_fetch


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "heliocube.progress"]


def test_lines_at_the_start_every_interval_and_at_the_end(caplog):
    caplog.set_level(logging.INFO, logger="heliocube.progress")
    clock = FakeClock()
    progress = Progress("EIT195 fetch", 100, unit="frames", every=30.0, clock=clock)
    clock.now += 5
    progress.advance(10)  # 5 s: too early for a line
    clock.now += 25
    progress.advance(30)  # 30 s: 40 done at 4/3 per second, 60 left
    clock.now += 15
    progress.advance(20)  # 15 s after the last line: none
    clock.now += 15
    progress.advance(40)  # all done: the end says it
    progress.finish()
    assert messages(caplog) == [
        "EIT195 fetch: 0/100 frames",
        "EIT195 fetch: 40/100 frames (40%), 1.3 frames/s, about 0:00:45 left",
        "EIT195 fetch: 100/100 frames done in 0:01:00 (1.7 frames/s)",
    ]


def test_work_done_before_the_start_is_not_in_the_rate(caplog):
    caplog.set_level(logging.INFO, logger="heliocube.progress")
    clock = FakeClock()
    progress = Progress("x", 10, unit="slots", done=4, every=0.0, clock=clock)
    clock.now += 2
    progress.advance(2)
    assert progress.line() == "x: 6/10 slots (60%), 1.0 slots/s, about 0:00:04 left"
    assert Progress("y", 0, clock=clock).line() == "y: 0/0 items (100%), 0.0 items/s, time left unknown"
    Progress("z", 0, clock=clock).finish()
    assert messages(caplog)[-1] == "z: 0/0 items done in 0:00:00 (at once)"


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("HELIOCUBE_PROGRESS_SECONDS", raising=False)
    assert progress_interval() == DEFAULT_EVERY == 30.0
    monkeypatch.setenv("HELIOCUBE_PROGRESS_SECONDS", "300")
    assert progress_interval() == 300.0 and Progress("x", 1).every == 300.0
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("HELIOCUBE_PROGRESS_SECONDS", bad)
        with pytest.raises(ValueError, match="HELIOCUBE_PROGRESS_SECONDS"):
            progress_interval()


def _counts(lines: list[str], label: str) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.match(rf"{re.escape(label)}: (\d+)/", line))]


def test_fetch_and_clean_month_jobs_log_their_progress(clean_context_for, caplog):
    """With a zero interval each resolved slot and each cleaned frame gets a line; the last says the job is done."""
    caplog.set_level(logging.INFO)
    config, context = clean_context_for(products=["EIT195"])
    slots, _ = query_and_fetch("EIT195", config, context)
    root = config["output_root"]
    caplog.clear()
    fetch_days("EIT195", [DAY], context, root, progress_every=0.0, **SIX_HOURS)  # a rerun, from the cache
    lines = [record.getMessage() for record in caplog.records]
    assert _counts(lines, "EIT195 fetch") == [0, 1, 2, 3, 4]
    assert any(re.fullmatch(r"EIT195 fetch: 4/4 slots done in 0:00:0\d \(.* slots/s\)", line) for line in lines)
    caplog.clear()
    variant = Variant("32px-mean-6h", 32, "mean", dt.timedelta(hours=6), {})
    clean_days("EIT195", variant, iter([DAY]), slots, root, anchor=DAY, progress_every=0.0)
    lines = [record.getMessage() for record in caplog.records]
    assert _counts(lines, "EIT195 32px-mean-6h clean") == [0, 1, 2, 3, 4]
    assert any(re.match(r"EIT195 32px-mean-6h clean: 4/4 frames done in ", line) for line in lines)
