"""Similarities (rotation + isotropic scaling + translation) in 2D and 3D."""

from __future__ import annotations

import torch

from .linear import LinearDeformation, rotation_from_vector, rotation_size


class Similarity(LinearDeformation):
    r"""Rotation and isotropic scaling about the shape's centroid, then a translation.

    A point :math:`x` of the shape moves to

    .. math:: x' = s\,R\,(x - c) + c + t, \qquad s = e^{\lambda} > 0,

    with :math:`c` the centroid (mean of the points) of the shape being
    deformed, :math:`R = \exp([\omega]_\times)` a rotation, :math:`s` the
    scale factor and :math:`t` a translation. The scale is parametrised by
    its logarithm :math:`\lambda`, so every parameter vector is a similarity
    with a positive scale (no reflection, no collapse to a point), and the
    zero parameter is the identity.

    The parameter is a 1-D tensor:

    - 3D, shape (7,): ``parameter[:3]`` is the rotation vector :math:`\omega`
      (axis times angle in radians, the ``rotvec`` convention of
      :meth:`scipy.spatial.transform.Rotation.from_rotvec`), ``parameter[3]``
      the log-scale :math:`\lambda` (dimensionless) and ``parameter[4:]`` the
      translation, in the units of the points;
    - 2D, shape (4,): ``parameter[0]`` is the counter-clockwise angle in
      radians, ``parameter[1]`` the log-scale and ``parameter[2:]`` the
      translation.

    The regularization is 0. Read the fitted transformation with
    :meth:`rotation_matrix`, :meth:`scale`, :meth:`translation` and
    :meth:`matrix` (:math:`sR`).

    Examples
    --------
    >>> import math, torch
    >>> from skshapes.deformations import Similarity
    >>> parameter = torch.tensor([0.0, 0.0, math.pi / 2, math.log(1.1), 1.0, 0.0, 0.0])
    >>> float(Similarity.scale(parameter))  # doctest: +ELLIPSIS
    1.1...
    """

    parameter_sizes = {2: 4, 3: 7}

    def __init__(self):
        pass

    @classmethod
    def rotation_matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The rotation :math:`R`, shape (D, D): orthogonal, determinant +1.

        Parameters
        ----------
        parameter : torch.Tensor, shape (7,) or (4,)
            A similarity parameter (3D or 2D).
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
            If its shape is not (4,) or (7,), or does not match ``dim``.
        """
        dim = cls._dim_of(parameter, dim)
        return rotation_from_vector(parameter[: rotation_size(dim)], dim)

    @classmethod
    def scale(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The scale factor :math:`s = e^{\\lambda} > 0`, a 0-dim tensor (dimensionless).

        Parameters and errors as in :meth:`rotation_matrix`.
        """
        dim = cls._dim_of(parameter, dim)
        return parameter[rotation_size(dim)].exp()

    @classmethod
    def matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The linear part :math:`sR`, shape (D, D).

        Parameters and errors as in :meth:`rotation_matrix`.
        """
        return cls.scale(parameter, dim) * cls.rotation_matrix(parameter, dim)
