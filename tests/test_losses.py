"""Tests of the data-attachment losses, each against an independent reference.

References: closed forms (translations, L2, landmarks), POT (exact and
entropic OT, balanced and unbalanced), dense brute-force nearest neighbours
written here, finite differences (``gradcheck``), and KeOps vs dense torch.

KeOps compiles each new formula once (5-10 s, then cached): the KeOps calls
here are limited to one nearest-neighbour search (float64) and the Sinkhorn
log-sum-exp in float64 and float32 (forward + gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_close, assert_relative_close
from hypothesis import given
from hypothesis import strategies as st

import skshapes as sks
from skshapes.losses import (
    L2Loss,
    LandmarkLoss,
    Loss,
    NearestNeighborsLoss,
    ScaledLoss,
    SinkhornLoss,
    SumLoss,
)
from skshapes.reductions import keops_available

ot = pytest.importorskip("ot")

requires_keops = pytest.mark.skipif(not keops_available(), reason="needs a working pykeops")


# ----------------------------------------------------------------------------- data
def cloud(n, dim=3, dtype=torch.float64, seed=0, shift=0.0, scale=1.0):
    """n points uniform in [shift, shift + scale]^dim."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, dtype=dtype, generator=generator) * scale + shift


def bumpy_mesh(n=5, dtype=torch.float64, seed=0):
    """A height field on an n x n grid of the unit square, triangulated: non-uniform vertex areas."""
    generator = torch.Generator().manual_seed(seed)
    u, v = torch.meshgrid(torch.linspace(0, 1, n, dtype=dtype), torch.linspace(0, 1, n, dtype=dtype), indexing="ij")
    u = u + 0.05 * torch.rand(n, n, dtype=dtype, generator=generator)
    z = 0.3 * torch.sin(3 * u) * torch.cos(2 * v) + 0.05 * torch.rand(n, n, dtype=dtype, generator=generator)
    points = torch.stack([u, v, z], dim=-1).reshape(-1, 3)
    index = torch.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]
    triangles = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3), torch.stack([a, c, d], -1).reshape(-1, 3)])
    return sks.PolyData(points, triangles=triangles)


def wobbly_curve(n=12, dtype=torch.float64, seed=0, radius=0.5):
    """A closed 2D polyline with irregular sampling: segment lengths (weights) depend on the points."""
    generator = torch.Generator().manual_seed(seed)
    angles = torch.sort(torch.rand(n, dtype=dtype, generator=generator) * 2 * math.pi).values
    radii = radius * (1 + 0.2 * torch.rand(n, dtype=dtype, generator=generator))
    points = torch.stack([radii * angles.cos(), radii * angles.sin()], dim=1)
    edges = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n], dim=1)
    return sks.PolyData(points, edges=edges)


def value_and_grad(loss, shape_a, shape_b):
    """Loss value (detached) and its gradient w.r.t. shape_a.points."""
    points = shape_a.points.detach().clone().requires_grad_(True)
    value = loss(shape_a.with_points(points), shape_b)
    (grad,) = torch.autograd.grad(value, points)
    return value.detach(), grad


# ------------------------------------------------------------- POT references
def pot_entropic_ot(x, a, y, b, eps, rho=None):
    r"""Primal entropic OT of GeomLoss's formulation, from a converged POT plan.

    OT = <P, C> + eps KL(P | a b^T) [+ rho KL(P 1 | a) + rho KL(P^T 1 | b)] with
    C = |x - y|^2 / 2 and the generalised KL(p|q) = sum p log(p/q) - p + q.
    For balanced OT, POT's objective <P, C> + eps sum P log P has the same
    minimiser (sum P log(a_i b_j) is fixed by the marginals); for unbalanced OT,
    POT's ``reg_type="kl"`` is exactly this objective. Returns (value, plan).
    """
    cost = ot.dist(x, y) / 2
    if rho is None:
        plan = ot.sinkhorn(a, b, cost, eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-12)
    else:
        plan = ot.unbalanced.sinkhorn_unbalanced(a, b, cost, eps, rho, reg_type="kl", numItermax=100_000, stopThr=1e-12)

    def kl(p, q):
        return float(np.sum(p * np.log(np.maximum(p, 1e-300) / q)) - p.sum() + q.sum())

    value = float(np.sum(plan * cost)) + eps * kl(plan, np.outer(a, b))
    if rho is not None:
        value += rho * (kl(plan.sum(1), a) + kl(plan.sum(0), b))
    return value, plan


