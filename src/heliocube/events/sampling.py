"""Seeded, stratified per-minute sampling of an event's frames (the prior notebook's ``hhmm`` sampling, reproducible).

For one event and one product, from the frames the event owns (:func:`heliocube.events.partition.assign_owners`)
whose status is ``ok``:

- **flare**: one frame per minute bin of the flare (:func:`~heliocube.events.partition.flare_minute_bins`), drawn
  uniformly among the bin's frames; a minute without a drawable frame is a shortfall of one;
- **pre** and **post**: ``n_pre`` / ``n_post`` frames spread over the phase's minute bins as evenly as the bins
  allow (:func:`allocate`: every bin with frames left gets one more frame per round; the last, partial round goes
  to bins drawn at random), then drawn uniformly without replacement inside each bin. When the phase has fewer
  drawable frames than asked, all are taken and the difference is the shortfall.

Every (event, product, phase) draws from its own generator, derived from ``(seed, event_id, product, phase)``
(:func:`event_rng`): adding an event, a product or changing ``n_pre`` leaves every other draw as it was. The same
seed gives the same selection on every machine (numpy's ``PCG64`` through ``SeedSequence``); another seed gives
another selection of the same size wherever the phase holds more frames than are drawn.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd

from .partition import phase_minute_bins

__all__ = ["LOG_COLUMNS", "PhaseSample", "allocate", "event_rng", "sample_event", "sample_phase"]

#: Columns of ``sampling/{event_id}.csv``: the prior notebook's five (``hhmm, count, place, chosen_index,
#: chosen_file``) and where each row belongs. ``count`` and ``place`` are the bin's drawable frames and their
#: positions in the phase's time-ordered list of drawable frames; a bin giving several frames (pre/post with more
#: frames asked than minutes) lists them separated by ``;``, a bin giving none leaves both empty.
LOG_COLUMNS = ("product", "phase", "minute", "hhmm", "count", "place", "chosen_index", "chosen_file")


def event_rng(seed: int, event_id: str, product: str, phase: str) -> np.random.Generator:
    """The generator of one (event, product, phase): ``SeedSequence(seed, spawn_key=words)`` where ``words`` are
    four 32-bit words of the SHA-256 of ``event_id``, ``product`` and ``phase`` (stable across runs and machines,
    unlike Python's ``hash``)."""
    digest = hashlib.sha256("\x1f".join((str(event_id), str(product), phase)).encode()).digest()
    words = tuple(int.from_bytes(digest[i:i + 4], "big") for i in range(0, 16, 4))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=words)))


def allocate(counts, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many frames each bin gives when ``n`` are spread over bins holding ``counts`` frames.

    Round by round every bin with frames left gives one more; when fewer frames remain to give than such bins, the
    bins that give them are drawn at random. So 178 frames over 180 full minute bins take one frame from 178 random
    minutes, 356 take two from 176 minutes and one from 4, and a sparse bin gives all it has.
    """
    counts = np.asarray(counts, dtype=np.int64)
    given = np.zeros_like(counts)
    remaining = min(int(n), int(counts.sum()))
    while remaining > 0:
        open_bins = np.flatnonzero(given < counts)
        if remaining >= len(open_bins):
            given[open_bins] += 1
            remaining -= len(open_bins)
        else:
            given[np.sort(rng.choice(open_bins, size=remaining, replace=False))] += 1
            remaining = 0
    return given


@dataclasses.dataclass
class PhaseSample:
    """What :func:`sample_phase` drew for one phase: frame table index labels, how many were wanted, the log."""

    phase: str
    chosen: list
    wanted: int
    log: list[dict]

    @property
    def shortfall(self) -> int:
        return self.wanted - len(self.chosen)


def sample_phase(rows: pd.DataFrame, bins: pd.DatetimeIndex, phase: str, n: int | None,
                 rng: np.random.Generator, product: str = "") -> PhaseSample:  # fmt: skip
    """Draw from the drawable rows of one phase.

    Parameters
    ----------
    rows : pandas.DataFrame
        The phase's frames owned by the event, with ``time``, ``record``, ``minute``, ``status`` and ``filename``
        (only ``status == "ok"`` rows are drawn).
    bins : pandas.DatetimeIndex
        The phase's minute bins (every one gets a log row, empty or not).
    phase : {"pre", "flare", "post"}
    n : int or None
        Frames to draw (pre/post); None for the flare (one per minute bin).
    rng : numpy.random.Generator
        :func:`event_rng` of this phase.
    """
    ok = rows[rows["status"] == "ok"].sort_values(["time", "record"], kind="stable")
    minutes = ok["minute"].to_numpy()
    bins = pd.DatetimeIndex(bins)
    stray = pd.DatetimeIndex(np.unique(minutes)).difference(bins)
    if len(stray):
        raise ValueError(f"{phase} frames in minutes outside the phase: {list(stray.strftime('%Y-%m-%dT%H:%M'))}")
    bin_of = bins.get_indexer(pd.DatetimeIndex(minutes))
    counts = np.bincount(bin_of, minlength=len(bins)) if len(bins) else np.zeros(0, np.int64)
    if n is None:
        wanted = len(bins)
        take = np.minimum(counts, 1)
    else:
        wanted = int(n)
        take = allocate(counts, wanted, rng)
    starts = np.concatenate([[0], np.cumsum(counts)])
    labels, names = ok.index.to_numpy(), ok["filename"].to_numpy()
    chosen, log = [], []
    for number, minute in enumerate(bins):
        place = list(range(int(starts[number]), int(starts[number + 1])))
        picks = []
        if take[number]:
            picks = sorted(int(p) for p in rng.choice(place, size=int(take[number]), replace=False))
        chosen.extend(labels[p] for p in picks)
        log.append({"product": product, "phase": phase, "minute": minute.strftime("%Y-%m-%dT%H:%M"),
                    "hhmm": minute.strftime("%H%M"), "count": len(place), "place": str(place),
                    "chosen_index": ";".join(str(p) for p in picks),
                    "chosen_file": ";".join(str(names[p]) for p in picks)})
    return PhaseSample(phase, chosen, wanted, log)


def sample_event(frames: pd.DataFrame, event, product: str, *, seed: int, n_pre: int,
                 n_post: int) -> dict[str, PhaseSample]:  # fmt: skip
    """Sample the three phases of one event for one product.

    Parameters
    ----------
    frames : pandas.DataFrame
        Rows of the event's frame table for ``product`` after :func:`~heliocube.events.partition.assign_owners`,
        with ``filename``; only rows the event owns are drawn, each in its owner phase.
    event : pandas.Series
        The event's row of :func:`~heliocube.events.partition.read_events`.
    """
    owned = frames[frames["owner_event"] == event["event_id"]]
    wanted = {"pre": n_pre, "flare": None, "post": n_post}
    return {phase: sample_phase(owned[owned["owner_phase"] == phase], phase_minute_bins(event, phase), phase,
                                wanted[phase], event_rng(seed, event["event_id"], product, phase), product)
            for phase in ("pre", "flare", "post")}  # fmt: skip
