"""The interface through which QC verdicts steer candidate fallback."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the clean index's columns (QC_METRICS) are read by jobs without pandas
    import pandas as pd

__all__ = ["LEDGER_COLUMNS", "QC_METRICS", "AcceptAll", "QualityGate", "Rejection"]

#: QC measurements a gate may report for an accepted file (``metrics_of``); they follow the frame into the slot
#: table, the frame index and the cube as ``qc_<name>`` columns (NaN when a check did not run).
QC_METRICS = ("hole_fraction", "streak_segments", "cosmic_ray_count", "missing_blocks", "missvals", "quality")
#: A fetch or clean ledger: one row per candidate that could not fill its slot (a :class:`Rejection` and where).
LEDGER_COLUMNS = ["product", "day", "slot", "record_id", "time_utc", "reason", "value", "detail"]


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why a candidate cannot fill its slot: a reason code for the ledger and the measured value."""

    reason: str
    value: float | str | None = None
    detail: str = ""


class QualityGate(Protocol):
    """Decides whether a candidate may fill a slot.

    ``before_download`` sees only the manifest row (archive keywords such as QUALITY), so a flagged record
    costs no download; ``after_download`` sees the verified file. Either returns None to accept.

    A gate may have a ``fingerprint`` (str) naming everything that decides its verdicts: the fetch stage then
    records each ``after_download`` verdict in the day's receipt and, on a later run under the same fingerprint,
    reuses it for the same unchanged file (size and modification time) instead of inspecting the file again.
    """

    def before_download(self, candidate: pd.Series) -> Rejection | None: ...

    def after_download(self, candidate: pd.Series, path: Path) -> Rejection | None: ...

    def metrics_of(self, path: Path) -> dict:
        """Measurements of an accepted file, keyed by names in :data:`QC_METRICS` ({} when none)."""
        ...


class AcceptAll:
    """The gate of the fetch stage alone: every whole, readable file is accepted."""

    def before_download(self, candidate: pd.Series) -> Rejection | None:
        return None

    def after_download(self, candidate: pd.Series, path: Path) -> Rejection | None:
        return None

    def metrics_of(self, path: Path) -> dict:
        return {}
