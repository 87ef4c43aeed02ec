"""A job imports only what its stage needs: each stage's entry, imported in a fresh interpreter with its log set up
and the demo config checked (what every job does before its work), leaves the heavy modules other stages need
unimported (their CPU at job start is measured in bench/bench_aia_year.py, not here). The cube job is also run on
real frames (tests/test_cube_job.py): it imports numpy and h5py, neither pandas nor astropy; the clean job too
(tests/test_clean_job_tables.py): no pandas. A query or fetch job imports its product's archive client only: a JSOC
job neither bs4 nor the SDAC listing code, an SDAC job no drms, neither astropy.time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: heavy modules (hundreds of ms to import, or side effects such as drms's root log handler)
HEAVY = ("pandas", "astropy", "astropy.io.fits", "astropy.time", "requests", "drms", "bs4", "sunpy", "scipy", "h5py",
         "cv2", "numba", "zarr", "torch", "matplotlib", "heliocube.query", "heliocube.query.jsoc",
         "heliocube.query.sdac", "heliocube.fetch.run", "heliocube.fetch.jsoc_urls", "heliocube.calibrate",
         "heliocube.archive")
#: what every job does first: its log (astropy's logger is quieted only once something imports astropy) and the
#: config check (the experiments' step rule, the GOES classes: no pandas)
JOB_START = ("from heliocube.logs import configure_logging\nconfigure_logging()\nimport yaml\n"
             "from heliocube.config import validate_config\n"
             "validate_config(yaml.safe_load(open('config/config.yaml')))")
#: what the cube and sync jobs leave unimported beyond the fetch and calibration stacks
NO_TABLES_NO_FITS = {"pandas", "astropy", "astropy.io.fits", "requests", "drms", "sunpy", "scipy", "cv2", "numba",
                     "zarr", "torch", "matplotlib", "heliocube.query", "heliocube.fetch.run", "heliocube.calibrate",
                     "heliocube.archive"}
#: heavy modules only one archive's query or fetch needs: JSOC's client (drms, which imports pandas) or the SDAC
#: listings' HTML parser and header reads (bs4, astropy.io.fits)
JSOC_ONLY, SDAC_ONLY = {"drms", "heliocube.query.jsoc", "heliocube.fetch.jsoc_urls"}, {"bs4", "heliocube.query.sdac"}
#: job -> (its script, the modules its job imports when it runs beyond its script's imports, heavy modules it must
#: not import); a query or fetch job imports its product's archive client when it runs (heliocube.query.run.CLIENTS,
#: heliocube.fetch.run: the JSOC exports)
STAGES = {
    "query-jsoc": ("query", ["heliocube.query", "heliocube.query.jsoc"],
                   {"sunpy", "scipy", "h5py", "cv2", "numba", "zarr", "torch", "matplotlib", "heliocube.calibrate",
                    "heliocube.archive", "astropy", "astropy.io.fits", "astropy.time", "requests", *SDAC_ONLY}),
    "query-sdac": ("query", ["heliocube.query", "heliocube.query.sdac"],
                   {"sunpy", "scipy", "h5py", "cv2", "numba", "zarr", "torch", "matplotlib", "heliocube.calibrate",
                    "heliocube.archive", "astropy.time", *JSOC_ONLY}),
    "fetch-jsoc": ("fetch", ["heliocube.fetch.run", "heliocube.fetch.jsoc_urls", "heliocube.qc", "heliocube.handoff"],
                   {"sunpy", "scipy", "h5py", "numba", "zarr", "torch", "matplotlib", "heliocube.calibrate",
                    "heliocube.archive", "astropy.time", *SDAC_ONLY}),
    "fetch-sdac": ("fetch", ["heliocube.fetch.run", "heliocube.qc", "heliocube.handoff"],
                   {"sunpy", "scipy", "h5py", "numba", "zarr", "torch", "matplotlib", "heliocube.calibrate",
                    "heliocube.archive", "astropy.time", *SDAC_ONLY, *JSOC_ONLY}),
    # the clean job reads and writes its tables with heliocube.tablecsv: no pandas
    "clean": ("clean", ["heliocube.clean", "heliocube.handoff"],
              {"pandas", "requests", "drms", "bs4", "sunpy", "scipy", "h5py", "numba", "zarr", "torch", "matplotlib",
               "heliocube.query", "heliocube.fetch.run", "heliocube.calibrate", "heliocube.archive"}),
    "cube": ("cube", ["heliocube.assemble", "heliocube.registry"], NO_TABLES_NO_FITS),
    # the sync still reads its tables with pandas (SyncTable's types); astropy only for the prior tool's files
    "sync": ("sync", ["heliocube.sync.experiment", "heliocube.cube"], NO_TABLES_NO_FITS - {"pandas"}),
}


def _imported(code: str) -> set[str]:
    """The heavy modules a fresh interpreter has after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120,
                            check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def _script_imports(stage: str) -> list[str]:
    return [line for line in (REPO / "scripts" / f"{stage}.py").read_text().splitlines()
            if line.startswith(("import ", "from "))]