def pot_sinkhorn_divergence(x, y, eps, rho=None):
    r"""S = OT(a, b) - OT(a, a)/2 - OT(b, b)/2 for uniform weights, and its gradient in x.

    At the optimum (envelope theorem) grad_{x_i} OT(a, b) = sum_j P_ij (x_i - y_j), and
    grad_{x_i} OT(a, a) / 2 = sum_j Q_ij (x_i - x_j) (x is in both marginals, Q symmetric).
    """
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    ab, plan_ab = pot_entropic_ot(x, a, y, b, eps, rho)
    aa, plan_aa = pot_entropic_ot(x, a, x, a, eps, rho)
    bb, _ = pot_entropic_ot(y, b, y, b, eps, rho)
    grad = plan_ab.sum(1)[:, None] * x - plan_ab @ y - (plan_aa.sum(1)[:, None] * x - plan_aa @ x)
    return ab - aa / 2 - bb / 2, grad


# ===================================================================== Sinkhorn
@pytest.mark.parametrize("make", [lambda: sks.PolyData(cloud(30)), lambda: bumpy_mesh()], ids=["cloud", "mesh"])
def test_sinkhorn_zero_for_identical_shapes(make):
    shape = make()
    value, grad = value_and_grad(SinkhornLoss(blur=0.1, backend="torch"), shape, shape)
    # OT(a, a) appears three times with the same iterations: exact up to round-off.
    assert_close(value, 0.0, atol=1e-12, name="S(a, a)")
    assert_close(grad, torch.zeros_like(grad), atol=1e-12, name="grad S(a, a)")


@pytest.mark.parametrize("seed", range(3))
def test_sinkhorn_positive_for_different_shapes(seed):
    x, y = cloud(20, seed=seed), cloud(25, seed=seed + 10, shift=0.1)
    value = SinkhornLoss(blur=0.1, backend="torch")(sks.PolyData(x), sks.PolyData(y))
    assert value.item() > 1e-4  # S >= 0 with equality iff the measures coincide (Feydy et al. 2019, Thm 1)


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    t=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
)
def test_sinkhorn_translation_closed_form(seed, n, t):
    """S(alpha, alpha + t) = |t|^2 / 2 for any measure and any blur (p = 2, balanced).

    C(x, y + t) = C(x, y) - <x - y, t> + |t|^2/2 and the middle term integrates to a
    constant under the marginal constraints, so OT(a, a + t) = OT(a, a) + |t|^2/2
    and the debiasing removes OT(a, a). Translating the first cloud by s gives
    |t - s|^2 / 2, so the gradients sum to -t. Both hold at every blur, up to the
    convergence of the loop (measured < 1e-10 here at scaling 0.9).
    """
    x = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    t = torch.tensor(t, dtype=torch.float64)
    loss = SinkhornLoss(blur=0.1, scaling=0.9, backend="torch")
    value, grad = value_and_grad(loss, sks.PolyData(x), sks.PolyData(x + t))
    assert_close(value, (t**2).sum() / 2, rtol=1e-6, atol=1e-12, name="S(a, a + t)")
    assert_close(grad.sum(dim=0), -t, atol=1e-6, name="sum of gradients")


