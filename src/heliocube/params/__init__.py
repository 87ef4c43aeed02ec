"""Image parameters: the ten GSU texture parameters on a grid of cells of every frame of a cube (issue 16).

Entropy, mean, standard deviation, fractal dimension, skewness, kurtosis, uniformity, relative smoothness, Tamura
contrast and Tamura directionality (Ahmadzadeh et al. 2019, ApJS 243, 18; Banda & Angryk), computed on a frame's
gray levels (:mod:`heliocube.params.settings`) for all cells at once (:mod:`heliocube.params.compute`), stored per
product-variant-year (:mod:`heliocube.params.store`) and drawn as heatmaps (:mod:`heliocube.params.heatmap`).
"""

#: The parameters in the order of the last axis of every ``params`` array.
PARAMETER_NAMES = (
    "entropy", "mean", "std", "fractal_dimension", "skewness", "kurtosis", "uniformity", "relative_smoothness",
    "tamura_contrast", "tamura_directionality",
)
#: Units of each parameter: "level" is a gray level of the product's mapping (see heliocube.params.settings).
PARAMETER_UNITS = ("bit", "level", "level", "1", "1", "1", "1", "1", "level2", "1")

__all__ = ["PARAMETER_NAMES", "PARAMETER_UNITS"]
