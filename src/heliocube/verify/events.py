"""The event stage's part of ``heliocube verify``: cleaned event frames and the rows of event datasets' cubes."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from ..clean import frame_digest
from ..fetch.cache import recorded_mismatch
from .mismatch import READABLE, Mismatch, text, unreadable

__all__ = ["dataset_labels", "event_frames", "rebuild_event"]


def rebuild_event(root: Path, table: Path) -> tuple[str, ...]:
    """An event's frame table ``events/{name}/frames/{event_id}.csv`` and its dataset's ``labels.csv``: a missing
    frame table alone is not rebuilt (no job that runs needs it), a missing ``labels.csv`` is a target of rule all
    whose job needs every frame table of the dataset."""
    relative = table.relative_to(root)
    return str(relative), str(relative.parent.parent / "dataset" / "labels.csv")



def event_frames(root: Path, checked: Counter) -> Iterator[Mismatch]:
    """Every cleaned event frame against each distinct digest recorded for it: an event's frame table (its ``ok``
    rows, ``sha256``) and the labelled cubes of an event dataset (``/provenance/sha256``), hashed once; then every
    row of those cubes whose frame is intact against that frame's pixels (:func:`_event_dataset_rows`)."""
    import pandas as pd

    recorded: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = defaultdict(list)  # (file, sha256) ->
    for table_path in sorted(root.glob("events/*/frames/*.csv")):
        where = (str(table_path.relative_to(root)), rebuild_event(root, table_path))
        try:
            table = pd.read_csv(table_path, dtype=str, keep_default_na=False)
            ok = table.loc[table["status"] == "ok", ["file", "sha256"]]
            if not (ok["file"].str.len() > 0).all() or not ok["sha256"].str.fullmatch("[0-9a-f]{64}").all():
                raise ValueError("an ok row without its file or digest (cut short?)")
        except (OSError, ValueError, KeyError) as err:  # not a CSV, cut short, or without its columns
            yield Mismatch(where[0], "event frame table", READABLE, unreadable(err), where[1])
            continue
        for file, sha256 in ok.itertuples(index=False):
            recorded[file, sha256].append(where)
    cubes, damaged = _event_dataset_cubes(root)
    yield from damaged
    for cube, provenance in cubes.items():
        where = (cube, (dataset_labels(cube),))
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


def dataset_labels(cube: str) -> str:
    """The ``labels.csv`` beside an event dataset's cube (``events/{name}/dataset/[per_event/]*.h5``): removed, it
    makes the dataset's job, which writes every cube of the dataset, run again (a target of ``rule all``)."""
    parts = Path(cube).parts  # events, {name}, dataset, ...: by position, a set may be named "dataset" too
    return str(Path(*parts[:3], "labels.csv"))


def _event_dataset_cubes(root: Path) -> tuple[dict[str, dict[str, list]], list[Mismatch]]:
    """The provenance of every labelled cube of every event dataset (``events.h5``, ``per_event/*.h5``), by path
    relative to ``root``: ``record``, ``sha256``, ``file`` (lists of str) and ``hdu`` (list of int), one per row;
    and a mismatch for each cube whose provenance does not read."""
    import h5py

    cubes, damaged = {}, []
    for path in sorted([*root.glob("events/*/dataset/events.h5"), *root.glob("events/*/dataset/per_event/*.h5")]):
        relative = str(path.relative_to(root))
        try:
            with h5py.File(path, "r") as f:
                group = f["provenance"]
                cubes[relative] = {
                    "record": [text(v) for v in group["record"][()]],
                    "sha256": [text(v) for v in group["sha256"][()]],
                    "file": [text(v) for v in group["file"][()]], "hdu": [int(v) for v in group["hdu"][()]]}
        except (OSError, KeyError) as err:  # not HDF5, truncated, or without its provenance
            damaged.append(Mismatch(relative, "event dataset cube", READABLE, unreadable(err),
                                       (dataset_labels(relative),)))
    return cubes, damaged


def _event_dataset_rows(root: Path, cubes: dict, intact: set, checked: Counter) -> Iterator[Mismatch]:
    """Every row of the event datasets' cubes against the pixels of the cleaned frame its provenance names (read
    once per frame), when that frame is the file the cube recorded (otherwise it is named already)."""
    import h5py

    from ..events.labelled_cube import PROVENANCE, read_cleaned_frame

    digests: dict[tuple[str, int], str] = {}
    for cube, provenance in cubes.items():
        rebuild = (dataset_labels(cube),)
        with h5py.File(root / cube, "r") as f:
            if "frames" not in f:
                yield Mismatch(cube, "event dataset cube", READABLE, "a cube without its frames", rebuild)
                continue
            frames = f["frames"]
            for i, (record, sha256, file, hdu) in enumerate(zip(*(provenance[k] for k in PROVENANCE), strict=True)):
                if (file, sha256) not in intact:
                    continue
                checked["event dataset rows"] += 1
                if (file, hdu) not in digests:
                    digests[file, hdu] = frame_digest(read_cleaned_frame(root, file, hdu)[0])
                try:
                    found = frame_digest(frames[i])
                except (OSError, ValueError, IndexError) as err:  # a damaged chunk, or fewer frames than rows
                    found = unreadable(err, "row")
                if found != digests[file, hdu]:
                    yield Mismatch(f"{cube}[{i}]", f"event dataset row of {record} vs its frame {file}",
                                   digests[file, hdu], found, rebuild)
