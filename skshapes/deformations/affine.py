"""Affine deformations about the centroid in 2D and 3D."""

from __future__ import annotations

import torch

from .linear import LinearDeformation


class AffineDeformation(LinearDeformation):
    r"""A general affine map about the shape's centroid.

    A point :math:`x` of the shape moves to

    .. math:: x' = A\,(x - c) + c + t, \qquad A = I + M,

    with :math:`c` the centroid (mean of the points) of the shape being
    deformed, :math:`M` a (D, D) matrix and :math:`t` a translation. The
    parameter is a 1-D tensor of shape (D*D + D,), (12,) in 3D and (6,) in
    2D: ``parameter[:D*D]`` is :math:`M` in row-major order
    (``M = parameter[:D*D].reshape(D, D)``, dimensionless) and
    ``parameter[D*D:]`` the translation, in the units of the points. Storing
    :math:`A - I` makes the zero parameter the identity.

    :math:`A` is not constrained: it may be singular or flip the
    orientation (``det A <= 0``) if the data ask for it; check
    :meth:`~LinearDeformation.jacobian_determinant`. The regularization is
    0. Read the fitted map with :meth:`matrix` and :meth:`translation`.

    Examples
    --------
    >>> import torch
    >>> from skshapes.deformations import AffineDeformation
    >>> parameter = torch.zeros(12)
    >>> AffineDeformation.matrix(parameter)
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """

    parameter_sizes = {2: 6, 3: 12}

    def __init__(self):
        pass

    @classmethod
    def matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The linear part :math:`A = I + M`, shape (D, D).

        Parameters
        ----------
        parameter : torch.Tensor, shape (12,) or (6,)
            An affine parameter (3D or 2D).
        dim : {2, 3}, optional
            The ambient dimension; inferred from the length of ``parameter``
            when omitted, checked against it otherwise.

        Returns
        -------
        torch.Tensor, shape (D, D)
            Differentiable w.r.t. ``parameter``; its dtype and device.

        Raises
        ------
        TypeError
            If ``parameter`` is not a tensor.
        ValueError
            If its shape is not (6,) or (12,), or does not match ``dim``.
        """
        dim = cls._dim_of(parameter, dim)
        identity = torch.eye(dim, dtype=parameter.dtype, device=parameter.device)
        return identity + parameter[: dim * dim].reshape(dim, dim)
