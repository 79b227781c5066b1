"""Coarse-to-fine registration: parameter transfer between samplings, and ``Registration(multiscale=...)``.

References: linear maps are compared in closed form (the same map of space
before and after re-centring, float64, 1e-12); LDDMM momenta transferred
between a decimated face and the full one give the same velocity field up to
the sampling (measured 2 % and 6 % of its norm at sigma = 30 mm for random
momenta with the plain and the row-normalised kernels, asserted < 5 % and 10 %);
registrations recover a known rigid motion or reach a small fraction of the
initial loss.
"""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close_f64
from scipy.spatial.transform import Rotation
from sklearn.base import clone

import skshapes as sks
from skshapes.datasets import load_faces, load_skulls
from skshapes.reductions import kernel_product
from skshapes.shapes import decimate

F64 = torch.float64


@pytest.fixture(scope="module")
def face():
    return load_faces(resolution=500).template.to(dtype=F64)


@pytest.fixture(scope="module")
def coarse_face(face):
    return decimate(face, 120)[0]


def random_queries(shape, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    low, high = shape.points.min(0).values, shape.points.max(0).values
    return low + (high - low) * torch.rand(n, shape.dim, generator=g, dtype=shape.dtype)


@pytest.mark.parametrize("model", [sks.RigidMotion(), sks.Similarity(), sks.AffineDeformation()], ids=repr)
def test_linear_transfer_gives_the_same_map_of_space(model, face, coarse_face):
    g = torch.Generator().manual_seed(1)
    parameter = 0.3 * torch.randn(model.parameter_shape(coarse_face), generator=g, dtype=F64)
    parameter[-3:] = torch.tensor([4.0, -2.0, 7.0], dtype=F64)
    moved = model.transfer_parameter(parameter, coarse_face, face)
    queries = random_queries(face)
    expected = model.transform_points(queries, coarse_face, parameter)
    assert_close_f64(model.transform_points(queries, face, moved), expected, atol=1e-12 * 100)
    assert not moved.requires_grad and moved is not parameter


def test_lddmm_momenta_on_fixed_control_points_carry_over_unchanged(face, coarse_face):
    control_points = coarse_face.points[:40].clone()
    model = sks.LDDMM(sigma=30.0, control_points=control_points, backend="torch")
    parameter = torch.randn(40, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert torch.equal(model.transfer_parameter(parameter, coarse_face, face), parameter)
    assert model.frozen_for(face) is model


@pytest.mark.parametrize("normalization", [None, "rows"])
def test_lddmm_momenta_on_the_vertices_are_split_keeping_the_field(face, coarse_face, normalization):
    model = sks.LDDMM(sigma=30.0, normalization=normalization, backend="torch")
    coarse = torch.randn(coarse_face.n_points, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    fine = model.transfer_parameter(coarse, coarse_face, face)
    assert fine.shape == face.points.shape
    # same shape: every point is its own nearest neighbour, the momenta are unchanged
    assert_close_f64(model.transfer_parameter(coarse, coarse_face, coarse_face), coarse, rtol=1e-13)

    def field(points, momenta):
        weights = torch.cat([momenta, torch.ones_like(momenta[:, :1])], dim=1)
        both = kernel_product(random_queries(face), points, weights, 30.0, backend="torch")
        return both[:, :3] if normalization is None else both[:, :3] / both[:, 3:]

    expected = field(coarse_face.points, coarse)
    error = torch.linalg.norm(field(face.points, fine) - expected) / torch.linalg.norm(expected)
    # measured 0.018 (plain) and 0.057 (rows, whose field averages the random momenta out)
    assert error < (0.05 if normalization is None else 0.1), f"relative field error {float(error):.3f}"


def test_frozen_lddmm_keeps_the_control_points_chosen_on_the_full_shape(face, coarse_face):
    model = sks.LDDMM(sigma=30.0, control_points=60, backend="torch")
    frozen = model.frozen_for(face)
    assert model.control_points == 60  # the caller's model is untouched
    assert torch.equal(frozen.control_points, model.control_points_of(face))
    assert torch.equal(frozen.control_points_of(coarse_face), frozen.control_points)


def test_multiscale_rigid_recovers_a_known_motion(face):
    face32 = face.to(dtype=torch.float32)
    rotation = torch.tensor(Rotation.from_rotvec([0.0, 0.5, 0.2]).as_matrix(), dtype=torch.float32)
    centroid = face32.points.mean(0)
    target = face32.with_points((face32.points - centroid) @ rotation.T + centroid + torch.tensor([5.0, -3.0, 2.0]))
    reg = sks.Registration(sks.RigidMotion(), sks.SinkhornLoss(blur=2.0), multiscale=[125], n_iter=[30, 10])
    morphed = reg.fit(face32, target).transform()
    assert [level["n_source_points"] for level in reg.levels_][-1] == face32.n_points
    assert reg.levels_[0]["n_source_points"] < 200 and reg.levels_[0]["n_target_points"] < 200
    error = torch.linalg.norm(morphed.points - target.points, dim=1).mean()
    assert error < 0.5, f"mean vertex error {float(error):.3f} mm"


def test_multiscale_lddmm_parameter_belongs_to_the_callers_model(face):
    model = sks.LDDMM(sigma=30.0, n_steps=3, control_points=50, backend="torch")
    truth = 4.0 * torch.randn(model.parameter_shape(face), generator=torch.Generator().manual_seed(4), dtype=F64)
    target = model.morph(face, truth).shape.copy()
    loss = sks.NearestNeighborsLoss()
    reg = sks.Registration(model, loss, regularization_weight=1e-4, multiscale=2, n_iter=15).fit(face, target)
    assert [level["n_source_points"] for level in reg.levels_] == [pytest.approx(125, abs=10), face.n_points]
    # the fitted momenta live on the caller's (int) control points, so its model reproduces the result
    assert_close_f64(model.morph(face, reg.parameter_).shape.points, reg.transform().points, atol=1e-9)
    # measured 0.12 of the initial loss, single-scale 0.13 (nearest neighbours keep a floor between samplings)
    assert reg.data_loss_ < 0.2 * float(loss(face, target))
    assert len(reg.loss_history_["total"]) == reg.n_iter_ + 1


@pytest.mark.parametrize(
    ("multiscale", "error", "match"),
    [
        (0, ValueError, "number of levels"),
        ("fine", TypeError, "multiscale must be"),
        ([0.5, 0.2], ValueError, "must increase"),
        ([900], ValueError, "must increase"),
        ([1.5], ValueError, "fractions in"),
        (6, ValueError, "at least 3 points"),
    ],
)
def test_bad_multiscale_raises_before_any_computation(face, multiscale, error, match, monkeypatch):
    model = sks.RigidMotion()
    monkeypatch.setattr(model, "morph", lambda *a, **k: pytest.fail("morph called"))
    with pytest.raises(error, match=match):
        sks.Registration(model, sks.L2Loss(), multiscale=multiscale).fit(face, face)


def test_n_iter_list_must_match_the_levels_and_curves_cannot_be_decimated(face):
    with pytest.raises(ValueError, match="2 entries for a pyramid of 3 levels"):
        sks.Registration(sks.RigidMotion(), sks.L2Loss(), multiscale=3, n_iter=[5, 5]).fit(face, face)
    skulls = load_skulls()
    with pytest.raises(ValueError, match="not curves"):
        sks.Registration(multiscale=2).fit(skulls.template, skulls.shapes[0])


def test_multiscale_is_a_plain_parameter_for_clone():
    reg = sks.Registration(multiscale=[0.1, 0.3], n_iter=[50, 20, 5])
    assert clone(reg).get_params()["multiscale"] == [0.1, 0.3]
