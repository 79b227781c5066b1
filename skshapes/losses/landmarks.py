"""Mean squared distance between corresponding landmarks."""

from __future__ import annotations

import torch

from .base import Loss


class LandmarkLoss(Loss):
    r"""Mean squared distance between the landmarks of two shapes, matched by order.

    .. math::

        L(x, y) = \frac{1}{L} \sum_{l=1}^L |x_{k_l} - y_{m_l}|^2,

    where :math:`k` and :math:`m` are the landmark vertex indices
    (:attr:`~skshapes.PolyData.landmarks`) of ``shape_a`` and ``shape_b``:
    the l-th landmark of one shape corresponds to the l-th landmark of the
    other. Add it to a dense loss to anchor a registration:
    ``SinkhornLoss(blur=1.0) + 0.1 * LandmarkLoss()``.

    Shapes
    ------
    - ``shape_a.landmark_points``: (L, D), ``shape_b.landmark_points``: (L, D).
    - Output: 0-dim tensor in squared units of the points, dtype and device
      of the points; differentiable w.r.t. both shapes' points.

    Raises
    ------
    ValueError
        If either shape has no landmarks, if they have different numbers of
        landmarks, or if the shapes differ in dimension, device or dtype.
    TypeError
        If an argument is not a :class:`~skshapes.PolyData`.
    """

    def __init__(self):
        pass

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        for shape, name in ((shape_a, "shape_a"), (shape_b, "shape_b")):
            if shape.landmarks is None or shape.landmarks.numel() == 0:
                raise ValueError(f"LandmarkLoss needs landmarks, but {name} has none")
        n_a, n_b = shape_a.landmarks.shape[0], shape_b.landmarks.shape[0]
        if n_a != n_b:
            raise ValueError(
                f"LandmarkLoss needs the same number of landmarks on both shapes: "
                f"shape_a has {n_a}, shape_b has {n_b}"
            )
        return ((shape_a.landmark_points - shape_b.landmark_points) ** 2).sum(dim=1).mean()
