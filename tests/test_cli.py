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


def test_check_config_yaml_error_is_one_line_with_line_and_column(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("products: [EIT195]\ndate_start: '2010-10-15\n")
    result = run("check-config", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"{bad}, line 3, column 1" in result.stderr
    assert "(while scanning a quoted scalar at line 2, column 13)" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_never_echoes_the_jsoc_email(tmp_path):
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump({"mode": "production", "products": ["HMI_720s"], "date_start": "2012-01-01",
                                    "date_finish": "2012-01-02", "jsoc": {"email": "secret.person@example.org"}}))
    result = run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "secret.person" not in result.stdout + result.stderr
    assert yaml.safe_load(result.stdout)["jsoc"]["email"] == "<set, not shown>"
