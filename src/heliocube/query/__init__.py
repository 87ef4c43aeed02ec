"""Query stage: list every candidate record of a product for a set of days, and write per-day manifests."""

from .context import ArchiveContext
from .run import query_days, write_day_manifests

__all__ = ["ArchiveContext", "query_days", "write_day_manifests"]