def test_sinkhorn_translation_closed_form_on_a_mesh():
    """Same identity with non-uniform weights (vertex areas), in float32."""
    mesh = bumpy_mesh(dtype=torch.float32)
    t = torch.tensor([0.3, -0.2, 0.5])
    value = SinkhornLoss(blur=0.05, backend="torch")(mesh, mesh.with_points(mesh.points + t))
    assert value.dtype == torch.float32
    assert_close(value, (t**2).sum() / 2, rtol=1e-4, name="S(a, a + t)")  # float32 reductions


def test_sinkhorn_matches_pot_entropic():
    """Value and gradient against the converged entropic problem solved by POT (log-domain Sinkhorn).

    GeomLoss does one Sinkhorn iteration per blur of the eps-scaling schedule, so
    its error comes from the truncation of that loop and shrinks as scaling -> 1:
    over 6 random pairs at scaling 0.999 we measured <= 1.5e-6 on the value (the
    dual objective is stationary: second order in the potentials' error) and
    <= 1.6e-3 on the gradient (first order); 10x less accurate at 0.995.
    Tolerances: 1e-5 and 5e-3. POT runs to a marginal error of 1e-12.
    """
    x, y = cloud(12, seed=0), cloud(15, seed=1, shift=0.3)
    blur = 0.25
    expected, expected_grad = pot_sinkhorn_divergence(x.numpy(), y.numpy(), eps=blur**2)
    loss = SinkhornLoss(blur=blur, scaling=0.999, backend="torch")
    value, grad = value_and_grad(loss, sks.PolyData(x), sks.PolyData(y))
    assert_close(value, expected, rtol=1e-5, name="S vs POT")
    assert_relative_close(grad, torch.from_numpy(expected_grad), rtol=5e-3, name="grad S vs POT")


@pytest.mark.parametrize("reach", [0.5, 2.0])
def test_sinkhorn_unbalanced_matches_pot(reach):
    """Unbalanced (reach = rho^(1/2)) against POT's KL-penalised entropic OT.

    Checks the convention rho = reach^p and the gradient: GeomLoss 0.3.1 alone
    returns gradients scaled by (rho + eps/2)/(rho + eps) (10% low at reach 0.5
    here); SinkhornLoss corrects it. Gradient tolerance as in the balanced test.
    The unbalanced value formula (rho + eps/2 weights, Sejourne et al. Prop. 12)
    holds at the optimum but is not stationary, so its truncation error is first
    order: <= 4.5e-5 measured over 6 pairs at scaling 0.999; tolerance 2e-4.
    """
    x, y = cloud(12, seed=0), cloud(15, seed=1, shift=0.3)
    blur = 0.25
    expected, expected_grad = pot_sinkhorn_divergence(x.numpy(), y.numpy(), eps=blur**2, rho=reach**2)
    loss = SinkhornLoss(blur=blur, reach=reach, scaling=0.999, backend="torch")
    value, grad = value_and_grad(loss, sks.PolyData(x), sks.PolyData(y))
    assert_close(value, expected, rtol=2e-4, name="unbalanced S vs POT")
    assert_relative_close(grad, torch.from_numpy(expected_grad), rtol=5e-3, name="unbalanced grad S vs POT")


def test_sinkhorn_small_blur_approaches_exact_ot():
    """At small blur, S is within eps log(N) of the exact OT cost W = min <P, |x - y|^2/2> (ot.emd2).

    For uniform weights, W <= OT_eps(a, b) <= W + eps log min(N, M) (the KL of a plan
    w.r.t. a x b is at most log min(N, M)) and 0 <= OT_eps(a, a) <= eps log N, so
    W - eps (log N + log M)/2 <= S <= W + eps log min(N, M), eps = blur^2.
    """
    n, m = 20, 25
    x, y = cloud(n, seed=0), cloud(m, seed=1, shift=0.5)
    blur = 0.03
    cost = ot.dist(x.numpy(), y.numpy()) / 2
    exact = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), cost)
    value = SinkhornLoss(blur=blur, scaling=0.99, backend="torch")(sks.PolyData(x), sks.PolyData(y)).item()
    eps = blur**2
    assert exact - eps * (math.log(n) + math.log(m)) / 2 <= value <= exact + eps * math.log(min(n, m))


