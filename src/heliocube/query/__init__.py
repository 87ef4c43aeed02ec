"""Query stage: list every candidate record of a product for a set of days, and write per-day manifests.

Names are imported on first use, and the query job imports only its product's client
(:data:`heliocube.query.run.CLIENTS`): a JSOC job loads neither bs4 nor the SDAC listing code, an SDAC job no drms.
"""

from ..lazy import lazy_names

_HOMES = {"ArchiveContext": "context", "query_days": "run", "write_day_manifests": "run"}

__getattr__, __dir__ = lazy_names(__name__, _HOMES)

__all__ = sorted(_HOMES)
