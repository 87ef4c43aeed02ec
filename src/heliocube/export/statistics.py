"""Mergeable per-channel statistics: count, mean and M2 (Chan's parallel formula), min, max, a fixed-edge histogram.

Phase 1 of the normalization computes a :class:`PartialStats` per channel over one part of the data (a year, a
shard, a node's share); :meth:`PartialStats.merge` combines parts in any grouping and order into the statistics
of the whole: count, min, max and the histogram exactly, mean and M2 to float rounding.

The histogram's edges are fixed without looking at the data, so parts computed apart share them: a value's bin is
the top ``9 + mantissa_bits`` bits of its float32 pattern (sign, exponent and the leading mantissa bits), mapped
to an order-preserving integer. Every float32 has a bin, whatever its units (LASCO brightness of 1e-11 and AIA
counts of 1e4 alike), each bin spans a relative width of at most ``2**-mantissa_bits``, and the bin indexes sort
like the values, so a quantile is a cumulative count. Only non-empty bins are stored.

References
----------
Chan, T. F., Golub, G. H. and LeVeque, R. J., 1979, "Updating formulae and a pairwise algorithm for computing
sample variances", Technical Report STAN-CS-79-773, Stanford University.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["DEFAULT_MANTISSA_BITS", "PartialStats", "bin_edges", "bin_index"]

#: Leading mantissa bits kept per bin: bins 0.8 % wide (relative), 65,536 possible bins.
DEFAULT_MANTISSA_BITS = 7
_SIGN = np.uint32(0x80000000)


def _keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint32 keys of float32 values (negatives inverted, positives with the sign bit set)."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)  # + 0.0 turns -0.0 into +0.0
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def bin_index(values: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> np.ndarray:
    """The histogram bin of each (finite) value: the top ``9 + mantissa_bits`` bits of its order-preserving key."""
    return (_keys(values) >> np.uint32(23 - mantissa_bits)).astype(np.int64)


def _key_values(keys: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.uint64)
    top = keys >= 2**32  # one past the largest key: +inf stands for it
    keys = np.where(top, 0, keys).astype(np.uint32)
    bits = np.where(keys & _SIGN, keys & ~_SIGN, ~keys)
    return np.where(top, np.inf, bits.view(np.float32).astype(np.float64))


def bin_edges(bins: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of ``bins`` (a value ``v`` of bin ``b`` has ``lower[b] <= v < upper[b]``)."""
    bins = np.asarray(bins, dtype=np.uint64)
    shift = np.uint64(23 - mantissa_bits)
    return _key_values(bins << shift), _key_values((bins + np.uint64(1)) << shift)


@dataclass
class PartialStats:
    """Statistics of one part of a channel's finite values, mergeable with other parts' (see the module).

    Attributes
    ----------
    count : int
        Number of finite values.
    mean, m2 : float
        Mean and sum of squared deviations from it (variance ``m2 / count``), float64.
    min, max : float
        Extremes (NaN while ``count`` is 0).
    bins, counts : numpy.ndarray
        Non-empty histogram bins (ascending, int64) and their counts.
    mantissa_bits : int
        Histogram resolution: parts merge only with the same value.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = np.nan
    max: float = np.nan
    bins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mantissa_bits: int = DEFAULT_MANTISSA_BITS

    @classmethod
    def of(cls, values: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> PartialStats:
        """Statistics of the finite entries of ``values`` (NaN and infinities are left out)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if not len(values):
            return cls(mantissa_bits=mantissa_bits)
        mean = float(values.sum() / len(values))
        bins, counts = np.unique(bin_index(values, mantissa_bits), return_counts=True)
        return cls(count=len(values), mean=mean, m2=float(np.square(values - mean).sum()), min=float(values.min()),
                   max=float(values.max()), bins=bins.astype(np.int64), counts=counts.astype(np.int64),
                   mantissa_bits=mantissa_bits)

    def merge(self, other: PartialStats) -> PartialStats:
        """The statistics of both parts together (Chan et al. 1979 for mean and M2).

        Raises
        ------
        ValueError
            When the parts' histograms have different resolutions.
        """
        if self.mantissa_bits != other.mantissa_bits:
            raise ValueError(f"histograms of {self.mantissa_bits} and {other.mantissa_bits} mantissa bits do not merge")
        if not other.count:
            return self
        if not self.count:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        bins, inverse = np.unique(np.concatenate([self.bins, other.bins]), return_inverse=True)
        counts = np.bincount(inverse, weights=np.concatenate([self.counts, other.counts]), minlength=len(bins))
        return PartialStats(count=count, mean=mean, m2=m2, min=min(self.min, other.min), max=max(self.max, other.max),
                            bins=bins, counts=counts.astype(np.int64), mantissa_bits=self.mantissa_bits)

    @property
    def var(self) -> float:
        """Population variance (NaN while empty)."""
        return self.m2 / self.count if self.count else np.nan

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0 <= q <= 1) from the histogram, exact at 0 and 1 (the min and max).

        Between, the rank ``q * (count - 1)`` is located in its bin and interpolated linearly between the bin's
        edges, then kept within [min, max]: the estimate lies in the bin of the value of rank ``floor(q * (count -
        1))``, so within one bin (relative width ``2**-mantissa_bits``) of it.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} is not within [0, 1]")
        if not self.count:
            return np.nan
        if q in (0.0, 1.0):
            return self.min if q == 0.0 else self.max
        rank = q * (self.count - 1)
        cumulative = np.cumsum(self.counts)
        i = int(np.searchsorted(cumulative, rank, side="right"))
        before = cumulative[i - 1] if i else 0
        lower, upper = bin_edges(self.bins[i : i + 1], self.mantissa_bits)
        value = lower[0] + (upper[0] - lower[0]) * (rank - before) / self.counts[i]
        return float(np.clip(value, self.min, self.max))

    def to_dict(self) -> dict:
        """JSON-ready (floats as Python floats, whose repr round-trips float64 exactly), with the bins' edges."""
        lower, upper = bin_edges(self.bins, self.mantissa_bits)
        return {
            "count": int(self.count), "mean": self.mean, "m2": self.m2, "var": _json_float(self.var),
            "std": _json_float(self.std), "min": _json_float(self.min), "max": _json_float(self.max),
            "histogram": {"mantissa_bits": self.mantissa_bits, "bins": self.bins.tolist(),
                          "counts": self.counts.tolist(), "lower_edges": lower.tolist(), "upper_edges": upper.tolist()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> PartialStats:
        histogram = data["histogram"]
        return cls(count=int(data["count"]), mean=float(data["mean"]), m2=float(data["m2"]),
                   min=_float(data["min"]), max=_float(data["max"]),
                   bins=np.asarray(histogram["bins"], dtype=np.int64),
                   counts=np.asarray(histogram["counts"], dtype=np.int64),
                   mantissa_bits=int(histogram["mantissa_bits"]))


def _json_float(value: float) -> float | None:
    # JSON has no NaN: an empty part's extremes are null
    return None if np.isnan(value) else float(value)


def _float(value: float | None) -> float:
    return np.nan if value is None else float(value)
