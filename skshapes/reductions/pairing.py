r"""Gaussian pairing of two vector-valued measures, :math:`\sum_{ij} k(x_i, y_j) \langle a_i, b_j \rangle`.

This is the inner product, in the reproducing-kernel Hilbert space of a unit
Gaussian kernel, of the measures :math:`\sum_i a_i \delta_{x_i}` and
:math:`\sum_j b_j \delta_{y_j}`. Currents and varifolds
(:mod:`skshapes.losses`) are all of this form once their cells are turned
into features ``x`` (cell centres divided by the width, possibly with
scaled unit normals appended) and signals ``a`` (area vectors, areas, or
the entries of ``u u^T / |u|``).

On KeOps, when a gradient is needed, one compiled formula per (feature
dimension, signal dimension, dtype) serves the value *and* the first-order
gradient: the forward pass reduces, for every ``i``, the kernel product
:math:`\sum_j k_{ij} b_j` and the gradient
:math:`\sum_j k_{ij} \langle a_i, b_j \rangle (y_j - x_i)` together, and the
gradient w.r.t. ``y`` and ``b`` is the same formula with the roles swapped
(not needed at all for a self-pairing, by symmetry). KeOps's own
autodiff would compile a forward formula and one more per input that needs a
gradient, i.e. up to five formulas and five passes per pairing. When no
gradient is needed (no input requires one, or autograd is off), the plain
kernel product of :func:`~skshapes.reductions.kernel_product` gives the
value in about 55-60% of the time of the fused formula (20k x 20k cells, 3D,
float32, 2-core CPU).
"""

from __future__ import annotations

import torch

from .backend import check_pair, choose_backend
from .kernels import _keops_product, kernel_matrix


def gaussian_pairing(x, a, y=None, b=None, backend: str = "auto") -> torch.Tensor:
    r"""Pairing :math:`\sum_{i,j} \exp(-|x_i - y_j|^2 / 2) \langle a_i, b_j \rangle` of two weighted point sets.

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
        Features of the first set, already divided by the kernel width (the
        kernel has unit width, so that one compiled KeOps formula serves
        every width).
    a : torch.Tensor, shape (N, E) or (N,)
        Signal carried by the first set.
    y : torch.Tensor, shape (M, D), optional
        Features of the second set; ``None`` (with ``b=None``) for the
        self-pairing of ``(x, a)`` with itself, which KeOps differentiates
        in a single pass.
    b : torch.Tensor, shape (M, E) or (M,), optional
        Signal carried by the second set (same trailing shape as ``a``).
    backend : {"auto", "keops", "torch"}
        Resolved by :func:`skshapes.reductions.choose_backend` for the N x M
        problem, operation ``"varifold"`` (thresholds measured on this fused
        formula). ``"torch"`` builds the dense N x M kernel matrix and is
        differentiable to any order. ``"keops"`` never builds it and is
        differentiable once (w.r.t. all four inputs): a backward pass with
        ``create_graph=True`` raises a ``RuntimeError``, rather than give
        second derivatives that miss this term; use ``"torch"`` for higher
        orders.

    Returns
    -------
    torch.Tensor
        0-dim, dtype and device of ``x``.

    Raises
    ------
    ValueError
        If shapes, devices or dtypes do not match, only one of ``y`` and
        ``b`` is given, or ``backend`` is unknown.
    ImportError
        If ``backend="keops"`` and pykeops does not work here.
    """
    if (y is None) != (b is None):
        raise ValueError("give both y and b (a pairing of two sets), or neither (the self-pairing of x and a)")
    symmetric = y is None
    if symmetric:
        y, b = x, a
    check_pair(x, y)
    a, b = _check_signal(a, x, "a"), _check_signal(b, y, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same number of channels, got {a.shape[1]} and {b.shape[1]}")
    if choose_backend(backend, x.shape[0], y.shape[0], "varifold", device=x.device) == "torch":
        return (a * (kernel_matrix(x, y, "gaussian") @ b)).sum()
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, a, y, b))):
        # Value only: the plain kernel product (the formula of kernel_product) is
        # almost twice as fast as the fused value-and-gradient formula.
        return (a * _keops_product(x, y, b, "gaussian")).sum()
    return _KeOpsGaussianPairing.apply(x, a, y, b, symmetric)


def _check_signal(signal, points, name):
    signal = signal[:, None] if signal.ndim == 1 else signal
    if signal.ndim != 2 or signal.shape[0] != points.shape[0]:
        raise ValueError(f"{name} must be ({points.shape[0]}, E) or ({points.shape[0]},), got {tuple(signal.shape)}")
    if signal.device != points.device or signal.dtype != points.dtype:
        raise ValueError(f"{name} must share the device and dtype of the points")
    return signal


def _keops_reduction(x, a, y, b):
    """For every i: ``(sum_j k_ij b_j, sum_j k_ij <a_i, b_j> (y_j - x_i))``, shapes (N, E) and (N, D)."""
    from pykeops.torch import LazyTensor

    x_i, a_i = LazyTensor(x[:, None, :].contiguous()), LazyTensor(a[:, None, :].contiguous())
    y_j, b_j = LazyTensor(y[None, :, :].contiguous()), LazyTensor(b[None, :, :].contiguous())
    k_ij = (-x_i.sqdist(y_j) / 2).exp()
    reduced = (k_ij * b_j.concat((a_i | b_j) * (y_j - x_i))).sum(dim=1)
    return reduced[:, : a.shape[1]], reduced[:, a.shape[1] :]


class _KeOpsGaussianPairing(torch.autograd.Function):
    """The pairing and its gradient w.r.t. (x, a) from one KeOps pass; (y, b) by a swapped pass if needed."""

    @staticmethod
    def forward(ctx, x, a, y, b, symmetric):
        product, grad_x = _keops_reduction(x, a, y, b)
        ctx.symmetric = symmetric
        ctx.save_for_backward(x, a, y, b, product, grad_x)
        return (a * product).sum()

    @staticmethod
    def backward(ctx, grad_value):
        if torch.is_grad_enabled():
            # create_graph=True: the saved gradients are constants of the forward
            # pass, so a second derivative would silently miss this term.
            raise RuntimeError(
                "gaussian_pairing with backend='keops' is differentiable once (create_graph=True is not "
                "supported); use backend='torch' for higher-order derivatives"
            )
        x, a, y, b, product, grad_x = ctx.saved_tensors
        grad_y = grad_b = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            if ctx.symmetric:  # y is x and b is a: the (y, b) side is the (x, a) side
                grad_b, grad_y = product, grad_x
            else:
                grad_b, grad_y = _keops_reduction(y, b, x, a)
            grad_y, grad_b = grad_value * grad_y, grad_value * grad_b
        return grad_value * grad_x, grad_value * product, grad_y, grad_b, None