@pytest.mark.parametrize("reach", [None, 1.0], ids=["balanced", "unbalanced"])
@pytest.mark.parametrize("kind", ["cloud3d", "curve2d"])
def test_sinkhorn_gradcheck(kind, reach):
    """Finite differences of the value against the returned gradient, float64.

    GeomLoss returns the envelope-theorem gradient (the gradient of the dual
    objective at the final potentials): the derivative of the value only at
    convergence. The eps-scaling loop stops after one iteration at the final
    blur, which leaves a discrepancy. With blur = 1 on shapes of diameter ~2
    and scaling = 0.99 we measured: balanced, the dual value is stationary and
    the discrepancy is <= 1.3e-5 on gradients of ~3e-2 (atol 3e-5, rtol 1e-3);
    unbalanced, the value formula (Sejourne et al., Prop. 12) is not
    stationary and the discrepancy is first order, <= 6.5e-5 = 1.7e-3 relative
    (atol 2e-4, rtol 1e-2; GeomLoss's own unbalanced gradient, which
    SinkhornLoss corrects, is 25% off here). Central differences with
    eps = 1e-6 add ~1e-9. The curve checks the gradient through the weights
    (segment lengths); the tight check of the unbalanced gradient is the POT
    test above.
    """
    if kind == "cloud3d":
        shape_a, shape_b = sks.PolyData(cloud(10, seed=0)), sks.PolyData(cloud(12, seed=1, shift=0.3))
    else:
        shape_a, shape_b = wobbly_curve(10, seed=0), wobbly_curve(12, seed=1, radius=0.7)
    loss = SinkhornLoss(blur=1.0, reach=reach, scaling=0.99, backend="torch")
    atol, rtol = (3e-5, 1e-3) if reach is None else (2e-4, 1e-2)
    points = shape_a.points.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: loss(shape_a.with_points(p), shape_b), (points,), eps=1e-6, atol=atol, rtol=rtol
    )


@requires_keops
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_sinkhorn_keops_matches_torch(dtype, rtol):
    """GeomLoss 'online' (KeOps) and 'tensorized' (torch) backends: same values and gradients."""
    shape_a = sks.PolyData(cloud(200, dtype=dtype, seed=0))
    shape_b = sks.PolyData(cloud(150, dtype=dtype, seed=1, shift=0.2))
    value_t, grad_t = value_and_grad(SinkhornLoss(blur=0.1, backend="torch"), shape_a, shape_b)
    value_k, grad_k = value_and_grad(SinkhornLoss(blur=0.1, backend="keops"), shape_a, shape_b)
    assert value_k.dtype == grad_k.dtype == dtype
    assert_relative_close(value_k, value_t, rtol=rtol, name="value")
    assert_relative_close(grad_k, grad_t, rtol=rtol, name="gradient")


def test_sinkhorn_auto_backend_is_torch_for_small_problems(monkeypatch):
    """Below KEOPS_MIN_PAIRS, 'auto' runs the dense torch Sinkhorn (no KeOps compilation, no GeomLoss call)."""
    import geomloss

    from skshapes.losses import sinkhorn

    seen = []
    original_dense, original_init = sinkhorn.sinkhorn_divergence_dense, geomloss.SamplesLoss.__init__

    def spy_dense(*args, **kwargs):
        seen.append("dense")
        return original_dense(*args, **kwargs)

    def spy_geomloss(self, *args, **kwargs):
        seen.append(kwargs["backend"])
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(sinkhorn, "sinkhorn_divergence_dense", spy_dense)
    monkeypatch.setattr(geomloss.SamplesLoss, "__init__", spy_geomloss)
    SinkhornLoss(blur=0.1)(sks.PolyData(cloud(10)), sks.PolyData(cloud(10, seed=1)))
    assert seen == ["dense"]


