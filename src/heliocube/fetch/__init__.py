"""Select-and-fetch stage: fill each slot with the nearest candidate that downloads whole and passes QC.

Names are imported lazily: the QC gate interface (``fetch.gate``) is needed when the Snakefile validates its
config, and importing the download stack there would pull in drms, which installs a root log handler and
doubles every line Snakemake logs.
"""

import importlib

__all__ = ["AcceptAll", "DownloadError", "QualityGate", "Rejection", "download_verified", "fetch_days", "sha256_of"]

_HOMES = {
    "AcceptAll": "gate", "QualityGate": "gate", "Rejection": "gate",
    "DownloadError": "download", "download_verified": "download", "sha256_of": "download",
    "fetch_days": "run",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
