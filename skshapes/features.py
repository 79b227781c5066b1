r"""Point-wise geometric features of oriented point clouds: multi-scale curvatures.

:func:`curvatures` estimates, at every point of a cloud with unit normals,
the mean and Gaussian curvatures at one or several scales. They are
invariant to rotations and translations (of the points and normals
together), so they make good input features for the layers of
:mod:`skshapes.nn`.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from .reductions.batched import batched_knn, check_batch, check_points, segments

#: Clouds of at most this many points use all their points as neighbours (dense torch), larger ones a kNN graph.
DENSE_MAX_POINTS = 2048
#: Neighbours per point on the kNN path, when ``k`` is not given.
DEFAULT_K = 64
#: Rows per block on the dense path.
_DENSE_BLOCK_ROWS = 256
#: Tikhonov regularisation of the 2x2 regression, relative to the weighted second moment of the offsets.
_RIDGE = 1e-6


def tangent_frames(normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit tangent vectors ``u, v`` with ``(u, v, n)`` a direct orthonormal frame, for unit normals ``n``.

    The branch-free construction of Duff et al., "Building an orthonormal
    basis, revisited" (JCGT 2017): continuous except where ``n_z`` changes
    sign, which does not matter here (the curvatures do not depend on the
    choice of the tangent basis).

    Parameters
    ----------
    normals : torch.Tensor, shape (N, 3)
        Unit vectors.

    Returns
    -------
    u, v : torch.Tensor, shape (N, 3)
    """
    nx, ny, nz = normals.unbind(-1)
    sign = torch.where(nz >= 0, 1.0, -1.0).to(normals.dtype)
    a = -1.0 / (sign + nz)
    b = nx * ny * a
    u = torch.stack([1.0 + sign * nx * nx * a, sign * b, -sign * nx], dim=-1)
    v = torch.stack([b, sign + ny * ny * a, -ny], dim=-1)
    return u, v


def _check_scales(scales) -> list[float]:
    if isinstance(scales, (Real, torch.Tensor)) and not isinstance(scales, bool) and torch.as_tensor(scales).ndim == 0:
        scales = [scales]
    values = [float(s) for s in scales]
    if not values:
        raise ValueError("scales must hold at least one scale")
    if not all(0.0 < s < float("inf") for s in values):
        raise ValueError(f"scales must be positive finite numbers, got {values}")
    return values


def _shape_operator_curvatures(x, n, u, v, xj, nj, valid, scales):
    """Curvatures of rows ``x`` (B, 3) from their neighbours ``xj, nj`` (B, K, 3); output (B, 2 S)."""
    dx, dn = xj - x[:, None, :], nj - n[:, None, :]
    a = torch.stack([(dx * u[:, None, :]).sum(-1), (dx * v[:, None, :]).sum(-1)], dim=-1)  # (B, K, 2)
    b = torch.stack([(dn * u[:, None, :]).sum(-1), (dn * v[:, None, :]).sum(-1)], dim=-1)
    squared = (dx**2).sum(-1)  # (B, K)
    eye = torch.eye(2, dtype=x.dtype, device=x.device)
    out = []
    for scale in scales:
        w = torch.exp(-squared / (2 * scale**2))
        if valid is not None:
            w = w * valid
        moment = torch.einsum("bk,bkp,bkq->bpq", w, a, a)  # sum_j w a a^T
        cross = torch.einsum("bk,bkp,bkq->bpq", w, b, a)  # sum_j w b a^T
        ridge = _RIDGE * (moment.diagonal(dim1=-2, dim2=-1).sum(-1) + scale**2 * w.sum(-1))
        # S = cross @ moment^{-1}, i.e. S^T = moment^{-1} cross^T (moment is symmetric)
        shape = torch.linalg.solve(moment + ridge[:, None, None] * eye, cross.transpose(1, 2)).transpose(1, 2)
        shape = (shape + shape.transpose(1, 2)) / 2
        mean = (shape[:, 0, 0] + shape[:, 1, 1]) / 2
        gauss = shape[:, 0, 0] * shape[:, 1, 1] - shape[:, 0, 1] * shape[:, 1, 0]
        out += [mean, gauss]
    return torch.stack(out, dim=1)


