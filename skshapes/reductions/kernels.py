"""Radial kernels and kernel products ``K(x, y) @ b``, on KeOps or dense torch."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch

from .backend import check_pair, choose_backend

KERNELS = ("gaussian", "cauchy")


def scales(sigma) -> tuple[float, ...]:
    """The kernel widths as a tuple: one for a single kernel, several for a sum of kernels.

    Raises
    ------
    ValueError
        If a width is not a positive finite number, or the sequence is empty.
    """
    values = tuple(sigma) if isinstance(sigma, Sequence) and not isinstance(sigma, str) else (sigma,)
    if not values:
        raise ValueError("sigma must be a positive number or a non-empty sequence of them")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < float("inf"):
            raise ValueError(f"sigma must be positive finite numbers, got {sigma!r}")
    return tuple(float(v) for v in values)


def kernel_product(x, y, b, sigma, kernel: str = "gaussian", backend: str = "auto") -> torch.Tensor:
    """Kernel product ``a_i = sum_j k(x_i, y_j) b_j``, differentiable in x, y and b (any order).

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
        Target points.
    y : torch.Tensor, shape (M, D)
        Source points.
    b : torch.Tensor, shape (M, E) or (M,)
        Signal carried by the source points (momenta, weights...).
    sigma : float or sequence of float
        Kernel width(s), in the units of the points. A sequence gives the sum
        of the kernels at each width (multiscale kernel).
    kernel : {"gaussian", "cauchy"}
        ``gaussian``: ``exp(-|x - y|^2 / (2 sigma^2))``;
        ``cauchy``: ``1 / (1 + |x - y|^2 / sigma^2)``.
    backend : {"auto", "keops", "torch"}
        See :func:`skshapes.reductions.choose_backend`. Both give the same
        values and gradients; KeOps never builds the N x M matrix.

    Returns
    -------
    torch.Tensor, shape (N, E) (or (N,) when ``b`` is (M,)), dtype and device of ``x``.

    Raises
    ------
    ValueError
        On mismatched shapes, devices or dtypes, an unknown kernel or a bad sigma.
    """
    check_pair(x, y)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    vector = b.ndim == 1
    b = b[:, None] if vector else b
    if b.ndim != 2 or b.shape[0] != y.shape[0]:
        raise ValueError(f"b must be ({y.shape[0]}, E) or ({y.shape[0]},), got {tuple(b.shape)}")
    if b.device != x.device or b.dtype != x.dtype:
        raise ValueError("b must share the device and dtype of the points")
    chosen = choose_backend(backend, x.shape[0], y.shape[0], "kernel", device=x.device)
    product = _keops_product if chosen == "keops" else _torch_product
    # Rescaling the points (rather than baking sigma into the formula) keeps a
    # single compiled KeOps formula for every kernel width.
    result = sum(product(x / s, y / s, b, kernel) for s in scales(sigma))
    return result[:, 0] if vector else result


def _torch_product(x, y, b, kernel):
    return kernel_matrix(x, y, kernel) @ b


def kernel_matrix(x, y, kernel: str = "gaussian") -> torch.Tensor:
    """Dense (N, M) kernel matrix between points already divided by sigma (for small problems and tests)."""
    squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return (-squared / 2).exp() if kernel == "gaussian" else 1 / (1 + squared)


def hamiltonian_equations_dense(q, p, sigma, kernel: str = "gaussian"):
    r"""Hamilton's equations of :math:`H(q, p) = \frac12 \sum_{ij} p_i^\top k(q_i, q_j) p_j` in closed form, dense.

    For a radial kernel :math:`k(q_i, q_j) = f(|q_i - q_j|^2 / \sigma^2)`,

    .. math::

        \dot q_i = \partial H / \partial p_i = \sum_j k_{ij} p_j, \qquad
        \dot p_i = -\partial H / \partial q_i
        = -\frac{2}{\sigma^2} \sum_j f'_{ij} \, (p_i^\top p_j) \, (q_i - q_j),

    with :math:`-2 f' = k` for the Gaussian and :math:`2 k^2` for the Cauchy
    kernel, summed over the widths of a multiscale kernel. Two (C, C)
    matrices per width and no autograd: LDDMM's geodesic shooting otherwise
    differentiates H with ``create_graph=True`` at every step, then
    back-propagates through that graph (a double backward), which costs
    about twice as much on the small problems of the dense path (skull
    curves, 200 control points). The result is differentiable (to any
    order) w.r.t. ``q`` and ``p`` by plain autograd.

    Parameters
    ----------
    q : torch.Tensor, shape (C, D)
        Control points, in the units of ``sigma``.
    p : torch.Tensor, shape (C, D)
        Momenta, same dtype and device.
    sigma : float or sequence of float
        Kernel width(s), see :func:`kernel_product`.
    kernel : {"gaussian", "cauchy"}

    Returns
    -------
    velocity, force : torch.Tensor, each (C, D)
        :math:`\partial H / \partial p` and :math:`-\partial H / \partial q`.

    Raises
    ------
    ValueError
        On an unknown kernel or a bad sigma.

    References
    ----------
    Miller, Trouvé, Younes, "Geodesic shooting for computational anatomy",
    J. Math. Imaging Vis. 24 (2006); Durrleman et al., "Morphometry of
    anatomical shape complexes with dense deformations and sparse
    parameters", NeuroImage 101 (2014), for the control-point form.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    velocity, force = torch.zeros_like(p), torch.zeros_like(q)
    alignment = p @ p.T  # p_i . p_j
    for width in scales(sigma):
        x = q / width
        k = kernel_matrix(x, x, kernel)
        velocity = velocity + k @ p
        weights = (k if kernel == "gaussian" else 2 * k * k) * alignment
        # sum_j w_ij (x_i - x_j) / width = (q_i - q_j) w_ij / width^2
        force = force + (weights.sum(1, keepdim=True) * x - weights @ x) / width
    return velocity, force


def _keops_product(x, y, b, kernel):
    from pykeops.torch import LazyTensor

    squared = LazyTensor(x[:, None, :].contiguous()).sqdist(LazyTensor(y[None, :, :].contiguous()))
    k = (-squared / 2).exp() if kernel == "gaussian" else 1 / (1 + squared)
    return (k * LazyTensor(b[None, :, :].contiguous())).sum(dim=1)
