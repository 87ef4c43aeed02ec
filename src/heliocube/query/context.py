"""What a query or fetch needs to reach the archives, derived once from the config."""

from __future__ import annotations

import dataclasses

from ..config import archive_urls, jsoc_email
from ..retry import RetryPolicy

__all__ = ["ArchiveContext"]


@dataclasses.dataclass(frozen=True)
class ArchiveContext:
    """Archive base URLs, identity, patience and concurrency for one job.

    ``email`` is the JSOC notify address; it is excluded from ``repr`` so it never reaches a log.
    """

    jsoc_url: str
    sdac_url: str
    email: str | None = dataclasses.field(repr=False)
    policy: RetryPolicy
    timeout: float
    connections: int
    lasco_level: str = "0.5"
    jsoc_protocol: str = "as-is"
    poll_seconds: float = 5.0
    #: JSOC export sizing and patience (the schema's ``jsoc`` block; :mod:`heliocube.fetch.jsoc_urls` uses them).
    max_export_bytes: float = 100e9
    max_export_records: int = 1000
    concurrent_exports: int = 1
    export_retries: int = 3
    export_wait_seconds: float = 3600.0
    #: Output root under which a query keeps what it must not fetch twice (the EIT header cache); None: no cache.
    cache_root: str | None = None

    @classmethod
    def from_config(cls, config: dict, embedded_url: str | None = None) -> ArchiveContext:
        urls = archive_urls(config, embedded_url)
        return cls(
            jsoc_url=urls["jsoc"],
            sdac_url=urls["sdac"],
            email=jsoc_email(config),
            policy=RetryPolicy.from_config(config),
            timeout=config["fetch"]["timeout_seconds"],
            connections=config["fetch"]["connections_per_archive"],
            lasco_level=config["lasco_level"],
            jsoc_protocol=config["jsoc"]["protocol"],
            poll_seconds=config["jsoc"]["poll_seconds"],
            **{key: config["jsoc"][key] for key in ("max_export_bytes", "max_export_records", "concurrent_exports",
                                                    "export_retries", "export_wait_seconds")},
            cache_root=config["output_root"],
        )

    def level_for(self, product) -> str:
        """The processing level to query for ``product`` (LASCO's is configurable, others are fixed)."""
        return self.lasco_level if self.lasco_level in product.levels else product.level
