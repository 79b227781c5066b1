"""Similarity and AffineDeformation (and the LinearDeformation base they share with RigidMotion).

References: closed forms written here (scipy's rotations, ``s R (x - c) + c + t``,
``A (x - c) + c + t``), finite differences (``gradcheck``, float64 only), and
the recovery of a known transformation of a real face registered with the L2
loss (exact correspondence, so the optimum is the known parameter).
Tolerances: closed forms in float64 use 1e-12 (a few roundings of numbers of
order 100 mm); recoveries use the 1e-4 of the brief on the scale and on the
matrix entries, and 1e-3 mm on the translation (L-BFGS stops at a relative
decrease of ``tol``, not at the exact optimum).
Everything runs on dense torch: no KeOps formula is compiled here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_close_f64 as assert_close
from scipy.spatial.transform import Rotation

import skshapes as sks
from skshapes.deformations import AffineDeformation, LinearDeformation, RigidMotion, Similarity
from skshapes.datasets import load_skulls
from skshapes.shapes import PolyData

F64 = torch.float64
MODELS = [RigidMotion(), Similarity(), AffineDeformation()]




def random_shape(n=7, dim=3, dtype=F64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    points = 10 * torch.rand(n, dim, generator=generator, dtype=dtype) + 50  # far from the origin, in "mm"
    return PolyData(points, triangles=[[0, 1, 2], [1, 2, 3]] if dim == 3 else None)


def scipy_rotation(rotvec, dim):
    rotvec = [0.0, 0.0, float(rotvec[0])] if dim == 2 else np.asarray(rotvec, dtype=float)
    return torch.from_numpy(Rotation.from_rotvec(rotvec).as_matrix()[:dim, :dim])


@pytest.fixture(scope="module")
def face():
    from skshapes.datasets import load_faces

    return load_faces(resolution=1000).shapes[0].to(dtype=F64)


# ============================================================== structure
def test_public_names_and_shared_base():
    import skshapes.deformations as deformations

    assert {"Similarity", "AffineDeformation", "LinearDeformation"} <= set(deformations.__all__)
    for model in MODELS:
        assert isinstance(model, LinearDeformation) and isinstance(model, sks.DeformationModel)
        # One implementation of the centroid handling, morph and regularization, not three copies.
        for method in ("morph", "transform_points", "translation", "jacobian_determinant"):
            assert getattr(type(model), method).__qualname__.startswith("LinearDeformation."), method
    assert repr(Similarity()) == "Similarity()" and repr(AffineDeformation()) == "AffineDeformation()"


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_zero_parameter_is_identity(model, dim):
    shape = random_shape(dim=dim)
    parameter = model.initial_parameter(shape)
    expected_size = {RigidMotion: {2: 3, 3: 6}, Similarity: {2: 4, 3: 7}, AffineDeformation: {2: 6, 3: 12}}
    assert parameter.shape == (expected_size[type(model)][dim],)
    result = model.morph(shape, parameter)
    assert result.path is None and result.regularization.shape == () and result.regularization.item() == 0.0
    assert_close(result.shape.points, shape.points, atol=1e-12, name="points")
    assert_close(model.matrix(parameter), torch.eye(dim, dtype=F64), name="A")
    assert_close(model.translation(parameter), torch.zeros(dim, dtype=F64), name="t")


# ============================================================= similarity
@pytest.mark.parametrize("dim", [2, 3])
def test_similarity_closed_form(dim):
    shape = random_shape(dim=dim)
    generator = torch.Generator().manual_seed(1)
    rotvec = torch.randn(1 if dim == 2 else 3, generator=generator, dtype=F64)
    log_scale = torch.tensor([math.log(1.3)], dtype=F64)
    translation = torch.randn(dim, generator=generator, dtype=F64)
    parameter = torch.cat([rotvec, log_scale, translation])
    rotation = scipy_rotation(rotvec, dim)
    model = Similarity()
    assert_close(model.rotation_matrix(parameter), rotation, atol=1e-12, name="R")
    assert abs(model.scale(parameter).item() - 1.3) < 1e-14
    assert model.scale(parameter).shape == ()
    assert_close(model.matrix(parameter), 1.3 * rotation, atol=1e-12, name="sR")
    assert_close(model.translation(parameter), translation, name="t")
    centroid = shape.points.mean(0)
    expected = 1.3 * (shape.points - centroid) @ rotation.T + centroid + translation
    result = model.morph(shape, parameter, return_path=True)
    assert_close(result.shape.points, expected, atol=1e-12, name="morphed points")
    assert result.path[0] is shape and result.path[-1] is result.shape
    # Distances scale by s, and the centroid moves by t only.
    assert_close(torch.pdist(result.shape.points), 1.3 * torch.pdist(shape.points), rtol=1e-12, name="distances")
    assert_close(result.shape.points.mean(0), centroid + translation, atol=1e-12, name="centroid")
    assert_close(model.jacobian_determinant(shape.points, shape, parameter), torch.full((7,), 1.3**dim, dtype=F64),
                 rtol=1e-12, name="det")


def test_similarity_scale_is_always_positive():
    # Any parameter is a similarity with a positive scale (no reflection, no collapse).
    generator = torch.Generator().manual_seed(2)
    for _ in range(20):
        parameter = 3 * torch.randn(7, generator=generator, dtype=F64)
        matrix = Similarity.matrix(parameter)
        scale = Similarity.scale(parameter)
        assert scale.item() > 0
        assert_close(matrix.T @ matrix, scale**2 * torch.eye(3, dtype=F64), atol=1e-9 * scale.item() ** 2, name="A^T A")
        assert torch.linalg.det(matrix).item() > 0


def test_similarity_recovers_a_known_transform_of_a_real_face(face):
    rotvec = torch.tensor([0.3, -0.5, 0.4], dtype=F64)
    rotvec = rotvec / rotvec.norm() * math.radians(40)  # 40 degrees about a generic axis
    scale = 1.1
    translation = torch.tensor([12.0, -7.5, 20.0], dtype=F64)  # mm
    true_parameter = torch.cat([rotvec, torch.tensor([math.log(scale)], dtype=F64), translation])
    centroid = face.points.mean(0)
    rotation = scipy_rotation(rotvec, 3)
    target = face.with_points(scale * (face.points - centroid) @ rotation.T + centroid + translation)

    reg = sks.Registration(Similarity(), sks.L2Loss(), n_iter=100, tol=1e-14, device="cpu").fit(face, target)
    fitted = reg.parameter_
    assert abs(Similarity.scale(fitted).item() - scale) < 1e-4, Similarity.scale(fitted)
    assert (Similarity.rotation_matrix(fitted) - rotation).abs().max().item() < 1e-4
    assert (Similarity.translation(fitted) - translation).abs().max().item() < 1e-3
    assert_close(fitted, true_parameter, atol=1e-4, name="parameter")
    assert reg.loss_ < 1e-8, reg.loss_  # mm^2, from ~2e3 at the start
    assert reg.regularization_ == 0.0


# ================================================================= affine
@pytest.mark.parametrize("dim", [2, 3])
def test_affine_closed_form(dim):
    shape = random_shape(dim=dim)
    generator = torch.Generator().manual_seed(3)
    parameter = 0.3 * torch.randn(dim * dim + dim, generator=generator, dtype=F64)
    matrix = torch.eye(dim, dtype=F64) + parameter[: dim * dim].reshape(dim, dim)  # row-major
    model = AffineDeformation()
    assert_close(model.matrix(parameter), matrix, name="A")
    assert_close(model.translation(parameter), parameter[dim * dim :], name="t")
    centroid = shape.points.mean(0)
    expected = (shape.points - centroid) @ matrix.T + centroid + parameter[dim * dim :]
    assert_close(model.morph(shape, parameter).shape.points, expected, atol=1e-12, name="morphed points")
    assert_close(model.jacobian_determinant(shape.points[:3], shape, parameter),
                 torch.linalg.det(matrix).expand(3), rtol=1e-12, name="det")


def test_affine_recovers_a_known_matrix_of_a_real_face(face):
    matrix = torch.tensor([[1.10, 0.20, -0.10], [0.05, 0.90, 0.15], [-0.20, 0.10, 1.20]], dtype=F64)
    assert torch.linalg.det(matrix).item() > 1.0  # non-degenerate, orientation-preserving, not a similarity
    translation = torch.tensor([-5.0, 9.0, 3.0], dtype=F64)
    centroid = face.points.mean(0)
    target = face.with_points((face.points - centroid) @ matrix.T + centroid + translation)

    reg = sks.Registration(AffineDeformation(), sks.L2Loss(), n_iter=100, tol=1e-14, device="cpu").fit(face, target)
    fitted = reg.parameter_
    assert (AffineDeformation.matrix(fitted) - matrix).abs().max().item() < 1e-4
    assert (AffineDeformation.translation(fitted) - translation).abs().max().item() < 1e-3
    assert reg.loss_ < 1e-8, reg.loss_
    # transform_points of the estimator agrees with the closed form on other points.
    others = torch.tensor([[0.0, 0.0, 100.0], [50.0, -20.0, 110.0]], dtype=F64)
    assert_close(reg.transform_points(others), (others - centroid) @ matrix.T + centroid + translation,
                 atol=1e-2, name="transform_points")


# ========================================================== shared checks
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_transform_points_matches_morph(model):
    shape = random_shape(n=9)
    parameter = 0.2 * torch.randn(model.parameter_shape(shape), generator=torch.Generator().manual_seed(4), dtype=F64)
    morphed = model.morph(shape, parameter).shape
    assert torch.equal(morphed.triangles, shape.triangles)
    assert_close(model.transform_points(shape.points, shape, parameter), morphed.points, name="own points")
    extra = 60 * torch.rand(4, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    moved = model.transform_points(torch.cat([extra, shape.points]), shape, parameter)
    assert_close(moved[4:], morphed.points, name="own points among others")


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_gradcheck(model):
    shape = random_shape(n=5)
    generator = torch.Generator().manual_seed(6)
    for scale in (0.0, 0.4):
        parameter = (scale * torch.randn(model.parameter_shape(shape), generator=generator, dtype=F64))
        parameter.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda p: model.morph(shape, p).shape.points, (parameter,))
    # Through the points too (the centroid depends on them).
    points = shape.points.clone().requires_grad_(True)
    parameter = parameter.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, x: model.morph(shape.with_points(x), p).shape.points, (parameter, points))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_keeps_dtype_and_device(model, dtype):
    shape = random_shape(dtype=dtype)
    parameter = torch.full(model.parameter_shape(shape), 0.1, dtype=dtype)
    result = model.morph(shape, parameter)
    for tensor in (result.shape.points, result.regularization, model.matrix(parameter), model.translation(parameter),
                   model.jacobian_determinant(shape.points, shape, parameter)):
        assert tensor.dtype == dtype and tensor.device == shape.device


@pytest.mark.parametrize("model", MODELS, ids=repr)
def test_bad_parameters_raise(model):
    shape = random_shape(n=5)
    good = model.initial_parameter(shape)
    for bad in (torch.zeros(5, dtype=F64), torch.zeros(good.shape[0] + 1, dtype=F64), good[None]):
        with pytest.raises(ValueError, match="shape"):
            model.morph(shape, bad)
        with pytest.raises(ValueError, match="parameter"):
            model.matrix(bad)
        with pytest.raises(ValueError, match="parameter"):
            model.translation(bad)
    # A 2D parameter for a 3D shape, and dim that contradicts the length.
    flat = random_shape(n=5, dim=2)
    with pytest.raises(ValueError, match="shape"):
        model.morph(shape, model.initial_parameter(flat))
    with pytest.raises(ValueError, match="parameter"):
        model.matrix(good, dim=2)
    with pytest.raises(ValueError, match="dtype"):
        model.morph(shape, good.float())
    with pytest.raises(TypeError, match="parameter"):
        model.morph(shape, good.numpy())
    with pytest.raises(TypeError, match="parameter"):
        model.matrix(good.numpy())
    with pytest.raises(ValueError, match="points"):
        model.transform_points(torch.zeros(4, 2, dtype=F64), shape, good)


def test_similarity_helpers_check_their_parameter():
    with pytest.raises(ValueError, match=r"\(4,\) in 2D or \(7,\) in 3D"):
        Similarity.scale(torch.zeros(6))
    with pytest.raises(ValueError, match=r"\(6,\) in 2D or \(12,\) in 3D"):
        AffineDeformation.matrix(torch.zeros(7))


@pytest.mark.parametrize("model", [sks.RigidMotion(), sks.Similarity(), sks.AffineDeformation()], ids=repr)
def test_linear_registrations_start_from_matched_centroids(model):
    skulls = load_skulls()
    source, target = skulls.template, skulls.shapes[0]
    target = target.with_points(target.points + torch.tensor([150.0, -90.0]))
    start = model.initial_parameter(source, target)
    moved = model.morph(source, start).shape

    def centroid(shape):
        return (shape.point_weights[:, None] * shape.points).sum(0) / shape.point_weights.sum()

    assert torch.allclose(centroid(moved), centroid(target), atol=1e-3)
    assert torch.equal(model.initial_parameter(source), torch.zeros_like(start))
