"""The embedded archive: a local HTTP server speaking JSOC's and SDAC's dialects over a deterministic synthetic
mission built from real headers and images (sunpy test data), with a ground-truth table of injected defects.

Use :class:`SyntheticMission` for records, ground truth and FITS bytes; :class:`ArchiveServer` to serve it;
:func:`ensure_running` to share one server process between workflow jobs.
"""

from ..lazy import lazy_names

#: Where each public name lives; imported on first use, so `heliocube --help` and the CLI's parser do not load
#: the mission's templates and the server.
_HOMES = {
    "ensure_running": "cli",
    "DEFECT_KINDS": "mission",
    "RECORD_COLUMNS": "mission",
    "Geometry": "mission",
    "SyntheticMission": "mission",
    "FAULT_KINDS": "server",
    "UNSAFE_NAMES": "server",
    "ArchiveServer": "server",
    "FaultConfig": "server",
}


__getattr__, __dir__ = lazy_names(__name__, _HOMES)


__all__ = sorted(_HOMES)
