"""The heliocube command."""

import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
HELIOCUBE = Path(subprocess.sys.executable).with_name("heliocube")


def run(*args):
    return subprocess.run([str(HELIOCUBE), *args], capture_output=True, text=True, timeout=60, check=False)


def test_check_config_prints_defaults_for_the_demo():
    result = run("check-config", str(REPO / "config" / "config.yaml"))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["mode"] == "demo" and config["fetch"]["timeout_seconds"] == 60.0


def test_check_config_names_the_bad_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"products": ["EIT195"], "date_start": "2010-01-02", "date_finish": "2010-01-01"}))
    result = run("check-config", str(bad))
    assert result.returncode == 2 and "config key 'date_finish'" in result.stderr
