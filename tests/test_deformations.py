"""Deformation models: RigidMotion and LDDMM, each checked against a reference.

References: closed forms (scipy's rotations, straight-line geodesics of a
single point, dense kernel matrices written here), invariants (Hamiltonian
conservation, convergence orders of the integrators) and finite differences
(``gradcheck``, float64 only). Tolerances: closed forms in float64 use 1e-10
to 1e-12 (a few hundred roundings); KeOps against dense torch uses the
relative 1e-5 (float64) / 1e-4 (float32) of the reductions' contract.
Every test but one uses ``backend="torch"``: KeOps compiles each new formula,
and the KeOps test compares it with the dense reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_close_f64 as assert_close
from scipy.spatial.transform import Rotation

from skshapes.deformations import LDDMM, DeformationModel, MorphingResult, RigidMotion
from skshapes.reductions import keops_available
from skshapes.shapes import PolyData

F64 = torch.float64




def relative_error(actual, expected):
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def random_shape(n=6, dim=3, dtype=F64, seed=0, triangles=False):
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(n, dim, generator=generator, dtype=dtype)
    return PolyData(points, triangles=[[0, 1, 2], [1, 2, 3]] if triangles else None)


def random_momenta(shape, scale=1.0, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape.points.shape, generator=generator, dtype=shape.dtype)


def dense_gaussian(x, y, sigma):
    """Reference kernel matrix sum_s exp(-|x_i - y_j|^2 / (2 s^2)), written out."""
    sigmas = sigma if isinstance(sigma, (list, tuple)) else [sigma]
    squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return sum(torch.exp(-squared / (2 * s**2)) for s in sigmas)


# ===================================================================== rigid
def test_public_names():
    import skshapes as sks

    assert sks.RigidMotion is RigidMotion and sks.LDDMM is LDDMM
    assert issubclass(RigidMotion, DeformationModel) and issubclass(LDDMM, DeformationModel)
    assert repr(LDDMM(2.0)).startswith("LDDMM(sigma=2.0, n_steps=10, integrator='rk4'")


@pytest.mark.parametrize("dim", [2, 3])
def test_rigid_zero_parameter_is_identity(dim):
    shape = random_shape(dim=dim)
    model = RigidMotion()
    parameter = model.initial_parameter(shape)
    assert parameter.shape == ((3,) if dim == 2 else (6,))
    result = model.morph(shape, parameter)
    assert isinstance(result, MorphingResult) and result.path is None
    assert_close(result.shape.points, shape.points, atol=1e-15, name="points")
    assert_close(model.rotation_matrix(parameter), torch.eye(dim, dtype=F64), name="R")


def test_rigid_rotation_matrix_matches_scipy_3d():
    # A quarter turn about z, in closed form.
    quarter = torch.tensor([0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0], dtype=F64)
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    assert_close(RigidMotion.rotation_matrix(quarter, 3), expected, atol=1e-15, name="quarter turn")
    # Random axes and angles up to beyond pi.
    generator = torch.Generator().manual_seed(3)
    for scale in (1e-3, 1.0, 3.0, 6.0):
        rotvec = scale * torch.randn(3, generator=generator, dtype=F64)
        parameter = torch.cat([rotvec, torch.randn(3, generator=generator, dtype=F64)])
        expected = torch.from_numpy(Rotation.from_rotvec(rotvec.numpy()).as_matrix())
        assert_close(RigidMotion().rotation_matrix(parameter), expected, atol=1e-12, name=f"R (|w|~{scale})")
        assert_close(RigidMotion.translation(parameter), parameter[3:], name="t")


def test_rigid_rotation_matrix_matches_scipy_2d():
    for angle in (0.3, -2.0, 3.0, 7.0):
        parameter = torch.tensor([angle, 1.0, -2.0], dtype=F64)
        expected = torch.from_numpy(Rotation.from_rotvec([0.0, 0.0, angle]).as_matrix()[:2, :2])
        assert_close(RigidMotion.rotation_matrix(parameter, 2), expected, atol=1e-12, name=f"R({angle})")
        assert_close(RigidMotion.translation(parameter, 2), parameter[1:], name="t")


@pytest.mark.parametrize("dim", [2, 3])
def test_rigid_rotation_is_orthogonal_with_det_one(dim):
    generator = torch.Generator().manual_seed(4)
    for scale in (0.1, 2.0, 10.0):
        parameter = scale * torch.randn(3 if dim == 2 else 6, generator=generator, dtype=F64)
        rotation = RigidMotion.rotation_matrix(parameter)
        assert_close(rotation.T @ rotation, torch.eye(dim, dtype=F64), atol=1e-12, name="R^T R")
        assert abs(torch.linalg.det(rotation).item() - 1.0) < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_rigid_morph_rotates_about_centroid(dim):
    shape = random_shape(n=7, dim=dim, triangles=True)
    generator = torch.Generator().manual_seed(5)
    parameter = torch.randn(3 if dim == 2 else 6, generator=generator, dtype=F64)
    rotvec = [0.0, 0.0, parameter[0].item()] if dim == 2 else parameter[:3].numpy()
    rotation = torch.from_numpy(Rotation.from_rotvec(rotvec).as_matrix()[:dim, :dim])
    translation = parameter[dim * (dim - 1) // 2 :]
    centroid = shape.points.mean(0)
    expected = (shape.points - centroid) @ rotation.T + centroid + translation
    model = RigidMotion()
    result = model.morph(shape, parameter, return_path=True)
    assert_close(result.shape.points, expected, atol=1e-12, name="morphed points")
    assert torch.equal(result.shape.triangles, shape.triangles)
    assert result.path[0] is shape and result.path[-1] is result.shape
    # The centroid moves by the translation only.
    assert_close(result.shape.points.mean(0), centroid + translation, atol=1e-12, name="centroid")
    # transform_points on the shape's own points is morph.
    assert_close(model.transform_points(shape.points, shape, parameter), result.shape.points, name="transform_points")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [2, 3])
def test_rigid_keeps_dtype_and_device(dtype, dim):
    shape = random_shape(dim=dim, dtype=dtype)
    model = RigidMotion()
    parameter = torch.full(model.parameter_shape(shape), 0.5, dtype=dtype)
    result = model.morph(shape, parameter)
    for tensor in (result.shape.points, result.regularization, model.rotation_matrix(parameter)):
        assert tensor.dtype == dtype and tensor.device == shape.device
    assert result.regularization.shape == () and result.regularization.item() == 0.0


def test_rigid_gradcheck():
    shape = random_shape(n=5, dim=3)
    model = RigidMotion()
    for parameter in (torch.zeros(6, dtype=F64), torch.tensor([0.3, -1.2, 0.5, 1.0, 2.0, 3.0], dtype=F64)):
        parameter.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda p: model.morph(shape, p).shape.points, (parameter,))


# ===================================================================== LDDMM
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_lddmm_zero_momentum_is_identity(integrator):
    shape = random_shape(dim=3)
    model = LDDMM(sigma=0.5, n_steps=4, integrator=integrator, backend="torch")
    parameter = model.initial_parameter(shape)
    assert parameter.shape == shape.points.shape
    result = model.morph(shape, parameter)
    assert torch.equal(result.shape.points, shape.points)
    assert result.regularization.item() == 0.0


@pytest.mark.parametrize("sigma", [0.4, [0.3, 1.0]])
def test_lddmm_regularization_is_half_pKp(sigma):
    shape = random_shape(n=7, dim=3)
    momenta = random_momenta(shape)
    model = LDDMM(sigma=sigma, n_steps=2, backend="torch")
    kernel = dense_gaussian(shape.points, shape.points, sigma)
    expected = 0.5 * torch.einsum("id,ij,jd->", momenta, kernel, momenta)
    result = model.morph(shape, momenta)
    assert result.regularization.shape == ()
    assert_close(result.regularization, expected, rtol=1e-12, name="H(q0, p0)")
    assert_close(model.hamiltonian(shape.points, momenta), expected, rtol=1e-12, name="hamiltonian")


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_lddmm_single_point_moves_in_a_straight_line(integrator):
    # K(q, q) = 1 and dH/dq = 0: q(t) = q0 + t p0, p(t) = p0, exactly.
    shape = PolyData(torch.tensor([[0.3, -1.0, 2.0]], dtype=F64))
    momentum = torch.tensor([[1.5, 0.5, -2.0]], dtype=F64)
    n_steps = 7
    model = LDDMM(sigma=0.8, n_steps=n_steps, integrator=integrator, backend="torch")
    result = model.morph(shape, momentum, return_path=True)
    for k, step in enumerate(result.path):
        assert_close(step.points, shape.points + (k / n_steps) * momentum, atol=1e-10, name=f"q(t_{k})")
    _, momenta, _ = model.shoot(shape.points, momentum, return_path=True)
    for k, p in enumerate(momenta):
        assert_close(p, momentum, atol=1e-10, name=f"p(t_{k})")
    assert_close(result.regularization, 0.5 * (momentum**2).sum(), rtol=1e-14, name="H")


def test_lddmm_far_points_do_not_move():
    # Points 100 sigma away see a zero kernel (exp underflows): they stay put.
    shape = random_shape(n=5, dim=2)
    model = LDDMM(sigma=0.1, n_steps=3, backend="torch")
    far = torch.tensor([[100.0, 100.0], [-50.0, 30.0]], dtype=F64)
    moved = model.transform_points(far, shape, random_momenta(shape))
    assert torch.equal(moved, far)


def test_lddmm_hamiltonian_is_conserved():
    # H(q(t), p(t)) is constant along the exact geodesic; RK4's drift is O(dt^4).
    shape = random_shape(n=8, dim=2)
    momenta = random_momenta(shape)
    drifts = []
    for n_steps in (10, 20):
        model = LDDMM(sigma=0.5, n_steps=n_steps, backend="torch")
        qs, ps, _ = model.shoot(shape.points, momenta, return_path=True)
        assert len(qs) == len(ps) == n_steps + 1
        energies = torch.stack([model.hamiltonian(q, p) for q, p in zip(qs, ps)])
        drifts.append(((energies - energies[0]).abs().max() / energies[0]).item())
    # The flow is far from trivial: points move by ~1.9 (almost 4 sigma) here.
    assert (qs[-1] - qs[0]).abs().max() > 1.5
    assert drifts[0] < 5e-3, drifts  # 1.2e-3 here
    assert drifts[1] < drifts[0] / 8, drifts  # fourth order: ~1/16 (1/21 here)


def test_lddmm_euler_converges_to_rk4():
    # Forward Euler is first order: its distance to RK4 halves when n_steps doubles.
    shape = random_shape(n=8, dim=2)
    momenta = random_momenta(shape, scale=0.5)  # points move by ~1.2 (2.3 sigma)
    gaps = []
    for n_steps in (20, 40, 80):
        rk4 = LDDMM(sigma=0.5, n_steps=n_steps, integrator="rk4", backend="torch").morph(shape, momenta)
        euler = LDDMM(sigma=0.5, n_steps=n_steps, integrator="euler", backend="torch").morph(shape, momenta)
        gaps.append((rk4.shape.points - euler.shape.points).abs().max().item())
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert 1.7 < gaps[0] / gaps[1] < 2.3 and 1.7 < gaps[1] / gaps[2] < 2.3, gaps


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_lddmm_gradcheck(integrator):
    shape = random_shape(n=6, dim=3, seed=7)
    model = LDDMM(sigma=0.6, n_steps=3, integrator=integrator, backend="torch")
    momenta = random_momenta(shape, scale=0.5).requires_grad_(True)
    points = shape.points.clone().requires_grad_(True)
    others = torch.rand(4, 3, dtype=F64, generator=torch.Generator().manual_seed(8)).requires_grad_(True)

    def morph(p, x):
        result = model.morph(shape.with_points(x), p)
        return result.shape.points, result.regularization

    def transform(p, x, y):
        return model.transform_points(y, shape.with_points(x), p)

    assert torch.autograd.gradcheck(morph, (momenta, points))
    assert torch.autograd.gradcheck(transform, (momenta, points, others))


def test_lddmm_transform_points_matches_morph():
    shape = random_shape(n=8, dim=3, triangles=True)
    momenta = random_momenta(shape)
    model = LDDMM(sigma=0.5, n_steps=5, backend="torch")
    morphed = model.morph(shape, momenta).shape
    assert torch.equal(morphed.triangles, shape.triangles)
    assert_close(model.transform_points(shape.points, shape, momenta), morphed.points, atol=1e-12, name="own points")
    # The shape's points mixed with other points: each point follows the same field.
    extra = torch.rand(3, 3, dtype=F64)
    moved = model.transform_points(torch.cat([extra, shape.points]), shape, momenta)
    assert_close(moved[3:], morphed.points, atol=1e-12, name="own points among others")


def test_lddmm_return_path():
    shape = random_shape(n=6, dim=2, triangles=True)
    momenta = random_momenta(shape)
    model = LDDMM(sigma=0.5, n_steps=4, backend="torch")
    result = model.morph(shape, momenta, return_path=True)
    assert len(result.path) == 5
    assert result.path[0] is shape and result.path[-1] is result.shape
    assert all(torch.equal(step.triangles, shape.triangles) for step in result.path)
    assert_close(result.shape.points, model.morph(shape, momenta).shape.points, name="final shape")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lddmm_keeps_dtype_and_device(dtype):
    shape = random_shape(dim=3, dtype=dtype)
    model = LDDMM(sigma=0.5, n_steps=2, backend="torch")
    result = model.morph(shape, random_momenta(shape))
    for tensor in (result.shape.points, result.regularization):
        assert tensor.dtype == dtype and tensor.device == shape.device


def test_lddmm_without_gradients():
    shape = random_shape(n=6, dim=3)
    momenta = random_momenta(shape).requires_grad_(True)
    model = LDDMM(sigma=0.5, n_steps=3, backend="torch")
    reference = model.morph(shape, momenta)
    assert reference.shape.points.requires_grad
    with torch.no_grad():
        result = model.morph(shape, momenta)
        moved = model.transform_points(shape.points, shape, momenta)
    assert not result.shape.points.requires_grad and not moved.requires_grad
    assert_close(result.shape.points, reference.shape.points, name="no_grad")
    with torch.inference_mode():
        result = model.morph(shape, momenta.detach())
    assert_close(result.shape.points, reference.shape.points, name="inference_mode")


@pytest.mark.skipif(not keops_available(), reason="pykeops does not work here")
@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_lddmm_keops_matches_torch(dtype, tolerance):
    # Second order through KeOps (the flow uses dH/dq by autograd, its gradient d^2H) against the dense closed form.
    shape = random_shape(n=12, dim=3, dtype=dtype, seed=9)
    momenta = random_momenta(shape, seed=10)
    weights = torch.randn(shape.points.shape, generator=torch.Generator().manual_seed(11), dtype=dtype)
    outputs = {}
    for backend in ("keops", "torch"):
        p = momenta.clone().requires_grad_(True)
        result = LDDMM(sigma=0.4, n_steps=3, backend=backend).morph(shape, p)
        (grad,) = torch.autograd.grad((weights * result.shape.points).sum() + result.regularization, p)
        outputs[backend] = (result.shape.points.detach(), grad)
    assert relative_error(outputs["keops"][0], outputs["torch"][0]) < tolerance
    assert relative_error(outputs["keops"][1], outputs["torch"][1]) < tolerance


# ==================================================================== errors
@pytest.mark.parametrize("model", [RigidMotion(), LDDMM(sigma=0.5, n_steps=2, backend="torch")], ids=repr)
def test_bad_parameter_raises(model):
    shape = random_shape(n=5, dim=3)
    good = model.initial_parameter(shape)
    with pytest.raises(ValueError, match="shape"):
        model.morph(shape, torch.zeros(7, dtype=F64))
    with pytest.raises(ValueError, match="dtype"):
        model.morph(shape, good.float())
    with pytest.raises(ValueError, match="device"):
        model.morph(shape, good.to("meta"))
    with pytest.raises(TypeError, match="parameter"):
        model.morph(shape, good.numpy())
    with pytest.raises(ValueError, match="points"):
        model.transform_points(torch.zeros(4, 2, dtype=F64), shape, good)
    with pytest.raises(ValueError, match="points"):
        model.transform_points(torch.zeros(4, 3), shape, good)


def test_rigid_helpers_check_their_parameter():
    with pytest.raises(ValueError, match="parameter"):
        RigidMotion.rotation_matrix(torch.zeros(4))
    with pytest.raises(ValueError, match="parameter"):
        RigidMotion.rotation_matrix(torch.zeros(6), dim=2)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"integrator": "midpoint"}, ValueError, "integrator"),
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"sigma": []}, ValueError, "sigma"),
        ({"sigma": "wide"}, ValueError, "sigma"),
        ({"sigma": float("nan")}, ValueError, "sigma"),
        ({"n_steps": 0}, ValueError, "n_steps"),
        ({"n_steps": 2.5}, TypeError, "n_steps"),
        ({"kernel": "laplace"}, ValueError, "kernel"),
        ({"backend": "cuda"}, ValueError, "backend"),
        ({"normalization": "columns"}, ValueError, "normalization"),
        ({"control_points": 10}, ValueError, "control_points"),  # more than the 4 points
        ({"control_points": 0}, ValueError, "control_points"),
        ({"control_points": True}, TypeError, "control_points"),
        ({"control_points": "grid"}, TypeError, "control_points"),
    ],
)
def test_lddmm_bad_settings_raise(kwargs, error, name):
    settings = {"sigma": 0.5, **kwargs}
    model = LDDMM(**settings)  # __init__ stores, never validates
    assert all(getattr(model, key) is value for key, value in settings.items())
    shape = random_shape(n=4, dim=2)
    with pytest.raises(error, match=name):
        model.morph(shape, torch.zeros(4, 2, dtype=F64))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", [RigidMotion(), LDDMM(sigma=0.5, n_steps=2, backend="torch")], ids=repr)
def test_models_stay_on_cuda(model):
    shape = random_shape(n=6, dim=3).to("cuda")
    parameter = (0.1 * torch.ones(model.parameter_shape(shape), dtype=F64, device="cuda")).requires_grad_(True)
    result = model.morph(shape, parameter)
    for tensor in (result.shape.points, result.regularization, model.transform_points(shape.points, shape, parameter)):
        assert tensor.device == shape.device and tensor.dtype == F64
    (grad,) = torch.autograd.grad(result.shape.points.sum(), parameter)
    assert grad.device == shape.device
