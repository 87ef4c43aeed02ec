"""The full-mission example configs (config/examples/*.yaml): each validates, and Snakemake plans the job counts
that plain date arithmetic predicts (one job per product x calendar month per stage, one cube per product x year).

The dry runs of the two 10-year configs take several seconds of CPU each, so they are marked ``workflow``; the dry
runs the session selects start together, in parallel, the first time one of them is needed (timing:
bench/dag_dryrun.py).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heliocube.config import load_config
from heliocube.registry import get_product
from heliocube.variants import variants_of

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))
#: Examples small enough to plan in a couple of CPU seconds; the others are marked ``workflow``.
LIGHT = {"sdoml-aia-2011-12min.yaml"}
ENV = {**os.environ, "HELIOCUBE_JSOC_EMAIL": "ci@example.org"}


def example_params():
    return [pytest.param(path, id=path.stem, marks=() if path.name in LIGHT else pytest.mark.workflow)
            for path in EXAMPLES]


@pytest.fixture
def jsoc_email(monkeypatch):
    monkeypatch.setenv("HELIOCUBE_JSOC_EMAIL", ENV["HELIOCUBE_JSOC_EMAIL"])


def test_the_documented_examples_exist():
    assert {path.stem for path in EXAMPLES} >= {"soho-1999-2010-6h", "sdo-2010-2020-6h", "sdoml-aia-2011-12min"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_validates_and_describes_a_production_run(path, jsoc_email):
    config = load_config(path)
    assert config["mode"] == "production"
    assert config["output_root"] == f"results/{path.stem}"  # one tree per example, named like the file
    assert path.read_text().startswith("#")  # a comment says what the example reproduces
    start, finish = dt.date.fromisoformat(config["date_start"]), dt.date.fromisoformat(config["date_finish"])
    for name in config["products"]:
        first, last = get_product(name).operations
        assert first is None or dt.date.fromisoformat(first) <= start, name
        assert last is None or finish <= dt.date.fromisoformat(last), name


def test_production_examples_with_jsoc_products_need_an_email(monkeypatch):
    from heliocube.config import ConfigError

    monkeypatch.delenv("HELIOCUBE_JSOC_EMAIL", raising=False)
    with pytest.raises(ConfigError, match=r"jsoc\.email"):
        load_config(REPO / "config" / "examples" / "sdo-2010-2020-6h.yaml")


def test_sdoml_example_is_calibrated_like_sdoml(jsoc_email):
    config = load_config(REPO / "config" / "examples" / "sdoml-aia-2011-12min.yaml")
    assert config["products"] == ["AIA94", "AIA131", "AIA171", "AIA193", "AIA211", "AIA304", "AIA335",
                                  "AIA1600", "AIA1700"]
    (variant,) = variants_of(config)
    assert variant.name == "512px-mean-12min-dns-r976-north"
    assert variant.cadence == dt.timedelta(minutes=12) and variant.image_size == 512
    assert variant.calibration == {"exposure_normalise": True, "fixed_rsun_arcsec": 976, "north_up": True,
                                   "method": "affine"}  # the default resampling, kept so a change reruns


def expected_counts(path: Path) -> dict[str, int]:
    """Jobs per rule from the config's dates alone (independent of heliocube.timegrid, which the Snakefile uses)."""
    config = yaml.safe_load(path.read_text())
    start, finish = dt.date.fromisoformat(config["date_start"]), dt.date.fromisoformat(config["date_finish"])
    months = (finish.year - start.year) * 12 + finish.month - start.month + 1
    years = finish.year - start.year + 1
    products, variants = len(config["products"]), len(config.get("variants") or [None])
    experiments = config.get("experiments") or []
    return {"query": products * months, "fetch": products * months, "clean": products * months * variants,
            "cube": products * years * variants, "cube_master": products * variants,
            "sync": len(experiments), "sync_prior_tool": sum(bool(e.get("prior_tool_layout")) for e in experiments),
            "all": 1}


def test_expected_counts_by_hand():
    """The arithmetic above against counts worked out by hand (e.g. 2010-05..2020-12 is 8 + 120 months)."""
    examples = REPO / "config" / "examples"
    assert expected_counts(examples / "soho-1999-2010-6h.yaml")["query"] == 7 * 144
    assert expected_counts(examples / "sdo-2010-2020-6h.yaml")["fetch"] == 10 * 128
    assert expected_counts(examples / "sdo-2010-2020-6h.yaml")["cube"] == 10 * 11
    assert expected_counts(examples / "sdoml-aia-2011-12min.yaml")["clean"] == 9 * 12
    assert expected_counts(examples / "soho-1999-2010-6h.yaml")["sync_prior_tool"] == 1


def job_table(output: str) -> dict[str, int]:
    """Snakemake's job stats table (``job  count`` rows up to ``total``) as {rule: count}."""
    counts, inside = {}, False
    for line in output.splitlines():
        fields = line.split()
        if fields[:2] == ["job", "count"]:
            counts, inside = {}, True
        elif inside and len(fields) == 2 and fields[1].isdigit():
            counts[fields[0]] = int(fields[1])
            if fields[0] == "total":
                inside = False
    return counts


#: The README's command for another config, as a user types it in the repository root (with a dry run's flags).
README_COMMAND = [str(Path(sys.executable).with_name("snakemake")), "--profile", "profiles/local", "--configfile"]


@pytest.fixture(scope="module")
def dry_runs(request):
    """{config name: Popen} of the README's command with ``-n --quiet rules``, run from the repository root (where
    the Snakefile's own demo config exists, so a merge under it would show), one per example the session will
    plan, all started at once (the DAGs build in parallel: most of each run is single-threaded Python)."""
    wanted = {item.callspec.params["path"].name for item in request.session.items
              if getattr(item, "originalname", None) == "test_example_dag_has_one_job_per_product_month"}
    runs = {}
    for path in EXAMPLES:
        if path.name not in wanted:
            continue
        runs[path.name] = subprocess.Popen(
            [*README_COMMAND, str(path.relative_to(REPO)), "-n", "--quiet", "rules"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    yield runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()
        run.communicate()


@pytest.mark.parametrize("path", example_params())
def test_example_dag_has_one_job_per_product_month(path, dry_runs):
    output, _ = dry_runs[path.name].communicate(timeout=300)
    assert dry_runs[path.name].returncode == 0, output[-3000:]
    counts = job_table(output)
    expected = expected_counts(path)
    # Rules added later (e.g. a sync stage per experiment) may plan jobs of their own: only the known ones are
    # compared, and the total must cover them.
    assert {rule: counts.get(rule, 0) for rule in expected} == expected  # a rule with no jobs is not listed
    assert counts["total"] == sum(count for rule, count in counts.items() if rule != "total")
    assert counts["total"] >= sum(expected.values())
