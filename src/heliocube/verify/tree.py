"""``heliocube verify`` over a whole output tree: what is checked and what the repair removes (see the package)."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..clean import frame_digest, read_index
from ..fetch.cache import MISSING, load_receipt, recorded_files, recorded_mismatch
from .events import event_frames, rebuild_event
from .mismatch import READABLE, Mismatch, text, unreadable

__all__ = ["Verification", "arrange_rebuild", "verify_tree"]


@dataclasses.dataclass
class Verification:
    """What :func:`verify_tree` checked (``checked``: counts by kind) and every mismatch it found."""

    mismatches: list[Mismatch]
    checked: Counter

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify_tree(root: str | os.PathLike) -> Verification:
    """Check every raw file, cleaned frame, cube, synced row and event frame and dataset row under ``root`` against
    its recorded digest.

    Parameters
    ----------
    root : path
        A workflow's ``output_root``.

    Returns
    -------
    Verification
        The mismatches in the order raw files, handoffs, frames, cubes, synced files, event frames, event dataset
        rows (each sorted by path), and counts.
    """
    root = Path(root)
    checked: Counter = Counter()
    mismatches = [*_raw_files(root, checked), *_handoffs(root, checked), *_frames(root, checked),
                  *_cubes(root, checked), *_synced(root, checked), *event_frames(root, checked)]
    return Verification(mismatches, checked)


def arrange_rebuild(root: str | os.PathLike, mismatches: list[Mismatch]) -> list[str]:
    """Remove the outputs whose absence makes the next workflow run rebuild what ``mismatches`` name.

    Returns the removed paths (relative to ``root``, sorted); nothing else is touched, nothing is downloaded.
    """
    removed = []
    for relative in sorted({target for mismatch in mismatches for target in mismatch.rebuild}):
        path = Path(root, relative)
        if path.exists():
            path.unlink()
            removed.append(relative)
    return removed


def _receipts(root: Path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Every receipt under ``root`` with what to remove for the job that wrote it to run again: a day receipt's
    month slot table, an event receipt's frame table with its dataset's labels (:func:`.events.rebuild_event`)."""
    for path in sorted(root.glob("raw/*/*/*.receipt.json")):
        yield path, (str(path.relative_to(root).parent.parent / f"{path.name[:7]}.slots.csv"),)
    for path in sorted(root.glob("events/*/frames/*/*.receipt.json")):  # .../frames/{event_id}/{product}.receipt
        event = path.parent  # not with_suffix: an event id may hold a dot (AR11158.1)
        yield path, rebuild_event(root, event.parent / f"{event.name}.csv")


def _read_receipt(root: Path, path: Path, rebuild: tuple[str, ...]) -> dict | Mismatch:
    """A receipt's content, or the mismatch naming it when it does not read as a JSON object (its job writes it
    again, and downloads again what it alone recorded: :func:`heliocube.fetch.receipts.cache_digests`)."""
    receipt = load_receipt(path)
    if isinstance(receipt, dict):
        return receipt
    why = "it is gone" if receipt is None else receipt[:160]
    return Mismatch(str(path.relative_to(root)), "receipt", READABLE, f"an unreadable file ({why})", rebuild)


