"""Reductions: KeOps and dense torch agree with a naive reference, for values and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close, assert_relative_close

from skshapes.reductions import (
    KEOPS_MIN_PAIRS,
    THRESHOLDS,
    Rule,
    choose_backend,
    keops_available,
    kernel_product,
    knn,
)

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


# ------------------------------------------------------------------ KD-tree backend and the thresholds table
def cloud(n, dim, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=dtype).requires_grad_(True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_kdtree_knn_matches_dense_knn(dtype, dim):
    """Same neighbours (random Gaussian points: no ties), same distances, same gradients w.r.t. x and y."""
    x, y = cloud(60, dim, dtype, seed=7), cloud(80, dim, dtype, seed=8)
    results = {backend: knn(x, y, k=6, backend=backend) for backend in ("torch", "kdtree")}
    (d_tree, i_tree), (d_dense, i_dense) = results["kdtree"], results["torch"]
    assert i_tree.shape == (60, 6) and i_tree.dtype == torch.int64 and d_tree.dtype == dtype
    assert torch.equal(i_tree, i_dense)
    assert_close(d_tree, d_dense, rtol=0.0)  # recomputed from the same indices by the same torch code
    weights = torch.rand(60, 6, dtype=dtype, generator=torch.Generator().manual_seed(9))
    g_tree = torch.autograd.grad((d_tree * weights).sum(), (x, y))
    g_dense = torch.autograd.grad((d_dense * weights).sum(), (x, y))
    for name, a, b in zip("xy", g_tree, g_dense):
        assert_close(a, b, rtol=0.0, name=f"gradient w.r.t. {name}")


@pytest.mark.parametrize("dim", [2, 3])
def test_kdtree_knn_with_ties_gives_the_same_distances(dim):
    """On a grid many neighbours tie: indices may differ, the sorted distances may not."""
    axis = torch.arange(5, dtype=torch.float64)
    grid = torch.cartesian_prod(*[axis] * dim)
    d_tree, i_tree = knn(grid, grid, k=7, backend="kdtree")
    d_dense, _ = knn(grid, grid, k=7, backend="torch")
    assert_close(d_tree, d_dense, rtol=1e-15)
    # every index returned is a neighbour at the distance reported for it
    assert_close((grid[:, None, :] - grid[i_tree]).norm(dim=-1), d_tree, rtol=1e-15)
    assert torch.equal(i_tree[:, 0], torch.arange(grid.shape[0]))  # each point is its own nearest


def test_kdtree_knn_k1_and_non_finite_points():
    x, y = cloud(20, 3, torch.float64, seed=10), cloud(30, 3, torch.float64, seed=11)
    distances, indices = knn(x, y, k=1, backend="kdtree")
    assert distances.shape == indices.shape == (20, 1)
    assert torch.equal(indices, torch.cdist(x, y).argmin(dim=1, keepdim=True))
    # An overflowed trial point (a line search) cannot go into a KD-tree: another backend answers, NaN stays NaN.
    broken = x.detach().clone()
    broken[0] = math.inf
    distances, indices = knn(broken, y.detach(), k=1, backend="kdtree")
    assert not torch.isfinite(distances[0]).any() and torch.isfinite(distances[1:]).all()
    assert torch.equal(indices[1:], torch.cdist(broken[1:], y.detach()).argmin(dim=1, keepdim=True))


def test_backend_not_offered_for_an_operation_raises():
    x, y, b = points(5, 4, torch.float64)
    with pytest.raises(ValueError, match="backend must be one of .* for operation 'kernel'"):
        kernel_product(x, y, b, 1.0, backend="kdtree")
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_backend("kdtree", 10, 10, "sinkhorn")
    with pytest.raises(ValueError, match="operation must be one of"):
        choose_backend("auto", 10, 10, "convolution")
    with pytest.raises(ValueError, match="1 to 3 dimensions, got D = 4"):
        knn(x.detach().new_zeros(5, 4), x.detach().new_zeros(6, 4), k=1, backend="kdtree")
    with pytest.raises(ValueError, match="CPU only"):
        choose_backend("kdtree", 10, 10, "knn", device="cuda", dim=3)


@pytest.fixture
def keops_works(monkeypatch):
    """Pretend pykeops works: the table is tested without compiling anything."""
    from skshapes.reductions import backend

    monkeypatch.setattr(backend, "keops_available", lambda: True)


def first_rule(operation, name, device="cpu"):
    return next(rule for rule in THRESHOLDS[device][operation] if rule.backend == name)


@pytest.mark.parametrize("operation", ["kernel", "hamiltonian", "kernel-first-order", "sinkhorn", "varifold"])
def test_auto_backend_follows_the_pair_thresholds(keops_works, operation):
    # dim=4: no multiscale Sinkhorn (it clusters points in 1 to 3 dimensions), so only the KeOps rule remains
    threshold = first_rule(operation, "keops").min_pairs
    assert choose_backend("auto", threshold - 1, 1, operation, dim=4) == "torch"
    assert choose_backend("auto", threshold, 1, operation, dim=4) == "keops"
    assert choose_backend("auto", 1, threshold, operation, device="cpu", dim=4) == "keops"
    cuda = first_rule(operation, "keops", "cuda").min_pairs
    assert choose_backend("auto", cuda - 1, 1, operation, device="cuda", dim=4) == "torch"
    assert choose_backend("auto", cuda, 1, operation, device="cuda", dim=4) == "keops"
    if operation == "sinkhorn":  # in 3D, multiscale from its own threshold
        multiscale = first_rule(operation, "multiscale").min_pairs
        assert choose_backend("auto", multiscale, 1, operation, dim=3) == "multiscale"
        assert choose_backend("auto", multiscale - 1, 1, operation, dim=3) == "torch"


def test_auto_backend_for_knn_follows_queries_then_pairs(keops_works):
    queries = first_rule("knn", "kdtree").min_queries
    pairs = first_rule("knn", "keops").min_pairs
    # enough queries in 1D-3D on the CPU: the KD-tree, however few the reference points
    assert choose_backend("auto", queries, 2, "knn", dim=3) == "kdtree"
    assert choose_backend("auto", queries, 2, "knn", dim=2) == "kdtree"
    # few queries against many points: the tree's construction does not pay, KeOps from its pair count
    assert choose_backend("auto", queries - 1, pairs, "knn", dim=3) == "keops"
    assert choose_backend("auto", 1, pairs - 1, "knn", dim=3) == "torch"
    # no KD-tree beyond 3D, nor on CUDA
    assert choose_backend("auto", 10 * queries, pairs, "knn", dim=4) == "keops"
    assert choose_backend("auto", 10 * queries, 1, "knn", device="cuda", dim=3) == "torch"


def test_auto_backend_without_keops_and_default_operation(monkeypatch):
    from skshapes.reductions import backend

    monkeypatch.setattr(backend, "keops_available", lambda: False)
    assert choose_backend("auto", 10**6, 10**6, "kernel") == "torch"
    assert choose_backend("auto", 10**6, 10**6, "knn", dim=3) == "kdtree"
    assert choose_backend("auto", 10**6, 10**6, "knn", dim=5) == "torch"
    monkeypatch.setattr(backend, "keops_available", lambda: True)
    # choose_backend(backend, n, m), the call of the callers that name no operation: the kernel table
    assert KEOPS_MIN_PAIRS == first_rule("kernel", "keops").min_pairs
    assert choose_backend("auto", KEOPS_MIN_PAIRS, 1) == "keops"
    assert choose_backend("auto", KEOPS_MIN_PAIRS - 1, 1) == "torch"


def test_first_applicable_rule_wins(monkeypatch):
    from skshapes.reductions import backend

    monkeypatch.setattr(backend, "keops_available", lambda: True)
    table = {"knn": (Rule("kdtree", min_pairs=100, min_queries=5), Rule("keops", min_pairs=50), Rule("torch"))}
    monkeypatch.setitem(backend.THRESHOLDS, "cpu", table)
    assert choose_backend("auto", 5, 20, "knn", dim=3) == "kdtree"
    assert choose_backend("auto", 4, 25, "knn", dim=3) == "keops"  # too few queries for the tree
    assert choose_backend("auto", 5, 19, "knn", dim=3) == "keops"  # too few pairs for the tree
    assert choose_backend("auto", 5, 9, "knn", dim=3) == "torch"


# ------------------------------------------------------------------ Sinkhorn: GeomLoss's multiscale backend
def two_gaussian_clouds(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)
    y[:, 0] += 1.0
    return x, y


@needs_keops
def test_sinkhorn_multiscale_backend_close_to_online():
    """GeomLoss's multiscale backend (coarse iterations on clusters, kernel truncation) against its online one.

    Not equal to round-off: the multiscale loop runs its first iterations on clusters, then truncates.
    Measured here (500 points per 3D cloud, blur 0.1, scaling 0.9, float32): the values differ by 6.2e-4 and the
    gradients by 3.8e-2 (relative norms). That is below the distance of either backend to converged entropic OT
    at such settings (measured at 1,000 points, blur 0.05, scaling 0.9: ~3e-3 on the value and ~0.14 on the
    gradient for both, see SinkhornLoss's docstring), hence bounds at about three and two times the measured
    differences.
    """
    import skshapes as sks

    x, y = two_gaussian_clouds(500)
    target = sks.PolyData(y)
    results = {}
    for backend in ("keops", "multiscale"):
        points = x.clone().requires_grad_(True)
        value = sks.SinkhornLoss(blur=0.1, scaling=0.9, backend=backend)(sks.PolyData(points), target)
        (gradient,) = torch.autograd.grad(value, points)
        assert value.dtype == gradient.dtype == torch.float32
        results[backend] = (value.detach(), gradient)
    assert_relative_close(results["multiscale"][0], results["keops"][0], 2e-3, name="value")
    assert_relative_close(results["multiscale"][1], results["keops"][1], 7e-2, name="gradient")


def test_auto_sinkhorn_picks_multiscale_in_low_dimension(keops_works):
    multiscale = first_rule("sinkhorn", "multiscale").min_pairs
    online = first_rule("sinkhorn", "keops").min_pairs
    assert choose_backend("auto", multiscale - 1, 1, "sinkhorn", dim=3) == "torch"
    assert choose_backend("auto", multiscale, 1, "sinkhorn", dim=3) == "multiscale"
    assert choose_backend("auto", multiscale, 1, "sinkhorn", dim=2) == "multiscale"
    # clusters need D <= 3: online KeOps from its own threshold instead
    assert choose_backend("auto", online - 1, 1, "sinkhorn", dim=4) == "torch"
    assert choose_backend("auto", online, 1, "sinkhorn", dim=4) == "keops"
    assert choose_backend("auto", online, 1, "sinkhorn", device="cuda", dim=4) == "keops"
    with pytest.raises(ValueError, match="1 to 3 dimensions"):
        choose_backend("multiscale", 10, 10, "sinkhorn", dim=4)
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_backend("multiscale", 10, 10, "kernel")


@pytest.mark.parametrize("p, expected", [(2, "multiscale"), (1, "online")])
def test_sinkhorn_loss_auto_uses_multiscale_only_for_p2(keops_works, monkeypatch, p, expected):
    """As GeomLoss's own "auto": multiscale for p = 2; p = 1 goes to the next rule (online KeOps)."""
    import geomloss

    import skshapes as sks
    from skshapes.reductions import backend

    seen = []

    class Called(Exception):
        pass

    def spy(self, *args, **kwargs):  # records the GeomLoss backend, runs nothing (no KeOps compilation)
        seen.append(kwargs["backend"])
        raise Called

    table = {"sinkhorn": (Rule("multiscale", min_pairs=100), Rule("keops", min_pairs=100), Rule("torch"))}
    monkeypatch.setitem(backend.THRESHOLDS, "cpu", table)
    monkeypatch.setattr(geomloss.SamplesLoss, "__init__", spy)
    x, y = two_gaussian_clouds(20)
    with pytest.raises(Called):
        sks.SinkhornLoss(blur=0.5, p=p)(sks.PolyData(x), sks.PolyData(y))
    assert seen == [expected]


@pytest.mark.parametrize(("kernel", "sigma"), [("gaussian", 0.7), ("cauchy", 0.5), ("gaussian", [0.3, 1.1])])
def test_closed_form_hamiltonian_equations_match_autograd(kernel, sigma):
    """LDDMM's dense shooting uses dH/dp and -dH/dq in closed form: equal to autograd of H, and differentiable."""
    from skshapes.reductions.kernels import hamiltonian_equations_dense

    g = torch.Generator().manual_seed(3)
    q = torch.randn(30, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(30, 3, generator=g, dtype=torch.float64, requires_grad=True)
    hamiltonian = 0.5 * (p * kernel_product(q, q, p, sigma, kernel=kernel, backend="torch")).sum()
    dh_dp, dh_dq = torch.autograd.grad(hamiltonian, (p, q))
    velocity, force = hamiltonian_equations_dense(q, p, sigma, kernel)
    assert_close(velocity, dh_dp, rtol=1e-12, atol=1e-12)
    assert_close(force, -dh_dq, rtol=1e-12, atol=1e-12)
    small = (q[:6].detach().requires_grad_(True), p[:6].detach().requires_grad_(True))
    assert torch.autograd.gradcheck(lambda a, b: hamiltonian_equations_dense(a, b, sigma, kernel), small)
    with pytest.raises(ValueError, match="kernel"):
        hamiltonian_equations_dense(q, p, sigma, "laplace")


def test_lddmm_shooting_uses_the_hamiltonian_rule(keops_works, monkeypatch):
    """LDDMM asks for "hamiltonian": the dense closed form below its threshold, the KeOps autograd path from it."""
    from skshapes import LDDMM
    from skshapes.deformations import lddmm

    calls = []
    monkeypatch.setattr(lddmm, "hamiltonian_equations_dense", lambda *a: calls.append(a) or (a[1], a[1]))
    threshold = first_rule("hamiltonian", "keops").min_pairs
    q = torch.zeros(int(threshold**0.5) - 1, 3)
    LDDMM(sigma=1.0)._hamiltonian_equations(q, q)
    assert len(calls) == 1  # (C^2 < threshold): closed form
    assert choose_backend("auto", int(threshold**0.5) + 1, int(threshold**0.5) + 1, "hamiltonian") == "keops"
