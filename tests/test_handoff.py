"""The fetch job's decoded frame handed to the clean stage: bit-identical frames, and never a stale or changed one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from heliocube.archive.mission import SyntheticMission
from heliocube.clean import clean_frame
from heliocube.frameio import blank_to_nan, read_frame, read_header
from heliocube.handoff import (
    HandoffSpec,
    HandoffWriter,
    calibrated_from_decoded,
    frame_from_handoff,
    resize_handoff,
)
from heliocube.jobs import clean_job, fetch_job, query_job
from heliocube.resize import resize_frame
from heliocube.variants import Variant, variants_of
from heliocube.verify import verify_tree

N = 256


def _header(blank: int | None) -> fits.Header:
    header = fits.Header()
    for key, value in (("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", N), ("NAXIS2", N), ("CRPIX1", 128.5),
                       ("CRPIX2", 127.25), ("CDELT1", 0.6), ("CDELT2", 0.6), ("DATAMIN", 0), ("DATAMAX", 1)):
        header[key] = value
    if blank is not None:
        header["BLANK"] = blank
    return header


def _frame(dtype, blank: int | None) -> np.ndarray:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    data = rng.integers(info.min + 1 if blank is not None else info.min, info.max, (N, N), endpoint=True,
                        dtype=dtype)
    data[:8, :8] = info.max  # extreme block sums
    if blank is not None:
        data[rng.random((N, N)) < 0.2] = blank  # scattered missing pixels
        data[-32:, -32:] = blank  # whole blocks missing: NaN in every output
    return data


@pytest.mark.parametrize(("dtype", "blank"), [(np.int16, None), (np.int16, -32768), (np.uint8, None),
                                              (np.uint8, 0)])
@pytest.mark.parametrize("method", ["mean", "sum"])
def test_frames_from_the_handoff_are_the_clean_stages_bit_for_bit(dtype, blank, method):
    data, header = _frame(dtype, blank), _header(blank)
    spec = HandoffSpec(64)
    handoff, why = spec.reduce(data, header)
    assert handoff is not None, why
    assert handoff.ndim == (2 if blank is None else 3)
    for size in (64, 32, 8):
        expected, expected_header = resize_frame(blank_to_nan(data, header), header, size, method)
        out, out_header = resize_handoff(handoff, header.copy(), N, size, method)
        assert out.dtype == expected.dtype and out.tobytes() == expected.tobytes(), (size, method)
        assert out_header.tostring() == expected_header.tostring()
    if blank is not None:
        assert np.isnan(out[-1, -1]) and np.isfinite(out[0, 0])


@pytest.mark.parametrize(("data", "grid", "why"), [
    (np.zeros((N, N), np.float32), 64, "float32"),
    (np.zeros((N, N), np.int32), 64, "int32"),
    (np.zeros((N, N), np.int16), 256, "multiple"),  # no smaller than the frame: nothing to save
    (np.zeros((192, 192), np.int16), 64, "power-of-two"),  # factor 3: numpy's float64 mean rounds
    (np.zeros((4096, 4096), np.int16), 64, "exact"),  # factor 64: int16 block sums pass 2**24
])
def test_no_handoff_where_it_would_not_be_exact(data, grid, why):
    handoff, detail = HandoffSpec(grid).reduce(data, _header(None))
    assert handoff is None and why in detail



@pytest.mark.parametrize(("dtype", "blank", "where"), [
    (np.int16, None, None), (np.int16, -32768, None), (np.int16, -32768, "min"), (np.int16, 7, None),
    (np.int16, 7, "inside"), (np.int16, 32767, "max"), (np.uint8, 0, "min"), (np.uint16, None, None)])
def test_large_frames_reduce_to_the_same_bits_through_the_compiled_pass(dtype, blank, where):
    """From 2048 px the means come from heliocube.blocksums (one pass that also finds the frame's range), below
    from heliocube.resize: the same handoff either way, BLANK pixels found wherever their value sits."""
    n = 2048
    info = np.iinfo(dtype)
    rng = np.random.default_rng(2)
    data = rng.integers(info.min + 1, info.max - 1, (n, n), endpoint=True, dtype=dtype)
    data[data == (blank if blank is not None else info.min)] = 1  # BLANK only where placed below
    data[:16, :16] = info.max - 1  # extreme block sums
    data[16:32, :16] = info.min + 1
    if where is not None:
        data[rng.random((n, n)) < 0.01] = blank
    header = _header(blank)
    header["NAXIS1"] = header["NAXIS2"] = n
    for grid in (1024, 512, 128):
        reduced, why = HandoffSpec(grid).reduce(data, header)
        assert reduced is not None, why
        assert reduced.ndim == (2 if where is None else 3)
        if where is None:
            expected = resize_frame(data, header.copy(), grid, "mean")[0]
        else:  # the valid pixels' sums and counts, as the small frames' path makes them
            square = (n // grid) ** 2
            valid = data != blank
            expected = np.stack([resize_frame(np.where(valid, data, 0).astype(dtype), header.copy(), grid,
                                              "mean")[0] * np.float32(square),
                                 resize_frame(valid, header.copy(), grid, "mean")[0] * np.float32(square)])
        assert reduced.dtype == np.float32 and reduced.tobytes() == expected.tobytes(), grid


def test_the_handoff_file_is_what_numpy_saves(tmp_path):
    """Written straight from the array and hashed on the way, it is np.save's file byte for byte."""
    import hashlib
    import io

    data, header = _frame(np.int16, None), _header(None)
    raw = tmp_path / "raw" / "AIA171" / "frame.fits"
    raw.parent.mkdir(parents=True)
    fits.PrimaryHDU(data, header).writeto(raw)
    entry = HandoffWriter(tmp_path, HandoffSpec(64)).write(raw, *read_frame(raw))
    saved = io.BytesIO()
    np.save(saved, HandoffSpec(64).reduce(data, header)[0], allow_pickle=False)
    payload = (tmp_path / entry["path"]).read_bytes()
    assert payload == saved.getvalue() and entry["sha256"] == hashlib.sha256(payload).hexdigest()

def test_the_spec_serves_mean_and_sum_variants_and_affine_calibrated_ones_at_twice_their_size():
    pytest.importorskip("heliocube.calibrate.affine")
    north = {"north_up": True, "fixed_rsun_arcsec": 976.0}
    variants = [Variant("a", 64, "mean", None, {}), Variant("b", 128, "sum", None, {}),
                Variant("c", 256, "interp", None, {}), Variant("d", 256, "mean", None, north),
                Variant("e", 256, "mean", None, {**north, "method": "full_resolution"}),
                Variant("f", 256, "mean", None, {"exposure_normalise": True})]
    spec = HandoffSpec.for_variants(variants)
    assert spec == HandoffSpec(512) and spec.tag == "mean512-v1"
    assert [spec.serves(v, 4096) for v in variants] == [True, True, False, True, False, False]
    assert HandoffSpec.for_variants(variants[:2]) == HandoffSpec(128)
    assert HandoffSpec.for_variants(variants[2:3] + variants[4:]) is None


def test_a_calibrated_frame_is_the_same_bits_from_the_handoff_and_from_decoding(tmp_path):
    pytest.importorskip("heliocube.calibrate.affine")  # the affine calibration path (issue 17, goal 1)
    mission = SyntheticMission(seed=0, frame_size=N, defect_rates={})
    record = mission.records("EIT195", "2005-01-01", "2005-01-02")["record_id"].iloc[0]
    raw = tmp_path / "raw" / "EIT195" / "frame.fits"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(mission.render_fits("EIT195", record))
    data, header = read_frame(raw)
    variant = Variant("v", 32, "mean", None, {"north_up": True, "fixed_rsun_arcsec": 976.0})
    decoded, decoded_header = calibrated_from_decoded(data, header.copy(), variant, "EIT195")
    entry = HandoffWriter(tmp_path, HandoffSpec.for_variants([variant])).write(raw, data, header)
    assert entry["path"] and entry["grid"] == 64
    handed, handed_header = frame_from_handoff(tmp_path, entry, raw, variant, "EIT195")
    assert handed.tobytes() == decoded.tobytes() and handed_header.tostring() == decoded_header.tostring()
    full, _ = clean_frame(data, header.copy(), "EIT195", variant)  # the affine path on the full frame: close
    assert np.nanmax(np.abs(full - decoded)) <= 0.02 * np.nanmax(np.abs(full))


def test_read_header_is_read_frames_header(tmp_path):
    root = tmp_path
    path = root / "plain.fits"
    fits.PrimaryHDU(_frame(np.int16, None), _header(None)).writeto(path)
    assert read_header(path).tostring() == read_frame(path)[1].tostring()
    rice = root / "rice.fits"  # JSOC's layout: an empty primary HDU, then a RICE_1 table
    header = _header(-32768)
    header.remove("BITPIX")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(_frame(np.int16, -32768), header, compression_type="RICE_1",
                                                       tile_shape=(1, N))]).writeto(rice)
    assert read_header(rice).tostring() == read_frame(rice)[1].tostring()
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(root / "scaled.fits")
    with fits.open(root / "scaled.fits", mode="update") as hdul:
        hdul[0].scale("int16", bscale=2.0, bzero=1.0)
    assert read_header(root / "scaled.fits") is None  # astropy reads it: no handoff


