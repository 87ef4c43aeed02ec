"""The product registry: every seed product present, consistent, and usable by every dialect."""

import datetime as dt

import pytest

from heliocube.registry import DIALECTS, get_product, load_registry

SEED_SOHO = ["EIT171", "EIT195", "EIT284", "EIT304", "MDI_96m", "LASCO_C2", "LASCO_C3"]
SEED_SDO = ["HMI_720s", "AIA94", "AIA131", "AIA171", "AIA193", "AIA211", "AIA304", "AIA335", "AIA1600", "AIA1700",
            "AIA4500"]
JSOC_SERIES = {"MDI_96m": "mdi.fd_M_96m_lev182", "HMI_720s": "hmi.M_720s", "AIA171": "aia.lev1_euv_12s",
               "AIA1600": "aia.lev1_uv_24s", "AIA1700": "aia.lev1_uv_24s", "AIA4500": "aia.lev1_vis_1h"}


def test_every_seed_product_is_registered():
    assert set(SEED_SOHO + SEED_SDO) <= set(load_registry())


@pytest.mark.parametrize("name", SEED_SOHO + SEED_SDO)
def test_entries_are_consistent(name):
    product = get_product(name)
    assert product.dialect in DIALECTS
    assert product.mission == ("SOHO" if name in SEED_SOHO else "SDO")
    assert product.level in product.levels and set(product.levels) == set(product.series)
    assert product.native_size in (1024, 4096) and product.cadence > dt.timedelta(0)
    assert product.valid_region.shape in ("disk", "annulus")
    assert 0 <= product.valid_region.inner < product.valid_region.outer
    if product.is_jsoc:
        assert product.segment and product.quality_keyword == "QUALITY"
    if product.instrument in ("EIT", "AIA"):
        assert str(product.wavelength) in name  # the prior tool sliced name[3:6] and broke AIA1600/1700/4500


@pytest.mark.parametrize(("name", "series"), sorted(JSOC_SERIES.items()))
def test_jsoc_series_match_the_seeds(name, series):
    assert get_product(name).series_for() == series


def test_lasco_levels_are_selectable_by_tree_not_size():
    c2 = get_product("LASCO_C2")
    assert c2.level == "0.5" and c2.levels == ("0.5", "1")
    assert c2.series_for("0.5").startswith("lasco_level05/") and c2.series_for("1").startswith("lasco_level1/")
    with pytest.raises(KeyError, match="no level '2'"):
        c2.series_for("2")


def test_unknown_product_names_the_known_ones():
    with pytest.raises(KeyError, match="AIA171"):
        get_product("AIA999")


def test_dense_series_are_thinned_for_listing():
    aia = get_product("AIA171")
    assert aia.cadence == dt.timedelta(seconds=12) and aia.listing_step == dt.timedelta(minutes=2)
    assert get_product("HMI_720s").listing_step == get_product("HMI_720s").cadence
