"""Data-attachment terms ``loss(shape_a, shape_b) -> 0-dim tensor``.

Losses add and scale: ``SinkhornLoss(blur=1.0) + 0.1 * LandmarkLoss()``.
"""

from .base import Loss, ScaledLoss, SumLoss
from .currents import CurrentsLoss
from .l2 import L2Loss
from .landmarks import LandmarkLoss
from .nearest_neighbors import NearestNeighborsLoss
from .sinkhorn import SinkhornLoss
from .varifold import VarifoldLoss

__all__ = [
    "CurrentsLoss",
    "L2Loss",
    "LandmarkLoss",
    "Loss",
    "NearestNeighborsLoss",
    "ScaledLoss",
    "SinkhornLoss",
    "SumLoss",
    "VarifoldLoss",
]
