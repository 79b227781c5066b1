"""Deformation models: rigid, similarity and affine maps, and LDDMM (one model per module).

Every model maps ``(shape, parameter)`` to a :class:`MorphingResult` through
:meth:`~DeformationModel.morph`, moves arbitrary points with
:meth:`~DeformationModel.transform_points`, and has the identity at the zero
parameter (:meth:`~DeformationModel.initial_parameter`). The rigid, similarity
and affine models share :class:`LinearDeformation` (``x' = A (x - c) + c + t``
about the centroid ``c``, regularization 0).
"""

from .affine import AffineDeformation
from .base import DeformationModel, MorphingResult
from .lddmm import LDDMM
from .linear import LinearDeformation
from .rigid import RigidMotion
from .similarity import Similarity

__all__ = [
    "LDDMM",
    "AffineDeformation",
    "DeformationModel",
    "LinearDeformation",
    "MorphingResult",
    "RigidMotion",
    "Similarity",
]
