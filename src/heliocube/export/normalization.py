"""Normalization of the exports in two mergeable phases, saved as a versioned artifact.

Phase 1 (:func:`year_statistics`, one job per experiment-year) computes per channel the mergeable
:class:`~heliocube.export.statistics.PartialStats` of the transformed values ``t(x)`` of the synced rows; the
gather step (:func:`gather_statistics`) merges the parts and fixes each channel's parameters; phase 2 is
:meth:`Normalizer.forward` (and its inverse), applied by whoever reads the exports. SDOML-lite cannot split its
statistics across nodes; these merge exactly (see :mod:`heliocube.export.statistics`).

A preset is a transform ``t`` and a scaling of ``t(x)`` clipped to ``[lo, hi]``, the ``clip_quantiles`` of
``t(x)`` over the whole experiment:

========  ==========================  =================================================  ======================
preset    t(x)                        y                                                  default clip_quantiles
========  ==========================  =================================================  ======================
minmax    x                           (clip(t, lo, hi) - lo) / (hi - lo), in [0, 1]      [0, 1] (min and max)
zscore    x                           (clip(t, lo, hi) - mean(t)) / std(t)               [0, 1]
log       log10(max(x, log_floor))    as minmax                                          [0.001, 0.999]
asinh     asinh(x / asinh_scale)      as minmax                                          [0.001, 0.999]
========  ==========================  =================================================  ======================

``minmax`` with the default quantiles is SDOML-lite's ``[0, 1]`` scaling. Every preset has an exact inverse
(float rounding aside) for values with ``lo <= t(x) <= hi`` (and ``x >= log_floor`` for ``log``); a value beyond
the clip comes back as the clip's bound, which is the only information the forward direction kept. NaN pixels
(off-disk, occulted, missing frames) are left out of the statistics and stay NaN in both directions.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..paths import atomic_path
from .statistics import DEFAULT_MANTISSA_BITS, PartialStats

__all__ = [
    "FORMAT",
    "PRESETS",
    "VERSION",
    "Normalizer",
    "Settings",
    "gather_statistics",
    "phase1_config",
    "settings_hash",
    "write_year_statistics",
    "year_statistics",
]

FORMAT = "heliocube-normalization"
#: Version of the artifact's layout; a reader refuses another.
VERSION = 1
#: preset -> (transform, scaling, default clip quantiles)
PRESETS = {
    "minmax": ("identity", "range", (0.0, 1.0)),
    "zscore": ("identity", "standard", (0.0, 1.0)),
    "log": ("log10", "range", (0.001, 0.999)),
    "asinh": ("asinh", "range", (0.001, 0.999)),
}


@dataclass(frozen=True)
class Settings:
    """What decides the statistics and the parameters (``exports.normalization`` in the config).

    Attributes
    ----------
    preset : str
        One of :data:`PRESETS`.
    clip_quantiles : tuple of float or None
        ``(low, high)`` quantiles of ``t(x)`` to clip at; None takes the preset's default.
    log_floor : float
        ``log``: values below it are raised to it before the logarithm (not invertible below it).
    asinh_scale : float
        ``asinh``: the softening scale, in the data's units (linear below it, logarithmic above).
    mantissa_bits : int
        Histogram resolution (see :mod:`heliocube.export.statistics`).
    """

    preset: str = "minmax"
    clip_quantiles: tuple[float, float] | None = None
    log_floor: float = 1.0
    asinh_scale: float = 1.0
    mantissa_bits: int = DEFAULT_MANTISSA_BITS

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown normalization preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        low, high = self.quantiles
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"clip_quantiles {[low, high]} must satisfy 0 <= low < high <= 1")
        if self.log_floor <= 0 or self.asinh_scale <= 0:
            raise ValueError("log_floor and asinh_scale must be positive")

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        """From the ``exports.normalization`` block (or any mapping with these keys)."""
        quantiles = config.get("clip_quantiles")
        return cls(preset=config.get("preset", "minmax"),
                   clip_quantiles=None if quantiles is None else (float(quantiles[0]), float(quantiles[1])),
                   log_floor=float(config.get("log_floor", 1.0)), asinh_scale=float(config.get("asinh_scale", 1.0)),
                   mantissa_bits=int(config.get("mantissa_bits", DEFAULT_MANTISSA_BITS)))

    @property
    def transform(self) -> str:
        return PRESETS[self.preset][0]

    @property
    def scaling(self) -> str:
        return PRESETS[self.preset][1]

    @property
    def quantiles(self) -> tuple[float, float]:
        return tuple(self.clip_quantiles) if self.clip_quantiles is not None else PRESETS[self.preset][2]

    def as_dict(self) -> dict:
        return {"preset": self.preset, "transform": self.transform, "scaling": self.scaling,
                "clip_quantiles": list(self.quantiles), "log_floor": self.log_floor, "asinh_scale": self.asinh_scale,
                "mantissa_bits": self.mantissa_bits}

    @property
    def phase1_dict(self) -> dict:
        """What phase 1 depends on: the transform with its own parameter and the histogram's resolution (not the
        clip or the scaling)."""
        out = {"transform": self.transform, "mantissa_bits": self.mantissa_bits}
        if self.transform == "log10":
            out["log_floor"] = self.log_floor
        if self.transform == "asinh":
            out["asinh_scale"] = self.asinh_scale
        return out

    def transform_values(self, x: np.ndarray) -> np.ndarray:
        """``t(x)`` in float64 (NaN stays NaN)."""
        x = np.asarray(x, dtype=np.float64)
        if self.transform == "log10":
            return np.log10(np.maximum(x, self.log_floor))  # maximum, unlike fmax, keeps NaN
        if self.transform == "asinh":
            return np.arcsinh(x / self.asinh_scale)
        return x

    def untransform(self, t: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`transform_values`."""
        t = np.asarray(t, dtype=np.float64)
        if self.transform == "log10":
            return np.power(10.0, t)
        if self.transform == "asinh":
            return self.asinh_scale * np.sinh(t)
        return t


