"""heliocube.qc against the embedded archive's ground truth, and against real LASCO streak frames."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive.mission import SyntheticMission
from heliocube.fetch.gate import QualityGate, Rejection
from heliocube.qc import REASONS, FrameQC, Thresholds, checks, valid_region_mask
from heliocube.qc.gate import read_frame

SIZE = 256
LASCO_DATA = Path(__file__).parent / "data" / "lasco"
#: rates raised so that every class has at least 20 positives over the records below
RATES = {
    "quality": 0.3,
    "hole": 0.25,
    "missing_blocks": 0.3,
    "streak": 0.0,
    "cosmic_rays": 0.0,
    "corrupt": 0.0,
    "truncated": 0.0,
    "LASCO_C2": {"streak": 0.3, "cosmic_rays": 0.1},
    "LASCO_C3": {"streak": 0.3, "cosmic_rays": 0.1},
}
MIN_SCORE = 0.95


@pytest.fixture(scope="module")
def qc_mission():
    return SyntheticMission(seed=0, frame_size=SIZE, defect_rates=RATES)


def _score(name: str, truth, predicted) -> tuple[float, float]:
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    tp = int((truth & predicted).sum())
    precision = tp / max(int(predicted.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    print(f"\n[qc] {name}: positives={int(truth.sum())} n={truth.size} precision={precision:.3f} recall={recall:.3f}")
    assert truth.sum() >= 20, f"{name}: too few positives ({truth.sum()}) to score"
    return precision, recall


class _Evaluated:
    """Rendered frames and per-check verdicts of a product's records, computed once per module."""

    def __init__(self, mission: SyntheticMission, root: Path):
        self.mission, self.root, self.cache = mission, root, {}

    def __call__(self, product: str, start: str, finish: str) -> pd.DataFrame:
        key = (product, start, finish)
        if key not in self.cache:
            self.cache[key] = self._evaluate(product, start, finish)
        return self.cache[key]

    def _evaluate(self, product: str, start: str, finish: str) -> pd.DataFrame:
        gt = self.mission.records(product, start, finish)
        gate = FrameQC(product, expected_size=SIZE)
        th = gate.thresholds
        rows = []
        for i, record_id in enumerate(gt["record_id"]):
            path = self.root / f"{product}_{i:04d}.fits"
            path.write_bytes(self.mission.render_fits(product, record_id))
            data, header = read_frame(path)
            mask = valid_region_mask(header, data.shape, gate.product.valid_region)
            flags = checks.header_flags(header, gate.product.quality_keyword, th)
            rows.append(
                {
                    "path": path,
                    "flag": None if flags is None else flags.reason,
                    "holes_pred": checks.holes(data, mask, thresholds=th) is not None,
                    "streak_pred": gate.detect_streaks and checks.streaks(data, mask, th) is not None,
                    "cr_count": checks.cosmic_ray_count(data, mask, th),
                }
            )
        return pd.concat([gt.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


@pytest.fixture(scope="module")
def evaluated(qc_mission, tmp_path_factory):
    return _Evaluated(qc_mission, tmp_path_factory.mktemp("qc_frames"))


# ---------------------------------------------------------------------------------------------- geometry
@pytest.mark.parametrize(
    ("product", "level", "day"),
    [
        ("EIT195", "0", "2005-01-01"),
        ("EIT304", "0", "2005-01-01"),
        ("MDI_96m", "1.8", "2005-01-01"),
        ("LASCO_C2", "0.5", "2005-01-01"),
        ("LASCO_C2", "1", "2005-01-01"),
        ("LASCO_C3", "0.5", "2005-01-01"),
        ("LASCO_C3", "1", "2005-01-01"),
        ("HMI_720s", "1.5", "2012-01-01"),
        ("AIA171", "1", "2012-01-01"),
    ],
)
def test_valid_region_mask_matches_archive(product, level, day):
    mission = SyntheticMission(seed=0, frame_size=SIZE)
    rows = mission.records(product, day, pd.Timestamp(day) + pd.Timedelta(hours=3), level=level)
    hdu = fits.open(io.BytesIO(mission.render_fits(product, rows["record_id"].iloc[0], level=level)))[0]
    mask = valid_region_mask(hdu.header, hdu.data.shape, mission.product(product).valid_region)
    expected = mission.valid_mask(product, level)
    assert mask.shape == expected.shape
    assert mask.sum() > 0
    assert int((mask != expected).sum()) == 0


# ---------------------------------------------------------------------------------------------- classes
def test_quality_before_download(qc_mission):
    for product, finish in (("AIA171", "2012-01-01T01:00"), ("MDI_96m", "2010-01-10"), ("HMI_720s", "2012-01-02")):
        gt = qc_mission.records(product, finish[:4] + "-01-01", finish)
        gate = FrameQC(product)
        verdicts = [gate.before_download(row) for _, row in gt.iterrows()]
        predicted = [v is not None and v.reason == "quality" for v in verdicts]
        precision, recall = _score(f"quality/{product}", gt["quality"] != 0, predicted)
        assert precision >= MIN_SCORE and recall >= MIN_SCORE


def test_quality_header_flag(evaluated):
    frames = evaluated("MDI_96m", "2005-01-01", "2005-01-11")
    precision, recall = _score("quality header/MDI_96m", frames["quality"] != 0, frames["flag"] == "quality")
    assert precision >= MIN_SCORE and recall >= MIN_SCORE


@pytest.mark.parametrize(
    ("product", "start", "finish"),
    [
        ("EIT195", "2005-01-01", "2005-01-02"),
        ("LASCO_C2", "2005-01-01", "2005-01-03"),
        ("LASCO_C3", "2005-01-01", "2005-01-04"),
        ("MDI_96m", "2005-01-01", "2005-01-11"),
        ("AIA171", "2012-01-01", "2012-01-01T00:20"),
    ],
)
def test_holes_precision_recall(evaluated, product, start, finish):
    frames = evaluated(product, start, finish)
    truth = frames["hole_fraction"] > Thresholds().hole_fraction
    precision, recall = _score(f"holes/{product}", truth, frames["holes_pred"])
    assert precision >= MIN_SCORE and recall >= MIN_SCORE


def test_eit_missing_blocks(evaluated):
    frames = evaluated("EIT195", "2005-01-01", "2005-01-02")
    truth = frames["missing_blocks"] > 0
    precision, recall = _score("missing_blocks/EIT195", truth, frames["flag"] == "missing_blocks")
    assert precision >= MIN_SCORE and recall >= MIN_SCORE
    # the gate as a whole rejects exactly the frames with a defect
    gate = FrameQC("EIT195", expected_size=SIZE)
    verdicts = [gate.after_download(row, row["path"]) is not None for _, row in frames.iterrows()]
    defective = (frames["missing_blocks"] > 0) | (frames["hole_fraction"] > 0)
    assert verdicts == defective.tolist()


@pytest.mark.parametrize(
    ("product", "start", "finish"), [("LASCO_C2", "2005-01-01", "2005-01-03"), ("LASCO_C3", "2005-01-01", "2005-01-04")]
)
def test_lasco_streaks_precision_recall(evaluated, product, start, finish):
    frames = evaluated(product, start, finish)
    precision, recall = _score(f"streak/{product}", frames["streak"], frames["streak_pred"])
    assert precision >= MIN_SCORE and recall >= MIN_SCORE


def test_cosmic_rays_precision_recall(evaluated):
    frames = pd.concat(
        [evaluated("LASCO_C2", "2005-01-01", "2005-01-03"), evaluated("LASCO_C3", "2005-01-01", "2005-01-04")]
    )
    frames = frames[~frames["streak"]]  # a streak's pixels are bright blobs too; the streak check runs first
    predicted = frames["cr_count"] > Thresholds().cosmic_ray_count
    precision, recall = _score("cosmic_rays/LASCO", frames["cosmic_rays"] > 0, predicted)
    assert precision >= MIN_SCORE and recall >= MIN_SCORE


# ---------------------------------------------------------------------------------------------- real LASCO frames
@pytest.mark.parametrize(
    "name",
    [
        "planet_22321894",
        "planet_32219521",
        "comet_Bradfield_32122317",
    ],
)
def test_real_lasco_streaks_flagged(name):
    path = LASCO_DATA / f"{name}.fts.gz"
    data, header = read_frame(path)
    gate = FrameQC(f"LASCO_{header['DETECTOR'].strip()}")
    mask = valid_region_mask(header, data.shape, gate.product.valid_region)
    segments = checks.streak_segments(data, mask, gate.thresholds)
    print(f"\n[qc] real {name}: {len(segments)} segments {segments.tolist()}")
    assert checks.streaks(data, mask, gate.thresholds) is not None
    # the blooming streaks are horizontal (along rows)
    assert np.all(np.abs(segments[:, 3] - segments[:, 1]) <= 2)
    assert gate.measure(path)["streak_segments"] == len(segments)


def test_clean_synthetic_lasco_not_flagged(tmp_path):
    mission = SyntheticMission(seed=0, frame_size=1024, defect_rates={k: 0.0 for k in RATES if k.islower()})
    for product in ("LASCO_C2", "LASCO_C3"):
        record = mission.records(product, "2005-01-01", "2005-01-01T06:00")["record_id"].iloc[0]
        path = tmp_path / f"{product}.fits"
        path.write_bytes(mission.render_fits(product, record))
        gate = FrameQC(product)
        assert gate.after_download(None, path) is None
        metrics = gate.measure(path)
        assert metrics["streak_segments"] == 0 and metrics["hole_fraction"] == 0.0 and metrics["reason"] is None


# ---------------------------------------------------------------------------------------------- units
def test_gate_protocol_and_reasons(tmp_path):
    gate = FrameQC("EIT195", expected_size=SIZE)
    gate_type: type[QualityGate] = FrameQC
    assert callable(gate_type.before_download) and callable(gate_type.after_download)
    assert gate.before_download(pd.Series({"quality": 0})) is None
    assert gate.before_download(pd.Series({"quality": 1024})) == Rejection("quality", 1024, "manifest quality")
    assert gate.before_download(pd.Series({"record_id": "x"})) is None
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    assert gate.after_download(None, bad).reason == "unreadable"
    assert gate.measure(bad)["readable"] is False
    assert {"quality", "missing_blocks", "missvals", "holes", "shape", "streak", "cosmic_rays", "unreadable"} <= set(
        REASONS
    )
    assert FrameQC("LASCO_C2").detect_streaks and not FrameQC("AIA171").detect_streaks


def test_corrupt_file_unreadable(tmp_path):
    mission = SyntheticMission(seed=0, frame_size=64, defect_rates={"corrupt": 1.0})
    record = mission.records("EIT195", "2005-01-01", "2005-01-01T06:00")["record_id"].iloc[0]
    path = tmp_path / "corrupt.fits"
    path.write_bytes(mission.render_fits("EIT195", record))
    assert FrameQC("EIT195", expected_size=64).after_download(None, path).reason == "unreadable"


def test_shape_check():
    assert checks.shape(np.zeros((8, 8))) is None
    assert checks.shape(np.zeros((8, 9))).reason == "shape"
    assert checks.shape(np.zeros((2, 8, 8))).reason == "shape"
    assert checks.shape(np.zeros((8, 8)), expected_size=16).value == "8x8"


def test_holes_ignore_nan_outside_region():
    data = np.ones((10, 10), dtype=np.float32)
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    data[~mask] = np.nan
    assert checks.hole_fraction(data, mask) == 0.0
    data[3, 3] = np.nan
    data[4, 4] = 0
    assert checks.hole_fraction(data, mask) == pytest.approx(2 / 36)
    ints = np.ones((10, 10), dtype=np.int16)
    ints[5, 5] = -32768
    assert checks.hole_fraction(ints, mask, blank=-32768) == pytest.approx(1 / 36)


def test_header_flags():
    header = fits.Header({"NAXIS1": 100, "NAXIS2": 100, "QUALITY": 0, "MISSVALS": 5})
    assert checks.header_flags(header, "QUALITY") is None
    header["MISSVALS"] = 50
    assert checks.header_flags(header, "QUALITY").reason == "missvals"
    header["QUALITY"] = 0x400
    assert checks.header_flags(header, "QUALITY") == Rejection("quality", 0x400, "QUALITY")
    assert checks.header_flags(header, None).reason == "missvals"
    eit = fits.Header()
    eit.add_comment("  N_MISSING_BLOCKS =    3")
    assert checks.header_flags(eit, None) == Rejection("missing_blocks", 3, "N_MISSING_BLOCKS > 0")


def test_thresholds_from_mapping():
    th = Thresholds.from_mapping({"hole_fraction": "0.01", "streak_segments": 3})
    assert th.hole_fraction == 0.01 and th.streak_segments == 3
    assert dataclasses.replace(th, hole_fraction=0.5).hole_fraction == 0.5
    with pytest.raises(ValueError, match="unknown QC threshold"):
        Thresholds.from_mapping({"nope": 1})
    assert FrameQC("EIT195", thresholds={"hole_fraction": 0.2}).thresholds.hole_fraction == 0.2
