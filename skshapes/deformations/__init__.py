"""Deformation models: rigid motions and LDDMM (one model per module).

Every model maps ``(shape, parameter)`` to a :class:`MorphingResult` through
:meth:`~DeformationModel.morph`, moves arbitrary points with
:meth:`~DeformationModel.transform_points`, and has the identity at the zero
parameter (:meth:`~DeformationModel.initial_parameter`).
"""

from .base import DeformationModel, MorphingResult
from .lddmm import LDDMM
from .rigid import RigidMotion

__all__ = ["LDDMM", "DeformationModel", "MorphingResult", "RigidMotion"]
