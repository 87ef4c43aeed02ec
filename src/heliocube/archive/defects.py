"""The synthetic mission's randomness and defects: per-record random numbers, the defect kinds, and where defects
can be placed on a frame.

Every random quantity of a record is a pure function of (seed, product, grid index, stream), so a record is the
same whenever and in whatever order it is asked for.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFECT_KINDS", "QUALITY_BITS", "DefectsMixin"]

#: Defect kinds whose per-record rates ``defect_rates`` may override.
DEFECT_KINDS = ("quality", "hole", "missing_blocks", "streak", "cosmic_rays", "corrupt", "truncated")
#: QUALITY values a flagged JSOC record carries (one bit each, as JSOC's status summary).
QUALITY_BITS = (0x00000200, 0x00000400, 0x00001000, 0x00010000, 0x00020000, 0x40000000)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class DefectsMixin:
    """Random numbers and defect placement of :class:`heliocube.archive.mission.SyntheticMission`.

    Uses the mission's ``seed``, ``frame_size``, ``params``, ``_pid``, ``product``, ``valid_mask`` and ``_memoize``.
    """

    def _uniform(self, name: str, k: np.ndarray, stream: int) -> np.ndarray:
        """Uniform [0, 1) numbers keyed by (seed, product, grid index, stream)."""
        k = np.asarray(k, dtype=np.int64).astype(np.uint64)
        with np.errstate(over="ignore"):
            base = _mix(
                np.array([self.seed * 0x9E3779B97F4A7C15 % 2**64 ^ self._pid[name] << 20 ^ stream], dtype=np.uint64)
            )
            x = _mix(_mix(k + base))
        return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def _rng(self, name: str, k: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._pid[name], int(k) & 0xFFFFFFFFFFFF, stream])

    def _placement(self, name: str, level: str) -> dict:
        """Cached facts for defect placement: valid pixel count, integral image, block cells, largest hole."""

        def build():
            mask = self.valid_mask(name, level)
            n = mask.shape[0]
            integral = np.zeros((n + 1, n + 1), dtype=np.int64)
            integral[1:, 1:] = mask.cumsum(0).cumsum(1)
            prm, product = self.params[name], self.product(name)

            def fits_side(side):
                total = integral[side:, side:] - integral[:-side, side:]
                total = total - integral[side:, :-side] + integral[:-side, :-side]
                return total == side * side

            lo, hi = 1, n
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if fits_side(mid).any():
                    lo = mid
                else:
                    hi = mid - 1
            block = 0
            cells = np.zeros((0, 2), dtype=int)
            if prm.get("block_native"):
                block = max(1, round(prm["block_native"] * self.frame_size / product.native_size))
                nb = n // block
                view = mask[: nb * block, : nb * block].reshape(nb, block, nb, block).all(axis=(1, 3))
                cells = np.argwhere(view) * block  # (row, col) of the top-left pixel
            return {
                "n_valid": int(mask.sum()),
                "max_side": int(lo),
                "fits_side": fits_side,
                "block": block,
                "cells": cells,
                "valid_index": np.flatnonzero(mask),
            }

        return self._memoize(("placement", name, level, self.frame_size), build)
