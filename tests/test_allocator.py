"""heliocube.allocator: the fetch job's malloc thresholds stay fixed (steady QC times, no fresh page faults)."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap

import pytest


def _glibc_with_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")  # glibc >= 2.33
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc_with_mallinfo2(),
                                reason="glibc's malloc (mallinfo2)")

# a fresh interpreter: allocates 16 MB with malloc and says whether glibc mapped it (mallinfo2's hblks: the
# number of mapped blocks), after fix_malloc_thresholds() when told so
_PROBE = textwrap.dedent("""
    import ctypes, sys
    from heliocube.allocator import fix_malloc_thresholds

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
    libc.malloc.argtypes, libc.free.argtypes = (ctypes.c_size_t,), (ctypes.c_void_p,)
    fixed = fix_malloc_thresholds() if sys.argv[1] == "fix" else None
    before = libc.mallinfo2().hblks
    block = libc.malloc(16 << 20)
    mapped = libc.mallinfo2().hblks - before
    libc.free(block)
    print(fixed, mapped)
""")


def _probe(mode: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_fixed_thresholds_keep_frame_sized_blocks_on_the_heap():
    """In a fresh process glibc maps a 16 MB block (its dynamic threshold starts at 128 kB: freed, it is unmapped
    and its pages are faulted in afresh next time); with the thresholds fixed it comes from the heap."""
    assert _probe("default") == ["None", "1"]
    assert _probe("fix") == ["True", "0"]


def test_the_fetch_job_fixes_them(demo_run):
    """Every fetch job of the demo run (a Snakemake job process each) says in its log that it fixed them."""
    workdir, _, _ = demo_run
    logs = sorted((workdir / "out" / "logs" / "fetch").rglob("*.log"))
    assert logs
    for log in logs:
        assert "malloc thresholds: fixed (mmap 32 MB, trim 128 MB)" in log.read_text(), log
