"""The QC and coverage report: its readers on small files, its figures, and the page in a real browser.

The small output tree is written with the stages' own writers and column lists (CubeWriter, sync_experiment, the
fetch stage's slot and ledger columns), so the readers meet the files the workflow writes. The demo's report is
checked in a browser by tests/test_workflow.py, on the module's demo run.
"""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.cube import CubeWriter
from heliocube.fetch.run import LEDGER_COLUMNS, SLOT_COLUMNS
from heliocube.report import SECTIONS, build_report, collect
from heliocube.report.cubes import sample_cube, synced_abs_dt
from heliocube.report.thumbnails import display_settings, thumbnail_png
from heliocube.sync import sync_experiment

from .chromium import probe_page, screenshot

VARIANT = "16px-mean-6h"
SLOTS = [f"2010-10-{day}T{hour:02d}:00:00+00:00" for day in (15, 16) for hour in (0, 6, 12, 18)]


def _header(product: str, obs: str, size: int) -> fits.Header:
    """A header sunpy recognises as the product's instrument (EIT or AIA), the disk at the centre."""
    instrument = {"EIT195": ("SOHO", "EIT", "EIT", 195), "AIA171": ("SDO/AIA", "AIA_3", "AIA", 171)}[product]
    cards = {"NAXIS": 2, "NAXIS1": size, "NAXIS2": size, "TELESCOP": instrument[0], "INSTRUME": instrument[1],
             "DETECTOR": instrument[2], "WAVELNTH": instrument[3], "WAVEUNIT": "angstrom", "DATE-OBS": obs,
             "CTYPE1": "HPLN-TAN", "CTYPE2": "HPLT-TAN", "CUNIT1": "arcsec", "CUNIT2": "arcsec",
             "CDELT1": 160.0, "CDELT2": 160.0, "CRPIX1": (size + 1) / 2, "CRPIX2": (size + 1) / 2,
             "CRVAL1": 0.0, "CRVAL2": 0.0, "RSUN_OBS": 960.0, "DSUN_OBS": 1.496e11, "EXPTIME": 1.0}
    return fits.Header(cards)


