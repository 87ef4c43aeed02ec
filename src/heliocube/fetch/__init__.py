"""Select-and-fetch stage: fill each slot with the nearest candidate that downloads whole and passes QC."""

from .download import DownloadError, download_verified, sha256_of
from .gate import AcceptAll, QualityGate, Rejection
from .run import fetch_days

__all__ = ["AcceptAll", "DownloadError", "QualityGate", "Rejection", "download_verified", "fetch_days", "sha256_of"]
