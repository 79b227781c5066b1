"""Base class of data-attachment terms, and their sums and scalings."""

from __future__ import annotations

import torch

from .._utils import params_repr

from ..shapes.validation import check_same_space


class Loss:
    """A data-attachment term ``loss(shape_a, shape_b) -> 0-dim tensor``.

    Differentiable w.r.t. ``shape_a.points``. Losses add and scale:
    ``SinkhornLoss(blur=1.0) + 0.1 * LandmarkLoss()``.

    Subclasses store their constructor arguments under the same names (so
    that ``repr`` and scikit-learn's ``clone`` see them) and implement
    :meth:`compute`.
    """

    def __call__(self, shape_a, shape_b) -> torch.Tensor:
        """Value of the loss between two shapes of one dimension, device and dtype.

        Raises
        ------
        TypeError
            If an argument is not a :class:`~skshapes.PolyData`.
        ValueError
            If the shapes differ in dimension, device or dtype, or the loss
            needs something they lack (correspondence, landmarks...).
        """
        check_same_space(shape_a, shape_b, ("shape_a", "shape_b"))
        return self.compute(shape_a, shape_b)

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other):
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss(self, other)

    def __mul__(self, weight):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return ScaledLoss(self, float(weight))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return params_repr(self)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class SumLoss(Loss):
    """Sum of two losses."""

    def __init__(self, first: Loss, second: Loss):
        self.first = first
        self.second = second

    def compute(self, shape_a, shape_b):
        return self.first.compute(shape_a, shape_b) + self.second.compute(shape_a, shape_b)

    def __repr__(self) -> str:
        return f"{self.first!r} + {self.second!r}"


class ScaledLoss(Loss):
    """A loss multiplied by a constant weight."""

    def __init__(self, loss: Loss, weight: float):
        self.loss = loss
        self.weight = weight

    def compute(self, shape_a, shape_b):
        return self.weight * self.loss.compute(shape_a, shape_b)

    def __repr__(self) -> str:
        return f"{self.weight!r} * {self.loss!r}"
