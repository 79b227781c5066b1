"""Mean squared distance between corresponding vertices."""

from __future__ import annotations

import torch

from .base import Loss


class L2Loss(Loss):
    r"""Mean squared distance between vertex i of one shape and vertex i of the other.

    .. math::

        L(x, y) = \frac{1}{N} \sum_{i=1}^N |x_i - y_i|^2 .

    For shapes in dense correspondence (the same template morphed onto
    several subjects, vertex i on the same anatomical point). The mean is
    plain, not weighted by the vertex areas: every vertex counts the same,
    so the value is the mean squared vertex error that correspondence
    benchmarks report (its square root is the RMS error), and it does not
    depend on how the mesh is triangulated around a vertex.

    Shapes
    ------
    - ``shape_a.points`` and ``shape_b.points``: (N, D), the same N.
    - Output: 0-dim tensor in squared units of the points, dtype and device
      of the points; differentiable w.r.t. both.

    Raises
    ------
    ValueError
        If the shapes have different numbers of vertices (the message gives
        both), or differ in dimension, device or dtype.
    TypeError
        If an argument is not a :class:`~skshapes.PolyData`.
    """

    def __init__(self):
        pass

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        if shape_a.n_points != shape_b.n_points:
            raise ValueError(
                "L2Loss needs shapes in correspondence, with the same number of vertices: "
                f"shape_a has {shape_a.n_points}, shape_b has {shape_b.n_points}"
            )
        return ((shape_a.points - shape_b.points) ** 2).sum(dim=1).mean()
