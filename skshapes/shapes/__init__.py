"""Shapes: the :class:`PolyData` container, validation, reading and writing."""

from .decimation import decimate, farthest_point_sampling, replay_decimation
from .io import from_pyvista, from_trimesh, read, save, to_pyvista, to_trimesh
from .polydata import PolyData
from .validation import check_same_space

__all__ = [
    "PolyData",
    "check_same_space",
    "decimate",
    "farthest_point_sampling",
    "from_pyvista",
    "from_trimesh",
    "read",
    "replay_decimation",
    "save",
    "to_pyvista",
    "to_trimesh",
]