def _month(config):
    root = Path(config["output_root"])
    (variant,) = (v.as_params() for v in variants_of(config))
    paths = {"query": root / "manifests/EIT195/2010-10.index.csv", "slots": root / "raw/EIT195/2010-10.slots.csv",
             "ledger": root / "raw/EIT195/2010-10.ledger.csv",
             "index": root / f"frames/{variant['name']}/EIT195/2010-10.index.csv",
             "clean_ledger": root / f"frames/{variant['name']}/EIT195/2010-10.ledger.csv"}
    query_job(config, "EIT195", ["2010-10-14", "2010-10-15", "2010-10-16"], str(paths["query"]))
    fetch_job(config, "EIT195", ["2010-10-15"], str(paths["slots"]), str(paths["ledger"]))
    return root, variant, paths


def _clean(config, variant, paths, caplog) -> pd.DataFrame:
    caplog.clear()
    clean_job(config, "EIT195", variant, ["2010-10-15"], str(paths["slots"]), str(paths["index"]),
              str(paths["clean_ledger"]))
    return pd.read_csv(paths["index"])


def test_the_clean_stage_uses_the_fetch_jobs_handoff_and_never_a_changed_one(clean_context_for, caplog):
    caplog.set_level("INFO")
    config, _ = clean_context_for(products=["EIT195"], image_size=32, resize_method="mean")
    root, variant, paths = _month(config)
    receipt = json.loads((root / "raw/EIT195/2010/2010-10-15.receipt.json").read_text())
    entries = [v["handoff"] for v in receipt["qc"]["verdicts"].values() if v["rejection"] is None]
    assert entries and all(e["tag"] == "mean32-v1" and e["path"] for e in entries)
    handed = _clean(config, variant, paths, caplog)
    assert f"({len(handed)} from the fetch job's handoff" in caplog.text
    assert verify_tree(root).ok and verify_tree(root).checked["handoffs"] == len(entries)

    # a handoff changed on disk: named by verify, never used (the raw file is decoded), the same frames
    target = root / entries[0]["path"]
    payload = bytearray(target.read_bytes())
    payload[-1] ^= 0xFF
    target.write_bytes(bytes(payload))
    decoded = _clean(config, variant, paths, caplog)
    assert f"({len(handed) - 1} from the fetch job's handoff" in caplog.text
    assert list(decoded["frame_sha256"]) == list(handed["frame_sha256"])
    (mismatch,) = verify_tree(root).mismatches
    assert mismatch.path == entries[0]["path"] and mismatch.rebuild == (entries[0]["path"],)

    # no handoff at all (deleted, or a config whose grid differs): decoded, the same frames
    for entry in entries:
        (root / entry["path"]).unlink()
    assert list(_clean(config, variant, paths, caplog)["frame_sha256"]) == list(handed["frame_sha256"])
    assert "(0 from the fetch job's handoff" in caplog.text and verify_tree(root).ok

    # the fetch job's rerun: the verdicts lack their handoffs' files, so it inspects those files again
    caplog.clear()
    fetch_job(config, "EIT195", ["2010-10-15"], str(paths["slots"]), str(paths["ledger"]))
    assert f"{len(entries)} files inspected, 0 verdicts reused" in caplog.text
    assert all((root / entry["path"]).is_file() for entry in entries)
    again = _clean(config, variant, paths, caplog)
    assert f"({len(handed)} from the fetch job's handoff" in caplog.text
    assert list(again["frame_sha256"]) == list(handed["frame_sha256"])
