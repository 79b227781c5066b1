"""Shapes: the :class:`PolyData` container, validation, reading, writing and cleaning."""

from .cleaning import MeshQualityWarning, clean, find_defects
from .decimation import decimate, farthest_point_sampling, replay_decimation
from .io import (
    ShapeFileError,
    from_pyvista,
    from_trimesh,
    read,
    save,
    to_pyvista,
    to_trimesh,
)
from .polydata import PolyData
from .validation import check_same_space

__all__ = [
    "MeshQualityWarning",
    "PolyData",
    "ShapeFileError",
    "check_same_space",
    "clean",
    "decimate",
    "farthest_point_sampling",
    "find_defects",
    "from_pyvista",
    "from_trimesh",
    "read",
    "replay_decimation",
    "save",
    "to_pyvista",
    "to_trimesh",
]
