"""Configuration: every bad value fails before any job runs, names its key, and writes nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from heliocube.config import ConfigError, archive_urls, jsoc_email, slot_tolerance_of, validate_config

REPO = Path(__file__).resolve().parents[1]
GOOD = {"products": ["EIT195", "AIA171"], "date_start": "2010-10-15", "date_finish": "2010-10-16"}

BAD_VALUES = [
    ({"products": ["EIT195", "AIA999"]}, "products[1]", "unknown product 'AIA999'"),
    ({"products": []}, "products", "should be non-empty"),
    ({"date_finish": "2010-10-01"}, "date_finish", "before date_start"),
    ({"date_start": "2010-02-30"}, "date_start", "not a calendar date"),
    ({"date_start": "15/10/2010"}, "date_start", "does not match"),
    ({"cadence": "6"}, "cadence", "cannot parse duration"),
    ({"cadence": "six hours"}, "cadence", "cannot parse duration"),
    ({"slot_tolerance": "4h"}, "slot_tolerance", "more than half the cadence"),
    ({"image_size": 0}, "image_size", "less than the minimum"),
    ({"image_size": -128}, "image_size", "less than the minimum"),
    ({"image_size": 100}, "image_size", "does not divide the native size"),
    ({"resize_method": "bicubic"}, "resize_method", "is not one of"),
    ({"lasco_level": "2"}, "lasco_level", "is not one of"),
    ({"mode": "production"}, "jsoc.email", "need a registered email"),
    ({"fetch": {"connections_per_archive": 0}}, "fetch.connections_per_archive", "less than the minimum"),
    ({"archive": {"sdac_url": "ftp://x"}}, "archive.sdac_url", "does not match"),
    ({"typo_key": 1}, "<unknown>", "typo_key"),
    ({"variants": [{"cadence": "4h"}]}, "variants[0].cadence", "not a whole multiple of the fetch cadence"),
    ({"variants": [{"cadence": "soon"}]}, "variants[0].cadence", "cannot parse duration"),
    ({"variants": [{"image_size": 96}]}, "variants[0].image_size", "does not divide the native size"),
    ({"variants": [{}, {"image_size": 128}]}, "variants[1]", "repeats variants[0]"),
    ({"variants": [{"name": "../up"}]}, "variants[0].name", "does not match"),
    ({"variants": [{"colour": "red"}]}, "variants[0].<unknown>", "colour"),
    ({"qc": {"thresholds": {"hole_fractoin": 0.1}}}, "qc.thresholds", "unknown QC threshold"),
    ({"qc": {"products": {"EIT999": {}}}}, "qc.products.EIT999", "unknown product"),
    ({"cube": {"compression": "zstd"}}, "cube.compression", "is not one of"),
    ({"calibration": {"aia_degradation": {"enabled": True}}}, "calibration", "aiapy"),
    ({"experiments": [{"name": "x", "products": ["EIT195", "MDI_96m"]}]}, "experiments[0].products[1]",
     "not among the configured products"),
    ({"experiments": [{"name": "x", "products": ["EIT195"], "step": "9h"}]}, "experiments[0].step",
     "not a whole multiple"),
    ({"experiments": [{"name": "x", "products": ["EIT195"], "variant": "64px-mean-6h"}]}, "experiments[0].variant",
     "unknown variant"),
    ({"experiments": [{"name": "x", "products": ["EIT195"], "date_finish": "2011-01-01"}]},
     "experiments[0].date_start", "not within the configured range"),
    ({"experiments": [{"name": "x", "products": ["EIT195"], "step": "12h", "tolerance": "7h"}]},
     "experiments[0].tolerance", "more than half the step"),
    ({"experiments": [{"products": ["EIT195"]}]}, "experiments[0].name", "required"),
    ({"experiments": [{"name": "x", "products": ["EIT195"], "running_difference": {"enabled": True}}]},
     "experiments[0].running_difference.products", "none of the products to difference"),
    ({"output_root": ""}, "output_root", "is empty"),
    ({"output_root": "  "}, "output_root", "is empty"),
    ({"output_root": str(REPO / "README.md" / "out")}, "output_root", "not a directory"),
    ({"output_root": str(REPO / "README.md")}, "output_root", "is not a directory"),
    ({"date_start": "1900-01-01", "date_finish": "2100-01-01"}, "date_start", "before any configured product"),
    ({"date_start": "2010-10-15", "date_finish": "2100-01-01"}, "date_finish", "after every configured product"),
    ({"products": ["AIA171"], "date_start": "2001-01-01", "date_finish": "2001-12-31"}, "products[0]",
     "AIA171 has no data in 2001-01-01..2001-12-31"),
]


def test_good_config_gets_defaults():
    config = validate_config(GOOD)
    assert config["cadence"] == "6h" and config["fetch"]["retries"] == 4 and config["jsoc"]["protocol"] == "as-is"
    assert slot_tolerance_of(config).total_seconds() == 3 * 3600


@pytest.mark.parametrize(("change", "key", "message"), BAD_VALUES)
def test_bad_values_name_their_key(change, key, message, monkeypatch):
    monkeypatch.delenv("HELIOCUBE_JSOC_EMAIL", raising=False)
    with pytest.raises(ConfigError) as info:
        validate_config({**GOOD, **change})
    assert info.value.key == key
    assert f"config key '{key}'" in str(info.value) and message in str(info.value)


def test_email_comes_from_the_environment_and_is_hidden(monkeypatch):
    monkeypatch.setenv("HELIOCUBE_JSOC_EMAIL", "someone@example.org")
    config = validate_config({**GOOD, "mode": "production"})
    assert jsoc_email(config) == "someone@example.org"
    from heliocube.query import ArchiveContext
    assert "someone@example.org" not in repr(ArchiveContext.from_config(config))
    assert archive_urls(config)["jsoc"] == "http://jsoc.stanford.edu/"


def test_soho_only_production_needs_no_email(monkeypatch):
    monkeypatch.delenv("HELIOCUBE_JSOC_EMAIL", raising=False)
    validate_config({**GOOD, "products": ["EIT195", "LASCO_C3"], "mode": "production"})


@pytest.mark.parametrize(("change", "key", "message"), [BAD_VALUES[0], BAD_VALUES[2], BAD_VALUES[5], BAD_VALUES[11]])
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, change, key, message):
    """Through the real Snakefile: the error names the key and the output root is never created."""
    root = tmp_path / "out"
    config = {**GOOD, **change, "output_root": str(root)}
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config_file),
                             "--directory", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert key in output and message in output
    assert not root.exists()


def test_a_range_partly_outside_one_products_operations_is_allowed_and_named():
    """MDI (to 2011-04-12) and HMI (from 2010-04-30) across their overlap: both plan, the gaps are named."""
    from heliocube.configchecks import operations_warnings

    config = validate_config({"products": ["MDI_96m", "HMI_720s"], "date_start": "2010-01-01",
                              "date_finish": "2011-12-31"})
    warnings = operations_warnings(config)
    assert len(warnings) == 2 and warnings[0].startswith("MDI_96m observed 1996-05-01..2011-04-12")
    assert operations_warnings(validate_config(GOOD)) == []


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path):
    from heliocube.config import load_config

    path = tmp_path / "broken.yaml"
    path.write_text('products: [EIT195\ndate_start: "2010-10-15"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}, line 2, column 11: not valid YAML" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


# From the repository root, as a user runs it: the Snakefile's demo config is there, and must not leak into theirs.
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
HELIOCUBE = str(Path(sys.executable).with_name("heliocube"))
MINIMAL = {"mode": "production", "products": ["EIT195", "LASCO_C2"], "date_start": "2005-03-01",
           "date_finish": "2005-03-02"}


def dry_run_from_the_repo(config_file: Path, *extra: str) -> subprocess.CompletedProcess:
    """The README's command for another config, with a dry run's flags, in the repository root."""
    return subprocess.run([SNAKEMAKE, "--profile", "profiles/local", "--configfile", str(config_file), "-n", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_a_minimal_config_of_ones_own_plans_nothing_of_the_demos(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    result = dry_run_from_the_repo(path)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = result.stdout + result.stderr
    assert "results/demo" not in planned and "embedded" not in planned
    demo_only = ("rule seed_metadata", "rule sync", "MDI_96m", "AIA171", "HMI_720s", "128px-interp-12h")
    assert not [word for word in demo_only if word in planned]
    # the schema's defaults, not the demo's: one variant (128 px mean, 6 h) under results/
    assert "results/cubes/128px-mean-6h/EIT195.h5" in planned and "results/cubes/128px-mean-6h/LASCO_C2.h5" in planned


CONFIGS_BOTH_JUDGE = {
    "minimal": (MINIMAL, None),
    "no date_finish": ({k: v for k, v in MINIMAL.items() if k != "date_finish"}, "date_finish"),
    "empty output_root": ({**MINIMAL, "output_root": ""}, "output_root"),
    "output_root under a file": ({**MINIMAL, "output_root": "README.md/out"}, "output_root"),
    "1900-2100": ({**MINIMAL, "date_start": "1900-01-01", "date_finish": "2100-12-31"}, "date_start"),
    "unknown product": ({**MINIMAL, "products": ["EIT195", "EIT999"]}, "products[1]"),
    "typo": ({**MINIMAL, "cadense": "6h"}, "<unknown>"),
    "not YAML": ("products: [EIT195\n", "<file>"),
}


@pytest.mark.parametrize("name", list(CONFIGS_BOTH_JUDGE))
def test_check_config_and_the_workflow_judge_the_same_config(name, tmp_path):
    """One code path: both accept, or both refuse naming the same key in one line (no traceback)."""
    content, key = CONFIGS_BOTH_JUDGE[name]
    path = tmp_path / "config.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    checked = subprocess.run([HELIOCUBE, "check-config", str(path)], cwd=REPO, capture_output=True, text=True,
                             timeout=120, check=False)
    planned = dry_run_from_the_repo(path, "--quiet", "rules")
    assert (checked.returncode == 0) == (planned.returncode == 0) == (key is None), (checked.stderr, planned.stderr)
    if key is not None and key != "<file>":  # Snakemake reads --configfile itself: its YAML error names no key
        assert f"config key '{key}'" in checked.stderr and f"config key '{key}'" in planned.stderr
        assert "Traceback" not in planned.stderr and not (REPO / "README.md" / "out").exists()


def test_a_dry_run_plans_without_the_jsoc_email_and_a_real_run_stops_before_any_job(tmp_path, monkeypatch):
    """The README's example command dry-runs from the repo root with no email (a dry run contacts nothing) and says
    what a real run would refuse; the real run is refused before any job, naming the key, and writes nothing."""
    monkeypatch.delenv("HELIOCUBE_JSOC_EMAIL", raising=False)
    planned = subprocess.run([SNAKEMAKE, "--profile", "profiles/local", "--configfile",
                              "config/examples/sdo-2010-2020-6h.yaml", "-n", "--quiet", "rules"],
                             cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "warning: config key 'jsoc.email'" in planned.stderr
    path, root = tmp_path / "hmi.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump({"mode": "production", "products": ["HMI_720s"], "date_start": "2012-01-01",
                                    "date_finish": "2012-01-01", "output_root": str(root)}))
    ran = subprocess.run([SNAKEMAKE, "--profile", "profiles/local", "--configfile", str(path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode != 0
    assert "heliocube: config key 'jsoc.email': JSOC products need a registered email" in ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr and not root.exists()


def test_the_config_hash_follows_the_jsoc_protocol_not_the_throttles():
    """as-is and fits exports are different raw files (bare images vs full headers): the hash the cubes carry must
    tell them apart; who asks, how often it polls and how fast the archive answers change no data."""
    from heliocube.config import config_hash

    def hashed(**jsoc) -> str:
        return config_hash(validate_config({**GOOD, "jsoc": jsoc}))

    assert hashed(protocol="fits") != hashed(protocol="as-is") == hashed()
    assert hashed(email="a@example.org") == hashed(email="b@example.org", poll_seconds=30, concurrent_exports=4,
                                                  max_export_records=10) == hashed()
    slow_archive = {**GOOD, "archive": {"network": {"latency_ms": 100, "max_connections": 2}},
                    "fetch": {"refusals": 3, "retries": 1}}
    assert config_hash(validate_config(slow_archive)) == hashed()


@pytest.mark.parametrize("table", ["schemas/config.schema.yaml", "data/products.yaml", "data/archive/simulation.yaml"])
def test_the_shipped_tables_read_the_same_through_libyaml(table):
    """The schema and the registry are parsed with libyaml in every job (heliocube.yamlload): the objects equal
    PyYAML's pure-Python safe loader's, types included."""
    from importlib.resources import files

    from heliocube.yamlload import load_table

    text = files("heliocube").joinpath(table).read_text()
    assert repr(load_table(text)) == repr(yaml.safe_load(text))


def test_a_config_checked_twice_gets_the_same_answer():
    """The validator is built once per process; a second check of a config fills the same defaults and still
    refuses a bad one."""
    good = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert validate_config(good) == validate_config(good)
    with pytest.raises(ConfigError, match="image_size"):
        validate_config({**good, "image_size": -1})
    assert validate_config(good) == validate_config(good)