def curvatures(points, normals, scales, batch=None, k: int | None = None, backend: str = "auto") -> torch.Tensor:
    r"""Mean and Gaussian curvatures of an oriented point cloud, at several scales.

    **Method.** A least-squares estimate of the shape operator (the
    derivative of the Gauss map :math:`x \mapsto n(x)`) at every point, from
    the variation of the normals around it. At point :math:`x_i`, with unit
    normal :math:`n_i` and a tangent basis :math:`(u_i, v_i)`, every
    neighbour :math:`x_j` gives the tangent offsets
    :math:`a_{ij} = [\langle u_i, x_j - x_i \rangle, \langle v_i, x_j - x_i \rangle]`
    and normal variations
    :math:`b_{ij} = [\langle u_i, n_j - n_i \rangle, \langle v_i, n_j - n_i \rangle]`.
    The 2x2 shape operator :math:`S_i` solves the weighted regression
    :math:`b_{ij} \approx S_i\, a_{ij}` with Gaussian weights
    :math:`w_{ij} = \exp(-\|x_j - x_i\|^2 / 2\sigma^2)`:

    .. math::

        S_i = \Big(\sum_j w_{ij}\, b_{ij} a_{ij}^\top\Big)
              \Big(\sum_j w_{ij}\, a_{ij} a_{ij}^\top\Big)^{-1},

    symmetrised (:math:`(S_i + S_i^\top) / 2`), and then
    :math:`H_i = \operatorname{tr}(S_i) / 2` and :math:`K_i = \det S_i`.
    This is the finite-difference version of :math:`dn = S\, dx`, in the
    spirit of the normal-cycle and "derivative of the normals" estimators
    (e.g. Cao et al., "Curvature estimation for point clouds", 2019; the
    curvature features of dMaSIF, Sverrisson et al., 2021). The scale
    :math:`\sigma` smooths the estimate: details smaller than
    :math:`\sigma` are averaged out (and noise with them). On a sphere, a
    cylinder or a plane with exact normals the estimate is exact at every
    scale (:math:`dn` is then a linear function of :math:`dx`).

    **Sign convention.** With *outward* normals, a convex surface has
    positive mean curvature: a sphere of radius :math:`R` has
    :math:`H = 1/R` and :math:`K = 1/R^2`, a cylinder :math:`H = 1/(2R)` and
    :math:`K = 0`. Flipping the normals flips the sign of :math:`H` and keeps
    :math:`K`.

    **Neighbourhoods.** A cloud of at most :data:`DENSE_MAX_POINTS` points
    (and ``k=None``) uses all its points, in dense torch blocks (memory
    O(256 N)); a larger cloud, or any cloud when ``k`` is given, uses its
    ``k`` nearest points (:func:`skshapes.reductions.batched_knn`, KeOps or
    torch by ``backend``; default ``k`` :data:`DEFAULT_K`), which truncates
    the Gaussian window: choose ``k`` so that the ``k`` nearest points cover
    about :math:`2\sigma` for the largest scale.

    Parameters
    ----------
    points : torch.Tensor, shape (N, 3)
        Points (float32 or float64). Differentiable.
    normals : torch.Tensor, shape (N, 3)
        Normals, oriented consistently (renormalised here).
    scales : float or sequence of float
        The widths :math:`\sigma` of the Gaussian windows, in the units of
        ``points``.
    batch : torch.Tensor of int64, shape (N,), optional
        Sorted cloud index of every point (PyTorch Geometric convention):
        neighbourhoods never mix two clouds. ``None``: one cloud.
    k : int, optional
        Use the ``k`` nearest neighbours (the point included) instead of the
        whole cloud.
    backend : {"auto", "keops", "torch"}
        Backend of the neighbour search on the kNN path, see
        :func:`skshapes.reductions.choose_backend`.

    Returns
    -------
    torch.Tensor, shape (N, 2 * len(scales))
        Columns ``[H(s_0), K(s_0), H(s_1), K(s_1), ...]``; dtype and device
        of ``points``.

    Raises
    ------
    TypeError
        If ``points`` or ``normals`` is not a floating-point tensor.
    ValueError
        On shapes other than (N, 3), mismatched dtypes or devices, a
        non-positive scale or ``k``, or an invalid ``batch``.

    Examples
    --------
    >>> points = torch.nn.functional.normalize(torch.randn(500, 3, dtype=torch.float64), dim=1)
    >>> curvatures(2 * points, points, scales=[0.4, 0.8]).mean(dim=0)  # sphere of radius 2
    tensor([0.5000, 0.2500, 0.5000, 0.2500], dtype=torch.float64)
    """
    check_points(points, "points")
    check_points(normals, "normals")
    if points.shape[1] != 3 or normals.shape != points.shape:
        raise ValueError(
            f"points and normals must both be (N, 3), got {tuple(points.shape)} and {tuple(normals.shape)}"
        )
    if normals.dtype != points.dtype or normals.device != points.device:
        raise ValueError("points and normals must have the same dtype and device")
    if k is not None and (isinstance(k, bool) or not isinstance(k, Integral) or k < 1):
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    scales = _check_scales(scales)
    n_points = points.shape[0]
    batch = check_batch(batch, n_points, points.device)
    normals = torch.nn.functional.normalize(normals, dim=1)
    u, v = tangent_frames(normals)
    if n_points == 0:
        return points.new_zeros(0, 2 * len(scales))
    pieces = segments(batch, n_points)
    largest = max(end - start for start, end in pieces)
    if k is None and largest <= DENSE_MAX_POINTS:
        out = []
        for start, end in pieces:
            cloud, cloud_normals = points[start:end], normals[start:end]
            for first in range(start, end, _DENSE_BLOCK_ROWS):
                last = min(first + _DENSE_BLOCK_ROWS, end)
                rows = last - first
                out.append(_shape_operator_curvatures(
                    points[first:last], normals[first:last], u[first:last], v[first:last],
                    cloud[None].expand(rows, -1, -1), cloud_normals[None].expand(rows, -1, -1), None, scales,
                ))
        return torch.cat(out) if out else points.new_zeros(0, 2 * len(scales))
    indices, valid = batched_knn(points, DEFAULT_K if k is None else int(k), batch, backend)
    return _shape_operator_curvatures(points, normals, u, v, points[indices], normals[indices],
                                      valid.to(points.dtype), scales)
