"""The SDAC side of the embedded archive: the EIT and LASCO directory trees, their listings and img_hdr.txt.

Paths come from the registry's ``series`` patterns (plus the simulation table's ``filename`` for LASCO), so a new
SDAC product is a registry entry, not code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pandas as pd

__all__ = ["Entry", "directory_index", "list_directory", "locate", "sdac_layouts"]

_FIELD = re.compile(r"\{(\w+)(?::0?(\d+)d)?\}")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One line of a directory listing: a file (size in bytes) or a sub-directory (size None)."""

    name: str
    mtime: dt.datetime
    size: int | None


def _regex(pattern: str) -> re.Pattern:
    out, pos, seen = [], 0, set()
    for match in _FIELD.finditer(pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        width = match.group(2) or {"yymmdd": "6"}.get(match.group(1), "1,")
        if match.group(1) in seen:  # a field repeated (EIT: year and month in directory and file name)
            out.append(f"(?P={match.group(1)})")
        else:
            out.append(f"(?P<{match.group(1)}>\\d{{{width}}})")
            seen.add(match.group(1))
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def sdac_layouts(mission) -> list[dict]:
    """Every SDAC (product, level) with its file pattern, directory pattern and their regexes."""

    def build():
        layouts = []
        for name, product in mission.registry.items():
            if product.is_jsoc:
                continue
            prm = mission.params[name]
            for level, pattern in product.series.items():
                full = pattern + ("/" + prm["filename"] if prm.get("filename") else "")
                directory = full.rsplit("/", 1)[0]
                layouts.append(
                    {
                        "product": name,
                        "level": level,
                        "full": full,
                        "dir": directory,
                        "full_re": _regex(full),
                        "dir_re": _regex(directory),
                        "dir_index": prm.get("dir_index"),
                    }
                )
        return layouts

    return mission._memoize(("sdac_layouts",), build)


def _window(groups: dict) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The UTC span a matched path covers: a second, a day or a month."""
    if groups.get("yymmdd"):
        text = groups["yymmdd"]
        year = int(text[:2])
        year += 1900 if year >= 70 else 2000
        start = pd.Timestamp(year, int(text[2:4]), int(text[4:6]), tz="UTC")
        return start, start + pd.Timedelta(days=1)
    year, month = int(groups["year"]), int(groups.get("month") or 1)
    if groups.get("second") is not None:
        start = pd.Timestamp(
            year, month, int(groups["day"]), int(groups["hour"]), int(groups["minute"]), int(groups["second"]), tz="UTC"
        )
        return start, start + pd.Timedelta(seconds=1)
    if groups.get("day") is not None:
        start = pd.Timestamp(year, month, int(groups["day"]), tz="UTC")
        return start, start + pd.Timedelta(days=1)
    start = pd.Timestamp(year, month, 1, tz="UTC")
    return start, start + pd.offsets.MonthBegin(1)


def locate(mission, path: str) -> list[tuple]:
    """Candidate (product, level, start, end) of the file ``path`` below the SDAC base (several products may share
    a layout, e.g. the four EIT wavelengths); empty when no layout matches."""
    found = []
    for layout in sdac_layouts(mission):
        match = layout["full_re"].fullmatch(path)
        if match:
            try:
                start, end = _window(match.groupdict())
            except ValueError:
                continue
            found.append((layout["product"], layout["level"], start, end))
    return found


def _leaf_rows(mission, directory: str) -> tuple[list[pd.DataFrame], list[dict]] | None:
    frames, layouts = [], []
    for layout in sdac_layouts(mission):
        match = layout["dir_re"].fullmatch(directory)
        if not match:
            continue
        try:
            start, end = _window(match.groupdict())
        except ValueError:
            return None
        frames.append(mission.records(layout["product"], start, end, level=layout["level"]))
        layouts.append(layout)
    return (frames, layouts) if layouts else None


def directory_index(mission, directory: str) -> str | None:
    """Text of ``img_hdr.txt`` of a leaf directory (None when the directory has no index file).

    Whitespace columns: ``filename date(YYYY/MM/DD) time(HH:MM:SS.sss) detector exptime naxis1 naxis2 filter
    polar``, one line per file, in time order.
    """
    found = _leaf_rows(mission, directory.strip("/"))
    if found is None:
        return None
    frames, layouts = found
    lines = []
    for rows, layout in zip(frames, layouts, strict=True):
        if not layout["dir_index"]:
            continue
        header = mission.base_header(layout["product"], layout["level"])
        product = mission.registry[layout["product"]]
        filt = str(header.get("FILTER", "Clear")).strip().replace(" ", "_") or "Clear"
        polar = str(header.get("POLAR", "Clear")).strip().replace(" ", "_") or "Clear"
        for row in rows.itertuples():
            t = row.time_utc
            lines.append(
                f"{row.filename} {t:%Y/%m/%d} {t:%H:%M:%S}.{t.microsecond // 1000:03d} {product.detector} "
                f"{row.exptime:.2f} {mission.frame_size} {mission.frame_size} {filt} {polar}"
            )
    if not any(layout["dir_index"] for layout in layouts):
        return None
    return "".join(line + "\n" for line in lines)


def _all_directories(mission) -> dict[str, dt.datetime]:
    """Every leaf directory of every SDAC layout over the products' operations (null end: today)."""

    def build():
        dirs: dict[str, dt.datetime] = {}
        today = dt.datetime.now(dt.UTC).date()
        for layout in sdac_layouts(mission):
            product = mission.registry[layout["product"]]
            first = dt.date.fromisoformat(product.operations[0] or "1996-01-01")
            last = dt.date.fromisoformat(product.operations[1]) if product.operations[1] else today
            day = first
            while day <= last:
                text = layout["dir"].format(
                    year=day.year,
                    month=day.month,
                    day=day.day,
                    yymmdd=f"{day.year % 100:02d}{day.month:02d}{day.day:02d}",
                )
                dirs.setdefault(text, dt.datetime(day.year, day.month, day.day))
                day += dt.timedelta(days=1)
        return dirs

    return mission._memoize(("sdac_dirs",), build)


def list_directory(mission, directory: str) -> list[Entry] | None:
    """Entries of a directory below the SDAC base ('' is the base itself); None when it does not exist."""
    directory = directory.strip("/")
    found = _leaf_rows(mission, directory) if directory else None
    if found is not None:
        frames, _ = found
        entries = []
        for rows in frames:
            for row in rows.itertuples():
                entries.append(Entry(row.filename, row.time_utc.to_pydatetime().replace(tzinfo=None), int(row.size)))
        text = directory_index(mission, directory)
        if text is not None:
            stamp = max((e.mtime for e in entries), default=dt.datetime(2000, 1, 1))
            entries.append(Entry("img_hdr.txt", stamp, len(text.encode())))
        return sorted(entries, key=lambda e: e.name)
    prefix = directory + "/" if directory else ""
    children: dict[str, dt.datetime] = {}
    for path, stamp in _all_directories(mission).items():
        if path.startswith(prefix):
            child = path[len(prefix) :].split("/", 1)[0]
            if child not in children or stamp < children[child]:
                children[child] = stamp
    if not children:
        return None
    return [Entry(name, children[name], None) for name in sorted(children)]
