"""One file (or one row of it) that is not what its stage recorded, as ``heliocube verify`` names it."""

from __future__ import annotations

import dataclasses

__all__ = ["READABLE", "Mismatch", "text", "unreadable"]


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


def unreadable(err: BaseException, what: str = "file") -> str:
    """What was found instead of a readable file or row: the error, briefly."""
    return f"an unreadable {what} ({type(err).__name__}: {str(err)[:120]})"


def text(value) -> str:
    """An HDF5 string value as text (h5py gives bytes for fixed-length strings)."""
    return value.decode() if isinstance(value, bytes) else str(value)