def _disk(size: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    rng = np.random.default_rng(seed)
    frame = 100.0 * (np.hypot(x, y) < size / 3) + rng.normal(10, 2, (size, size))
    frame[0, 0] = np.nan
    return frame.astype(np.float32)


def _write_cube(path: Path, product: str, n: int, size: int = 16) -> None:
    attrs = {"variant": VARIANT, "product": product, "config_hash": "c0ffee", "units": "DN", "cadence": "6h"}
    with CubeWriter(path, (size, size), attrs=attrs) as writer:
        for i, slot in enumerate(SLOTS[:n]):
            obs = pd.Timestamp(slot) + pd.Timedelta(seconds=30 * (i + 1))
            obs_text = obs.tz_localize(None).isoformat()
            writer.append(_disk(size, i), {"slot_time": slot[:19], "obs_time": obs_text, "record_id": f"{product}-{i}"},
                          _header(product, obs_text, size).tostring(sep="\n"))


def _write_table(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    """Two products over two days: EIT195 with a fallback, a slot every candidate failed and an empty slot."""
    root = tmp_path_factory.mktemp("report") / "out"
    eit_status = ["ok"] * 6 + ["failed", "empty"]
    for product, statuses in (("EIT195", eit_status), ("AIA171", ["ok"] * 8)):
        _write_table(root / "raw" / product / "2010-10.slots.csv",
                     [{"product": product, "day": slot[:10], "slot": slot, "status": status,
                       "n_rejected": 0, "dt_seconds": 30.0 if status == "ok" else None}
                      for slot, status in zip(SLOTS, statuses, strict=True)], SLOT_COLUMNS)
    rejections = [(SLOTS[1], "quality", "512"), (SLOTS[6], "holes", "0.2"), (SLOTS[6], "streak", "4"),
                  (SLOTS[6], "holes", "0.3")]
    _write_table(root / "raw" / "EIT195" / "2010-10.ledger.csv",
                 [{"product": "EIT195", "day": slot[:10], "slot": slot, "record_id": f"r{i}", "time_utc": slot,
                   "reason": reason, "value": value, "detail": "<b>not markup</b>"}
                  for i, (slot, reason, value) in enumerate(rejections)], LEDGER_COLUMNS)
    _write_table(root / "raw" / "AIA171" / "2010-10.ledger.csv", [], LEDGER_COLUMNS)
    _write_table(root / "frames" / VARIANT / "EIT195" / "2010-10.ledger.csv",
                 [{"product": "EIT195", "day": "2010-10-15", "slot": SLOTS[2], "record_id": "r9",
                   "reason": "clean_failed", "detail": "bad header"}], LEDGER_COLUMNS)
    _write_table(root / "frames" / VARIANT / "AIA171" / "2010-10.ledger.csv", [], LEDGER_COLUMNS)
    cubes = {product: root / "cubes" / VARIANT / f"{product}.h5" for product in ("EIT195", "AIA171")}
    _write_cube(cubes["EIT195"], "EIT195", 6)
    _write_cube(cubes["AIA171"], "AIA171", 8)
    sync_experiment(root / "synced" / "pair-6h.h5", cubes, experiment="pair-6h", start="2010-10-15",
                    finish="2010-10-16", step="6h")
    _write_table(root / "synced" / "pair-6h.ledger.csv",
                 [{"product": "EIT195", "time": SLOTS[6], "reason": "no_frame_within_tolerance", "dropped": True}],
                 ["product", "time", "reason", "dropped"])
    for job, seconds in (("fetch/EIT195/2010-10", 2.5), ("fetch/AIA171/2010-10", 1.5), ("sync/pair-6h", 0.5)):
        path = root / "benchmarks" / f"{job}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{seconds}\t0:00:02\t120.5\t{seconds / 2}\n")
    (root / "benchmarks" / "report.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n99\t0:01:39\t1\t1\n")
    return root


# -- readers -------------------------------------------------------------------------------------------------------


def test_slot_states_name_the_most_common_reason_of_a_slot_whose_every_candidate_failed(small_root):
    slots, ledger = collect.slot_tables(small_root), collect.fetch_ledgers(small_root)
    assert len(slots) == 16 and len(ledger) == 4 and set(slots["product"]) == {"EIT195", "AIA171"}
    states = collect.slot_states(slots, ledger).set_index(["product", "slot"])["state"]
    assert states[("EIT195", SLOTS[1])] == "filled"  # a rejection the slot recovered from by falling back
    assert states[("EIT195", SLOTS[6])] == "rejected: holes"  # holes twice, streak once
    assert states[("EIT195", SLOTS[7])] == "empty"
    assert (states.loc["AIA171"] == "filled").all()
    # a failed slot the ledger knows nothing about still shows, as unknown
    lost = collect.slot_states(slots, ledger.iloc[:1]).set_index(["product", "slot"])["state"]
    assert lost[("EIT195", SLOTS[6])] == "rejected: unknown"


def test_coverage_by_day_counts_filled_slots_and_takes_the_commonest_unfilled_state(small_root):
    states = collect.slot_states(collect.slot_tables(small_root), collect.fetch_ledgers(small_root))
    coverage = collect.coverage_by_day(states).set_index(["product", "day"])
    assert coverage.loc[("EIT195", "2010-10-15")].tolist() == [4, 4, "filled"]
    # one slot rejected (holes), one empty: a tie, where the rejection is what QC wants to see
    assert coverage.loc[("EIT195", "2010-10-16")].tolist() == [4, 2, "rejected: holes"]
    assert coverage.loc[("AIA171", "2010-10-16")].tolist() == [4, 4, "filled"]
    assert collect.coverage_by_day(states.iloc[:0]).empty


def test_rejections_by_period_fill_the_days_between_and_sort_the_reasons():
    ledger = pd.DataFrame({"day": ["2010-10-15", "2010-10-18", "2010-10-18"], "reason": ["streak", "holes", "streak"]})
    daily = collect.rejections_by_period(ledger)
    assert list(daily.columns) == ["holes", "streak"]
    assert [d.strftime("%m-%d") for d in daily.index] == ["10-15", "10-16", "10-17", "10-18"]
    assert daily["streak"].tolist() == [1, 0, 0, 1] and daily["holes"].tolist() == [0, 0, 0, 1]
    monthly = collect.rejections_by_period(ledger, "M")
    assert monthly.loc[pd.Timestamp("2010-10-01")].tolist() == [1, 2]
    assert collect.rejections_by_period(ledger.iloc[:0]).empty


def test_clean_and_sync_ledgers_say_which_variant_and_experiment_each_row_came_from(small_root):
    clean = collect.clean_ledgers(small_root)
    assert clean[["variant", "product", "reason"]].values.tolist() == [[VARIANT, "EIT195", "clean_failed"]]
    sync = collect.sync_ledgers(small_root)
    assert sync[["experiment", "product", "dropped"]].values.tolist() == [["pair-6h", "EIT195", True]]


def test_readers_of_a_root_without_outputs_give_empty_tables_with_columns(tmp_path):
    assert collect.slot_tables(tmp_path).empty and "status" in collect.slot_tables(tmp_path).columns
    assert collect.fetch_ledgers(tmp_path).empty and "reason" in collect.fetch_ledgers(tmp_path).columns
    assert list(collect.benchmarks(tmp_path).columns) == collect.BENCHMARK_COLUMNS


def test_benchmarks_give_each_job_its_rule_and_leave_out_the_report_itself(small_root):
    bench = collect.benchmarks(small_root)
    assert sorted(bench["job"]) == ["fetch/AIA171/2010-10", "fetch/EIT195/2010-10", "sync/pair-6h"]
    summary = collect.runtime_summary(bench).set_index("rule")
    assert list(summary.index) == ["fetch", "sync"]  # longest total first
    assert summary.loc["fetch", "jobs"] == 2 and summary.loc["fetch", "total_s"] == pytest.approx(4.0)
    assert summary.loc["fetch", "max_s"] == pytest.approx(2.5) and summary.loc["sync", "max_rss_mb"] == 120.5


def test_sample_cube_spreads_its_picks_and_subsamples_large_frames(small_root, tmp_path):
    sample = sample_cube(small_root / "cubes" / VARIANT / "AIA171.h5", n=3)
    assert (sample.product, sample.variant, sample.n_frames) == ("AIA171", VARIANT, 8)
    assert sample.slot_times == [SLOTS[0][:19], SLOTS[4][:19], SLOTS[7][:19]]  # first, middle, last
    assert sample.headers[0]["INSTRUME"] == "AIA_3" and sample.attrs["config_hash"] == "c0ffee"
    np.testing.assert_array_equal(sample.frames[1], _disk(16, 4))
    big = tmp_path / "big.h5"
    _write_cube(big, "EIT195", 2, size=64)
    reduced = sample_cube(big, n=5, max_size=16)
    assert len(reduced.frames) == 2 and reduced.frames[0].shape == (16, 16) and reduced.frame_shape == (64, 64)
    np.testing.assert_array_equal(reduced.frames[0], _disk(64, 0)[::4, ::4])


def test_synced_abs_dt_gives_each_products_kept_rows(small_root):
    synced = synced_abs_dt(small_root / "synced" / "pair-6h.h5")
    assert synced.experiment == "pair-6h" and synced.tolerance_seconds == 3 * 3600
    # EIT195 has frames for the first six slots only: the rows both products fill
    assert list(synced.abs_dt) == ["EIT195", "AIA171"]
    np.testing.assert_allclose(synced.abs_dt["EIT195"], 30.0 * np.arange(1, 7))
    np.testing.assert_allclose(synced.abs_dt["AIA171"], 30.0 * np.arange(1, 7))


# -- thumbnails ----------------------------------------------------------------------------------------------------


def test_thumbnails_use_the_instrument_colormap_and_keep_north_up(small_root):
    sample = sample_cube(small_root / "cubes" / VARIANT / "EIT195.h5", n=1)
    cmap, norm = display_settings(sample.frames[0], sample.headers[0], "EIT195")
    assert cmap.name == "sohoeit195"
    aia = sample_cube(small_root / "cubes" / VARIANT / "AIA171.h5", n=1)
    assert display_settings(aia.frames[0], aia.headers[0], "AIA171")[0].name == "sdoaia171"
    # a magnetogram (registry unit Gauss) gets hmimag on a range symmetric about zero
    field = np.linspace(-300, 500, 256, dtype=np.float32).reshape(16, 16)
    cmap, norm = display_settings(field, fits.Header({"INSTRUME": "MDI"}), "MDI_96m")
    assert cmap.name == "hmimag" and norm.vmin == -norm.vmax and norm.vmax > 400
    # the PNG has the frame's size, its NaN corner (FITS row 0, the south edge) at the bottom left
    png = matplotlib.image.imread(io.BytesIO(thumbnail_png(sample.frames[0], sample.headers[0], "EIT195")))
    assert png.shape[:2] == (16, 16)
    np.testing.assert_allclose(png[-1, 0], cmap.get_bad(), atol=1 / 255)
    assert not np.allclose(png[0, -1], cmap.get_bad(), atol=1 / 255)


# -- the page ------------------------------------------------------------------------------------------------------


class _Resources(HTMLParser):
    """Every src and href of a page, and its section ids."""

    def __init__(self):
        super().__init__()
        self.links, self.sections = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[name] for name in ("src", "href") if name in attrs]
        if tag == "section":
            self.sections.append(attrs.get("id"))