def _raw_files(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every raw file the receipts name, hashed once, against each distinct digest recorded for it (and every
    receipt that does not read)."""
    receipts_of: dict[tuple[str, str], list[tuple[Path, tuple[str, ...]]]] = defaultdict(list)  # (file, sha256) ->
    for receipt_path, rebuild in _receipts(root):
        receipt = _read_receipt(root, receipt_path, rebuild)
        if isinstance(receipt, Mismatch):
            yield receipt
            continue
        for relative, sha256 in recorded_files(receipt).items():
            receipts_of[relative, sha256].append((receipt_path, rebuild))
    for (relative, expected), receipts in sorted(receipts_of.items()):
        checked["raw files"] += 1
        found = recorded_mismatch(root / relative, expected)
        if found is not None:
            # the job of each receipt naming it: it checks the file against its receipt and fetches it again
            names = ", ".join(str(path.relative_to(root)) for path, _ in receipts)
            yield Mismatch(relative, f"raw file vs {names}", expected, found,
                           tuple(sorted({target for _, rebuild in receipts for target in rebuild})))


def _handoffs(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every decoded frame a QC verdict handed to the clean stage (:mod:`heliocube.handoff`), against its recorded
    SHA-256. The repair deletes a changed one (the clean stage never uses it: it decodes the raw file instead); one
    that is missing is no mismatch, only a cache the clean stage goes without."""
    seen = set()
    for receipt_path, rebuild in _receipts(root):
        receipt = _read_receipt(root, receipt_path, rebuild)
        if isinstance(receipt, Mismatch):
            continue  # named by _raw_files
        verdicts = (receipt.get("qc") or {}).get("verdicts") or {}
        for verdict in verdicts.values():
            entry = verdict.get("handoff") or {}
            key = (entry.get("path"), entry.get("sha256"))
            if not entry.get("path") or not entry.get("sha256") or key in seen:
                continue
            seen.add(key)
            checked["handoffs"] += 1
            found = recorded_mismatch(root / entry["path"], entry["sha256"])
            if found is not None and found != MISSING:
                yield Mismatch(entry["path"], f"handoff vs {receipt_path.relative_to(root)}", entry["sha256"], found,
                               (entry["path"],))


def _frames(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every frame of every month index against its ``frame_sha256``."""
    from astropy.io import fits

    for index_path in sorted(root.glob("frames/*/*/*.index.csv")):
        rebuild = (str(index_path.relative_to(root)),)
        try:
            index = read_index(index_path)[["frame_file", "hdu", "frame_sha256"]]
        except (OSError, ValueError, KeyError) as err:  # not a CSV, cut short, or without its columns
            yield Mismatch(rebuild[0], "frame index", READABLE, unreadable(err), rebuild)
            continue
        what = f"frame vs {rebuild[0]}"
        for frame_file, rows in index.groupby("frame_file", sort=True):
            path = root / frame_file
            if not path.is_file():
                for _, row in rows.iterrows():
                    checked["frames"] += 1
                    yield Mismatch(f"{frame_file}[{row['hdu']}]", what, row["frame_sha256"], MISSING, rebuild)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                try:
                    hdul = fits.open(path, memmap=False)
                except (OSError, ValueError, TypeError) as err:  # not FITS, or truncated before its first HDU
                    for _, row in rows.iterrows():
                        checked["frames"] += 1
                        yield Mismatch(f"{frame_file}[{row['hdu']}]", what, row["frame_sha256"], unreadable(err),
                                       rebuild)
                    continue
                with hdul:
                    for _, row in rows.iterrows():
                        checked["frames"] += 1
                        hdu = int(row["hdu"])
                        try:
                            found = frame_digest(np.asarray(hdul[hdu].data, dtype=np.float32))
                        except (IndexError, TypeError, ValueError, OSError) as err:  # no such HDU, or unreadable
                            found = unreadable(err, "HDU")
                        if found != row["frame_sha256"]:
                            yield Mismatch(f"{frame_file}[{hdu}]", what, row["frame_sha256"], found, rebuild)


def _rebuild_cube(root: Path, path: Path) -> tuple[str, ...]:
    """What to remove for a cube to be rebuilt: a seeded cube itself, a per-year cube with its product's master."""
    relative = path.relative_to(root)
    if path.name.endswith(".seeded.h5"):
        return (str(relative),)
    product = relative.parent  # .../{product}/{YYYY}.h5 -> .../{product}.h5
    return str(relative), str(product.parent / f"{product.name}.h5")


def _rows_against_digests(group, rows, label: str, where: str, rebuild: tuple[str, ...],
                          checked: Counter) -> Iterator[Mismatch]:
    """Rows ``rows`` of ``group["data"]`` against ``group["frames/frame_sha256"]`` (``where``: the file's path)."""
    data, digests, records = group["data"], group["frames/frame_sha256"][()], group["frames/record_id"][()]
    for i in rows:
        checked[label] += 1
        expected = text(digests[i])
        try:
            found = frame_digest(data[i])
        except (OSError, ValueError) as err:  # a damaged chunk
            found = unreadable(err, "row")
        if found != expected:
            yield Mismatch(f"{where}[{i}]", f"{label[:-1]} of {text(records[i])} vs its frames/frame_sha256",
                           expected, found, rebuild)


def _cubes(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every row of the per-year and seeded cubes against the frame digest it carries."""
    import h5py

    for path in sorted([*root.glob("cubes/*/*/*.h5"), *root.glob("cubes/*/*.seeded.h5")]):
        where, rebuild = str(path.relative_to(root)), _rebuild_cube(root, path)
        try:
            with h5py.File(path, "r") as f:
                yield from _rows_against_digests(f, range(f["data"].shape[0]), "cube rows", where, rebuild, checked)
        except (OSError, KeyError, IndexError) as err:  # not HDF5, truncated, without its rows or digests
            yield Mismatch(where, "cube", READABLE, unreadable(err), rebuild)


def _synced(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """The present rows of each synced product that copies its cube's frames (not a running difference)."""
    import h5py

    for path in sorted(root.glob("synced/*.h5")):
        relative = str(path.relative_to(root))
        try:
            with h5py.File(path, "r") as f:
                for product in f.attrs["products"]:
                    group = f[text(product)]
                    if group.attrs.get("difference"):
                        continue  # its rows are differences of two frames, not the frames the digests describe
                    rows = np.flatnonzero(group["present"][()])
                    yield from _rows_against_digests(group, rows, "synced rows", f"{relative}:{text(product)}",
                                                     (relative,), checked)
        except (OSError, KeyError, IndexError) as err:  # not HDF5, truncated, without its groups or digests
            yield Mismatch(relative, "synced file", READABLE, unreadable(err), (relative,))
