"""Symmetric, weighted nearest-neighbour (chamfer) loss."""

from __future__ import annotations

import torch

from ..reductions import knn
from .base import Loss
from .sinkhorn import normalized_point_weights


class NearestNeighborsLoss(Loss):
    r"""Symmetric chamfer distance, weighted by the normalised point weights.

    .. math::

        L(x, y) = \sum_{i=1}^N a_i\, |x_i - y_{\mathrm{nn}(i)}|^2
                + \sum_{j=1}^M b_j\, |y_j - x_{\mathrm{nn}(j)}|^2,

    where :math:`y_{\mathrm{nn}(i)}` is the point of ``shape_b`` nearest to
    :math:`x_i` (and conversely), and :math:`a = w / \sum w`,
    :math:`b = v / \sum v` are the :attr:`~skshapes.PolyData.point_weights`
    of the shapes normalised to sum 1 (vertex areas on meshes, segment
    lengths on curves, 1/N on clouds), so that each term is a weighted mean
    of squared distances, independent of the shapes' areas.

    Both directions are needed: the term from ``shape_a`` alone is zero
    whenever ``shape_a`` collapses onto a part of ``shape_b``.

    The neighbours are searched without gradient; the value is then
    differentiable w.r.t. the points (and, through the weights, the areas) of
    both shapes, piecewise smooth (the neighbour assignment changes on a
    set of measure zero). Gradients are finite when points coincide.

    Parameters
    ----------
    backend : {"auto", "keops", "torch"}
        Nearest-neighbour search of :func:`skshapes.reductions.knn`
        (KeOps ``argKmin`` or dense torch ``topk``); both give the same value
        and gradient (up to ties).

    Shapes
    ------
    - ``shape_a.points``: (N, D), ``shape_b.points``: (M, D).
    - Output: 0-dim tensor in squared units of the points, dtype and device
      of the points.

    Raises
    ------
    ValueError
        If the shapes differ in dimension, device or dtype, a shape has zero
        total weight, or ``backend`` is unknown.
    TypeError
        If an argument is not a :class:`~skshapes.PolyData`.

    References
    ----------
    H. G. Barrow, J. M. Tenenbaum, R. C. Bolles, H. C. Wolf, "Parametric
    correspondence and chamfer matching", IJCAI 1977 (chamfer distance);
    P. J. Besl, N. D. McKay, "A method for registration of 3-D shapes",
    IEEE TPAMI 1992 (the nearest-point term of ICP).
    """

    def __init__(self, backend="auto"):
        self.backend = backend

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        x, y = shape_a.points, shape_b.points
        a = normalized_point_weights(shape_a, "shape_a")
        b = normalized_point_weights(shape_b, "shape_b")
        # Squared distances are recomputed from the indices (not squared from the
        # norms that knn returns) so that the gradient stays finite, and zero,
        # where a point coincides with its neighbour.
        _, to_b = knn(x, y, k=1, backend=self.backend)
        _, to_a = knn(y, x, k=1, backend=self.backend)
        a_to_b = ((x - y[to_b[:, 0]]) ** 2).sum(dim=1)
        b_to_a = ((y - x[to_a[:, 0]]) ** 2).sum(dim=1)
        return (a * a_to_b).sum() + (b * b_to_a).sum()
