"""Atomic writes (complete and as readable as the umask allows), names from archives, and the retry policy."""

import os
import random
import stat
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.jobs import clean_job, cube_job, fetch_job, query_job
from heliocube.paths import atomic_path, safe_component
from heliocube.retry import RetryableError, RetryPolicy, call_with_retries, is_refusal
from heliocube.variants import variants_of

from .conftest import demo_config


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/file.fits", "a/b.fits", ".hidden", "..", "", "x" * 300,
                                  "file\x00.fits"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError, match="unsafe"):
        safe_component(name)


@pytest.mark.parametrize("name", ["efz20040301.000010", "22104858.fts",
                                  "aia.lev1_euv_12s.2011-02-15T000012Z.171.image.fits"])
def test_plain_names_pass(name):
    assert safe_component(name) == name


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and [p.name for p in target.parent.iterdir()] == ["out.txt"]


@pytest.fixture
def set_umask():
    """``set_umask(mask)`` for the rest of the test; the process's umask is restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


#: How each kind of output is written onto the temporary path: some writers truncate it, some replace it.
WRITERS = {
    "text": lambda tmp: tmp.write_text("x"),
    "parquet": lambda tmp: pd.DataFrame({"a": [1]}).to_parquet(tmp),
    "hdf5": lambda tmp: h5py.File(tmp, "w").close(),
    "fits": lambda tmp: fits.writeto(tmp, np.zeros((2, 2), np.float32), overwrite=True),
}


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664)], ids=["umask022", "umask002"])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_atomic_path_outputs_follow_the_umask(tmp_path, set_umask, mask, mode, kind):
    """Outputs get what ``open()`` would give under the umask, never ``mkstemp``'s owner-only 0600."""
    set_umask(mask)
    target = tmp_path / "sub" / "out"
    with atomic_path(target) as tmp:
        WRITERS[kind](tmp)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o777 & ~mask


