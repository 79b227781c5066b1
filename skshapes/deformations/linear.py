r"""Linear (affine-type) deformations about the centroid: the shared base of rigid, similarity and affine models."""

from __future__ import annotations

import torch

from ..shapes import PolyData
from .base import DeformationModel, MorphingResult, check_points_like


class LinearDeformation(DeformationModel):
    r"""A deformation :math:`x' = A\,(x - c) + c + t` about the centroid of the shape.

    :math:`c` is the centroid (mean of the points) of the shape being
    deformed, :math:`A` a (D, D) matrix and :math:`t` a translation, both
    read from a 1-D parameter vector whose last D entries are :math:`t`.
    Working about the centroid rather than the origin decouples the linear
    part from the translation, which conditions the optimisation far better
    for shapes far from the origin.

    Subclasses set :attr:`parameter_sizes` (the parameter length for D = 2
    and D = 3; the lengths must differ so that a parameter vector tells its
    dimension) and implement :meth:`matrix`. This class provides
    :meth:`parameter_shape`, :meth:`translation`, :meth:`transform_points`,
    :meth:`morph` (regularization 0) and :meth:`jacobian_determinant`.

    Shapes
    ------
    - parameter: ``(parameter_sizes[D],)``.
    - :meth:`matrix`: (D, D); :meth:`translation`: (D,).
    - :meth:`transform_points`: (P, D) -> (P, D).
    """

    #: Length of the parameter vector for each ambient dimension (set by subclasses).
    parameter_sizes: dict = {}

    def __init__(self):
        pass

    # ----------------------------------------------------------- parameters
    def parameter_shape(self, shape: PolyData) -> tuple:
        """``(parameter_sizes[D],)`` for a shape of dimension D.

        Raises
        ------
        ValueError
            If ``shape.dim`` is not a dimension of :attr:`parameter_sizes`.
        """
        if shape.dim not in self.parameter_sizes:
            raise ValueError(f"{type(self).__name__} deforms 2D or 3D shapes, got a {shape.dim}D shape")
        return (self.parameter_sizes[shape.dim],)

    @classmethod
    def _dim_of(cls, parameter: torch.Tensor, dim: int | None = None) -> int:
        """The ambient dimension D that a parameter vector encodes (from its length).

        Parameters
        ----------
        parameter : torch.Tensor, shape (L,)
            A parameter vector of this model.
        dim : {2, 3}, optional
            The expected dimension; checked against the length when given.

        Returns
        -------
        int
            2 or 3.

        Raises
        ------
        TypeError
            If ``parameter`` is not a tensor.
        ValueError
            If its shape is not one of the lengths of :attr:`parameter_sizes`,
            or does not match ``dim``.
        """
        if not isinstance(parameter, torch.Tensor):
            raise TypeError(f"parameter must be a torch.Tensor, got {type(parameter).__name__}")
        dims = {size: d for d, size in cls.parameter_sizes.items()}
        inferred = dims.get(parameter.shape[0]) if parameter.ndim == 1 else None
        if inferred is None or (dim is not None and dim != inferred):
            if dim is None or dim not in cls.parameter_sizes:
                expected = " or ".join(f"({size},) in {d}D" for d, size in sorted(cls.parameter_sizes.items()))
            else:
                expected = f"({cls.parameter_sizes[dim]},) in {dim}D"
            raise ValueError(f"parameter must have shape {expected}, got {tuple(parameter.shape)}")
        return inferred

    @classmethod
    def matrix(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The linear part :math:`A`, shape (D, D), of the deformation encoded by ``parameter``."""
        raise NotImplementedError

    @classmethod
    def translation(cls, parameter: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """The translation :math:`t` encoded by ``parameter`` (its last D entries).

        Parameters
        ----------
        parameter : torch.Tensor, shape (L,)
            A parameter vector of this model.
        dim : {2, 3}, optional
            The ambient dimension; inferred from the length of ``parameter``
            when omitted, checked against it otherwise.

        Returns
        -------
        torch.Tensor, shape (D,)
            In the units of the points; a view of ``parameter``.

        Raises
        ------
        TypeError
            If ``parameter`` is not a tensor.
        ValueError
            If its length does not encode a 2D or 3D parameter, or does not
            match ``dim``.
        """
        dim = cls._dim_of(parameter, dim)
        return parameter[-dim:]

    # ------------------------------------------------------------- motion
    def transform_points(self, points: torch.Tensor, shape: PolyData, parameter: torch.Tensor) -> torch.Tensor:
        """Apply the deformation fitted on ``shape`` to arbitrary points.

        Parameters
        ----------
        points : torch.Tensor, shape (P, D)
            Points to move (grids, landmarks...), in the frame of ``shape``.
        shape : PolyData
            The shape the parameter was fitted on; its centroid is the centre
            of the linear part.
        parameter : torch.Tensor, shape :meth:`parameter_shape`
            The parameter vector.

        Returns
        -------
        torch.Tensor, shape (P, D)
            ``A (points - c) + c + t``, differentiable w.r.t. ``points``,
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
        matrix = self.matrix(parameter, shape.dim)
        return (points - centroid) @ matrix.T + centroid + self.translation(parameter, shape.dim)

    def initial_parameter(self, shape: PolyData, target: PolyData | None = None) -> torch.Tensor:
        """The identity map, or, given ``target``, the translation that matches the centroids.

        The centroids are weighted by ``point_weights`` (vertex areas, segment
        lengths or 1/N), the measure that :class:`~skshapes.SinkhornLoss`
        transports: starting there, the optimiser only has to find the
        linear part, and does not trade rotation for translation when the
        shapes start far apart.

        Parameters
        ----------
        shape : PolyData
            The shape to deform (N, D).
        target : PolyData, optional
            The shape to reach (M, D), same dimension, dtype and device.

        Returns
        -------
        torch.Tensor, shape :meth:`parameter_shape`
        """
        parameter = super().initial_parameter(shape)
        if target is not None:
            parameter[-shape.dim:] = _weighted_centroid(target) - _weighted_centroid(shape)
        return parameter

    def transfer_parameter(self, parameter: torch.Tensor, shape: PolyData, new_shape: PolyData) -> torch.Tensor:
        r"""The same map of space expressed about the centroid of ``new_shape``.

        :math:`A (x - c) + c + t = A (x - c') + c' + t'` with
        :math:`t' = t + (A - I)(c' - c)`: only the translation changes.

        Parameters
        ----------
        parameter : torch.Tensor, shape :meth:`parameter_shape`
        shape, new_shape : PolyData
            The shape ``parameter`` was fitted on, and the one to deform.

        Returns
        -------
        torch.Tensor, shape :meth:`parameter_shape`
            A new, detached tensor.
        """
        self.check_parameter(shape, parameter)
        parameter = parameter.detach()
        shift = new_shape.points.detach().mean(dim=0) - shape.points.detach().mean(dim=0)
        matrix = self.matrix(parameter, shape.dim)
        new = parameter.clone()
        new[-shape.dim:] += shift @ matrix.T - shift
        return new

    def morph(self, shape: PolyData, parameter: torch.Tensor, return_path: bool = False) -> MorphingResult:
        """Move ``shape`` by the deformation encoded by ``parameter``.

        Parameters
        ----------
        shape : PolyData
            The shape to move (N points in D = 2 or 3 dimensions).
        parameter : torch.Tensor, shape :meth:`parameter_shape`
            See the class docstring of the model.
        return_path : bool
            If True, ``path`` is ``[shape, moved shape]`` (the deformation is
            a single step).

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

    def jacobian_determinant(self, points: torch.Tensor, shape: PolyData, parameter: torch.Tensor) -> torch.Tensor:
        """Determinant of the Jacobian of the map at ``points``: ``det(A)`` everywhere.

        Parameters
        ----------
        points : torch.Tensor, shape (P, D)
        shape : PolyData
        parameter : torch.Tensor, shape :meth:`parameter_shape`

        Returns
        -------
        torch.Tensor, shape (P,)
            ``det(A)`` repeated, differentiable w.r.t. ``parameter``.

        Raises
        ------
        TypeError, ValueError
            As :meth:`transform_points`.
        """
        self.check_parameter(shape, parameter)
        check_points_like(points, shape)
        return torch.linalg.det(self.matrix(parameter, shape.dim)).expand(points.shape[0])


def _weighted_centroid(shape: PolyData) -> torch.Tensor:
    weights = shape.point_weights.detach()
    return (weights[:, None] * shape.points.detach()).sum(dim=0) / weights.sum()


def rotation_from_vector(rotvec: torch.Tensor, dim: int) -> torch.Tensor:
    r"""The rotation :math:`\exp([\omega]_\times)` of a rotation vector (3D) or angle (2D).

    Parameters
    ----------
    rotvec : torch.Tensor, shape (3,) in 3D or (1,) in 2D
        Axis times angle in radians (the ``rotvec`` convention of
        :meth:`scipy.spatial.transform.Rotation.from_rotvec`), or the
        counter-clockwise angle in 2D.
    dim : {2, 3}

    Returns
    -------
    torch.Tensor, shape (D, D)
        Orthogonal with determinant +1, built with
        :func:`torch.linalg.matrix_exp` of the skew matrix, so differentiable
        everywhere including at the identity; dtype and device of ``rotvec``.
    """
    zero = torch.zeros_like(rotvec[0])
    if dim == 2:
        theta = rotvec[0]
        rows = [[zero, -theta], [theta, zero]]
    else:
        a, b, c = rotvec[0], rotvec[1], rotvec[2]
        rows = [[zero, -c, b], [c, zero, -a], [-b, a, zero]]
    skew = torch.stack([torch.stack(row) for row in rows])
    return torch.linalg.matrix_exp(skew)


def rotation_size(dim: int) -> int:
    """Number of rotation parameters in dimension ``dim``: 1 in 2D, 3 in 3D."""
    return dim * (dim - 1) // 2
