"""The workflow's parameter job (rule ``params``): one product-variant-year cube in, its parameter file and the
heatmaps of its last frame out."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from .heatmap import write_heatmaps
from .settings import ParamSettings
from .store import write_cube_parameters

__all__ = ["params_job"]

log = logging.getLogger(__name__)


def params_job(config: Mapping, cube: str | os.PathLike, output: str | os.PathLike, heatmaps: str | os.PathLike,
               settings: str) -> None:
    """Write ``output`` (:mod:`heliocube.params.store`) and the ten heatmaps of the cube's last frame in
    ``heatmaps``.

    Parameters
    ----------
    config : mapping
        The run's config (its hash is recorded).
    cube, output, heatmaps : path-like
        The per-year cube, the parameter file, the heatmap folder.
    settings : str
        :meth:`ParamSettings.to_json` of the product-variant (``get_params_settings`` in ``rules/common.smk``).
    """
    from ..config import config_hash, validate_config

    chosen = ParamSettings.from_json(settings)
    log.info("settings of %s %s: %s", chosen.product, chosen.variant, settings)
    write_cube_parameters(cube, output, chosen, config_hash=config_hash(validate_config(dict(config))))
    written = write_heatmaps(cube, output, heatmaps)
    log.info("wrote %d heatmaps to %s", len(written), heatmaps)
