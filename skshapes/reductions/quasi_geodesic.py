r"""Reductions of quasi-geodesic convolutions on oriented point clouds (dMaSIF).

Points :math:`x_i` with unit normals :math:`n_i` are paired through the
Gaussian window of their *quasi-geodesic* distance,

.. math::

    w_{ij} = \exp\big(-d_{ij}^2 / 2\big), \qquad
    d_{ij} = \|x_i - x_j\| \, (2 - \langle n_i, n_j \rangle),

which is close to the Euclidean distance between points of one smooth
surface patch (normals agree) and about three times larger for points on
facing sides of a thin sheet (opposite normals), a cheap proxy for the
geodesic distance along the surface [1]_. The points here are already divided
by the window radius :math:`\sigma`, so that one compiled KeOps formula serves
every radius.

Every sum runs over *all* pairs of points of a cloud: KeOps never builds
the N x N window (memory O(N C) for the forward pass, O(N C H) for the
backward one, whose per-point outputs include the gradient of a C x H
weight matrix); the dense torch path builds it in row blocks, for small
clouds. Batches of clouds follow PyG's convention and are
reduced block-diagonally (:mod:`skshapes.reductions.batched`).

References
----------
.. [1] F. Sverrisson, J. Feydy, B. E. Correia, M. M. Bronstein, "Fast
   end-to-end learning on protein surfaces", CVPR 2021.
"""

from __future__ import annotations

import torch

from .backend import choose_backend
from .batched import DENSE_BLOCK_PAIRS, block_diagonal_ranges, pairs_within, segments


def _check(points, normals, batch, **arrays):
    n = points.shape[0]
    if points.ndim != 2 or points.shape[1] != 3 or normals.shape != points.shape:
        raise ValueError(
            f"points and normals must both be (N, 3), got {tuple(points.shape)} and {tuple(normals.shape)}"
        )
    for name, array in {"normals": normals, **arrays}.items():
        if array.device != points.device or array.dtype != points.dtype:
            raise ValueError(
                f"{name} must share the device and dtype of the points ({points.device}, {points.dtype}), "
                f"got {array.device}, {array.dtype}"
            )
    if batch is not None and batch.shape != (n,):
        raise ValueError(f"batch must be ({n},), got {tuple(batch.shape)}")


def _dense_window(yi, ni, yj, nj):
    """Blocks of the quasi-geodesic window and of the offsets y_j - y_i: (B, M) and (B, M, 3)."""
    offsets = yj[None, :, :] - yi[:, None, :]
    bend = 2 - ni @ nj.T
    return torch.exp(-((offsets**2).sum(-1)) * bend**2 / 2), offsets


