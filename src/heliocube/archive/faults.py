"""Transient faults the embedded archive injects into its answers (tests of the client's retries and checks)."""

from __future__ import annotations

import dataclasses
import hashlib
import threading

from .responses import Response

__all__ = ["FAULT_KINDS", "UNSAFE_NAMES", "FaultConfig", "apply_faults"]

#: Transient faults the server can inject.
FAULT_KINDS = ("http500", "http429", "slow", "truncate", "corrupt")
#: Names offered when ``FaultConfig.unsafe_names`` is on (a client must refuse to write them).
UNSAFE_NAMES = ("../../etc/x.fits", "/abs/path.fits")


@dataclasses.dataclass
class FaultConfig:
    """Transient faults injected into file and API requests.

    Parameters
    ----------
    rate : float
        Fraction of requests affected, decided from (seed, path+query, per-path request count): a retry of the
        same request draws again, so it can succeed.
    kinds : tuple of str
        Among :data:`FAULT_KINDS`; an affected request gets one of them (drawn the same way).
    slow_seconds : float
        Delay of a ``slow`` answer.
    retry_after : int
        Retry-After seconds of a 429.
    unsafe_names : bool
        Listings and export answers also offer :data:`UNSAFE_NAMES`.
    seed : int
        Seed of the fault draws.
    match : str, optional
        Only paths containing this substring are affected (e.g. ``"/sdac/"`` or ``"jsoc_fetch"``).
    """

    rate: float = 0.0
    kinds: tuple = ("http500",)
    slow_seconds: float = 1.0
    retry_after: int = 1
    unsafe_names: bool = False
    seed: int = 0
    match: str | None = None

    def __post_init__(self):
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose among {FAULT_KINDS}")
        self.kinds = tuple(self.kinds)


def _draw(*parts) -> float:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64



def apply_faults(faults: FaultConfig, counts: dict, lock: threading.Lock, path: str, query: str,
                 response: Response) -> Response:
    """``response``, or the fault ``faults`` draws for this request (``counts``: requests per path and query so far,
    under ``lock``)."""
    if path in ("/health", "/cgi-bin/ajax/checkAddress.sh") or faults.rate <= 0 or not faults.kinds:
        return response
    if faults.match and faults.match not in path:
        return response
    key = path + "?" + query
    with lock:
        count = counts.get(key, 0)
        counts[key] = count + 1
    if _draw(faults.seed, key, count, "hit") >= faults.rate:
        return response
    kind = faults.kinds[int(_draw(faults.seed, key, count, "kind") * len(faults.kinds)) % len(faults.kinds)]
    if kind == "http500":
        return Response(500, b"internal server error (injected fault)\n", "text/plain", fault=kind)
    if kind == "http429":
        return Response(
            429,
            b"too many requests (injected fault)\n",
            "text/plain",
            {"Retry-After": str(faults.retry_after)},
            fault=kind,
        )
    if kind == "slow":
        response.sleep, response.fault = faults.slow_seconds, kind
        return response
    if kind == "truncate":
        response.cut_at, response.fault = len(response.body) // 2, kind
        return response
    garbage = hashlib.shake_256(key.encode() + str(count).encode()).digest(max(len(response.body), 16))
    response.body, response.fault, response.status = garbage, kind, 200
    return response
