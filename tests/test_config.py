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
