"""The embedded archive: a local HTTP server speaking JSOC's and SDAC's dialects over a deterministic synthetic
mission built from real headers and images (sunpy test data), with a ground-truth table of injected defects.

Use :class:`SyntheticMission` for records, ground truth and FITS bytes; :class:`ArchiveServer` to serve it;
:func:`ensure_running` to share one server process between workflow jobs.
"""

from .cli import ensure_running
from .mission import DEFECT_KINDS, RECORD_COLUMNS, Geometry, SyntheticMission
from .server import FAULT_KINDS, UNSAFE_NAMES, ArchiveServer, FaultConfig

__all__ = [
    "DEFECT_KINDS",
    "FAULT_KINDS",
    "RECORD_COLUMNS",
    "UNSAFE_NAMES",
    "ArchiveServer",
    "FaultConfig",
    "Geometry",
    "SyntheticMission",
    "ensure_running",
]