@pytest.mark.parametrize(
    "params",
    [
        {"blur": 0.0},
        {"blur": -1.0},
        {"blur": math.inf},
        {"reach": 0.0},
        {"reach": -2.0},
        {"scaling": 1.0},
        {"scaling": 0.0},
        {"p": 3},
        {"backend": "cuda"},
    ],
)
def test_sinkhorn_invalid_parameters_raise_at_call_time(params):
    loss = SinkhornLoss(**params)  # __init__ only stores its arguments
    for name, value in params.items():
        assert getattr(loss, name) == value
    shape = sks.PolyData(cloud(5))
    with pytest.raises(ValueError):
        loss(shape, shape)


@pytest.mark.parametrize("params", [{"blur": "1"}, {"reach": [1.0]}, {"scaling": None}, {"p": "2"}])
def test_sinkhorn_parameters_of_the_wrong_type_raise_type_error(params):
    shape = sks.PolyData(cloud(5))
    with pytest.raises(TypeError, match=next(iter(params))):
        SinkhornLoss(**params)(shape, shape)


def test_sinkhorn_keeps_no_grad_mode():
    """GeomLoss turns autograd back on when it returns, even under no_grad: we restore the caller's mode."""
    x, y = sks.PolyData(cloud(10)), sks.PolyData(cloud(10, seed=1))
    with torch.no_grad():
        value = SinkhornLoss(blur=0.1)(x, y)
        assert not torch.is_grad_enabled()
    assert not value.requires_grad


def test_sinkhorn_zero_total_weight_raises():
    flat = sks.PolyData(torch.zeros(3, 3, dtype=torch.float64), triangles=[[0, 1, 2]])
    with pytest.raises(ValueError, match="total point weight"):
        SinkhornLoss()(flat, sks.PolyData(cloud(4)))


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_sinkhorn_gradients_finite_with_coincident_points():
    points = torch.cat([cloud(5), cloud(5)])  # every point twice
    shape = sks.PolyData(points)
    with torch.autograd.detect_anomaly():
        _, grad = value_and_grad(SinkhornLoss(blur=0.1, backend="torch"), shape, sks.PolyData(cloud(7, seed=2)))
    assert torch.isfinite(grad).all()


# ============================================================ nearest neighbours
def brute_force_nn_loss(shape_a, shape_b):
    """Dense reference: all pairwise squared distances, min over each row and column."""
    x, y = shape_a.points, shape_b.points
    squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    a = shape_a.point_weights / shape_a.point_weights.sum()
    b = shape_b.point_weights / shape_b.point_weights.sum()
    return (a * squared.min(dim=1).values).sum() + (b * squared.min(dim=0).values).sum()


@pytest.mark.parametrize("kind", ["clouds", "meshes"])
def test_nearest_neighbors_matches_brute_force(kind):
    if kind == "clouds":
        shape_a, shape_b = sks.PolyData(cloud(40, seed=0)), sks.PolyData(cloud(30, seed=1, shift=0.2))
    else:
        shape_a = bumpy_mesh(5, seed=0)
        shape_b = bumpy_mesh(4, seed=1).with_points(bumpy_mesh(4, seed=1).points + 0.1)
    value, grad = value_and_grad(NearestNeighborsLoss(backend="torch"), shape_a, shape_b)
    expected, expected_grad = value_and_grad(lambda a, b: brute_force_nn_loss(a, b), shape_a, shape_b)
    assert_close(value, expected, rtol=1e-12, name="value")
    assert_close(grad, expected_grad, rtol=1e-10, atol=1e-14, name="gradient")


