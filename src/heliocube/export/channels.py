"""Channel names of the exports, as SDOML-lite names its channels (``AIA_0171``, ``HMI_M``).

The name is built from the product's registry entry, never from a per-product table:

- a coronagraph detector is named by its detector: ``LASCO_C2``, ``LASCO_C3``;
- a line-of-sight magnetogram (data in Gauss) is ``{INSTRUMENT}_M``: ``HMI_M``, ``MDI_M``;
- an imager is named by its wavelength in Angstrom, four digits: ``AIA_0171``, ``AIA_1600``, ``EIT_0195``.
"""

from __future__ import annotations

import functools

from ..registry import get_product

__all__ = ["MAGNETOGRAM_UNITS", "channel_name", "channel_names"]

#: Units of a product whose frames are magnetograms (named ``{INSTRUMENT}_M``, after SDOML-lite's ``HMI_M``).
MAGNETOGRAM_UNITS = "Gauss"


@functools.cache
def channel_name(product_name: str) -> str:
    """The export channel name of a registry product.

    Parameters
    ----------
    product_name : str
        A registry name such as ``AIA171``, ``HMI_720s`` or ``LASCO_C2``.

    Returns
    -------
    str
        ``{INSTRUMENT}_{DETECTOR}`` for products with a detector, ``{INSTRUMENT}_M`` for magnetograms,
        otherwise ``{INSTRUMENT}_{wavelength:04d}``.

    Raises
    ------
    KeyError
        When ``product_name`` is not in the registry (the message lists the known products).
    ValueError
        When the entry has neither a detector, magnetogram units nor a wavelength to name it by.

    Examples
    --------
    >>> channel_name("AIA171"), channel_name("HMI_720s"), channel_name("LASCO_C3")
    ('AIA_0171', 'HMI_M', 'LASCO_C3')
    """
    product = get_product(product_name)
    instrument = product.instrument.upper()
    if product.detector:
        return f"{instrument}_{product.detector.upper()}"
    if product.units == MAGNETOGRAM_UNITS:
        return f"{instrument}_M"
    if product.wavelength is None:
        raise ValueError(f"product {product_name} has no detector, wavelength or magnetogram units to name its channel")
    return f"{instrument}_{int(product.wavelength):04d}"


def channel_names(product_names) -> list[str]:
    """Channel names of ``product_names``, in order.

    Raises
    ------
    ValueError
        When two products would share a channel name (one experiment cannot hold both).
    """
    names = [channel_name(name) for name in product_names]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise ValueError(f"products {list(product_names)} give the channel names {clashes} more than once")
    return names
