"""The heliocube command."""

import argparse
import json
import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from heliocube.cli import build_parser, main
from heliocube.cube import CubeWriter, build_master, software_versions
from heliocube.sync import sync_experiment

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


# -- the parser: help everywhere, no raw RST -------------------------------------------------------------------


def _commands(parser, path=()):
    """Every (command path, parser) pair under ``parser``, itself included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_subcommand_and_option_has_help():
    commands = list(_commands(build_parser()))
    assert {path for path, _ in commands} >= {(), ("check-config",), ("info",), ("report",), ("archive",),
                                              ("archive", "serve"), ("archive", "stop")}
    for path, parser in commands:
        assert parser.description, f"heliocube {' '.join(path)} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {a.dest for a in action._choices_actions}
                assert listed == set(action.choices), f"heliocube {' '.join(path)}: subcommands without help"
                assert all(a.help for a in action._choices_actions)
            else:
                name = action.option_strings or action.dest
                assert action.help and action.help != argparse.SUPPRESS, f"heliocube {' '.join(path)}: {name}"


def test_help_of_every_subcommand_reads_cleanly(capsys):
    for path, _ in _commands(build_parser()):
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        text = capsys.readouterr().out
        assert exit_.value.code == 0 and text.startswith("usage: heliocube")
        assert "``" not in text and ":func:" not in text and ":mod:" not in text, text
    result = run("--help")  # the installed entry point
    assert result.returncode == 0 and "info" in result.stdout and "report" in result.stdout


# -- heliocube info --------------------------------------------------------------------------------------------

ATTRS = {"variant": "8px-test-6h", "config_hash": "feedc0de" * 8, "units": "DN/s", "cadence": "6h", "product": "EIT195"}


def _cube(path, hours, *, product="EIT195", shape=(8, 6)):
    with CubeWriter(path, shape, attrs={**ATTRS, "product": product}) as writer:
        for hour in hours:
            time = f"2010-01-01T{hour:02d}:00:00"
            row = {"slot_time": time, "obs_time": time, "record_id": f"{product}-{hour}"}
            writer.append(np.full(shape, hour, np.float32), row, "SIMPLE  = T")
    return path


def test_info_on_a_cube_and_its_master(tmp_path):
    year = _cube(tmp_path / "cubes" / "8px-test-6h" / "EIT195" / "2010.h5", [0, 6, 12])
    result = run("info", str(year))
    assert result.returncode == 0, result.stderr
    lines = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines())
    assert lines["cube"] == str(year) and lines["product"] == "EIT195" and lines["variant"] == "8px-test-6h"
    assert lines["frames"] == "3 every 6h, 2010-01-01T00:00:00 .. 2010-01-01T12:00:00 UTC"
    assert lines["shape"] == "3 x 8 x 6 float32 (time, y, x)" and lines["units"] == "DN/s"
    assert lines["compression"] == "gzip level 4 + shuffle, chunks 1 x 8 x 6"
    assert lines["config hash"] == ATTRS["config_hash"]
    assert all(f"{name} {ver}" in lines["versions"] for name, ver in software_versions().items())
    master = build_master(tmp_path / "cubes" / "8px-test-6h" / "EIT195.h5", [year])
    summary = json.loads(run("info", "--json", str(master)).stdout)
    assert summary["kind"] == "cube master" and summary["sources"] == ["EIT195/2010.h5"]
    assert summary["shape"] == [3, 8, 6] and summary["n_frames"] == 3 and summary["dtype"] == "float32"
    assert summary["compression"] == {"filter": "gzip", "level": 4, "shuffle": True, "chunks": [1, 8, 6],
                                      "virtual": True}
    assert summary["versions"] == software_versions() and summary["config_hash"] == ATTRS["config_hash"]


def test_info_on_a_synced_file(tmp_path):
    cubes = {"EIT195": _cube(tmp_path / "eit.h5", [0, 6, 12, 18]),
             "MDI_96m": _cube(tmp_path / "mdi.h5", [0, 12, 18], product="MDI_96m")}
    synced = sync_experiment(tmp_path / "synced" / "pair.h5", cubes, experiment="pair", start="2010-01-01",
                             finish="2010-01-01", step="6h", config_hash="abc").path
    summary = json.loads(run("info", "--json", str(synced)).stdout)
    assert summary["kind"] == "synced" and summary["experiment"] == "pair" and summary["config_hash"] == "abc"
    assert list(summary["products"]) == ["EIT195", "MDI_96m"] and summary["n_rows"] == 3
    assert summary["time_range"] == ["2010-01-01T00:00:00", "2010-01-01T18:00:00"] and summary["dropped_rows"] == 1
    assert summary["products"]["MDI_96m"]["shape"] == [3, 8, 6] and summary["variant"] == "8px-test-6h"
    text = run("info", str(synced)).stdout
    assert "3 on a 6h axis, 2010-01-01T00:00:00 .. 2010-01-01T18:00:00 UTC" in text
    assert "MDI_96m" in text and "3 x 8 x 6 float32 [DN/s], 3 frames present" in text


@pytest.mark.parametrize("kind", ["text", "hdf5", "directory", "missing"])
def test_info_says_in_one_line_what_a_path_is_not(tmp_path, kind):
    path = tmp_path / "thing.h5"
    if kind == "text":
        path.write_text("not a cube\n")
    elif kind == "hdf5":
        with h5py.File(path, "w") as f:
            f["data"] = np.zeros((2, 3))
    elif kind == "directory":
        path.mkdir()
    result = run("info", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"error: {path}") and result.stderr.count("\n") == 1, result.stderr
    assert ("not a heliocube cube or synced file" in result.stderr) != (kind == "missing")


# -- heliocube report ------------------------------------------------------------------------------------------


def test_report_writes_the_page_of_an_output_root(tmp_path):
    _cube(tmp_path / "out" / "cubes" / "8px-test-6h" / "EIT195.h5", [0, 6])
    result = run("report", str(tmp_path / "out"), "-o", str(tmp_path / "page.html"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "page.html") and "<html" in (tmp_path / "page.html").read_text()
    missing = run("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "not a directory" in missing.stderr
