"""Export channel names: SDOML-lite's names, derived from the registry for every product."""

import pytest

from heliocube.export.channels import channel_name, channel_names
from heliocube.registry import load_registry

EXPECTED = {
    "AIA94": "AIA_0094", "AIA131": "AIA_0131", "AIA171": "AIA_0171", "AIA193": "AIA_0193", "AIA211": "AIA_0211",
    "AIA304": "AIA_0304", "AIA335": "AIA_0335", "AIA1600": "AIA_1600", "AIA1700": "AIA_1700", "AIA4500": "AIA_4500",
    "HMI_720s": "HMI_M", "MDI_96m": "MDI_M", "EIT171": "EIT_0171", "EIT195": "EIT_0195", "EIT284": "EIT_0284",
    "EIT304": "EIT_0304", "LASCO_C2": "LASCO_C2", "LASCO_C3": "LASCO_C3",
}


@pytest.mark.parametrize(("product", "channel"), EXPECTED.items())
def test_channel_names_follow_sdoml_lite(product, channel):
    assert channel_name(product) == channel


def test_every_registered_product_has_a_distinct_channel():
    names = channel_names(list(load_registry()))
    assert len(set(names)) == len(names)


def test_unknown_product_names_the_known_ones():
    with pytest.raises(KeyError, match="known products"):
        channel_name("AIA999")


def test_clashing_products_are_refused():
    with pytest.raises(ValueError, match="AIA_0171"):
        channel_names(["AIA171", "AIA171"])
