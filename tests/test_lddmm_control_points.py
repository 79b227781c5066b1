"""LDDMM with control points, row-normalised kernels, multiscale kernels and Jacobian determinants.

References: closed forms (a single control point moves on a straight line and
drags every point along ``K(x, q(t)) p``, checked against an RK4 integration of
that ODE written here), dense formulas for one Euler step (kernel sums and
their gradients written out by hand, the normalised-kernel Hamiltonian built
densely and differentiated), finite differences (Jacobians, ``gradcheck``),
convergence orders of the integrators, and the recovery of a known
deformation of a real face. Tolerances: closed forms and dense formulas in
float64 use 1e-12 (a few hundred roundings); the fine reference of the
single-control-point ODE has an RK4 error of ~1e-11; finite differences with
step h = 1e-4 have an O(h^2) ~ 1e-8 relative error; the face recovery is
bounded by 2 % of sigma as asked (it reaches ~0.1 %).
Every test but one uses ``backend="torch"``: KeOps compiles each new formula,
and the KeOps test compares the normalised flow with the dense reference.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import assert_close_f64 as assert_close

import skshapes as sks
from skshapes.deformations import LDDMM
from skshapes.reductions import keops_available, kernel_product
from skshapes.shapes import PolyData, decimate, farthest_point_sampling

F64 = torch.float64




def random_points(n, dim=3, seed=0, scale=1.0):
    return scale * torch.rand(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def random_momenta(n, dim=3, seed=1, scale=1.0):
    return scale * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def dense_kernel(x, y, sigma):
    """sum_s exp(-|x_i - y_j|^2 / (2 s^2)), written out."""
    sigmas = sigma if isinstance(sigma, (list, tuple)) else [sigma]
    squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return sum(torch.exp(-squared / (2 * s**2)) for s in sigmas)


@pytest.fixture
def one_thread():
    """Small dense products gain nothing from threads, and on a busy 2-core machine (KeOps compiling
    beside the tests) OpenMP spin-waits make them up to 50 times slower: run the long tests on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ========================================================= control points
def test_int_control_points_on_a_cloud_are_farthest_point_samples():
    shape = PolyData(random_points(40))
    model = LDDMM(sigma=0.3, n_steps=2, control_points=7, backend="torch")
    assert model.parameter_shape(shape) == (7, 3)
    assert model.initial_parameter(shape).shape == (7, 3)
    expected = shape.points[farthest_point_sampling(shape.points, 7)]
    assert torch.equal(model.control_points_of(shape), expected)
    # The cached choice follows in-place changes of the points: point 1 becomes the farthest from point 0.
    shape.points[1] += 100.0
    assert torch.equal(model.control_points_of(shape)[1], shape.points[1])
    # A curve too (decimate() does not take curves; farthest-point sampling does).
    curve = PolyData(random_points(12, dim=2), edges=[[i, i + 1] for i in range(11)])
    model = LDDMM(sigma=0.3, n_steps=2, control_points=5, backend="torch")
    assert model.parameter_shape(curve) == (5, 2)
    result = model.morph(curve, random_momenta(5, dim=2, scale=0.1))
    assert result.shape.points.shape == (12, 2) and torch.equal(result.shape.edges, curve.edges)


@pytest.fixture(scope="module")
def face():
    from skshapes.datasets import load_faces

    return load_faces(resolution=500).shapes[0].to(dtype=F64)


def test_int_control_points_on_a_mesh_are_its_decimation(face):
    model = LDDMM(sigma=25.0, n_steps=2, control_points=100, backend="torch")
    control_points = model.control_points_of(face)
    expected = decimate(face, 100)[0].points
    assert torch.equal(control_points, expected)
    n_control = control_points.shape[0]
    assert 90 <= n_control <= 110, n_control  # quadric decimation reaches the count approximately
    assert model.parameter_shape(face) == (n_control, 3)
    # The decimation is cached for the same points tensor (not redone at every registration step).
    assert model.control_points_of(face) is control_points
    # The model pickles (the cache holds a weak reference and is dropped).
    clone = pickle.loads(pickle.dumps(model))
    assert repr(clone) == repr(model) and torch.equal(clone.control_points_of(face), control_points)


