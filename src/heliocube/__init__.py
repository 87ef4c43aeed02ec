"""heliocube: SoHO and SDO images into standardized, machine-learning-ready datasets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("heliocube")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
