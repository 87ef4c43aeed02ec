"""Check an output tree against the digests its stages recorded, and arrange the rebuild of whatever differs.

What is checked (``heliocube verify ROOT``):

- **raw files**: every file a day receipt (``raw/{product}/{YYYY}/{YYYY-MM-DD}.receipt.json``) or an event's
  receipt (``events/{name}/frames/{event_id}/{product}.receipt.json``) names, the slots' chosen files and every file
  the QC gate judged, against the SHA-256 recorded when it was downloaded;
- **handoffs**: every decoded frame a QC verdict kept for the clean stage (:mod:`heliocube.handoff`), against the
  SHA-256 the receipt recorded beside the raw file's; a missing one is no mismatch (the clean stage decodes);
- **event frames**: every cleaned frame an event's frame table (``events/{name}/frames/{event_id}.csv``) lists as
  ``ok``, its file against the table's ``sha256`` (:mod:`heliocube.events.frames`), and every frame the labelled
  cubes of an event dataset hold (``events/{name}/dataset/events.h5`` and ``per_event/*.h5``), its file against the
  cube's ``/provenance/sha256`` (:mod:`heliocube.events.labelled_cube`): a dataset built from an older frame than
  its table names differs here;
- **event dataset rows**: every row of those cubes whose frame is intact, against that frame's pixels;
- **cleaned frames**: every frame a month index (``frames/{variant}/{product}/{YYYY-MM}.index.csv``) lists, its
  file and HDU, against the ``frame_sha256`` the clean stage recorded (:func:`heliocube.clean.frame_digest`);
- **cubes**: every row of the per-year cubes (``cubes/{variant}/{product}/{YYYY}.h5``) and seeded cubes against the
  ``frames/frame_sha256`` it carries; every present row of a synced file's products that are not running
  differences likewise. Masters hold no pixels of their own (virtual datasets over the years' cubes).

A file that does not open (a truncated HDF5 or FITS file, a receipt that is not JSON) or a row that does not read
(a damaged chunk) is a mismatch like a changed one, named with what was found, and repaired the same way.

The repair (:func:`arrange_rebuild`) downloads nothing and rewrites nothing itself: it removes workflow outputs so
that Snakemake rebuilds the mismatched file and everything built from it, and the next run of the workflow does the
work with its own jobs, logs and ledgers. Snakemake reruns a job whose output is missing only when that output is a
target of the run or is needed by a job that runs anyway (a missing intermediate file is otherwise left missing),
so what is removed is, or leads to, a target of ``rule all``:

- a raw file: the slot table of each month whose receipts name it (a target): the fetch job reruns, finds the
  file changed, notes ``cache_mismatch`` in its ledger, downloads it again, and everything downstream follows; for
  each event whose receipt names it, what an event frame's repair removes;
- an event frame: the event's frame table and its dataset's ``labels.csv`` (a target, whose job needs the table
  again): the event's job fetches (a changed raw file again), cleans and records every frame of its window anew;
- a frame whose digest only an event dataset's cube recorded, or a row of such a cube: the dataset's
  ``labels.csv`` (a target; the dataset's job writes every cube of the dataset again);
- a handoff: the handoff file itself (the clean stage then decodes the raw file; the next fetch run makes it again);
- a frame: its month's frame index (its clean job writes the month's clean ledger, a target);
- a row of a per-year cube: that cube and the product's master (a target, which needs the year again);
- a row of a seeded cube or a synced file: that file (a target).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .clean import frame_digest, read_index
from .fetch.cache import MISSING, recorded_files, recorded_mismatch

__all__ = ["READABLE", "Mismatch", "Verification", "arrange_rebuild", "verify_tree"]


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One file (or one row of it) that is not what its stage recorded.

    Attributes
    ----------
    path : str
        The file, relative to the output root; ``[i]`` appended for a row of a cube, ``[hdu]`` for a frame.
    what : str
        What it was checked against, e.g. ``raw file vs raw/EIT195/2010/2010-10-15.receipt.json``.
    expected, found : str
        The recorded digest, and the one found (or what was found instead, e.g. ``no file``).
    rebuild : tuple of str
        The workflow outputs (relative to the root) whose removal makes the next run rebuild it.
    """

    path: str
    what: str
    expected: str
    found: str
    rebuild: tuple[str, ...]

    def __str__(self) -> str:
        expected = self.expected if self.expected == READABLE else f"sha256 {self.expected}"
        return f"{self.path}: {self.what}: expected {expected}, found {self.found}"


#: What a mismatch expects of a file that did not open, or of a receipt (which records digests, not its own).
READABLE = "a readable file"