def check_report_in_browser(report: Path, workdir: Path, *, min_images: int) -> dict:
    """Assert the report is self-contained and renders in Chromium with every section and image; return the probe."""
    text = report.read_text(encoding="utf-8")
    resources = _Resources()
    resources.feed(text)
    external = [link for link in resources.links if not link.startswith(("data:image/png;base64,", "#"))]
    assert not external, f"the report loads external resources: {external[:5]}"
    assert resources.sections == [anchor for anchor, _ in SECTIONS]
    probe = probe_page(report, workdir)
    assert [(s["id"], s["title"]) for s in probe["sections"]] == list(SECTIONS)
    assert all(s["height"] > 0 for s in probe["sections"]), probe["sections"]
    failed = [image["alt"] for image in probe["images"] if not image["loaded"]]
    assert len(probe["images"]) >= min_images and not failed, (len(probe["images"]), failed)
    pixels = screenshot(report, workdir / "report.png", workdir)
    gray = pixels[..., :3].mean(axis=-1)
    assert gray.std() > 0.05, "the screenshot is blank"
    assert (gray < 0.9).mean() > 0.05, "the screenshot is nearly all white"
    return probe


def test_report_of_a_small_tree_is_self_contained_and_renders_every_section_and_image(small_root, tmp_path):
    report = build_report(small_root, small_root / "report" / "index.html", thumbnails_per_cube=4, max_table_rows=2)
    text = report.read_text()
    assert "&lt;b&gt;not markup&lt;/b&gt;" in text and "<b>not markup" not in text  # ledger text is escaped
    assert "First 2 of 4 rows" in text and "rejected: holes" not in text  # the ledger table is cut
    assert "sohoeit195" in text and "sdoaia171" in text
    # figures: coverage, rejections, one |dt| histogram, runtimes; thumbnails: 4 per cube
    probe = check_report_in_browser(report, tmp_path, min_images=4 + 2 * 4)
    thumbnails = [image for image in probe["images"] if VARIANT in image["alt"]]
    assert len(thumbnails) == 8 and all(image["width"] == 16 for image in thumbnails)


def test_report_of_an_empty_tree_still_has_every_section(tmp_path):
    report = build_report(tmp_path / "nothing", tmp_path / "report.html")
    resources = _Resources()
    resources.feed(report.read_text())
    assert resources.sections == [anchor for anchor, _ in SECTIONS]
    assert "No slot tables" in report.read_text() and "<img" not in report.read_text()