@pytest.mark.parametrize("kind", ["polydata", "tensor32"])
def test_given_control_points(kind):
    shape = PolyData(random_points(9))
    given = random_points(4, seed=3)
    value = PolyData(given) if kind == "polydata" else given.float()
    model = LDDMM(sigma=0.5, n_steps=3, control_points=value, backend="torch")
    assert model.parameter_shape(shape) == (4, 3)
    control_points = model.control_points_of(shape)
    assert control_points.dtype == F64
    assert_close(control_points, given, atol=1e-7 if kind == "tensor32" else 0.0, name="control points")
    result = model.morph(shape, random_momenta(4, scale=0.3))
    assert result.shape.points.shape == (9, 3) and result.shape.points.dtype == F64


@pytest.mark.parametrize("normalization", [None, "rows"])
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_control_points_equal_to_the_shape_points_is_control_points_none(integrator, normalization):
    shape = PolyData(random_points(8), triangles=[[0, 1, 2], [2, 3, 4]])
    momenta = random_momenta(8)
    settings = {"sigma": 0.5, "n_steps": 5, "integrator": integrator, "normalization": normalization, "backend": "torch"}
    plain = LDDMM(**settings)
    given = LDDMM(**settings, control_points=PolyData(shape.points))
    assert given.parameter_shape(shape) == plain.parameter_shape(shape) == (8, 3)
    expected, result = plain.morph(shape, momenta, return_path=True), given.morph(shape, momenta, return_path=True)
    for k, (a, b) in enumerate(zip(result.path, expected.path)):
        assert_close(a.points, b.points, atol=1e-12, name=f"path[{k}]")
    assert_close(result.regularization, expected.regularization, rtol=1e-14, name="regularization")
    others = random_points(5, seed=4)
    assert_close(given.transform_points(others, shape, momenta), plain.transform_points(others, shape, momenta),
                 atol=1e-12, name="transform_points")


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_single_control_point_closed_form(integrator):
    # K(q, q) = 1 and dH/dq = 0: q(t) = q0 + t p0 and p(t) = p0 exactly; every point x
    # then follows dx/dt = K(x, q0 + t p0) p0, integrated here by the same scheme and a fine RK4.
    sigma, n_steps = 0.7, 8
    q0 = torch.tensor([[0.2, -0.1, 0.4]], dtype=F64)
    p0 = torch.tensor([[0.9, 0.3, -0.6]], dtype=F64)
    x0 = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.5, -0.5], [-0.2, 0.1, 0.8], [3.0, 3.0, 3.0]], dtype=F64)
    model = LDDMM(sigma=sigma, n_steps=n_steps, integrator=integrator, control_points=PolyData(q0), backend="torch")

    def velocity(x, t):
        q = q0 + t * p0
        return torch.exp(-((x - q) ** 2).sum(1, keepdim=True) / (2 * sigma**2)) * p0

    def integrate(n, scheme):
        x, h = x0.clone(), 1.0 / n
        for k in range(n):
            t = k * h
            if scheme == "euler":
                x = x + h * velocity(x, t)
                continue
            k1 = velocity(x, t)
            k2 = velocity(x + h / 2 * k1, t + h / 2)
            k3 = velocity(x + h / 2 * k2, t + h / 2)
            k4 = velocity(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    qs, ps, xs = model.shoot(q0, p0, points=x0, return_path=True)
    for k in range(n_steps + 1):
        assert_close(qs[k], q0 + k / n_steps * p0, atol=1e-14, name=f"q(t_{k})")
        assert_close(ps[k], p0, atol=1e-14, name=f"p(t_{k})")
    shape = PolyData(x0)
    moved = model.morph(shape, p0).shape.points
    assert_close(moved, integrate(n_steps, integrator), atol=1e-13, name="same scheme")
    reference = integrate(4000, "rk4")
    assert (reference - x0).norm(dim=1)[:3].min() > 0.1  # the near points really move
    error = (moved - reference).abs().max().item()
    assert error < (2e-5 if integrator == "rk4" else 5e-2), error  # O(dt^4) / O(dt)
    assert_close(model.morph(shape, p0).regularization, 0.5 * (p0**2).sum(), rtol=1e-14, name="H")


def test_single_control_point_with_rows_normalization_is_a_translation():
    # The weights K(x, q_j) / sum_j K(x, q_j) are a partition of unity: one control point translates everything.
    q0 = PolyData(torch.tensor([[0.2, -0.1, 0.4]], dtype=F64))
    p0 = torch.tensor([[0.9, 0.3, -0.6]], dtype=F64)
    shape = PolyData(random_points(6, scale=3.0))
    model = LDDMM(sigma=0.7, n_steps=4, control_points=q0, normalization="rows", backend="torch")
    assert_close(model.morph(shape, p0).shape.points, shape.points + p0, atol=1e-12, name="translated")
    determinant = model.jacobian_determinant(shape.points, shape, p0)
    assert_close(determinant, torch.ones(6, dtype=F64), atol=1e-12, name="det")


# ============================================================ integrators
def test_euler_converges_to_rk4_with_control_points():
    # Forward Euler is first order: its distance to RK4 halves when n_steps doubles.
    shape = PolyData(random_points(30))
    momenta = random_momenta(8, scale=0.4)
    gaps = []
    for n_steps in (10, 20, 40):
        models = {
            integrator: LDDMM(sigma=0.4, n_steps=n_steps, integrator=integrator, control_points=8, backend="torch")
            for integrator in ("euler", "rk4")
        }
        rk4, euler = (models[i].morph(shape, momenta).shape.points for i in ("rk4", "euler"))
        gaps.append((rk4 - euler).abs().max().item())
    assert (shape.points - models["rk4"].morph(shape, momenta).shape.points).abs().max() > 0.2  # a real flow
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3, gaps


# ==================================================== one step, by hand
def test_sum_of_gaussians_one_euler_step_by_hand():
    sigma = [0.3, 1.0]
    q0, p0 = random_points(5, seed=5), random_momenta(5, seed=6)
    x0 = random_points(7, seed=7)
    model = LDDMM(sigma=sigma, n_steps=1, integrator="euler", control_points=PolyData(q0), backend="torch")
    kernel = dense_kernel(q0, q0, sigma)
    # dH/dq_i = sum_k sum_s (p_i . p_k) K_s(q_i, q_k) (q_k - q_i) / s^2 (the i = k term vanishes).
    dots = p0 @ p0.T
    difference = q0[None, :, :] - q0[:, None, :]  # [i, k] = q_k - q_i
    grad_q = sum(
        ((dots * torch.exp(-(difference**2).sum(-1) / (2 * s**2)))[:, :, None] * difference / s**2).sum(1)
        for s in sigma
    )
    expected_q = q0 + kernel @ p0
    expected_p = p0 - grad_q
    expected_x = x0 + dense_kernel(x0, q0, sigma) @ p0
    q1, p1, x1 = model.shoot(q0, p0, points=x0)
    assert_close(q1, expected_q, atol=1e-12, name="q1")
    assert_close(p1, expected_p, atol=1e-12, name="p1")
    assert_close(x1, expected_x, atol=1e-12, name="x1")
    result = model.morph(PolyData(x0), p0)
    assert_close(result.shape.points, expected_x, atol=1e-12, name="morph")
    assert_close(result.regularization, 0.5 * torch.einsum("id,ij,jd->", p0, kernel, p0), rtol=1e-13, name="H")
    # The two widths matter: neither single width gives this flow.
    for s in sigma:
        alone = LDDMM(sigma=s, n_steps=1, integrator="euler", control_points=PolyData(q0), backend="torch")
        assert (alone.morph(PolyData(x0), p0).shape.points - expected_x).abs().max() > 1e-2


@pytest.mark.parametrize("sigma", [0.6, [0.3, 1.0]])
def test_rows_normalization_one_euler_step_by_hand(sigma):
    q0, p0 = random_points(6, seed=8), random_momenta(6, seed=9)
    x0 = random_points(5, seed=10, scale=2.0)
    model = LDDMM(sigma=sigma, n_steps=1, integrator="euler", control_points=PolyData(q0),
                  normalization="rows", backend="torch")
    kernel = dense_kernel(q0, q0, sigma)
    density = kernel.sum(1, keepdim=True)
    # The velocity is the kernel-weighted average of the momenta, at the control points and elsewhere.
    expected_q = q0 + (kernel @ p0) / density
    kernel_x = dense_kernel(x0, q0, sigma)
    expected_x = x0 + (kernel_x @ p0) / kernel_x.sum(1, keepdim=True)
    # The momentum follows the canonical Hamiltonian 1/2 eta^T D^-1 K D^-1 eta, eta = d p, built densely here.
    q = q0.clone().requires_grad_(True)
    eta0 = density * p0
    k = dense_kernel(q, q, sigma)
    d = k.sum(1, keepdim=True)
    hamiltonian = 0.5 * ((eta0 / d) * (k @ (eta0 / d))).sum()
    (grad_q,) = torch.autograd.grad(hamiltonian, q)
    eta1 = eta0 - grad_q
    expected_p = eta1 / dense_kernel(expected_q, expected_q, sigma).sum(1, keepdim=True)
    q1, p1, x1 = model.shoot(q0, p0, points=x0)
    assert_close(q1, expected_q, atol=1e-12, name="q1")
    assert_close(x1, expected_x, atol=1e-12, name="x1")
    assert_close(p1, expected_p, atol=1e-12, name="p1")
    result = model.morph(PolyData(x0), p0)
    assert_close(result.shape.points, expected_x, atol=1e-12, name="morph")
    # Regularization: the canonical Hamiltonian at time 0, which is 1/2 p^T K p.
    assert_close(result.regularization, hamiltonian.detach(), rtol=1e-13, name="H")
    assert_close(result.regularization, 0.5 * torch.einsum("id,ij,jd->", p0, kernel, p0), rtol=1e-13, name="pKp")


def test_rows_normalization_reproduces_translations():
    # Equal momenta: the first step moves every point (inside, on the edge, far outside) by exactly tau / n_steps.
    shape = PolyData(random_points(20, scale=2.0))
    tau = torch.tensor([0.5, -0.2, 0.1], dtype=F64)
    momenta = tau.expand(6, 3).clone()
    model = LDDMM(sigma=0.3, n_steps=4, integrator="euler", control_points=6, normalization="rows", backend="torch")
    _, _, x = model.shoot(model.control_points_of(shape), momenta, points=shape.points, return_path=True)
    far = shape.points + 5.0  # ~ 20 sigma away from every control point
    _, _, far_path = model.shoot(model.control_points_of(shape), momenta, points=far, return_path=True)
    assert_close(x[1] - x[0], tau.expand(20, 3) / 4, atol=1e-12, name="first step")
    assert_close(far_path[1] - far_path[0], tau.expand(20, 3) / 4, atol=1e-12, name="first step far away")
    # The plain kernel attenuates it instead, down to nothing far away.
    plain = LDDMM(sigma=0.3, n_steps=4, integrator="euler", control_points=6, backend="torch")
    _, _, x_plain = plain.shoot(plain.control_points_of(shape), momenta, points=far, return_path=True)
    assert (x_plain[1] - x_plain[0]).abs().max() < 1e-12


@pytest.mark.parametrize("control_points", [None, 5])
def test_rows_normalization_conserves_its_hamiltonian(control_points):
    shape = PolyData(random_points(12, dim=2))
    n_control = 12 if control_points is None else 5
    momenta = random_momenta(n_control, dim=2, scale=1.0)
    drifts = []
    for n_steps in (10, 20):
        model = LDDMM(sigma=0.4, n_steps=n_steps, control_points=control_points, normalization="rows", backend="torch")
        qs, ps, _ = model.shoot(model.control_points_of(shape), momenta, return_path=True)
        energies = torch.stack([model.hamiltonian(q, p) for q, p in zip(qs, ps)])
        drifts.append(((energies - energies[0]).abs().max() / energies[0]).item())
    assert (qs[-1] - qs[0]).abs().max() > 0.4  # the control points move by about a sigma
    assert drifts[0] < 1e-3, drifts
    assert drifts[1] < drifts[0] / 8, drifts  # fourth order: ~1/16


@pytest.mark.parametrize("normalization", [None, "rows"])
def test_gradcheck_with_control_points(normalization):
    shape = PolyData(random_points(7, seed=11))
    model = LDDMM(sigma=0.6, n_steps=2, control_points=4, normalization=normalization, backend="torch")
    momenta = random_momenta(4, scale=0.5).requires_grad_(True)
    points = shape.points.clone().requires_grad_(True)
    others = random_points(3, seed=12).requires_grad_(True)

    def morph(p, x):  # the control points are a subset of x: gradients flow through both roles
        result = model.morph(shape.with_points(x), p)
        return result.shape.points, result.regularization

    def transform(p, y):
        return model.transform_points(y, shape, p)

    assert torch.autograd.gradcheck(morph, (momenta, points))
    assert torch.autograd.gradcheck(transform, (momenta, others))


# ================================================== Jacobian determinant
def test_jacobian_determinant_of_the_identity_and_under_no_grad():
    shape = PolyData(random_points(6))
    model = LDDMM(sigma=0.5, n_steps=2, control_points=3, backend="torch")
    points = random_points(4, seed=13)
    determinant = model.jacobian_determinant(points, shape, model.initial_parameter(shape))
    assert determinant.shape == (4,) and determinant.dtype == F64
    assert_close(determinant, torch.ones(4, dtype=F64), atol=1e-14, name="identity")
    momenta = random_momenta(3, scale=0.3).requires_grad_(True)
    determinant = model.jacobian_determinant(points, shape, momenta)
    assert determinant.requires_grad  # a loss can penalise it
    (grad,) = torch.autograd.grad(determinant.sum(), momenta)
    assert grad.shape == (3, 3) and torch.isfinite(grad).all()
    with torch.no_grad():
        detached = model.jacobian_determinant(points, shape, momenta)
    assert not detached.requires_grad
    assert_close(detached, determinant, rtol=1e-14, name="no_grad")


# ========================================== recovery on a real face (slow)
@pytest.fixture(scope="module")
def face_recovery(face):
    """A known smooth deformation of a real face on ~100 control points, and its registration."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # see the one_thread fixture
    try:
        sigma = 25.0  # mm; the face is ~140 x 180 x 95 mm
        model = LDDMM(sigma=sigma, n_steps=5, control_points=100, backend="torch")
        control_points = model.control_points_of(face)
        # Random vectors smoothed at the kernel's scale, scaled to move the face by up to 15 mm.
        noise = torch.randn(control_points.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
        momenta = kernel_product(control_points, control_points, noise, sigma, backend="torch")
        with torch.no_grad():
            displacement = (model.morph(face, momenta).shape.points - face.points).norm(dim=1).max()
            momenta = momenta * (15.0 / displacement)
            target = model.morph(face, momenta).shape.copy()
        reg = sks.Registration(model, sks.L2Loss(), regularization_weight=0.0, n_iter=30, tol=1e-12, device="cpu")
        reg.fit(face, target)
    finally:
        torch.set_num_threads(previous)
    return {"face": face, "target": target, "model": model, "momenta": momenta, "reg": reg, "sigma": sigma}


@pytest.mark.slow
def test_face_recovery_with_control_points(face_recovery):
    face, target, reg, sigma = (face_recovery[k] for k in ("face", "target", "reg", "sigma"))
    n_control = face_recovery["model"].parameter_shape(face)[0]
    assert reg.parameter_.shape == (n_control, 3) and 90 <= n_control <= 110
    initial = (target.points - face.points).norm(dim=1)
    assert initial.mean() > 0.2 * sigma and initial.max() > 12.0  # a real deformation (6.5 mm mean, 14.4 max)
    error = (reg.morphed_shape_.points - target.points).norm(dim=1)
    assert error.mean() < 0.02 * sigma, (error.mean().item(), error.max().item())
    assert error.max() < 0.05 * sigma, error.max().item()


@pytest.mark.slow
def test_face_jacobian_determinant_matches_finite_differences_and_stays_positive(face_recovery, one_thread):
    face, model, momenta = face_recovery["face"], face_recovery["model"], face_recovery["momenta"]
    # A regular grid covering the face with a 10 mm margin: the map stays diffeomorphic there.
    low, high = face.points.min(0).values - 10, face.points.max(0).values + 10
    axes = [torch.linspace(float(a), float(b), 8, dtype=F64) for a, b in zip(low, high)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.no_grad():
        determinant = model.jacobian_determinant(grid, face, momenta)
    assert determinant.shape == (512,)
    assert determinant.min() > 0, determinant.min().item()
    assert (determinant - 1).abs().max() > 0.05  # the map really compresses and expands
    # Central finite differences (h = 1e-4 mm, O(h^2) error) at a few grid points and vertices.
    points = torch.cat([grid[::97], face.points[::101]])
    h = 1e-4
    columns = []
    with torch.no_grad():
        for axis in range(3):
            step = torch.zeros(3, dtype=F64)
            step[axis] = h
            plus = model.transform_points(points + step, face, momenta)
            minus = model.transform_points(points - step, face, momenta)
            columns.append((plus - minus) / (2 * h))
    reference = torch.linalg.det(torch.stack(columns, dim=2))
    assert_close(model.jacobian_determinant(points, face, momenta), reference, rtol=1e-7, name="det vs FD")


# =================================================================== KeOps
@pytest.mark.skipif(not keops_available(), reason="pykeops does not work here")
def test_rows_normalization_keops_matches_torch():
    # Second order through KeOps: the flow uses dH/dq, its gradient d^2H (float64, rtol 1e-5).
    shape = PolyData(random_points(12, seed=14))
    momenta = random_momenta(12, seed=15)
    weights = random_momenta(12, seed=16)
    outputs = {}
    for backend in ("keops", "torch"):
        p = momenta.clone().requires_grad_(True)
        result = LDDMM(sigma=0.4, n_steps=2, normalization="rows", backend=backend).morph(shape, p)
        (grad,) = torch.autograd.grad((weights * result.shape.points).sum() + result.regularization, p)
        outputs[backend] = (result.shape.points.detach(), grad)
    for a, b in zip(outputs["keops"], outputs["torch"]):
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-5


# ================================================================== errors
@pytest.mark.parametrize(
    "control_points, error, match",
    [
        (11, ValueError, "control_points=11 is more than the 10 points"),
        (-1, ValueError, "control_points"),
        (PolyData(torch.zeros(3, 2)), ValueError, "control_points must be 3D"),
        (torch.zeros(3), ValueError, "control_points"),
        (torch.zeros(3, 3, dtype=torch.int64), ValueError, "control_points"),
        ("grid", TypeError, "control_points"),
        (2.5, TypeError, "control_points"),
    ],
)
def test_bad_control_points_raise(control_points, error, match):
    shape = PolyData(random_points(10))
    model = LDDMM(sigma=0.5, control_points=control_points, backend="torch")
    assert model.control_points is control_points  # stored unchanged
    with pytest.raises(error, match=match):
        model.parameter_shape(shape)


def test_parameter_of_the_wrong_shape_raises():
    shape = PolyData(random_points(10))
    model = LDDMM(sigma=0.5, control_points=4, backend="torch")
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        model.morph(shape, torch.zeros(10, 3, dtype=F64))
    with pytest.raises(ValueError, match="points"):
        model.jacobian_determinant(torch.zeros(2, 2, dtype=F64), shape, torch.zeros(4, 3, dtype=F64))
