"""Small real cubes for tests of readers: frames fetched from the embedded archive, cleaned and assembled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from heliocube.archive.server import ArchiveServer
from heliocube.assemble import build_year_cube
from heliocube.clean import clean_days
from heliocube.variants import Variant

from .conftest import make_context
from .test_fetch import DAY, query_and_fetch

VARIANT = Variant("32px-mean-6h", 32, "mean", dt.timedelta(hours=6), {})
COMPRESSION = {"compression": "gzip", "compression_level": 4, "shuffle": True}


def build_cubes(mission, root: Path, names) -> dict[str, Path]:
    """``{product: cube path}``: one day (four 6-hourly slots) of each product at 32 px, as the workflow builds it
    (``{root}/cubes/{variant}/{product}/2010.h5``)."""
    cubes = {}
    with ArchiveServer(mission) as server:
        for name in names:
            config, context = make_context(server, root, products=[name])
            slots, _ = query_and_fetch(name, config, context)
            index, _ = clean_days(name, VARIANT, [DAY], slots, root, anchor=DAY)
            index_path = root / "indexes" / f"{name}.csv"
            index_path.parent.mkdir(parents=True, exist_ok=True)
            index.to_csv(index_path, index=False)
            cube = root / "cubes" / VARIANT.name / name / "2010.h5"
            attrs = {"variant": VARIANT.name, "config_hash": "c0ffee" * 4, "product": name, "cadence": "6h"}
            build_year_cube([index_path], root, cube, frame_size=VARIANT.image_size, units="DN/s", attrs=attrs,
                            compression=COMPRESSION)
            cubes[name] = cube
    return cubes
