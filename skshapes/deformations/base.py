"""Base class of deformation models and the result of a morphing."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .._utils import params_repr

from ..shapes import PolyData


@dataclass
class MorphingResult:
    """What :meth:`DeformationModel.morph` returns.

    Attributes
    ----------
    shape : PolyData
        The deformed shape (its points carry the autograd graph of the parameter).
    regularization : torch.Tensor
        0-dim tensor, the deformation cost (0 for rigid/similarity/affine; the
        Hamiltonian at time 0, i.e. half the squared RKHS norm, for LDDMM).
    path : list of PolyData or None
        The shape at each time step (``n_steps + 1`` shapes) when asked for.
    """

    shape: PolyData
    regularization: torch.Tensor
    path: list | None = field(default=None)


class DeformationModel:
    """A family of deformations parametrised by one tensor.

    Subclasses store their constructor arguments under the same names and
    implement :meth:`parameter_shape`, :meth:`morph` and
    :meth:`transform_points`. The zero parameter is the identity.
    """

    def parameter_shape(self, shape: PolyData) -> tuple:
        """Shape of the parameter tensor that deforms ``shape``."""
        raise NotImplementedError

    def initial_parameter(self, shape: PolyData, target: PolyData | None = None) -> torch.Tensor:
        """Where a registration of ``shape`` onto ``target`` starts: the identity (zeros) by default.

        Returns a new tensor on the device and in the dtype of ``shape``;
        models may use ``target`` (linear models start from the translation
        that matches the centroids).
        """
        return torch.zeros(self.parameter_shape(shape), dtype=shape.dtype, device=shape.device)

    def morph(self, shape: PolyData, parameter: torch.Tensor, return_path: bool = False) -> MorphingResult:
        """Deform ``shape`` with ``parameter``; differentiable w.r.t. ``parameter``."""
        raise NotImplementedError

    def transform_points(self, points: torch.Tensor, shape: PolyData, parameter: torch.Tensor) -> torch.Tensor:
        """Move arbitrary ``points`` (P, D) (grids, landmarks) by the deformation fitted on ``shape``."""
        raise NotImplementedError

    def transfer_parameter(self, parameter: torch.Tensor, shape: PolyData, new_shape: PolyData) -> torch.Tensor:
        """The parameter that deforms ``new_shape`` as ``parameter`` deforms ``shape``.

        Used by coarse-to-fine registration (``Registration(multiscale=...)``)
        to carry the parameter fitted on a decimated shape to a finer one:
        ``new_shape`` is another sampling of the same surface. Subclasses
        whose parameter does not depend on the sampling return it unchanged;
        others map it (see each model).

        Parameters
        ----------
        parameter : torch.Tensor, shape ``parameter_shape(shape)``
        shape, new_shape : PolyData
            Same dimension, dtype and device.

        Returns
        -------
        torch.Tensor, shape ``parameter_shape(new_shape)``
            A new tensor, without autograd graph.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot carry its parameter to another sampling")

    def frozen_for(self, shape: PolyData) -> DeformationModel:
        """This model with every choice that depends on the sampling of ``shape`` fixed.

        Coarse-to-fine registration deforms decimated versions of ``shape``
        with the returned model, so that choices made on the shape (LDDMM
        control points given as a number) stay the same at every level.
        Models without such choices return ``self``.
        """
        return self

    def check_parameter(self, shape: PolyData, parameter: torch.Tensor) -> None:
        """Raise ``ValueError`` if ``parameter`` does not fit ``shape`` (shape, device, dtype)."""
        expected = tuple(self.parameter_shape(shape))
        if not isinstance(parameter, torch.Tensor):
            raise TypeError(f"parameter must be a torch.Tensor, got {type(parameter).__name__}")
        if tuple(parameter.shape) != expected:
            raise ValueError(f"parameter must have shape {expected} for this shape, got {tuple(parameter.shape)}")
        if parameter.device != shape.device or parameter.dtype != shape.dtype:
            raise ValueError(
                f"parameter ({parameter.device}, {parameter.dtype}) must share the shape's device and dtype "
                f"({shape.device}, {shape.dtype})"
            )

    def __repr__(self) -> str:
        return params_repr(self)


def check_points_like(points, shape: PolyData, name: str = "points") -> None:
    """Raise if ``points`` is not a (P, D) tensor in the dtype and on the device of ``shape``."""
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(points).__name__}")
    if points.ndim != 2 or points.shape[1] != shape.dim:
        raise ValueError(f"{name} must have shape (P, {shape.dim}), got {tuple(points.shape)}")
    if points.device != shape.device or points.dtype != shape.dtype:
        raise ValueError(
            f"{name} ({points.device}, {points.dtype}) must share the shape's device and dtype "
            f"({shape.device}, {shape.dtype})"
        )