def _dense_blocks(function, batch, n, floats_per_pair):
    """Concatenate ``function(rows, cloud)`` over the clouds and row blocks of at most DENSE_BLOCK_PAIRS floats."""
    outputs = []
    for start, end in segments(batch, n):
        block = max(1, DENSE_BLOCK_PAIRS // ((end - start) * floats_per_pair))
        for first in range(start, end, block):
            outputs.append(function(slice(first, min(first + block, end)), slice(start, end)))
    return torch.cat(outputs)


def _once_only(name):
    if torch.is_grad_enabled():
        # create_graph=True: the backward pass below is written by hand with
        # KeOps, and is not itself differentiable.
        raise RuntimeError(
            f"{name} with backend='keops' is differentiable once (create_graph=True is not supported); "
            "use backend='torch' for higher-order derivatives"
        )


def _keops_window(points, normals):
    """Symbolic window, offsets y_j - y_i, bend 2 - <n_i, n_j> and squared distance, with the i and j variables."""
    from pykeops.torch import LazyTensor

    yi, yj = LazyTensor(points[:, None, :].contiguous()), LazyTensor(points[None, :, :].contiguous())
    ni, nj = LazyTensor(normals[:, None, :].contiguous()), LazyTensor(normals[None, :, :].contiguous())
    offsets = yj - yi
    squared = offsets.sqnorm2()
    bend = 2 - (ni | nj)
    return (-(squared * bend**2) / 2).exp(), offsets, bend, squared, ni, nj


def _geometry_terms(omega, window, offsets, bend, squared):
    r"""Backward of the window w.r.t. offsets and bend, given :math:`\omega_{ij} = \partial L / \partial w_{ij}`.

    :math:`w = \exp(-s \beta^2 / 2)` with :math:`s = |\delta|^2`, so
    :math:`\partial L / \partial \delta = -\omega w \beta^2 \delta` and
    :math:`\partial L / \partial n_i = \sum_j \omega w s \beta \, n_j` (as
    :math:`\partial \beta / \partial n_i = -n_j`), and symmetrically for :math:`n_j`.
    ``window=1`` when ``omega`` is already :math:`\omega w`.
    """
    weighted = omega if isinstance(window, int) else omega * window
    return -(weighted * bend**2) * offsets, weighted * squared * bend


class _KeOpsGradient(torch.autograd.Function):
    """quasi_geodesic_gradient on KeOps: one forward reduction, two backward ones (over j, then over i)."""

    @staticmethod
    def forward(ctx, points, normals, potential, ranges):
        from pykeops.torch import LazyTensor

        ctx.ranges = ranges
        ctx.save_for_backward(points, normals, potential)
        window, offsets, _, _, _, _ = _keops_window(points, normals)
        pi, pj = LazyTensor(potential[:, None, :].contiguous()), LazyTensor(potential[None, :, :].contiguous())
        return (window * (pj - pi) * offsets).sum(dim=1, ranges=ranges)

    @staticmethod
    def backward(ctx, grad_output):
        from pykeops.torch import LazyTensor

        _once_only("quasi_geodesic_gradient")
        points, normals, potential = ctx.saved_tensors
        window, offsets, bend, squared, ni, nj = _keops_window(points, normals)
        pi, pj = LazyTensor(potential[:, None, :].contiguous()), LazyTensor(potential[None, :, :].contiguous())
        gi = LazyTensor(grad_output[:, None, :].contiguous())
        differences = pj - pi
        along = gi | offsets  # <Gamma_i, y_j - y_i>
        d_offsets, d_bend = _geometry_terms(differences * along, window, offsets, bend, squared)
        d_offsets = d_offsets + (window * differences) * gi
        # dL/dp_i, dL/dy_i, dL/dn_i (sum over j)  and  dL/dp_j, dL/dy_j, dL/dn_j (sum over i)
        side_i = (-(window * along)).concat(-d_offsets).concat(d_bend * nj)
        side_j = (window * along).concat(d_offsets).concat(d_bend * ni)
        total = side_i.auto_factorize().sum(dim=1, ranges=ctx.ranges)
        total = total + side_j.auto_factorize().sum(dim=0, ranges=ctx.ranges)
        return total[:, 1:4], total[:, 4:7], total[:, :1], None


class _KeOpsFilter(torch.autograd.Function):
    """quasi_geodesic_filter on KeOps: one forward reduction, two backward ones (over j, then over i)."""

    @staticmethod
    def _filters(points, normals, local_weights, hidden_bias, output_weights, output_bias):
        from pykeops.torch import LazyTensor

        window, offsets, bend, squared, ni, nj = _keops_window(points, normals)
        ai = LazyTensor(local_weights.reshape(points.shape[0], 1, -1).contiguous())
        # Parameters arrive as nn.Parameter, which LazyTensor does not take: detach to plain tensors.
        # MatVecMult reads its (rows x columns) matrix flattened row-major, as torch's reshape does.
        w = LazyTensor(output_weights.detach().reshape(-1).contiguous())
        hidden = ai.matvecmult(offsets) + LazyTensor(hidden_bias.detach().contiguous())
        filters = w.matvecmult(hidden.relu()) + LazyTensor(output_bias.detach().contiguous())
        return window, offsets, bend, squared, ni, nj, ai, w, hidden, filters

    @staticmethod
    def forward(ctx, points, normals, features, local_weights, hidden_bias, output_weights, output_bias, ranges):
        from pykeops.torch import LazyTensor

        ctx.ranges = ranges
        ctx.save_for_backward(points, normals, features, local_weights, hidden_bias, output_weights, output_bias)
        terms = _KeOpsFilter._filters(points, normals, local_weights, hidden_bias, output_weights, output_bias)
        window, filters = terms[0], terms[-1]
        return (window * filters * LazyTensor(features[None, :, :].contiguous())).sum(dim=1, ranges=ranges)

    @staticmethod
    def backward(ctx, grad_output):
        from pykeops.torch import LazyTensor

        _once_only("quasi_geodesic_filter")
        points, normals, features, local_weights, hidden_bias, output_weights, output_bias = ctx.saved_tensors
        n, channels, hidden_channels = points.shape[0], features.shape[1], hidden_bias.shape[0]
        window, offsets, bend, squared, ni, nj, ai, w, hidden, filters = _KeOpsFilter._filters(
            points, normals, local_weights, hidden_bias, output_weights, output_bias
        )
        gi, fj = LazyTensor(grad_output[:, None, :].contiguous()), LazyTensor(features[None, :, :].contiguous())
        c = LazyTensor(output_bias.detach().contiguous())
        d_filters = window * gi * fj  # psi_ij = dL/d(filter_ij), (C,)
        back = d_filters.vecmatmult(w)  # W^T psi_ij, (H,)
        d_hidden = hidden.step() * back  # zeta_ij = dL/d(A_i (y_j - y_i) + b), (H,)
        # omega_ij w_ij = <psi_ij, W h_ij + c> = <W^T psi_ij, h_ij> + <psi_ij, c>: no need for the filter itself
        d_offsets, d_bend = _geometry_terms((back | hidden.relu()) + (d_filters | c), 1, offsets, bend, squared)
        # Sum over j. The term A_i^T zeta_ij of dL/dy_i is A_i^T (sum_j zeta_ij), added below in torch.
        # KeOps evaluates a formula tree as written: auto_factorize computes the shared psi, W^T psi once.
        side_i = (
            d_filters.concat(d_filters.tensorprod(hidden.relu()))
            .concat(d_hidden)
            .concat(d_hidden.tensorprod(offsets))
            .concat(-d_offsets)
            .concat(d_bend * nj)
            .auto_factorize()
            .sum(dim=1, ranges=ctx.ranges)
        )
        side_j = (
            (window * filters * gi)
            .concat(d_offsets + d_hidden.vecmatmult(ai))
            .concat(d_bend * ni)
            .auto_factorize()
            .sum(dim=0, ranges=ctx.ranges)
        )
        c, ch, h = channels, channels * hidden_channels, hidden_channels
        d_output_bias, d_output_weights, d_hidden_bias, d_local_weights, d_points, d_normals = side_i.split(
            [c, ch, h, 3 * h, 3, 3], dim=1
        )
        d_points = d_points - torch.einsum("nhd,nh->nd", local_weights, d_hidden_bias)
        return (
            d_points + side_j[:, c : c + 3],
            d_normals + side_j[:, c + 3 :],
            side_j[:, :c],
            d_local_weights.reshape(n, h, 3),
            d_hidden_bias.sum(0),
            d_output_weights.sum(0).reshape(c, h),
            d_output_bias.sum(0),
            None,
        )


def quasi_geodesic_gradient(points, normals, potential, batch=None, backend: str = "auto") -> torch.Tensor:
    r"""Window-weighted finite-difference gradient :math:`g_i = \sum_j w_{ij} (p_j - p_i)(x_j - x_i)`.

    For a potential :math:`p` that is smooth at the scale of the window
    (unit width here), :math:`g_i` is proportional to the gradient of
    :math:`p` at :math:`x_i` along the surface (a weighted least-squares
    estimate up to the local covariance of the points). It is a vector field
    that rotates with the points, which orients tangent frames.

    Parameters
    ----------
    points : torch.Tensor, shape (N, 3)
        Points of all the clouds, concatenated, already divided by the window
        radius :math:`\sigma`. float32 or float64.
    normals : torch.Tensor, shape (N, 3)
        Unit normals, same dtype and device.
    potential : torch.Tensor, shape (N,) or (N, 1)
        Scalar potential :math:`p`.
    batch : torch.Tensor of int64, shape (N,), sorted, optional
        Cloud of every point (PyG convention); ``None`` for a single cloud.
    backend : {"auto", "keops", "torch"}
        Resolved by :func:`skshapes.reductions.choose_backend` for
        ``sum_b N_b^2`` pairs. Both are differentiable w.r.t. every input:
        torch to any order, KeOps once (a hand-written backward pass of two
        reductions; ``create_graph=True`` raises a ``RuntimeError``).

    Returns
    -------
    torch.Tensor, shape (N, 3), dtype and device of ``points``.

    Raises
    ------
    ValueError
        On mismatched shapes, dtypes or devices.
    """
    potential = potential.reshape(-1, 1)
    _check(points, normals, batch, potential=potential)
    n = points.shape[0]
    if potential.shape[0] != n:
        raise ValueError(f"potential must be ({n},) or ({n}, 1), got {tuple(potential.shape)}")
    if choose_backend(backend, pairs_within(batch, n), 1, "kernel-first-order", device=points.device) == "keops":
        return _KeOpsGradient.apply(points, normals, potential, block_diagonal_ranges(batch, n, points.device))

    def block(rows, cloud):
        window, offsets = _dense_window(points[rows], normals[rows], points[cloud], normals[cloud])
        differences = potential[cloud, 0][None, :] - potential[rows]
        return torch.einsum("bm,bmd->bd", window * differences, offsets)

    return _dense_blocks(block, batch, n, floats_per_pair=8)


def quasi_geodesic_filter(
    points,
    normals,
    features,
    local_weights,
    hidden_bias,
    output_weights,
    output_bias,
    batch=None,
    backend: str = "auto",
) -> torch.Tensor:
    r"""Windowed sum of features modulated by a one-hidden-layer filter of the local offsets.

    .. math::

        a_i = \sum_j w_{ij} \, \big(W \, \mathrm{ReLU}(A_i (x_j - x_i) + b) + c\big) \odot f_j,

    where :math:`A_i` is an (H, 3) matrix per point: the first layer of the
    filter composed with the local frame of :math:`x_i`, so that
    :math:`A_i (x_j - x_i) = W_1 F_i (x_j - x_i)` for a frame :math:`F_i`
    (rows :math:`u_i, v_i, n_i`) and first-layer weights :math:`W_1`.

    Parameters
    ----------
    points : torch.Tensor, shape (N, 3)
        Points of all the clouds, concatenated, already divided by the window
        radius. float32 or float64.
    normals : torch.Tensor, shape (N, 3)
        Unit normals.
    features : torch.Tensor, shape (N, C)
        Features :math:`f_j` of the points.
    local_weights : torch.Tensor, shape (N, H, 3)
        The matrices :math:`A_i`.
    hidden_bias : torch.Tensor, shape (H,)
        Bias :math:`b` of the hidden layer.
    output_weights : torch.Tensor, shape (C, H)
        Weights :math:`W` of the filter's output layer.
    output_bias : torch.Tensor, shape (C,)
        Bias :math:`c` of the filter's output layer.
    batch : torch.Tensor of int64, shape (N,), sorted, optional
        Cloud of every point (PyG convention); ``None`` for a single cloud.
    backend : {"auto", "keops", "torch"}
        Resolved by :func:`skshapes.reductions.choose_backend` for
        ``sum_b N_b^2`` pairs. ``"keops"``: one symbolic reduction, memory
        O(N (C + 3H)); differentiable once w.r.t. every input, by a
        hand-written backward pass of two auto-factorized reductions (over
        j, with C (H + 1) + 4 H + 6 outputs per point, then over i) instead
        of KeOps's autodiff (one reduction, and one compiled formula, per
        input).
        ``"torch"``: row blocks of the (N, N, H + C) tensors, kept for the
        backward pass (memory O(N^2 (H + C))); differentiable to any order.

    Returns
    -------
    torch.Tensor, shape (N, C), dtype and device of ``points``.

    Raises
    ------
    ValueError
        On mismatched shapes, dtypes or devices.
    """
    _check(
        points,
        normals,
        batch,
        features=features,
        local_weights=local_weights,
        hidden_bias=hidden_bias,
        output_weights=output_weights,
        output_bias=output_bias,
    )
    n = points.shape[0]
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"features must be ({n}, C), got {tuple(features.shape)}")
    channels = features.shape[1]
    hidden = hidden_bias.shape[0] if hidden_bias.ndim == 1 else -1
    if local_weights.shape != (n, hidden, 3):
        raise ValueError(
            f"local_weights must be ({n}, H, 3) with H = len(hidden_bias), got {tuple(local_weights.shape)}"
        )
    if output_weights.shape != (channels, hidden) or output_bias.shape != (channels,):
        raise ValueError(
            f"output_weights and output_bias must be ({channels}, {hidden}) and ({channels},), "
            f"got {tuple(output_weights.shape)} and {tuple(output_bias.shape)}"
        )
    if choose_backend(backend, pairs_within(batch, n), 1, "kernel-first-order", device=points.device) == "keops":
        return _KeOpsFilter.apply(
            points,
            normals,
            features,
            local_weights,
            hidden_bias,
            output_weights,
            output_bias,
            block_diagonal_ranges(batch, n, points.device),
        )

    def block(rows, cloud):
        window, offsets = _dense_window(points[rows], normals[rows], points[cloud], normals[cloud])
        hidden_layer = torch.relu(torch.einsum("bhd,bmd->bmh", local_weights[rows], offsets) + hidden_bias)
        filters = hidden_layer @ output_weights.T + output_bias
        return torch.einsum("bm,bmc,mc->bc", window, filters, features[cloud])

    return _dense_blocks(block, batch, n, floats_per_pair=8 + hidden + channels)