def modes_under(root: Path) -> dict[str, int]:
    """Permission bits of every file under ``root``, by relative path."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


def test_month_jobs_write_every_file_with_the_umask(clean_archive, tmp_path, set_umask):
    """Query, fetch, clean and cube jobs of one product under umask 002 (a group-shared tree): all files 0664."""
    set_umask(0o002)
    config = demo_config(clean_archive.url, tmp_path / "out", products=["EIT195"], date_finish="2010-10-15")
    root = Path(config["output_root"])
    days = ["2010-10-15"]
    (variant,) = (v.as_params() for v in variants_of(config))
    query_job(config, "EIT195", ["2010-10-14", *days, "2010-10-16"], str(root / "q.index.csv"))
    fetch_job(config, "EIT195", days, str(root / "f.slots.csv"), str(root / "f.ledger.csv"))
    clean_job(config, "EIT195", variant, days, str(root / "f.slots.csv"), str(root / "c.index.csv"),
              str(root / "c.ledger.csv"))
    cube_job(config, "EIT195", variant, [str(root / "c.index.csv")], str(root / "cube.h5"))
    modes = modes_under(root)
    kinds = {Path(name).suffix for name in modes}
    assert {".parquet", ".json", ".csv", ".fits", ".h5"} <= kinds  # every kind of output was written
    assert {name: oct(mode) for name, mode in modes.items() if mode != 0o664} == {}


def test_retries_are_bounded_and_back_off(monkeypatch):
    sleeps = []
    monkeypatch.setattr("heliocube.retry.time.sleep", sleeps.append)
    calls = []

    def always_fails():
        calls.append(1)
        raise RetryableError("HTTP 500")

    with pytest.raises(RetryableError):
        call_with_retries(always_fails, RetryPolicy(retries=3, backoff=1.0, max_backoff=3.0), "x", rng=random.Random(0))
    assert len(calls) == 4 and len(sleeps) == 3
    assert 0.5 <= sleeps[0] < 1.5 and 1.0 <= sleeps[1] < 3.0 and sleeps[2] == pytest.approx(3.0)


def test_retry_after_is_honoured_under_the_cap(monkeypatch):
    sleeps = []
    monkeypatch.setattr("heliocube.retry.time.sleep", sleeps.append)
    attempts = iter([RetryableError("429", retry_after=7.0), RetryableError("429", retry_after=700.0), None])

    def flaky():
        error = next(attempts)
        if error:
            raise error
        return "ok"

    assert call_with_retries(flaky, RetryPolicy(retries=5, backoff=1.0, max_backoff=60.0), "x") == "ok"
    assert sleeps == [7.0, 60.0]


def test_refusals_do_not_spend_the_files_retries(monkeypatch):
    """An archive at its limit refuses with Retry-After: those answers have their own budget, so a file refused
    more often than ``retries`` still downloads, and its real failures still count against ``retries``."""
    sleeps = []
    monkeypatch.setattr("heliocube.retry.time.sleep", sleeps.append)
    answers = iter([RetryableError("429", retry_after=0.5, status=429)] * 4 + [RetryableError("HTTP 500")] + [None])

    def busy():
        error = next(answers)
        if error:
            raise error
        return "ok"

    assert call_with_retries(busy, RetryPolicy(retries=1, backoff=1.0, refusals=4), "x", rng=random.Random(0)) == "ok"
    assert sleeps[:4] == [0.5] * 4 and 0.5 <= sleeps[4] < 1.5


@pytest.mark.parametrize(("refused", "failed"), [(3, 0), (0, 2)])
def test_refusals_and_failures_are_each_bounded(monkeypatch, refused, failed):
    monkeypatch.setattr("heliocube.retry.time.sleep", lambda seconds: None)
    calls = []

    def hopeless():
        calls.append(1)
        raise RetryableError("429", retry_after=1.0, status=429) if refused else RetryableError("HTTP 500")

    with pytest.raises(RetryableError):
        call_with_retries(hopeless, RetryPolicy(retries=1, backoff=0.0, refusals=2), "x")
    assert len(calls) == refused + failed


def test_a_429_or_a_503_with_retry_after_is_a_refusal():
    """A 429 is a refusal with or without Retry-After, a 503 only with one (without, as likely an outage); a 500 or
    a proxy's 502 with Retry-After is a failure (its hint sets the wait). drms and HEK raise urllib's HTTPError,
    whose status is ``code``."""
    import email.message
    import urllib.error

    def http_error(code, retry_after=None):
        headers = email.message.Message()
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return urllib.error.HTTPError("http://127.0.0.1/x", code, "refused", headers, None)

    assert is_refusal(RetryableError("x", retry_after=1.0, status=429))
    assert is_refusal(RetryableError("x", retry_after=0.0, status=503))
    assert is_refusal(RetryableError("x", status=429)) and is_refusal(http_error(429))
    assert is_refusal(http_error(429, 2)) and is_refusal(http_error(503, 2))
    assert not is_refusal(RetryableError("x", status=503)) and not is_refusal(http_error(503))
    assert not is_refusal(RetryableError("x", retry_after=1.0, status=500))
    assert not is_refusal(RetryableError("x", retry_after=1.0, status=502))
    assert not is_refusal(http_error(500, 2))
    assert not is_refusal(RetryableError("timeout", reason="timeout"))


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    import email.utils
    import time

    from heliocube.retry import parse_retry_after, retry_after_of

    assert parse_retry_after("7") == 7.0 and parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None and parse_retry_after("soon") is None
    assert parse_retry_after("1.5") == 1.5 and parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None and parse_retry_after("inf") is None  # time.sleep(nan) would raise
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 50 < parse_retry_after(in_a_minute) <= 60
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # already past: ask again now

    answer = Exception("HTTP 429")
    answer.headers = {"Retry-After": in_a_minute}  # as urllib's HTTPError carries them
    assert 50 < retry_after_of(answer) <= 60


def test_a_refusal_without_retry_after_backs_off_by_its_own_count(monkeypatch):
    sleeps = []
    monkeypatch.setattr("heliocube.retry.time.sleep", sleeps.append)
    answers = iter([RetryableError("HTTP 429", status=429)] * 3 + [None])

    def busy():
        error = next(answers)
        if error:
            raise error
        return "ok"

    policy = RetryPolicy(retries=0, backoff=1.0, max_backoff=60.0, refusals=3)
    assert call_with_retries(busy, policy, "x", rng=random.Random(0)) == "ok"
    assert 0.5 <= sleeps[0] < 1.5 and 1.0 <= sleeps[1] < 3.0 and 2.0 <= sleeps[2] < 6.0


def test_a_failure_with_retry_after_still_spends_the_retries(monkeypatch):
    sleeps = []
    monkeypatch.setattr("heliocube.retry.time.sleep", sleeps.append)
    calls = []

    def unavailable():
        calls.append(1)
        raise RetryableError("HTTP 500", retry_after=3.0, status=500)

    with pytest.raises(RetryableError):
        call_with_retries(unavailable, RetryPolicy(retries=2, backoff=1.0, refusals=10), "x")
    assert len(calls) == 3 and sleeps == [3.0, 3.0]


def test_any_retry_after_pauses_the_job_and_only_a_refusal_lowers_its_limit():
    from heliocube.fetch.limiter import ConnectionLimiter

    limiter = ConnectionLimiter(4)

    def answered(status):
        raise RetryableError(f"HTTP {status}", retry_after=0.0, status=status)

    def answered_without_hint(status):
        raise RetryableError(f"HTTP {status}", status=status)

    with pytest.raises(RetryableError):
        limiter.call(lambda: answered(500))
    assert limiter.slowdowns == 1 and limiter.limit == 4
    with pytest.raises(RetryableError):
        limiter.call(lambda: answered(429))
    assert limiter.slowdowns == 2 and limiter.limit == 1  # one less than the requests in progress (1), at least 1

    limiter = ConnectionLimiter(4)
    with pytest.raises(RetryableError):
        limiter.call(lambda: answered_without_hint(429))
    assert limiter.slowdowns == 1 and limiter.limit == 1


def test_other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retries(broken, RetryPolicy(retries=5), "x")
    assert calls == [1]
