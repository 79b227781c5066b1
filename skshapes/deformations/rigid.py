"""Rigid motions (rotation + translation) in 2D and 3D."""

from __future__ import annotations

import torch

from ..shapes import PolyData
from .base import DeformationModel, MorphingResult, check_points_like

#: Length of the parameter vector for each ambient dimension.
_PARAMETER_SIZE = {2: 3, 3: 6}


def _dim_of(parameter: torch.Tensor, dim=None) -> int:
    """The ambient dimension that a rigid parameter vector encodes (3 -> 2D, 6 -> 3D)."""
    if not isinstance(parameter, torch.Tensor):
        raise TypeError(f"parameter must be a torch.Tensor, got {type(parameter).__name__}")
    inferred = {3: 2, 6: 3}.get(parameter.shape[0]) if parameter.ndim == 1 else None
    if inferred is None or (dim is not None and dim != inferred):
        expected = "(3,) in 2D or (6,) in 3D" if dim is None else f"{(_PARAMETER_SIZE.get(dim, '?'),)} in {dim}D"
        raise ValueError(f"parameter must have shape {expected}, got {tuple(parameter.shape)}")
    return inferred


class RigidMotion(DeformationModel):
    r"""Rotation about the shape's centroid followed by a translation.

    A point :math:`x` of the shape moves to

    .. math:: x' = R\,(x - c) + c + t,

    with :math:`c` the centroid (mean of the points) of the shape being
    deformed, :math:`R = \exp([\omega]_\times)` a rotation and :math:`t` a
    translation. Rotating about the centroid rather than the origin decouples
    rotation and translation, which conditions the optimisation far better for
    shapes far from the origin.

    The parameter is a 1-D tensor:

    - 3D, shape (6,): ``parameter[:3]`` is the rotation vector :math:`\omega`
      (axis times angle in radians, the "axis-angle" or ``rotvec``
      convention of :meth:`scipy.spatial.transform.Rotation.from_rotvec`) and
      ``parameter[3:]`` the translation, in the units of the points;
    - 2D, shape (3,): ``parameter[0]`` is the counter-clockwise angle in
      radians and ``parameter[1:]`` the translation.

    :math:`R` is built with :func:`torch.linalg.matrix_exp` of the skew matrix
    :math:`[\omega]_\times`, so it is always a rotation (orthogonal, det +1)
    and differentiable everywhere, including at the identity. The zero
    parameter is the identity. Its regularization is 0.

    Examples
    --------
    >>> import math, torch, skshapes as sks
    >>> shape = sks.PolyData(torch.rand(10, 3))
    >>> model = sks.RigidMotion()
    >>> parameter = torch.tensor([0.0, 0.0, math.pi / 2, 1.0, 0.0, 0.0])
    >>> moved = model.morph(shape, parameter).shape
    >>> model.rotation_matrix(parameter).shape
    torch.Size([3, 3])
    """

    def __init__(self):
        pass

    # ----------------------------------------------------------- parameters
    def parameter_shape(self, shape: PolyData) -> tuple:
        """``(6,)`` for a 3D shape, ``(3,)`` for a 2D shape."""
        return (_PARAMETER_SIZE[shape.dim],)

    @staticmethod
    def rotation_matrix(parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The rotation matrix encoded by ``parameter``.

        Parameters
        ----------
        parameter : torch.Tensor, shape (6,) or (3,)
            A rigid-motion parameter (3D or 2D).
        dim : {2, 3}, optional
            The ambient dimension; inferred from the length of ``parameter``
            when omitted, checked against it otherwise.

        Returns
        -------
        torch.Tensor, shape (D, D)
            :math:`\\exp([\\omega]_\\times)`, orthogonal with determinant +1,
            differentiable w.r.t. ``parameter``; dtype and device of ``parameter``.

        Raises
        ------
        TypeError
            If ``parameter`` is not a tensor.
        ValueError
            If its shape is not (3,) or (6,), or does not match ``dim``.
        """
        dim = _dim_of(parameter, dim)
        zero = torch.zeros_like(parameter[0])
        if dim == 2:
            theta = parameter[0]
            rows = [[zero, -theta], [theta, zero]]
        else:
            a, b, c = parameter[0], parameter[1], parameter[2]
            rows = [[zero, -c, b], [c, zero, -a], [-b, a, zero]]
        skew = torch.stack([torch.stack(row) for row in rows])
        return torch.linalg.matrix_exp(skew)

    @staticmethod
    def translation(parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The translation encoded by ``parameter``, shape (D,), in the units of the points.

        Parameters and errors as in :meth:`rotation_matrix`.
        """
        dim = _dim_of(parameter, dim)
        return parameter[dim * (dim - 1) // 2 :]

    # ------------------------------------------------------------- motion
    def transform_points(self, points: torch.Tensor, shape: PolyData, parameter: torch.Tensor) -> torch.Tensor:
        """Apply the rigid motion fitted on ``shape`` to arbitrary points.

        Parameters
        ----------
        points : torch.Tensor, shape (P, D)
            Points to move (grids, landmarks...), in the frame of ``shape``.
        shape : PolyData
            The shape the parameter was fitted on; its centroid is the centre
            of rotation.
        parameter : torch.Tensor, shape :meth:`parameter_shape`
            The rigid-motion parameter.

        Returns
        -------
        torch.Tensor, shape (P, D)
            ``R (points - c) + c + t``, differentiable w.r.t. ``points``,
            ``parameter`` and the points of ``shape``.

        Raises
        ------
        TypeError
            If ``parameter`` or ``points`` is not a tensor.
        ValueError
            If ``parameter`` does not fit ``shape`` (shape, dtype, device) or
            ``points`` is not (P, D) with the shape's D, dtype and device.
        """
        self.check_parameter(shape, parameter)
        check_points_like(points, shape)
        centroid = shape.points.mean(dim=0)
        rotation = self.rotation_matrix(parameter, shape.dim)
        return (points - centroid) @ rotation.T + centroid + self.translation(parameter, shape.dim)

    def morph(self, shape: PolyData, parameter: torch.Tensor, return_path: bool = False) -> MorphingResult:
        """Move ``shape`` rigidly.

        Parameters
        ----------
        shape : PolyData
            The shape to move (N points in D = 2 or 3 dimensions).
        parameter : torch.Tensor, shape :meth:`parameter_shape`
            Rotation vector (or angle) and translation, see the class docstring.
        return_path : bool
            If True, ``path`` is ``[shape, moved shape]`` (the motion is a
            single step).

        Returns
        -------
        MorphingResult
            ``shape``: the moved shape (same connectivity), differentiable
            w.r.t. ``parameter``; ``regularization``: a zero 0-dim tensor in
            the shape's dtype and on its device.

        Raises
        ------
        TypeError
            If ``parameter`` is not a tensor.
        ValueError
            If ``parameter`` does not fit ``shape`` (shape, dtype, device).
        """
        moved = shape.with_points(self.transform_points(shape.points, shape, parameter))
        regularization = torch.zeros((), dtype=shape.dtype, device=shape.device)
        return MorphingResult(shape=moved, regularization=regularization, path=[shape, moved] if return_path else None)
