"""heliocube: SoHO and SDO images into standardized, machine-learning-ready datasets."""


def __getattr__(name: str):
    # PEP 562: importlib.metadata (and the email parser it loads) costs ~60 ms, which every job's start would pay
    # for a version string that no job reads.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("heliocube")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found
