"""Query stage against the embedded archive's ground truth, through real drms and real HTTP."""

import datetime as dt

import pandas as pd
import pytest

from heliocube.manifest import read_manifest
from heliocube.paths import manifest_path
from heliocube.query import write_day_manifests
from heliocube.query.jsoc import jsoc_times_to_utc, parse_quality
from heliocube.registry import get_product

DAYS = [dt.date(2010, 10, 15), dt.date(2010, 10, 16)]
ONE_PER_DIALECT = ["EIT195", "LASCO_C2", "MDI_96m", "AIA171", "HMI_720s"]


def listed_truth(mission, name, day):
    """Ground truth of one day, thinned like the query's JSOC '@' step."""
    truth = mission.ground_truth(name, day, day)
    product = get_product(name)
    if product.query_step and product.query_step > product.cadence:
        t_rec = jsoc_times_to_utc(truth["t_rec"])
        step = int(product.query_step.total_seconds())
        truth = truth[(t_rec.asi8 // 10**9 % step == 0)]  # the @ grid starts at a whole hour before the day
    return truth.sort_values(["time_utc", "record_id"]).reset_index(drop=True)


@pytest.mark.parametrize("name", ONE_PER_DIALECT)
def test_manifests_match_ground_truth_exactly(name, clean_mission, clean_context_for, tmp_path):
    config, context = clean_context_for(products=[name])
    root = config["output_root"]
    index = write_day_manifests(name, DAYS, context, root, tmp_path / "index.csv")
    assert list(index["records"]) == [len(listed_truth(clean_mission, name, day)) for day in DAYS]
    for day in DAYS:
        manifest = read_manifest(manifest_path(root, name, day))
        truth = listed_truth(clean_mission, name, day)
        assert len(manifest) > 0
        assert list(manifest["record_id"]) == list(truth["record_id"])
        assert (manifest["time_utc"].to_numpy() == pd.to_datetime(truth["time_utc"], utc=True).to_numpy()).all()
        assert all(t.date() == day for t in manifest["time_utc"])
        if get_product(name).is_jsoc:
            assert list(manifest["quality"]) == [int(q) for q in truth["quality"]]
            assert list(manifest["t_rec"]) == list(truth["t_rec"])
        else:
            assert list(manifest["size"]) == [int(s) for s in truth["size"]]
        assert set(manifest["level"]) == {get_product(name).level}


def test_eit_files_with_unreadable_headers_do_not_fail_the_query(mission, context_for, tmp_path):
    """A permanently broken file cannot be attributed to a wavelength: it is left out, the rest is listed."""
    config, context = context_for(products=["EIT195"])
    write_day_manifests("EIT195", DAYS, context, config["output_root"], tmp_path / "i.csv")
    for day in DAYS:
        listed = set(read_manifest(manifest_path(config["output_root"], "EIT195", day))["record_id"])
        truth = mission.ground_truth("EIT195", day, day)
        whole = set(truth.loc[~(truth["corrupt"] | truth["truncated"]), "record_id"])
        assert whole <= listed <= set(truth["record_id"])
    all_truth = mission.ground_truth("EIT195", DAYS[0], DAYS[-1])
    assert (all_truth["corrupt"] | all_truth["truncated"]).any()  # the case is really exercised


def test_second_query_asks_nothing(context_for, archive, tmp_path):
    config, context = context_for(products=["AIA171"])
    write_day_manifests("AIA171", DAYS, context, config["output_root"], tmp_path / "a.csv")
    before = len(archive.access_log)
    write_day_manifests("AIA171", DAYS, context, config["output_root"], tmp_path / "b.csv")
    assert len(archive.access_log) == before
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_lasco_level_comes_from_the_tree(mission, context_for, tmp_path):
    config, context = context_for(products=["LASCO_C3"], lasco_level="1")
    write_day_manifests("LASCO_C3", DAYS[:1], context, config["output_root"], tmp_path / "i.csv")
    manifest = read_manifest(manifest_path(config["output_root"], "LASCO_C3", DAYS[0]))
    assert len(manifest) and set(manifest["level"]) == {"1"}
    assert manifest["record_id"].str.startswith("lasco_level1/").all()


def test_eit_manifest_holds_only_its_wavelength(context_for, tmp_path):
    config, context = context_for(products=["EIT304"])
    write_day_manifests("EIT304", DAYS[:1], context, config["output_root"], tmp_path / "i.csv")
    manifest = read_manifest(manifest_path(config["output_root"], "EIT304", DAYS[0]))
    assert len(manifest) and set(manifest["wavelength"]) == {304.0}


def test_tai_times_are_converted_not_relabelled():
    times = jsoc_times_to_utc(["2010.10.15_00:00:00_TAI", "2013.01.01_00:00:35_TAI", "2011-02-15T00:00:12.34Z",
                               "2010.10.15_00:00:00_UTC", "MISSING"])
    assert str(times[0]) == "2010-10-14 23:59:26+00:00"  # TAI-UTC = 34 s in 2010
    assert str(times[1]) == "2013-01-01 00:00:00+00:00"  # 35 s after 2012-07-01
    assert times[2] == pd.Timestamp("2011-02-15T00:00:12.34", tz="UTC")
    assert str(times[3]) == "2010-10-15 00:00:00+00:00" and pd.isna(times[4])


def test_hex_quality_becomes_integer():
    assert list(parse_quality(["0x00000000", "0x00000400", "1024", None, "MISSING"])) == [0, 1024, 1024, pd.NA, pd.NA]
