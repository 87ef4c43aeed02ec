"""Atomic writes, names from archives, and the retry policy."""

import random

import pytest

from heliocube.paths import atomic_path, safe_component
from heliocube.retry import RetryableError, RetryPolicy, call_with_retries


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


def test_other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        call_with_retries(broken, RetryPolicy(retries=5), "x")
    assert calls == [1]
