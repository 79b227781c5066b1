"""Rigid motions (rotation + translation) in 2D and 3D."""

from __future__ import annotations

import torch

from .linear import LinearDeformation, rotation_from_vector, rotation_size


class RigidMotion(LinearDeformation):
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
    parameter is the identity. Its regularization is 0. The centroid
    handling, :meth:`~LinearDeformation.morph` and
    :meth:`~LinearDeformation.transform_points` come from
    :class:`~skshapes.deformations.linear.LinearDeformation`.

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

    parameter_sizes = {2: 3, 3: 6}

    def __init__(self):
        pass

    @classmethod
    def rotation_matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
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
        dim = cls._dim_of(parameter, dim)
        return rotation_from_vector(parameter[: rotation_size(dim)], dim)

    @classmethod
    def matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The linear part of the motion: :meth:`rotation_matrix`."""
        return cls.rotation_matrix(parameter, dim)