def _unreadable(err: BaseException, what: str = "file") -> str:
    """What was found instead of a readable file or row: the error, briefly."""
    return f"an unreadable {what} ({type(err).__name__}: {str(err)[:120]})"


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
                  *_cubes(root, checked), *_synced(root, checked), *_event_frames(root, checked)]
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
    month slot table, an event receipt's frame table with its dataset's labels (:func:`_rebuild_event`)."""
    for path in sorted(root.glob("raw/*/*/*.receipt.json")):
        yield path, (str(path.relative_to(root).parent.parent / f"{path.name[:7]}.slots.csv"),)
    for path in sorted(root.glob("events/*/frames/*/*.receipt.json")):  # .../frames/{event_id}/{product}.receipt
        yield path, _rebuild_event(root, path.parent.with_suffix(".csv"))


def _rebuild_event(root: Path, table: Path) -> tuple[str, ...]:
    """An event's frame table ``events/{name}/frames/{event_id}.csv`` and its dataset's ``labels.csv``: a missing
    frame table alone is not rebuilt (no job that runs needs it), a missing ``labels.csv`` is a target of rule all
    whose job needs every frame table of the dataset."""
    relative = table.relative_to(root)
    return str(relative), str(relative.parent.parent / "dataset" / "labels.csv")


def _read_receipt(root: Path, path: Path, rebuild: tuple[str, ...]) -> dict | Mismatch:
    """A receipt's content, or the mismatch naming it when it is not a JSON object (its job writes it again)."""
    try:
        receipt = json.loads(path.read_text())
        if isinstance(receipt, dict):
            return receipt
        raise ValueError(f"a JSON {type(receipt).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return Mismatch(str(path.relative_to(root)), "receipt", READABLE, _unreadable(err), rebuild)


def _raw_files(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every raw file the receipts name, hashed once, against each distinct digest recorded for it (and every
    receipt that does not read)."""
    receipts_of: dict[tuple[str, str], list[tuple[Path, tuple[str, ...]]]] = defaultdict(list)  # (file, sha256) ->
    for receipt_path, rebuild in _receipts(root):
        receipt = _read_receipt(root, receipt_path, rebuild)
        if isinstance(receipt, Mismatch):
            checked["receipts"] += 1
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
        index = read_index(index_path)
        rebuild = (str(index_path.relative_to(root)),)
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
                        yield Mismatch(f"{frame_file}[{row['hdu']}]", what, row["frame_sha256"], _unreadable(err),
                                       rebuild)
                    continue
                with hdul:
                    for _, row in rows.iterrows():
                        checked["frames"] += 1
                        hdu = int(row["hdu"])
                        try:
                            found = frame_digest(np.asarray(hdul[hdu].data, dtype=np.float32))
                        except (IndexError, TypeError, ValueError, OSError) as err:  # no such HDU, or unreadable
                            found = _unreadable(err, "HDU")
                        if found != row["frame_sha256"]:
                            yield Mismatch(f"{frame_file}[{hdu}]", what, row["frame_sha256"], found, rebuild)


def _rebuild_cube(root: Path, path: Path) -> tuple[str, ...]:
    """What to remove for a cube to be rebuilt: a seeded cube itself, a per-year cube with its product's master."""
    relative = path.relative_to(root)
    if path.name.endswith(".seeded.h5"):
        return (str(relative),)
    return str(relative), str(relative.parent.with_suffix(".h5"))  # .../{product}/{YYYY}.h5 -> .../{product}.h5


def _rows_against_digests(group, rows, label: str, where: str, rebuild: tuple[str, ...],
                          checked: Counter) -> Iterator[Mismatch]:
    """Rows ``rows`` of ``group["data"]`` against ``group["frames/frame_sha256"]`` (``where``: the file's path)."""
    data, digests, records = group["data"], group["frames/frame_sha256"][()], group["frames/record_id"][()]
    for i in rows:
        checked[label] += 1
        expected = _text(digests[i])
        try:
            found = frame_digest(data[i])
        except (OSError, ValueError) as err:  # a damaged chunk
            found = _unreadable(err, "row")
        if found != expected:
            yield Mismatch(f"{where}[{i}]", f"{label[:-1]} of {_text(records[i])} vs its frames/frame_sha256",
                           expected, found, rebuild)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cubes(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every row of the per-year and seeded cubes against the frame digest it carries."""
    import h5py

    for path in sorted([*root.glob("cubes/*/*/*.h5"), *root.glob("cubes/*/*.seeded.h5")]):
        where, rebuild = str(path.relative_to(root)), _rebuild_cube(root, path)
        try:
            with h5py.File(path, "r") as f:
                yield from _rows_against_digests(f, range(f["data"].shape[0]), "cube rows", where, rebuild, checked)
        except (OSError, KeyError) as err:  # not HDF5, truncated, or without its rows or digests
            checked["cubes"] += 1
            yield Mismatch(where, "cube", READABLE, _unreadable(err), rebuild)


def _synced(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """The present rows of each synced product that copies its cube's frames (not a running difference)."""
    import h5py

    for path in sorted(root.glob("synced/*.h5")):
        relative = str(path.relative_to(root))
        try:
            with h5py.File(path, "r") as f:
                for product in f.attrs["products"]:
                    group = f[_text(product)]
                    if group.attrs.get("difference"):
                        continue  # its rows are differences of two frames, not the frames the digests describe
                    rows = np.flatnonzero(group["present"][()])
                    yield from _rows_against_digests(group, rows, "synced rows", f"{relative}:{_text(product)}",
                                                     (relative,), checked)
        except (OSError, KeyError) as err:  # not HDF5, truncated, or without its products' groups
            checked["synced files"] += 1
            yield Mismatch(relative, "synced file", READABLE, _unreadable(err), (relative,))


def _event_frames(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every cleaned event frame against each distinct digest recorded for it: an event's frame table (its ``ok``
    rows, ``sha256``) and the labelled cubes of an event dataset (``/provenance/sha256``), hashed once; then every
    row of those cubes whose frame is intact against that frame's pixels (:func:`_event_dataset_rows`)."""
    import pandas as pd

    recorded: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = defaultdict(list)  # (file, sha256) ->
    for table_path in sorted(root.glob("events/*/frames/*.csv")):
        table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
        where = (str(table_path.relative_to(root)), _rebuild_event(root, table_path))
        for row in table[table["status"] == "ok"].itertuples():
            recorded[row.file, row.sha256].append(where)
    cubes, unreadable = _event_dataset_cubes(root)
    yield from unreadable
    for cube, provenance in cubes.items():
        where = (cube, (_dataset_labels(cube),))
        for file, sha256 in zip(provenance["file"], provenance["sha256"], strict=True):
            if where not in recorded[file, sha256]:
                recorded[file, sha256].append(where)
    intact = set()
    for (file, expected), sources in sorted(recorded.items()):
        checked["event frames"] += 1
        found = recorded_mismatch(root / file, expected)
        if found is None:
            intact.add((file, expected))
        else:
            names = ", ".join(dict.fromkeys(name for name, _ in sources))
            yield Mismatch(file, f"event frame vs {names}", expected, found,
                           tuple(sorted({target for _, rebuild in sources for target in rebuild})))
    yield from _event_dataset_rows(root, cubes, intact, checked)


def _dataset_labels(cube: str) -> str:
    """The ``labels.csv`` beside an event dataset's cube (``events/{name}/dataset/[per_event/]*.h5``): removed, it
    makes the dataset's job, which writes every cube of the dataset, run again (a target of ``rule all``)."""
    parts = Path(cube).parts  # events, {name}, dataset, ...: by position, a set may be named "dataset" too
    return str(Path(*parts[:3], "labels.csv"))


def _event_dataset_cubes(root: Path) -> tuple[dict[str, dict[str, list]], list[Mismatch]]:
    """The provenance of every labelled cube of every event dataset (``events.h5``, ``per_event/*.h5``), by path
    relative to ``root``: ``record``, ``sha256``, ``file`` (lists of str) and ``hdu`` (list of int), one per row;
    and a mismatch for each cube whose provenance does not read."""
    import h5py

    cubes, unreadable = {}, []
    for path in sorted([*root.glob("events/*/dataset/events.h5"), *root.glob("events/*/dataset/per_event/*.h5")]):
        relative = str(path.relative_to(root))
        try:
            with h5py.File(path, "r") as f:
                group = f["provenance"]
                cubes[relative] = {
                    "record": [_text(v) for v in group["record"][()]],
                    "sha256": [_text(v) for v in group["sha256"][()]],
                    "file": [_text(v) for v in group["file"][()]], "hdu": [int(v) for v in group["hdu"][()]]}
        except (OSError, KeyError) as err:  # not HDF5, truncated, or without its provenance
            unreadable.append(Mismatch(relative, "event dataset cube", READABLE, _unreadable(err),
                                       (_dataset_labels(relative),)))
    return cubes, unreadable


def _event_dataset_rows(root: Path, cubes: dict, intact: set, checked: Counter) -> Iterator[Mismatch]:
    """Every row of the event datasets' cubes against the pixels of the cleaned frame its provenance names (read
    once per frame), when that frame is the file the cube recorded (otherwise it is named already)."""
    import h5py

    from .events.labelled_cube import PROVENANCE, read_cleaned_frame

    digests: dict[tuple[str, int], str] = {}
    for cube, provenance in cubes.items():
        rebuild = (_dataset_labels(cube),)
        with h5py.File(root / cube, "r") as f:
            frames = f["frames"]
            for i, (record, sha256, file, hdu) in enumerate(zip(*(provenance[k] for k in PROVENANCE), strict=True)):
                if (file, sha256) not in intact:
                    continue
                checked["event dataset rows"] += 1
                if (file, hdu) not in digests:
                    digests[file, hdu] = frame_digest(read_cleaned_frame(root, file, hdu)[0])
                try:
                    found = frame_digest(frames[i])
                except (OSError, ValueError) as err:  # a damaged chunk
                    found = f"an unreadable row ({type(err).__name__})"
                if found != digests[file, hdu]:
                    yield Mismatch(f"{cube}[{i}]", f"event dataset row of {record} vs its frame {file}",
                                   digests[file, hdu], found, rebuild)