def test_the_job_entry_points_import_no_stage_stack():
    """What every script imports (heliocube.jobs, heliocube.logs) and does first (its log, the config check) pulls
    in none of the heavy modules."""
    assert _imported("import heliocube.jobs, heliocube.logs") == set()
    assert _imported(JOB_START) == set()


def test_astropys_logger_is_quieted_when_a_job_imports_astropy_later():
    """A job that imports astropy after its log is set up still gets astropy's warnings through the job's own
    handler, once (not astropy's handler as well)."""
    code = (f"{JOB_START}\nimport warnings\nimport astropy\nfrom heliocube.logs import WarningSummary\n"
            "assert not astropy.log.warnings_logging_enabled() and not astropy.log.handlers\n"
            "assert isinstance(getattr(warnings.showwarning, '__self__', None), WarningSummary)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120, check=True)


@pytest.mark.parametrize("job", sorted(STAGES))
def test_a_stage_imports_only_what_it_needs(job):
    script, modules, forbidden = STAGES[job]
    code = "\n".join([*_script_imports(script), JOB_START] + [f"import {module}" for module in modules])
    assert _imported(code) & forbidden == set()



#: a query job and a fetch job of one product and day run in a fresh interpreter; after each, the heavy modules
#: loaded (one JSON line)
RUN = ("import json, sys\nfrom heliocube.jobs import fetch_job, query_job\n"
       "config, product, days, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3].split(','), sys.argv[4]\n"
       f"loaded = lambda: print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
       "query_job(config, product, days, out + '/index.csv')\nloaded()\n"
       "fetch_job(config, product, days[1:2], out + '/slots.csv', out + '/ledger.csv')\nloaded()")
#: a later fetch job of the same output tree (another day), in another interpreter; the heavy modules it loaded
FETCH_AGAIN = ("import json, sys\nfrom heliocube.jobs import fetch_job\n"
               "config, product, days = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3].split(',')\n"
               "out = sys.argv[4]\n"
               "fetch_job(config, product, days[2:3], f'{out}/slots-again.csv', f'{out}/ledger-again.csv')\n"
               f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")


@pytest.mark.parametrize("product, archive", [("AIA171", "jsoc"), ("EIT195", "sdac")])
def test_a_query_and_a_fetch_job_as_they_run_import_only_their_archives_client(clean_archive, tmp_path, product,
                                                                              archive):
    """Run for real (the embedded archive, QC on), so that an import made only while a job works counts too (a
    time only astropy converts, a client picked at run time). The query job imports what the check above allows
    it; the fetch job no other archive's client (its QC's disk geometry loads sunpy, and with it astropy.time and
    scipy, for the first frame of each header layout: heliocube.qc.geometry). A later fetch job of the same output
    tree finds the layout's check in the tree's store (heliocube.qc.layouts) and imports no sunpy."""
    from .conftest import demo_config

    config = demo_config(clean_archive.url, tmp_path / "out", products=[product])
    days = "2010-10-14,2010-10-15,2010-10-16"
    result = subprocess.run([sys.executable, "-c", RUN, json.dumps(config, default=str), product, days,
                             str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "slots.csv").read_text().count(",ok,") == 4
    after_query, after_fetch = (set(json.loads(line)) for line in result.stdout.splitlines()[-2:])
    assert after_query & STAGES[f"query-{archive}"][2] == set()
    assert after_fetch & (SDAC_ONLY if archive == "jsoc" else JSOC_ONLY) == set()
    assert "sunpy" in after_fetch
    again = subprocess.run([sys.executable, "-c", FETCH_AGAIN, json.dumps(config, default=str), product, days,
                            str(tmp_path)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "slots-again.csv").read_text().count(",ok,") == 4
    assert "sunpy" not in set(json.loads(again.stdout.splitlines()[-1]))