def test_nearest_neighbors_is_symmetric():
    shape_a, shape_b = bumpy_mesh(5, seed=0), sks.PolyData(cloud(30, seed=1))
    loss = NearestNeighborsLoss(backend="torch")
    assert_close(loss(shape_a, shape_b), loss(shape_b, shape_a), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_nearest_neighbors_zero_for_identical_shapes_with_finite_gradient():
    shape = bumpy_mesh(4)
    with torch.autograd.detect_anomaly():
        value, grad = value_and_grad(NearestNeighborsLoss(backend="torch"), shape, shape)
    assert value.item() == 0.0
    assert torch.isfinite(grad).all() and (grad == 0).all()


@given(seed=st.integers(0, 2**31 - 1), t=st.lists(st.floats(-0.02, 0.02), min_size=2, max_size=2))
def test_nearest_neighbors_small_translation_closed_form(seed, t):
    """On a grid of spacing 0.1, a translation by |t_k| < 0.05 keeps every neighbour: value = 2 |t|^2."""
    grid = torch.stack(torch.meshgrid(torch.arange(5.0), torch.arange(4.0), indexing="ij"), -1).reshape(-1, 2) * 0.1
    grid = grid.to(torch.float64)[torch.randperm(20, generator=torch.Generator().manual_seed(seed))]
    t = torch.tensor(t, dtype=torch.float64)
    value = NearestNeighborsLoss(backend="torch")(sks.PolyData(grid), sks.PolyData(grid + t))
    assert_close(value, 2 * (t**2).sum(), rtol=1e-10, atol=1e-18)


@requires_keops
def test_nearest_neighbors_keops_matches_torch():
    shape_a, shape_b = sks.PolyData(cloud(300, seed=0)), sks.PolyData(cloud(200, seed=1, shift=0.1))
    value_t, grad_t = value_and_grad(NearestNeighborsLoss(backend="torch"), shape_a, shape_b)
    value_k, grad_k = value_and_grad(NearestNeighborsLoss(backend="keops"), shape_a, shape_b)
    # Same neighbours (random points: no ties), so the same expression in float64.
    assert_relative_close(value_k, value_t, rtol=1e-12, name="value")
    assert_relative_close(grad_k, grad_t, rtol=1e-12, name="gradient")


# ============================================================== L2 and landmarks
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20))
def test_l2_closed_form(seed, n):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    value, grad = value_and_grad(L2Loss(), sks.PolyData(x), sks.PolyData(y))
    expected = sum(float(((x[i] - y[i]) ** 2).sum()) for i in range(n)) / n
    assert_close(value, expected, rtol=1e-12)
    assert_close(grad, 2 * (x - y) / n, rtol=1e-12)


def test_l2_translation_and_mismatched_counts():
    mesh = bumpy_mesh(4)
    t = torch.tensor([1.0, 2.0, -2.0], dtype=torch.float64)
    assert_close(L2Loss()(mesh, mesh.with_points(mesh.points + t)), 9.0, rtol=1e-12)  # plain mean, not area-weighted
    with pytest.raises(ValueError, match=r"shape_a has 16, shape_b has 9"):
        L2Loss()(mesh, bumpy_mesh(3))


def test_landmark_loss_closed_form():
    x, y = cloud(10, seed=0), cloud(8, seed=1)
    shape_a = sks.PolyData(x, landmarks=[3, 0, 7])
    shape_b = sks.PolyData(y, landmarks=[1, 5, 2])
    expected = (((x[3] - y[1]) ** 2).sum() + ((x[0] - y[5]) ** 2).sum() + ((x[7] - y[2]) ** 2).sum()) / 3
    value, grad = value_and_grad(LandmarkLoss(), shape_a, shape_b)
    assert_close(value, expected, rtol=1e-12)
    expected_grad = torch.zeros_like(x)
    expected_grad[[3, 0, 7]] = 2 * (x[[3, 0, 7]] - y[[1, 5, 2]]) / 3
    assert_close(grad, expected_grad, rtol=1e-12)


