"""The fetch job's decoded frame, handed to the clean stage so that a frame is decoded once, not twice.

QC (in the fetch job) decodes every candidate it judges; the clean stage used to decode the accepted file again
(~70 % of both stages for a 4096² Rice frame). Where it gives the clean stage's exact result, the fetch job keeps
the QC-accepted frame block-averaged to a smaller grid, and the clean stage resizes that instead of decoding:

- **what**: the frame block-averaged (float32, ``.npy``) to the handoff grid: the least common multiple of the
  sizes of the variants it serves (uncalibrated ``mean`` and ``sum`` variants: 512 px for the SDOML example, 1 MB
  instead of a 64 MB decoded frame). Other methods (``interp``, ``subsample``, ``minpool``, ``maxpool``) and
  calibrated variants decode the raw file as before.
- **identical results**: made only where the two-step mean equals the one-step one bit for bit: an unscaled
  integer frame of at most 16 bits, power-of-two factors, and block sums exact in float32 (below 2**24), so every
  stored value is the exact block mean and the clean stage's second averaging (float64) of exact values rounds
  once, as the one-step mean does. A frame with ``BLANK`` pixels keeps the valid pixels' sum and count per block
  instead (two planes), from which the NaN-aware mean is the same single division. Anything else gets no handoff
  (recorded as such, so it is not retried) and the clean stage decodes. The header is always the raw file's, read
  without decoding, and resized with the factor from the full frame (:func:`heliocube.resize.resized_header`).
- **where**: ``handoff/{tag}/{raw path under raw/}.npy`` under the output root; ``tag`` (e.g. ``mean512-v1``)
  names the grid and this module's version, so a config that needs another grid, or a new version of this code,
  never reads an old file.
- **trust**: the gate's verdict in the day receipt records the handoff's path and SHA-256 beside the raw file's
  SHA-256 (:class:`heliocube.fetch.verdicts.Verdict`). The clean stage uses a handoff only when that raw digest is
  the slot's (which it checks against the raw file first) and the handoff file still has its recorded digest;
  otherwise it decodes. ``heliocube verify`` checks every recorded handoff; its repair deletes a changed one.
  A rerun of the fetch job reuses a verdict only when it carries a handoff of the current tag whose file exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["HANDOFF_METHODS", "VERSION", "HandoffSpec", "HandoffWriter", "calibrated_from_decoded",
           "frame_from_handoff", "input_grid", "load_handoff", "recorded_handoffs", "resize_handoff"]

#: Bump when what a handoff holds changes: the tag changes with it, so no file of an older version is read.
VERSION = 1
#: Resize methods whose result the block-averaged frame gives exactly.
HANDOFF_METHODS = ("mean", "sum")
#: Frames from this edge up are averaged by :mod:`heliocube.blocksums` (same bits, a third of the time; below it the
#: compiler's import would cost more than it saves)
_COMPILED_SIZE = 2048


def _power_of_two(n: int) -> bool:
    return n > 0 and not n & (n - 1)


@dataclasses.dataclass(frozen=True)
class HandoffSpec:
    """The grid the fetch job averages an accepted frame to, for the variants it serves."""

    grid: int

    @property
    def tag(self) -> str:
        return f"mean{self.grid}-v{VERSION}"

    @classmethod
    def for_variants(cls, variants: Iterable) -> HandoffSpec | None:
        """The spec serving every variant of ``variants`` that a handoff can serve; None when none is."""
        grids = [grid for grid in map(input_grid, variants) if grid is not None]
        return cls(math.lcm(*grids)) if grids else None

    @classmethod
    def of_entry(cls, entry: Mapping) -> HandoffSpec | None:
        """The spec a recorded handoff entry was made under, when it is one of this version."""
        grid = entry.get("grid")
        return cls(int(grid)) if isinstance(grid, int) and entry.get("tag") == cls(int(grid)).tag else None

    def serves(self, variant, source_size: int) -> bool:
        """Whether ``variant``'s frame from a ``source_size`` frame can be made from this handoff."""
        grid = input_grid(variant)
        return (grid is not None and self.grid % grid == 0 and source_size % grid == 0
                and _power_of_two(source_size // variant.image_size))

    def reduce(self, data: np.ndarray, header) -> tuple[np.ndarray | None, str]:
        """The frame averaged to the grid, or None and why it would not give the clean stage's exact result."""
        from .frameio import blank_to_nan, stored_blank
        from .resize import resize

        if data.ndim != 2 or data.shape[0] != data.shape[1]:
            return None, f"not square: {data.shape}"
        n = data.shape[0]
        if n % self.grid or not _power_of_two(n // self.grid) or n // self.grid < 2:
            return None, f"{n} px is no power-of-two multiple (>= 2) of the grid {self.grid}"
        if data.dtype.kind not in "iu" or data.dtype.itemsize > 2:
            return None, f"{data.dtype} data: block means not exact in float32"
        factor = n // self.grid
        info = np.iinfo(data.dtype)
        if max(-int(info.min), int(info.max)) * factor * factor >= 2**24:
            return None, f"block sums of {data.dtype} at factor {factor} not exact in float32"
        if n >= _COMPILED_SIZE:  # one compiled pass: the means and the range that says whether BLANK is there
            from .blocksums import block_means

            means, low, high = block_means(data, factor)
            blank = stored_blank(data, header)
            if blank is None or not low <= blank <= high or (blank not in (low, high) and not (data == blank).any()):
                return means, ""
        elif blank_to_nan(data, header) is data:  # no BLANK pixel (the clean stage converts nothing either)
            return resize(data, self.grid, "mean"), ""
        # BLANK pixels: the valid pixels' sum and count per block (both exact), for the NaN-aware means
        valid = data != stored_blank(data, header)
        square = np.float32(factor * factor)
        sums = resize(np.where(valid, data, np.zeros((), data.dtype)), self.grid, "mean") * square
        counts = resize(valid, self.grid, "mean") * square
        return np.stack([sums, counts]), ""


def _affine(variant) -> bool:
    """Whether a calibrated variant's geometry runs the affine path (:mod:`heliocube.calibrate.affine`)."""
    try:
        from .calibrate import parse_options
        from .calibrate.affine import supports
    except ImportError:  # a calibration without the affine path: its variants decode
        return False
    options = parse_options(variant.calibration)
    return options.geometric and options.method == "affine" and supports(variant.resize_method)


def input_grid(variant) -> int | None:
    """The grid a handoff must hold for ``variant`` (None: none serves it).

    An uncalibrated ``mean``/``sum`` variant: its own size (the rest of the mean is exact). A calibrated one whose
    geometry is affine: twice its size, the grid the affine path's prefilter averages to from 4096² to 512² (its
    input's WCS drives it, so it calibrates the binned frame as it would the full one); the clean stage gives it
    that binned frame whether a handoff exists or not (:func:`calibrated_from_decoded`), so its pixels never depend
    on the cache. Anything else (``interp``, ``subsample``, pools, a calibration without geometry, the
    full-resolution reference) decodes the raw file.
    """
    if variant.resize_method not in HANDOFF_METHODS:
        return None
    if not variant.calibration:
        return variant.image_size
    return 2 * variant.image_size if _affine(variant) else None


class HandoffWriter:
    """Writes the handoff of a QC-accepted frame under ``root`` (used by :class:`heliocube.qc.FrameQC`)."""

    def __init__(self, root: str | os.PathLike, spec: HandoffSpec):
        self.root = Path(root)
        self.spec = spec

    @property
    def tag(self) -> str:
        return self.spec.tag

    def path_of(self, raw_path: str | os.PathLike) -> Path:
        relative = Path(os.path.relpath(Path(raw_path).resolve(), self.root.resolve()))
        parts = relative.parts[1:] if relative.parts[:1] == ("raw",) else relative.parts
        return self.root / "handoff" / self.tag / Path(*parts).with_name(relative.name + ".npy")

    def write(self, raw_path: str | os.PathLike, data: np.ndarray, header) -> dict:
        """Write the handoff of ``raw_path``'s decoded ``data``; the receipt entry (``path`` None when none)."""
        from .frameio import read_header
        from .paths import atomic_path

        reduced, why = self.spec.reduce(data, header)
        if reduced is None or read_header(raw_path) is None:  # the clean stage could not use it
            return {"tag": self.tag, "path": None, "sha256": None, "source_size": int(data.shape[0]),
                    "detail": why or "header not readable without decoding"}
        # np.save's own bytes (its header, then the array's memory), hashed as they are written: no copy of the array
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(reduced))
        parts = (buffer.getvalue(), memoryview(np.ascontiguousarray(reduced)).cast("B"))
        digest = hashlib.sha256()
        target = self.path_of(raw_path)
        with atomic_path(target) as tmp, open(tmp, "wb") as out:
            for part in parts:
                digest.update(part)
                out.write(part)
        return {"tag": self.tag, "path": os.path.relpath(target, self.root), "grid": self.spec.grid,
                "sha256": digest.hexdigest(), "source_size": int(data.shape[0]), "detail": ""}


def recorded_handoffs(receipts: Iterable[Mapping]) -> dict[str, dict]:
    """Raw file SHA-256 -> the handoff entry its QC verdict recorded (made ones only)."""
    out = {}
    for receipt in receipts:
        for verdict in ((receipt.get("qc") or {}).get("verdicts") or {}).values():
            entry = verdict.get("handoff")
            if entry and entry.get("path") and entry.get("sha256") and verdict.get("sha256"):
                out[verdict["sha256"]] = entry
    return out


def load_handoff(root, entry: Mapping) -> np.ndarray | None:
    """The handoff array when its file still has the recorded SHA-256; None otherwise (the caller decodes)."""
    try:
        payload = Path(root, entry["path"]).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
        return None
    try:
        return np.lib.format.read_array(io.BytesIO(payload), allow_pickle=False)
    except ValueError:
        return None


def _binned(handoff: np.ndarray, grid: int) -> np.ndarray:
    """A handoff reduced further to ``grid`` in its own form (means, or sums and counts): exact either way."""
    from .resize import resize

    if handoff.shape[-1] == grid:
        return handoff
    if handoff.ndim == 2:
        return resize(handoff, grid, "mean")  # float64 means of exact means: exact
    step = handoff.shape[-1] // grid
    return np.stack([plane.astype(np.float64).reshape(grid, step, grid, step).sum(axis=(1, 3))
                     for plane in handoff])


def resize_handoff(handoff: np.ndarray, header, source_size: int, size: int, method: str):
    """The frame and header the clean stage's resize of the ``source_size`` frame gives, made from its handoff.

    ``handoff`` is the block means (2-D), or the valid pixels' sums and counts (``(2, grid, grid)``, a frame with
    ``BLANK`` pixels). ``header`` (the raw file's, :func:`heliocube.frameio.read_header`) is updated in place, as
    ``resize_frame(copy_header=False)`` does.
    """
    from .resize import resized_header

    factor = source_size // size
    binned = _binned(handoff, size)
    if binned.ndim == 2:
        out = binned.astype(np.float32)
        if method == "sum":  # exact: a power-of-two factor on an exact (or once-rounded) mean
            out = out * np.float32(factor * factor)
    else:  # what resize does with NaN: float64 sums and counts (exact integers here), one division
        sums, counts = binned.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = sums / counts
        if method == "sum":
            out = out * (factor * factor)
        out[counts == 0] = np.nan
        out = out.astype(np.float32)
    return out, resized_header(header, source_size, size, method, out, copy_header=False)


def _calibrate_binned(handoff: np.ndarray, header, source_size: int, variant, product_name: str):
    """A calibrated variant's frame from its input grid's means (NaN where a block had no valid pixel)."""
    from .calibrate import calibrate_frame
    from .resize import resized_header

    grid = input_grid(variant)
    binned = _binned(handoff, grid)
    if binned.ndim == 3:
        with np.errstate(invalid="ignore", divide="ignore"):
            binned = (binned[0].astype(np.float64) / binned[1]).astype(np.float32)  # 0/0: NaN
    binned = binned.astype(np.float32, copy=False)
    header = resized_header(header, source_size, grid, "mean", binned, copy_header=False)
    return calibrate_frame(binned, header, variant.calibration, product_name, variant.image_size,
                           variant.resize_method, copy_header=False)


def calibrated_from_decoded(data: np.ndarray, header, variant, product_name: str):
    """The clean stage's frame of a calibrated variant a handoff serves, from the decoded frame: binned to the
    variant's input grid first (:func:`input_grid`) exactly as the fetch job's handoff is, so that the frame is the
    same bits with or without a handoff. None when the variant or the frame is not one of those (the caller then
    calibrates the full frame)."""
    if not variant.calibration or data.ndim != 2:
        return None
    grid = input_grid(variant)
    if grid is None:
        return None
    spec = HandoffSpec(grid)
    if not spec.serves(variant, data.shape[0]):
        return None
    reduced, _ = spec.reduce(data, header)
    if reduced is None:
        return None
    return _calibrate_binned(reduced, header, data.shape[0], variant, product_name)


def frame_from_handoff(root, entry: Mapping, raw_path, variant, product_name: str, keywords=None):
    """The clean stage's ``(frame, header)`` of ``variant`` from a recorded handoff, or None when the handoff cannot
    give it (another spec or version, a changed or missing file, a header not readable without decoding).

    ``keywords`` are the record's archive keywords (:func:`heliocube.header.with_record_keywords`)."""
    from .frameio import read_header
    from .header import with_record_keywords

    spec = HandoffSpec.of_entry(entry)
    source_size = entry.get("source_size")
    if spec is None or not isinstance(source_size, int) or not spec.serves(variant, source_size):
        return None
    handoff = load_handoff(root, entry)
    if handoff is None or handoff.shape[-2:] != (spec.grid, spec.grid) or handoff.ndim - 2 not in (0, 1):
        return None
    header = read_header(raw_path)
    if header is None or (header.get("NAXIS1"), header.get("NAXIS2")) != (source_size, source_size):
        return None
    header = with_record_keywords(header, keywords)
    if variant.calibration:
        return _calibrate_binned(handoff, header, source_size, variant, product_name)
    return resize_handoff(handoff, header, source_size, variant.image_size, variant.resize_method)
