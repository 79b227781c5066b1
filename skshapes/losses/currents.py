"""Kernel distance between shapes seen as currents (Vaillant & Glaunès 2005); the cells shared with varifolds."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from ..reductions import gaussian_pairing
from .base import Loss


def oriented_cells(shape, name: str = "shape") -> tuple[torch.Tensor, torch.Tensor]:
    """Centres and oriented measure vectors of the cells of a triangle mesh or a curve.

    - 3D triangle meshes: centres are the triangle barycentres
      ``(a + b + c) / 3``, vectors the
      :attr:`~skshapes.PolyData.triangle_area_vectors` ``(b - a) x (c - a) / 2``
      (unit normal times area, orientation from the winding).
    - Curves (edges, 2D or 3D): centres are the segment midpoints
      ``(p + q) / 2``, vectors the segments ``q - p`` (unit tangent times
      length, orientation from the edge's vertex order).

    A shape with both triangles and edges is taken as a mesh.

    Parameters
    ----------
    shape : PolyData
    name : str
        Name used in error messages.

    Returns
    -------
    centres : torch.Tensor, shape (C, D)
    vectors : torch.Tensor, shape (C, D)
        Both differentiable w.r.t. ``shape.points``, in its dtype and device.

    Raises
    ------
    ValueError
        For point clouds (no cells: currents and varifolds need triangles or
        edges) and for 2D triangle meshes (a triangle in the plane has no
        normal in the plane: compare their boundary curves instead).
    """
    if shape.kind == "mesh":
        if shape.dim != 3:
            raise ValueError(
                f"{name} is a 2D triangle mesh: currents and varifolds of triangles need 3D points "
                "(a planar triangle has no normal in the plane); use the boundary curve (edges) instead"
            )
        corners = shape.points[shape.triangles]  # (T, 3, 3)
        return corners.mean(dim=1), shape.triangle_area_vectors
    if shape.kind == "curve":
        start, end = shape.points[shape.edges[:, 0]], shape.points[shape.edges[:, 1]]
        return (start + end) / 2, end - start
    raise ValueError(
        f"{name} is a point cloud: currents and varifolds need cells, i.e. triangles (3D meshes) or edges (curves)"
    )


def paired_cells(shape_a, shape_b):
    """The cells of two shapes of one kind: ``(centres_a, vectors_a, centres_b, vectors_b)``.

    Raises
    ------
    ValueError
        As :func:`oriented_cells`, and if one shape is a mesh and the other a
        curve: a surface and a curve are currents (varifolds) of different
        dimensions, whose difference measures no shape mismatch.
    """
    centres_a, vectors_a = oriented_cells(shape_a, "shape_a")
    centres_b, vectors_b = oriented_cells(shape_b, "shape_b")
    if shape_a.kind != shape_b.kind:
        raise ValueError(
            f"shape_a is a {shape_a.kind} and shape_b a {shape_b.kind}: both must be triangle meshes or both curves"
        )
    return centres_a, vectors_a, centres_b, vectors_b


def check_widths(value, name: str = "sigma") -> tuple[float, ...]:
    """A kernel width, or a non-empty sequence of widths, as a tuple of floats.

    Raises
    ------
    TypeError
        If ``value`` (or an entry) is not a real number (booleans and strings
        included).
    ValueError
        If a width is not positive and finite, or the sequence is empty.
    """
    values = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value,)
    if not values:
        raise ValueError(f"{name} must be a positive number or a non-empty sequence of them, got {value!r}")
    for entry in values:
        if isinstance(entry, bool) or not isinstance(entry, numbers.Real):
            raise TypeError(f"{name} must be a real number or a sequence of them, got {type(entry).__name__}")
        if not 0 < entry < math.inf:
            raise ValueError(f"{name} must be positive and finite (units of the points), got {value!r}")
    return tuple(float(entry) for entry in values)


class CurrentsLoss(Loss):
    r"""Squared kernel distance between two shapes seen as currents.

    A shape is the current :math:`S = \sum_i u_i\, \delta_{c_i}` of its cells
    (:func:`oriented_cells`): centres :math:`c_i` and oriented measure
    vectors :math:`u_i` (triangle area vectors :math:`(b - a) \times (c - a)/2`
    on 3D meshes, segment vectors :math:`q - p` on curves). With a Gaussian
    kernel :math:`k_\sigma(x, y) = \exp(-|x - y|^2 / (2\sigma^2))`, the inner
    product of two currents :math:`S` (cells :math:`c_i, u_i`) and :math:`T`
    (cells :math:`d_j, v_j`) is

    .. math::

        \langle S, T \rangle = \sum_{i,j} k_\sigma(c_i, d_j)\, \langle u_i, v_j \rangle

    and the loss is the squared RKHS norm of the difference,

    .. math::

        L(S, T) = |S - T|^2 = \langle S, S \rangle - 2 \langle S, T \rangle + \langle T, T \rangle \geq 0.

    It is zero for identical shapes (up to round-off, relative to
    :math:`|S|^2 + |T|^2`), invariant to vertex and cell reordering and to
    rigid motions applied to both shapes, and needs no correspondence.
    Orientation matters: flipping every triangle (or reversing a curve)
    negates :math:`S`, so :math:`L(S, -S) = 4 |S|^2`, and two facing sheets
    of opposite orientation cancel out (a thin fold becomes invisible):
    consistent orientations are required, otherwise use
    :class:`~skshapes.losses.VarifoldLoss` with ``orientation="unoriented"``.
    ``sigma`` sets the scale below which details are blurred out.

    Parameters
    ----------
    sigma : float or sequence of float
        Width of the Gaussian kernel on cell centres, in the units of the
        points (mm for the bundled faces). A sequence gives the sum of the
        losses at each width (multiscale kernel). Must be positive.
    backend : {"auto", "keops", "torch"}
        Each of the three pairings (N x N, N x M, M x M cells) is resolved by
        :func:`skshapes.reductions.choose_backend` for its size: KeOps from
        :data:`skshapes.reductions.KEOPS_MIN_PAIRS` cell pairs when pykeops
        works, dense torch below. See
        :func:`skshapes.reductions.gaussian_pairing`: the KeOps path is
        differentiable once (``create_graph=True`` raises a
        ``RuntimeError``), the torch path to any order.

    Shapes
    ------
    - ``shape_a``: N cells, ``shape_b``: M cells, both 3D triangle meshes or
      both curves (2D or 3D).
    - Output: 0-dim tensor, dtype and device of the points, differentiable
      w.r.t. both shapes' points. Units: squared cell measures, i.e.
      units^4 (areas squared) for meshes and units^2 (lengths squared) for
      curves; in general units^(2k) for k-dimensional cells, i.e.
      units^(2(D-1)) for hypersurfaces in dimension D.

    Raises
    ------
    TypeError
        At call time: if an argument is not a :class:`~skshapes.PolyData`,
        or ``sigma`` is not a real number (or a sequence of them).
    ValueError
        At call time: if ``sigma`` is not positive and finite, ``backend``
        is unknown, a shape is a point cloud (currents need triangles or
        edges) or a 2D triangle mesh, one shape is a mesh and the other a
        curve, or the shapes differ in dimension, device or dtype.
    ImportError
        If ``backend="keops"`` and pykeops does not work here.

    References
    ----------
    M. Vaillant, J. Glaunès, "Surface matching via currents", Information
    Processing in Medical Imaging (IPMI), LNCS 3565, 2005.

    J. Glaunès, "Transport par difféomorphismes de points, de mesures et de
    courants pour la comparaison de formes et l'anatomie numérique", PhD
    thesis, Université Paris 13, 2005.

    J. Glaunès, A. Qiu, M. I. Miller, L. Younes, "Large deformation
    diffeomorphic metric curve mapping", International Journal of Computer
    Vision 80(3), 2008 (currents of curves).

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> from skshapes.losses import CurrentsLoss
    >>> square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> edges = torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0]])
    >>> curve = sks.PolyData(square, edges=edges)
    >>> reversed_curve = sks.PolyData(square, edges=edges.flip(1))  # the current -S
    >>> loss = CurrentsLoss(sigma=0.5)
    >>> round(float(loss(curve, reversed_curve)), 3)  # |S - (-S)|^2 = 4 |S|^2
    13.835
    """

    def __init__(self, sigma, backend="auto"):
        self.sigma = sigma
        self.backend = backend

    def compute(self, shape_a, shape_b) -> torch.Tensor:
        widths = check_widths(self.sigma, "sigma")
        centres_a, vectors_a, centres_b, vectors_b = paired_cells(shape_a, shape_b)
        total = 0
        for width in widths:
            x, y = centres_a / width, centres_b / width
            total = total + squared_distance(x, vectors_a, y, vectors_b, self.backend)
        return total


def squared_distance(x, a, y, b, backend: str) -> torch.Tensor:
    r"""Squared RKHS distance :math:`|\mu - \nu|^2` of two vector-valued measures (unit Gaussian kernel).

    :math:`\mu = \sum_i a_i \delta_{x_i}`, :math:`\nu = \sum_j b_j \delta_{y_j}`:
    :math:`\langle \mu, \mu \rangle - 2 \langle \mu, \nu \rangle + \langle \nu, \nu \rangle`,
    each pairing by :func:`skshapes.reductions.gaussian_pairing` on the backend
    that its own size calls for.
    """
    return (
        gaussian_pairing(x, a, backend=backend)
        - 2 * gaussian_pairing(x, a, y, b, backend=backend)
        + gaussian_pairing(y, b, backend=backend)
    )
