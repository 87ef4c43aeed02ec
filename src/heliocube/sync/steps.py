"""The rule that an experiment's step is a whole multiple of every cube cadence, checked without pandas.

The config check runs it in every job (and in Snakemake's own process), so it imports nothing heavier than the
standard library: a job whose stage needs neither pandas nor h5py must not pay for them here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from ..timegrid import format_duration, parse_duration

__all__ = ["check_step_multiple", "nanoseconds"]


def nanoseconds(value) -> int:
    """A duration (text such as ``"6h"``, :class:`datetime.timedelta`, :class:`pandas.Timedelta` or
    :class:`numpy.timedelta64`) in whole nanoseconds."""
    if isinstance(value, str):
        value = parse_duration(value)
    ns = getattr(value, "value", None)  # pandas.Timedelta (a timedelta subclass that keeps nanoseconds)
    if isinstance(ns, int):
        return ns
    if isinstance(value, dt.timedelta):
        return ((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds) * 1000
    import numpy as np  # only for a numpy duration

    return int(np.timedelta64(value, "ns").astype(np.int64))


def _text(ns: int) -> str:
    if ns % 1_000_000_000 == 0 and ns > 0:
        return format_duration(dt.timedelta(seconds=ns // 1_000_000_000))
    return f"{ns / 1e9:g}s"


def check_step_multiple(step, cadences: Mapping) -> None:
    """Check that ``step`` is a positive whole multiple of every product's cube cadence.

    Parameters
    ----------
    step : datetime.timedelta or str
        Spacing of the experiment's time axis.
    cadences : mapping of str to datetime.timedelta or str
        Cube cadence (slot spacing) of each product.

    Raises
    ------
    ValueError
        Naming every product whose cadence does not divide ``step`` (the prior tool floored ``9h / 6h`` to 1
        silently).
    """
    step_ns = nanoseconds(step)
    if step_ns <= 0:
        raise ValueError(f"step must be positive, got {step!r}")
    bad = []
    for product, cadence in cadences.items():
        cadence_ns = nanoseconds(cadence)
        if cadence_ns <= 0 or step_ns % cadence_ns:
            bad.append(f"{product} (cadence {_text(cadence_ns)})")
    if bad:
        raise ValueError(
            f"step {_text(step_ns)} is not a whole multiple of the cube cadence of {', '.join(bad)}; "
            "choose a step that every product's cadence divides"
        )
