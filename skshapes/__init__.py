"""skshapes: computational anatomy and shape analysis in Python.

Registration estimators with a scikit-learn API, data-attachment losses,
deformation models (rigid to LDDMM), statistics on shape populations and
geometric deep-learning layers, with heavy reductions on KeOps.

Names are imported lazily (PEP 562) so that ``import skshapes`` stays fast
and optional dependencies (pyvista, napari, dask) load only when used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

# public name -> module that defines it
_LAZY = {
    "PolyData": "skshapes.shapes",
    "read": "skshapes.shapes",
    "ShapeFileError": "skshapes.shapes",
    "MeshQualityWarning": "skshapes.shapes",
    "Loss": "skshapes.losses",
    "SinkhornLoss": "skshapes.losses",
    "NearestNeighborsLoss": "skshapes.losses",
    "L2Loss": "skshapes.losses",
    "LandmarkLoss": "skshapes.losses",
    "VarifoldLoss": "skshapes.losses",
    "CurrentsLoss": "skshapes.losses",
    "DeformationModel": "skshapes.deformations",
    "MorphingResult": "skshapes.deformations",
    "RigidMotion": "skshapes.deformations",
    "Similarity": "skshapes.deformations",
    "AffineDeformation": "skshapes.deformations",
    "LDDMM": "skshapes.deformations",
    "Registration": "skshapes.registration",
    "Atlas": "skshapes.statistics",
    "TangentPCA": "skshapes.statistics",
    "GeodesicRegression": "skshapes.statistics",
    "PermutationGLM": "skshapes.statistics",
    "GeneralizedProcrustes": "skshapes.statistics",
    "WassersteinBarycenter": "skshapes.statistics",
    "parallel_transport": "skshapes.statistics",
    "shoot": "skshapes.statistics",
    "DysmorphologyAnalysis": "skshapes.dysmorphology",
    "plot": "skshapes.viz",
    "plot_heatmap": "skshapes.viz",
    "animate": "skshapes.viz",
}
_SUBMODULES = ("shapes", "reductions", "losses", "deformations", "registration", "optimization", "statistics", "nn", "features",
               "datasets", "dysmorphology", "viz", "report", "demo", "cli")

__all__ = sorted(_LAZY) + list(_SUBMODULES)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"skshapes.{name}")
    raise AttributeError(f"module 'skshapes' has no attribute {name!r}")


def __dir__():
    return __all__
