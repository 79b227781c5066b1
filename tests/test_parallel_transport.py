"""Parallel transport of momenta along LDDMM geodesics (fanning scheme)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import skshapes as sks
from skshapes.statistics.transport import parallel_transport

SIGMA = 20.0


def kernel(q, sigmas):
    """Dense sum of Gaussians exp(-|x - y|^2 / 2 s^2), written independently of the library."""
    squared = ((q[:, None] - q[None]) ** 2).sum(-1)
    return sum(torch.exp(-squared / (2 * s * s)) for s in sigmas)


def inner(q, a, b, sigmas=(SIGMA,)):
    """The metric on momenta at control points q: sum_d a_d^T K(q, q) b_d."""
    return float((a * (kernel(q, sigmas) @ b)).sum())


def relative_distance(q, a, b, sigmas=(SIGMA,)):
    """||a - b||_K / ||b||_K at q."""
    d = a - b
    return math.sqrt(max(inner(q, d, d, sigmas), 0.0) / inner(q, b, b, sigmas))


@pytest.fixture(scope="module", params=[None, "rows"], ids=["plain", "rows"])
def skull(request):
    return make_skull(request.param)


def make_skull(normalization):
    """30 control points on the skull template (about 2 sigma apart: K(q, q) has condition number ~60),
    a smooth base momentum moving them by up to sigma, and two smooth momenta to transport."""
    skulls = sks.datasets.load_skulls()
    template = skulls.template.with_points(skulls.template.points.double())
    model = sks.LDDMM(sigma=SIGMA, control_points=30, backend="torch", normalization=normalization)
    q0 = model.control_points_of(template)
    g = torch.Generator().manual_seed(0)
    k0 = kernel(q0, (SIGMA,))
    base = k0 @ torch.randn(30, 2, generator=g, dtype=torch.float64)
    displacement = (model.shoot(q0, base)[0] - q0).norm(dim=1).max()
    base = base * (SIGMA / displacement)
    q1, p1, _ = model.shoot(q0, base)
    w = k0 @ torch.randn(30, 2, generator=g, dtype=torch.float64)
    v = k0 @ torch.randn(30, 2, generator=g, dtype=torch.float64)
    return {"model": model, "shape": template, "q0": q0, "q1": q1, "p1": p1, "base": base, "w": w, "v": v}


# --------------------------------------------------------------- invariants
@pytest.mark.parametrize("renormalize", [True, False])
def test_kernel_norm_is_conserved(skull, renormalize):
    w1 = parallel_transport(skull["model"], skull["shape"], skull["base"], skull["w"], renormalize=renormalize)
    error = abs(inner(skull["q1"], w1, w1) / inner(skull["q0"], skull["w"], skull["w"]) - 1)
    # Renormalised: exact up to the conservation of H by the RK4 geodesic (measured 2e-12 plain, 1e-10 rows).
    # Plain scheme: its first-order error, measured 2.0e-4 (plain) and 9.8e-4 (rows) with 10 steps.
    assert error < (1e-8 if renormalize else 1e-2), error


@pytest.mark.parametrize("renormalize", [True, False])
def test_inner_products_are_preserved(skull, renormalize):
    """Parallel transport is an isometry: <T w, T v>_{q1} = <w, v>_{q0}."""
    model, shape, base, w, v = (skull[k] for k in ("model", "shape", "base", "w", "v"))
    tw = parallel_transport(model, shape, base, w, renormalize=renormalize)
    tv = parallel_transport(model, shape, base, v, renormalize=renormalize)
    scale = math.sqrt(inner(skull["q0"], w, w) * inner(skull["q0"], v, v))
    error = abs(inner(skull["q1"], tw, tv) - inner(skull["q0"], w, v)) / scale
    # First-order error of the scheme with 10 steps, relative to ||w|| ||v||: measured 4.5e-5 / 6.1e-5
    # (plain kernel) and 8.4e-5 / 7.1e-5 (rows), renormalised / plain scheme.
    assert error < 1e-3, error


def test_zero_base_momentum_is_the_identity(skull):
    model, shape, w = skull["model"], skull["shape"], skull["w"]
    out = parallel_transport(model, shape, torch.zeros_like(w), w)
    assert torch.equal(out, w) and out is not w
    # A tiny but nonzero base momentum runs the scheme along an almost constant path: the identity up to
    # the finite differences' rounding, ~1e-10 per step (measured 1.7e-9 over 10 steps).
    out = parallel_transport(model, shape, 1e-8 * skull["base"], w)
    assert relative_distance(skull["q0"], out, w) < 1e-8


@pytest.mark.parametrize("renormalize", [True, False])
def test_the_geodesic_momentum_is_transported_to_itself(skull, renormalize):
    """The velocity of a geodesic is parallel: transporting p(0) gives p(1) of model.shoot."""
    model, shape, base = skull["model"], skull["shape"], skull["base"]
    out = parallel_transport(model, shape, base, base, renormalize=renormalize)
    error = relative_distance(skull["q1"], out, skull["p1"])
    # Renormalised: by construction (the component along p is kept), up to rounding (measured 3e-16).
    # Plain scheme: the curvature term R(v, v) v of the Jacobi field vanishes along the geodesic itself,
    # so only the finite differences and RK4 err (measured 1.4e-6 plain, 3.5e-6 rows, 10 steps).
    assert error < (1e-12 if renormalize else 1e-4), error


def test_linear_in_the_transported_momentum(skull):
    """The plain scheme is linear up to the O(delta^2) of its central differences (measured 4e-10, 2e-9)."""
    model, shape, base, w, v = (skull[k] for k in ("model", "shape", "base", "w", "v"))
    combined = parallel_transport(model, shape, base, 2 * w - 3 * v, renormalize=False)
    separate = 2 * parallel_transport(model, shape, base, w, renormalize=False) - 3 * parallel_transport(
        model, shape, base, v, renormalize=False
    )
    assert relative_distance(skull["q1"], combined, separate) < 1e-7


# --------------------------------------------------------------- reference
def christoffel(x, C, D, sigmas, rows):
    """Gamma^k_ij (n, n, n), n = C D, of the metric g(x) = Ktilde(x)^-1 on the control points, by autograd."""

    def cometric(y):
        q = y.reshape(C, D)
        k = kernel(q, sigmas)
        if rows:  # canonical coordinates of the rows-normalised Hamiltonian: D^-1 K D^-1
            density = k.sum(dim=1)
            k = k / density[:, None] / density[None, :]
        return torch.kron(k, torch.eye(D, dtype=y.dtype))

    def metric(y):
        return torch.linalg.inv(cometric(y))

    dg = torch.autograd.functional.jacobian(metric, x, vectorize=True)  # [a, b, c] = d g_ab / dx_c
    lower = 0.5 * (torch.einsum("jli->lij", dg) + torch.einsum("ilj->lij", dg) - torch.einsum("ijl->lij", dg))
    n = x.numel()
    return (cometric(x) @ lower.reshape(n, -1)).reshape(n, n, n), cometric


def reference_transport(q0, velocity, vector, sigmas, rows, n_steps=50):
    """Geodesic x'' = -Gamma(x', x') and transport V' = -Gamma(x', V), by RK4: no Hamiltonian, no Jacobi field."""
    C, D = q0.shape

    def f(state):
        x, v, V = state
        gamma = christoffel(x, C, D, sigmas, rows)[0]
        return v, -torch.einsum("kij,i,j->k", gamma, v, v), -torch.einsum("kij,i,j->k", gamma, v, V)

    state = (q0.reshape(-1), velocity.reshape(-1), vector.reshape(-1))
    h = 1.0 / n_steps
    for _ in range(n_steps):
        k1 = f(state)
        k2 = f(tuple(s + h / 2 * k for s, k in zip(state, k1)))
        k3 = f(tuple(s + h / 2 * k for s, k in zip(state, k2)))
        k4 = f(tuple(s + h * k for s, k in zip(state, k3)))
        state = tuple(s + h / 6 * (a + 2 * b + 2 * c + d) for s, a, b, c, d in zip(state, k1, k2, k3, k4))
    return [s.reshape(C, D) for s in state]


@pytest.mark.parametrize(
    ("normalization", "sigma"), [(None, 1.0), ("rows", 1.0), (None, (0.7, 2.0))], ids=["plain", "rows", "multiscale"]
)
def test_first_order_convergence_to_a_christoffel_reference(normalization, sigma):
    """Five random control points in 2D; the reference integrates the Levi-Civita connection directly."""
    g = torch.Generator().manual_seed(1)
    q0 = torch.randn(5, 2, generator=g, dtype=torch.float64)
    base = torch.randn(5, 2, generator=g, dtype=torch.float64)
    w = torch.randn(5, 2, generator=g, dtype=torch.float64)
    sigmas = sigma if isinstance(sigma, tuple) else (sigma,)
    rows = normalization == "rows"
    model = sks.LDDMM(sigma=sigma, normalization=normalization, backend="torch")
    shape = sks.PolyData(q0)

    def velocity(q, p):  # the velocity of momentum p at q: K p, or D^-1 K p with rows
        k = kernel(q, sigmas)
        return (k @ p) / k.sum(dim=1, keepdim=True) if rows else k @ p

    x1, _, reference = reference_transport(q0, velocity(q0, base), velocity(q0, w), sigmas, rows)
    q1 = model.shoot(q0, base)[0]
    assert (x1 - q1).abs().max() < 1e-4  # the same geodesic (RK4 with 10 vs 50 steps)
    _, cometric = christoffel(x1.reshape(-1), 5, 2, sigmas, rows)
    metric = torch.linalg.inv(cometric(x1.reshape(-1)))

    def norm(v):
        return math.sqrt(float(v.reshape(-1) @ metric @ v.reshape(-1)))

    errors = []
    for n_steps in (10, 20, 40):
        out = parallel_transport(model, shape, base, w, n_steps=n_steps, renormalize=False)
        errors.append(norm(velocity(x1, out) - reference) / norm(reference))
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    # The fanning scheme is first order. Measured errors at 10 / 20 / 40 steps: 5.5e-3 / 2.7e-3 / 1.4e-3
    # (plain), 5.2e-4 / 2.6e-4 / 1.3e-4 (rows), 6.2e-3 / 3.1e-3 / 1.5e-3 (multiscale): orders 1.00.
    assert all(0.8 < order < 1.2 for order in orders), (errors, orders)
    assert errors[-1] < 5e-3, errors
    renormalized = parallel_transport(model, shape, base, w, n_steps=40)  # measured 1.0e-3, 1.2e-4, 9.1e-4
    assert norm(velocity(x1, renormalized) - reference) / norm(reference) < 5e-3


# --------------------------------------------------------------- API
def test_default_steps_are_the_models(skull):
    model, shape, base, w = (skull[k] for k in ("model", "shape", "base", "w"))
    assert torch.equal(
        parallel_transport(model, shape, base, w), parallel_transport(model, shape, base, w, n_steps=model.n_steps)
    )


def test_output_kind_dtype_and_inputs_untouched(skull):
    model, shape, base, w = (skull[k] for k in ("model", "shape", "base", "w"))
    before = (base.clone(), w.clone())
    reference = parallel_transport(model, shape, base, w)
    assert torch.equal(base, before[0]) and torch.equal(w, before[1])
    single = parallel_transport(model, shape, base, w.float())
    assert single.dtype == torch.float32 and single.device == w.device
    assert torch.allclose(single.double(), reference, rtol=1e-5, atol=1e-6 * float(reference.abs().max()))
    array = parallel_transport(model, shape, base.numpy(), w.numpy())
    assert isinstance(array, np.ndarray) and array.dtype == np.float64
    np.testing.assert_allclose(array, reference.numpy(), rtol=1e-12, atol=1e-12 * float(reference.abs().max()))


def test_coincident_control_points_warn():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    model = sks.LDDMM(sigma=1.0, backend="torch")
    base = torch.tensor([[0.1, 0.0]] * 4, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="control points"):
        out = parallel_transport(model, sks.PolyData(points), base, torch.ones(4, 2, dtype=torch.float64))
    assert torch.isfinite(out).all()


def test_validation_errors(skull):
    model, shape, base, w = (skull[k] for k in ("model", "shape", "base", "w"))
    with pytest.raises(ValueError, match=r"base_momentum must have shape \(C, D\) = \(30, 2\)"):
        parallel_transport(model, shape, base[:29], w)
    with pytest.raises(ValueError, match=r"^momentum must have shape"):
        parallel_transport(model, shape, base, w.T)
    with pytest.raises(TypeError, match="LDDMM"):
        parallel_transport(sks.AffineDeformation(), shape, base, w)
    with pytest.raises(TypeError, match="shape must be a PolyData"):
        parallel_transport(model, shape.points, base, w)
    with pytest.raises(ValueError, match="n_steps must be at least 1"):
        parallel_transport(model, shape, base, w, n_steps=0)
    with pytest.raises(TypeError, match="n_steps"):
        parallel_transport(model, shape, base, w, n_steps=2.5)
    with pytest.raises(ValueError, match="NaN"):
        parallel_transport(model, shape, base, torch.full_like(w, float("inf")))
    with pytest.raises(ValueError, match="sigma"):
        parallel_transport(sks.LDDMM(sigma=-1.0, control_points=30), shape, base, w)