def _output_dtype(array: np.ndarray) -> np.dtype:
    # float32 stays float32 (the exports' dtype); float64 stays float64; float16 and integers compute as float32
    return np.dtype(np.float64) if np.asarray(array).dtype == np.float64 else np.dtype(np.float32)


class Normalizer:
    """Phase 2: each channel's transform, clip and scaling, from merged statistics.

    Build one with :func:`gather_statistics` (or :meth:`from_stats`) and reload it with :meth:`load`.

    Examples
    --------
    >>> norm = Normalizer.load("results/demo/exports/soho-sdo-6h/normalization.json")  # doctest: +SKIP
    >>> y = norm.forward(frame, "AIA_0171")  # doctest: +SKIP
    >>> frame_back = norm.inverse(y, "AIA_0171")  # doctest: +SKIP
    """

    def __init__(self, settings: Settings, stats: dict[str, PartialStats], meta: dict | None = None):
        self.settings = settings
        self.stats = dict(stats)
        self.meta = dict(meta or {})
        self.params = {channel: self._parameters(s) for channel, s in self.stats.items()}

    @classmethod
    def from_stats(cls, settings: Settings, stats: dict[str, PartialStats], meta: dict | None = None) -> Normalizer:
        return cls(settings, stats, meta)

    def _parameters(self, stats: PartialStats) -> dict:
        low, high = self.settings.quantiles
        lo, hi = stats.quantile(low), stats.quantile(high)
        if self.settings.scaling == "standard":
            offset, scale = stats.mean, stats.std
        else:
            offset, scale = lo, hi - lo
        # a constant channel (or an empty one) maps to 0 rather than to a division by zero
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
        return {"clip": [lo, hi], "offset": offset, "scale": scale}

    @property
    def channels(self) -> list[str]:
        return list(self.stats)

    def _channel(self, channel: str) -> dict:
        try:
            return self.params[channel]
        except KeyError:
            raise KeyError(f"no normalization for channel {channel!r}; the artifact has {self.channels}") from None

    def forward(self, array: np.ndarray, channel: str) -> np.ndarray:
        """Normalize ``array`` (any shape) of ``channel``: transform, clip, scale. NaN stays NaN."""
        p = self._channel(channel)
        t = np.clip(self.settings.transform_values(array), *p["clip"])
        return ((t - p["offset"]) / p["scale"]).astype(_output_dtype(array))

    def inverse(self, array: np.ndarray, channel: str) -> np.ndarray:
        """The data values of normalized ``array``: exact within the clip, the clip's bound beyond it."""
        p = self._channel(channel)
        t = np.asarray(array, dtype=np.float64) * p["scale"] + p["offset"]
        return self.settings.untransform(t).astype(_output_dtype(array))

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "version": VERSION, **self.meta, "settings": self.settings.as_dict(),
            "channels": {c: {**s.to_dict(), "parameters": self.params[c]} for c, s in self.stats.items()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the artifact (JSON), atomically."""
        with atomic_path(path) as temp:
            Path(temp).write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalizer:
        """Read an artifact written by :meth:`save`.

        Raises
        ------
        ValueError
            When the file is not a normalization artifact of this :data:`VERSION`.
        """
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"{path} is not a {FORMAT} artifact of version {VERSION} "
                             f"(format {data.get('format')!r}, version {data.get('version')!r}): rebuild it")
        s = data["settings"]
        settings = Settings(preset=s["preset"], clip_quantiles=tuple(s["clip_quantiles"]), log_floor=s["log_floor"],
                            asinh_scale=s["asinh_scale"], mantissa_bits=s["mantissa_bits"])
        meta = {k: v for k, v in data.items() if k not in ("format", "version", "settings", "channels")}
        return cls(settings, {c: PartialStats.from_dict(v) for c, v in data["channels"].items()}, meta)


def phase1_config(block: dict) -> dict:
    """The part of an ``exports.normalization`` block that phase 1 depends on, as a block of its own (a param of
    the per-year jobs, so changing the clip quantiles or minmax for zscore reruns only the cheap gather step)."""
    settings = Settings.from_config(block)
    preset = {"identity": "minmax", "log10": "log", "asinh": "asinh"}[settings.transform]
    return {"preset": preset, **{k: v for k, v in settings.phase1_dict.items() if k != "transform"}}


def settings_hash(settings: Settings) -> str:
    """SHA-256 of the settings, so two artifacts (or parts) can be checked for compatibility."""
    return hashlib.sha256(json.dumps(settings.as_dict(), sort_keys=True).encode()).hexdigest()


def year_statistics(synced_path: str | os.PathLike, year: int, settings: Settings) -> dict[str, PartialStats]:
    """Phase 1: each channel's :class:`PartialStats` of ``t(x)`` over the synced rows of ``year``.

    Frames are read and reduced one at a time, so memory holds one frame and the partial statistics.
    """
    from .synced_source import SyncedSource  # h5py: not for the workflow's parse-time helpers

    with SyncedSource(synced_path) as source:
        stats = {channel: PartialStats(mantissa_bits=settings.mantissa_bits) for channel in source.channels}
        for row in source.rows_between(np.datetime64(f"{year:04d}-01-01"), np.datetime64(f"{year + 1:04d}-01-01")):
            for channel in source.channels:
                values = settings.transform_values(source.frame(channel, row))
                stats[channel] = stats[channel].merge(PartialStats.of(values, settings.mantissa_bits))
    return stats


def write_year_statistics(synced_path: str | os.PathLike, year: int, settings: Settings, out_path: str | os.PathLike,
                          *, experiment: str = "") -> Path:
    """Phase 1 of one experiment-year, written as ``stats/{YYYY}.json`` (atomically)."""
    stats = year_statistics(synced_path, year, settings)
    document = {"format": f"{FORMAT}-part", "version": VERSION, "experiment": experiment, "year": int(year),
                "phase1": settings.phase1_dict, "channels": {c: s.to_dict() for c, s in stats.items()}}
    with atomic_path(out_path) as temp:
        Path(temp).write_text(json.dumps(document, indent=1) + "\n")
    return Path(out_path)


def gather_statistics(part_paths: list[str | os.PathLike], settings: Settings, out_path: str | os.PathLike, *,
                      experiment: str = "", config_hash: str = "") -> Normalizer:
    """Merge the phase-1 parts into the artifact ``normalization.json`` and return its :class:`Normalizer`.

    Raises
    ------
    ValueError
        When a part was computed with another transform or histogram than ``settings`` (stale part), or parts
        disagree on the channels.
    """
    merged: dict[str, PartialStats] | None = None
    for path in part_paths:
        part = json.loads(Path(path).read_text())
        if part.get("version") != VERSION or part.get("phase1") != settings.phase1_dict:
            raise ValueError(f"{path} was computed with {part.get('phase1')}, not {settings.phase1_dict}: rebuild it")
        stats = {c: PartialStats.from_dict(v) for c, v in part["channels"].items()}
        if merged is not None and list(stats) != list(merged):
            raise ValueError(f"{path} has channels {list(stats)}, the other parts {list(merged)}")
        merged = stats if merged is None else {c: merged[c].merge(stats[c]) for c in merged}
    meta = {"experiment": experiment, "config_hash": config_hash, "settings_hash": settings_hash(settings),
            "parts": [Path(p).name for p in part_paths]}
    normalizer = Normalizer(settings, merged or {}, meta)
    normalizer.save(out_path)
    return normalizer