def test_landmark_loss_errors():
    with_3 = sks.PolyData(cloud(10), landmarks=[0, 1, 2])
    with_2 = sks.PolyData(cloud(10, seed=1), landmarks=[0, 1])
    without = sks.PolyData(cloud(10, seed=2))
    with pytest.raises(ValueError, match="shape_a has none"):
        LandmarkLoss()(without, with_3)
    with pytest.raises(ValueError, match="shape_b has none"):
        LandmarkLoss()(with_3, without)
    with pytest.raises(ValueError, match="shape_a has 3, shape_b has 2"):
        LandmarkLoss()(with_3, with_2)


# =================================================== composition and validation
def test_composition():
    x = sks.PolyData(cloud(10, seed=0), landmarks=[0, 4])
    y = sks.PolyData(cloud(10, seed=1, shift=0.2), landmarks=[2, 3])
    a, b = SinkhornLoss(blur=0.1, backend="torch"), LandmarkLoss()
    combined = a + 0.5 * b
    assert isinstance(combined, SumLoss) and isinstance(combined.second, ScaledLoss)
    assert_close(combined(x, y), a(x, y) + 0.5 * b(x, y), rtol=1e-12)
    assert_close((2 * L2Loss())(x, y), 2 * L2Loss()(x, y), rtol=1e-12)
    expected = "SinkhornLoss(blur=0.1, reach=None, scaling=0.9, p=2, backend='torch') + 0.5 * LandmarkLoss()"
    assert repr(combined) == expected


LOSSES = [
    SinkhornLoss(blur=0.1, backend="torch"),
    NearestNeighborsLoss(backend="torch"),
    L2Loss(),
    LandmarkLoss(),
    SinkhornLoss(blur=0.1, backend="torch") + 0.5 * LandmarkLoss(),
]


class _ComputeSpy:
    def __init__(self, loss):
        self.loss, self.calls = loss, 0

    def __call__(self, shape_a, shape_b):
        self.calls += 1
        return type(self.loss).compute(self.loss, shape_a, shape_b)


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_mismatched_shapes_raise_before_computing(loss, monkeypatch):
    spy = _ComputeSpy(loss)
    monkeypatch.setattr(loss, "compute", spy)
    shape = sks.PolyData(cloud(6), landmarks=[0, 1])
    others = {
        "dimension": sks.PolyData(cloud(6, dim=2), landmarks=[0, 1]),
        "dtype": shape.to(dtype=torch.float32),
        "device": shape.with_points(shape.points.to("meta")),
    }
    for name, other in others.items():
        with pytest.raises(ValueError, match=name):
            loss(shape, other)
        with pytest.raises(ValueError):
            loss(other, shape)
    with pytest.raises(TypeError, match="PolyData"):
        loss(shape, shape.points)
    assert spy.calls == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_output_keeps_dtype_and_device(loss, dtype):
    shape_a = sks.PolyData(cloud(8, dtype=dtype, seed=0), landmarks=[0, 1])
    shape_b = sks.PolyData(cloud(8, dtype=dtype, seed=1), landmarks=[2, 3])
    value = loss(shape_a, shape_b)
    assert value.ndim == 0 and value.dtype == dtype and value.device == shape_a.device


def test_public_exports():
    import skshapes.losses as losses

    names = {"Loss", "SumLoss", "ScaledLoss", "SinkhornLoss", "NearestNeighborsLoss", "L2Loss", "LandmarkLoss",
             "VarifoldLoss", "CurrentsLoss"}
    assert set(losses.__all__) == names
    for name in names - {"SumLoss", "ScaledLoss"}:  # every public loss is reachable as sks.<Name>
        assert getattr(sks, name) is getattr(losses, name)
    assert sks.SinkhornLoss is SinkhornLoss and sks.Loss is Loss
    for name in losses.__all__:
        assert getattr(losses, name).__doc__
