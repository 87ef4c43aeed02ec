"""Header layouts and their verdicts: which radius rule of the closed form reproduces sunpy for a layout.

A header's *layout* (:func:`header_layout`: instrument, coordinate types and units, which geometry keywords it has)
decides how sunpy reads it. :func:`heliocube.qc.geometry.disk_geometry` checks the closed form
(:mod:`heliocube.qc.closed_form`) against a sunpy map on the first header of each layout, and the *verdict* (the
radius rule that reproduced sunpy, or None: only sunpy will do) serves every later header of the layout.

The verdicts are remembered in the process and, given a :class:`LayoutStore`, across processes: importing
``sunpy.map`` costs ~1.6-1.9 s CPU (bench/bench_aia_year.py), more than the rest of a fetch job's start, and a
mission has thousands of fetch jobs that meet the same few layouts. An entry is keyed by everything that could
change the verdict: the layout, the sunpy and astropy versions and the QC's code digest
(:func:`heliocube.qc.gate.qc_code_digest`, which holds this module, the closed form and the versions of the
libraries they import); an entry that does not read back as exactly that key is ignored (checked again), never
trusted. Only verified rules are stored: a layout only sunpy serves costs its sunpy map in every process anyway, and
a header whose sunpy map failed proves nothing about its layout.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import threading
from pathlib import Path

from ..framewrite import card_text
from ..paths import atomic_path
from .closed_form import EXOTIC_KEYS, RADIUS_RULES

__all__ = ["UNKNOWN", "LayoutStore", "card_images", "header_layout", "remember", "verdict"]

#: Header keywords the geometry depends on.
GEOMETRY_KEYS = (
    "NAXIS1", "NAXIS2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CUNIT1", "CUNIT2",
    "CTYPE1", "CTYPE2", "CROTA1", "CROTA2", "CROTA", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "RSUN_OBS", "RSUN_ARC",
    "RSUN", "SOLAR_R", "WAVELNTH", "DSUN_OBS", "RSUN_REF", "DATE-OBS", "DATE_OBS", "TIME-OBS", "T_OBS", "TELESCOP",
    "INSTRUME", "DETECTOR", "HGLN_OBS", "HGLT_OBS", "CRLN_OBS", "CRLT_OBS",
)  # fmt: skip
#: Keywords that decide how sunpy reads a header (map source, radius rule) without changing per frame.
LAYOUT_KEYS = ("TELESCOP", "INSTRUME", "DETECTOR", "OBSRVTRY", "LEVEL", "LVL_NUM", "CTYPE1", "CTYPE2", "CUNIT1",
               "CUNIT2")  # fmt: skip
_WATCHED = frozenset(GEOMETRY_KEYS) | frozenset(LAYOUT_KEYS) | frozenset(EXOTIC_KEYS)
#: a layout not checked yet (neither in this process nor in the store)
UNKNOWN = object()
#: header layout -> radius rule of the closed form, or None when only sunpy will do
_LAYOUTS: dict[tuple, str | None] = {}
_log = logging.getLogger(__name__)


def card_images(header) -> dict[str, str]:
    """The 80-character cards of the watched keywords, unparsed (parsing a card value costs ~10 us)."""
    cards = getattr(header, "cards", None)
    if cards is None:  # a plain mapping
        return {key: repr(header[key]) for key in header if key in _WATCHED and header[key] is not None}
    images: dict[str, str] = {}
    for card in cards:
        keyword = card.keyword
        if keyword in _WATCHED and keyword not in images:
            images[keyword] = card_text(card)
    return images


def header_layout(images: dict[str, str]) -> tuple:
    """The layout of a header from its :func:`card_images`: the layout keywords' cards, which geometry keywords
    it has, which keywords the closed form does not model it has."""
    return (
        tuple(images.get(key) for key in LAYOUT_KEYS),
        tuple(sorted(key for key in images if key in GEOMETRY_KEYS and not key.startswith("NAXIS"))),
        tuple(key in images for key in EXOTIC_KEYS),
    )


class LayoutStore:
    """Verdicts of header layouts kept in a directory, one JSON file per layout and installation.

    Parameters
    ----------
    directory : path-like
        Where the files are (created on the first write). The fetch jobs use :meth:`under` their output root.
    installation : dict of str to str, optional
        What besides the layout decides a verdict; default: :attr:`installation`, this installation's.

    Concurrent processes may share it: a file is written whole under a temporary name and renamed onto its own
    (atomic on POSIX file systems), and two processes that check the same layout write the same content. A store
    that cannot be read or written costs only the sunpy check it would have saved (logged once).
    """

    #: the directory below an output root
    SUBDIR = (".heliocube", "geometry-layouts")

    def __init__(self, directory, installation: dict[str, str] | None = None):
        self.directory = Path(directory)
        if installation is not None:
            self.installation = dict(installation)
        self._warned = False
        self._lock = threading.Lock()

    @classmethod
    def under(cls, root) -> LayoutStore:
        """The store of an output tree: ``{root}/.heliocube/geometry-layouts/``."""
        return cls(Path(root, *cls.SUBDIR))

    def __repr__(self) -> str:
        return f"LayoutStore({str(self.directory)!r})"

    @functools.cached_property
    def installation(self) -> dict[str, str] | None:
        """What besides the layout decides a verdict: the sunpy and astropy versions and the QC's code digest
        (None when they cannot be found: the store is then not used)."""
        from .gate import qc_code_digest  # cached per process; the fetch job computes it anyway (verdict reuse)

        try:
            return {
                "sunpy": importlib.metadata.version("sunpy"),
                "astropy": importlib.metadata.version("astropy"),
                "code": qc_code_digest(),
            }
        except (LookupError, ValueError, OSError) as exc:  # PackageNotFoundError is a LookupError
            self._warn(f"no installation key ({exc})")
            return None

    def _entry(self, layout: tuple) -> tuple[dict, Path] | None:
        installation = self.installation
        if installation is None:
            return None
        # through JSON and back, so that it compares equal to what a file holds (tuples read back as lists)
        key = json.loads(json.dumps({"layout": layout, **installation}, sort_keys=True))
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return key, self.directory / f"{name}.json"

    def get(self, layout: tuple):
        """The stored radius rule of ``layout``, or :data:`UNKNOWN` (no entry, or one that is not exactly this
        key's with a known rule: unreadable, truncated, edited, another installation's)."""
        entry = self._entry(layout)
        if entry is None:
            return UNKNOWN
        key, path = entry
        try:
            stored = json.loads(path.read_bytes())
        except FileNotFoundError:
            return UNKNOWN
        except (OSError, ValueError) as exc:  # ValueError: not JSON, not UTF-8
            self._warn(f"{path} ignored ({exc})")
            return UNKNOWN
        if not isinstance(stored, dict) or stored.get("key") != key or stored.get("rule") not in RADIUS_RULES:
            return UNKNOWN
        return stored["rule"]

    def put(self, layout: tuple, rule: str) -> bool:
        """Store ``rule`` for ``layout``; False (and a log line, once) when the store cannot be written."""
        entry = self._entry(layout)
        if entry is None:
            return False
        key, path = entry
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"key": key, "rule": rule}, sort_keys=True, indent=1) + "\n")
        except OSError as exc:  # a read-only or full disk: the next process checks the layout again
            self._warn(f"cannot write {path} ({exc})")
            return False
        return True

    def _warn(self, message: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        _log.warning("header layout store %s: %s; header layouts are checked with sunpy again", self.directory, message)


def verdict(layout: tuple, store: LayoutStore | None = None):
    """The radius rule of ``layout`` known to this process, else to ``store``; None: only sunpy will do;
    :data:`UNKNOWN`: not checked yet."""
    rule = _LAYOUTS.get(layout, UNKNOWN)
    if rule is UNKNOWN and store is not None:
        rule = store.get(layout)
        if rule is not UNKNOWN:
            _LAYOUTS[layout] = rule
    return rule


def remember(layout: tuple, rule: str | None, store: LayoutStore | None = None) -> None:
    """Keep the verdict on ``layout`` in this process, and in ``store`` as well when it is a rule (a rule is only
    ever found against a sunpy map)."""
    _LAYOUTS[layout] = rule
    if store is not None and rule is not None:
        store.put(layout, rule)
