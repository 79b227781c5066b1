"""Reductions: KeOps and dense torch agree with a naive reference, for values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close, assert_relative_close

from skshapes.reductions import KEOPS_MIN_PAIRS, choose_backend, kernel_product, keops_available, knn

needs_keops = pytest.mark.skipif(not keops_available(), reason="pykeops does not compile here")
# float64 agrees to round-off; float32 sums of ~100 terms to ~1e-6 relative (STYLE: rtol 1e-4 for float32 reductions)
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


def naive_gaussian(x, y, b, sigma):
    """sum_j exp(-|x_i - y_j|^2 / (2 sigma^2)) b_j, written with explicit loops over the widths."""
    total = 0
    for s in sigma if isinstance(sigma, (list, tuple)) else [sigma]:
        squared = torch.stack([((x - yj) ** 2).sum(dim=1) for yj in y], dim=1)
        total = total + torch.exp(-squared / (2 * s**2)) @ b
    return total


def points(n, m, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=dtype).requires_grad_(True)
    y = torch.randn(m, 3, generator=g, dtype=dtype).requires_grad_(True)
    b = torch.randn(m, 2, generator=g, dtype=dtype).requires_grad_(True)
    return x, y, b


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=needs_keops)])
@pytest.mark.parametrize("sigma", [0.7, [0.5, 2.0]], ids=["single", "sum-of-gaussians"])
def test_gaussian_kernel_product_values_and_gradients(dtype, backend, sigma):
    x, y, b = points(50, 40, dtype)
    result = kernel_product(x, y, b, sigma, backend=backend)
    expected = naive_gaussian(x, y, b, sigma)
    assert result.dtype == dtype and result.shape == (50, 2)
    assert_relative_close(result, expected, TOLERANCE[dtype], name="K(x, y) b")
    weights = torch.randn(50, 2, dtype=dtype, generator=torch.Generator().manual_seed(3))
    grads = torch.autograd.grad((result * weights).sum(), (x, y, b))
    reference = torch.autograd.grad((expected * weights).sum(), (x, y, b))
    for name, g, r in zip("xyb", grads, reference):
        assert_relative_close(g, r, TOLERANCE[dtype], name=f"gradient w.r.t. {name}")


@needs_keops
def test_keops_second_order_gradient_matches_torch():
    """LDDMM backpropagates through dH/dq: the gradient of a gradient must agree."""
    x, y, b = points(30, 30, torch.float64, seed=4)
    grads = []
    for backend in ("keops", "torch"):
        energy = (b * kernel_product(x, y, b, 0.9, backend=backend)).sum()
        (gx,) = torch.autograd.grad(energy, x, create_graph=True)
        grads.append(torch.autograd.grad((gx**2).sum(), (x, b)))
    for name, g_keops, g_torch in zip("xb", *grads):
        assert_relative_close(g_keops, g_torch, 1e-10, name=f"second-order gradient w.r.t. {name}")


@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=needs_keops)])
def test_cauchy_kernel_against_closed_form(backend):
    x, y, b = points(20, 15, torch.float64, seed=5)
    expected = (1 / (1 + torch.cdist(x, y) ** 2 / 0.8**2)) @ b
    assert_relative_close(kernel_product(x, y, b, 0.8, kernel="cauchy", backend=backend), expected, 1e-12)


def test_kernel_of_a_point_with_itself_is_one():
    x = torch.zeros(1, 3, dtype=torch.float64)
    assert_close(kernel_product(x, x, torch.ones(1, dtype=torch.float64), 3.0), torch.ones(1, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=needs_keops)])
def test_knn_matches_brute_force(dtype, backend):
    x, y, _ = points(70, 90, dtype, seed=6)
    distances, indices = knn(x, y, k=5, backend=backend)
    reference = torch.cdist(x.detach().double(), y.detach().double()).topk(5, dim=1, largest=False)
    assert indices.shape == (70, 5) and indices.dtype == torch.int64 and distances.dtype == dtype
    assert torch.equal(indices, reference.indices)  # random Gaussian points: no ties
    assert_close(distances.double(), reference.values, rtol=TOLERANCE[dtype])
    # gradient of the nearest distances: unit vectors from the neighbour to the query point
    (gradient,) = torch.autograd.grad(distances[:, 0].sum(), x)
    direction = x.detach() - y.detach()[indices[:, 0]]
    assert_close(gradient, direction / direction.norm(dim=1, keepdim=True), rtol=TOLERANCE[dtype], atol=1e-6)


def test_knn_rejects_bad_k_and_mismatched_inputs():
    x, y, _ = points(5, 4, torch.float64)
    with pytest.raises(ValueError, match="k must be"):
        knn(x, y, k=5)
    with pytest.raises(ValueError, match="dtype"):
        knn(x, y.float(), k=1)
    with pytest.raises(ValueError, match="\\(N, D\\)"):
        knn(x, y[:, :2], k=1)


def test_kernel_product_rejects_bad_arguments():
    x, y, b = points(5, 4, torch.float64)
    with pytest.raises(ValueError, match="sigma"):
        kernel_product(x, y, b, -1.0)
    with pytest.raises(ValueError, match="kernel must be"):
        kernel_product(x, y, b, 1.0, kernel="laplace")
    with pytest.raises(ValueError, match="b must be"):
        kernel_product(x, y, b[:3], 1.0)
    with pytest.raises(ValueError, match="backend must be"):
        kernel_product(x, y, b, 1.0, backend="numpy")


def test_auto_backend_threshold():
    small = math.isqrt(KEOPS_MIN_PAIRS) - 1
    assert choose_backend("auto", small, small) == "torch"
    assert choose_backend("torch", 10**6, 10**6) == "torch"
    if keops_available():
        assert choose_backend("auto", 10**4, 10**4) == "keops"
