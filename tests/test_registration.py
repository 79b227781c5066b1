"""Registration: scikit-learn conformance, input checks, and rigid recovery of a known motion on a real face."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from conftest import DATA_FREE_CHECKS
from scipy.spatial.transform import Rotation
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

import skshapes as sks
from skshapes.datasets import load_faces


@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(check):
    estimator = sks.Registration(sks.RigidMotion(), sks.L2Loss())
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def small_pair():
    g = torch.Generator().manual_seed(0)
    source = sks.PolyData(torch.randn(30, 3, generator=g, dtype=torch.float64))
    target = source.with_points(source.points + torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64))
    return source, target


def test_fit_returns_self_and_learned_attributes_end_in_underscore():
    source, target = small_pair()
    reg = sks.Registration(sks.RigidMotion(), sks.L2Loss(), n_iter=20)
    assert reg.fit(source, target) is reg
    assert reg.n_iter_ >= 1 and len(reg.loss_history_["total"]) == reg.n_iter_ + 1
    assert reg.loss_ == pytest.approx(reg.loss_history_["total"][-1])
    # the final loss is the loss at the fitted parameter, not a stale line-search value
    assert reg.loss_ == pytest.approx(float(sks.L2Loss()(reg.transform(), target)), rel=1e-12, abs=1e-14)
    assert reg.loss_ < 1e-10
    assert reg.morphed_shape_.dtype == torch.float64
    assert not reg.morphed_shape_.points.requires_grad


def test_transform_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        sks.Registration(sks.RigidMotion(), sks.L2Loss()).transform()
    with pytest.raises(NotFittedError):
        sks.Registration().transform_points(np.zeros((1, 3)))


def test_fitted_estimator_round_trips_through_pickle_and_clone_is_unfitted():
    source, target = small_pair()
    reg = sks.Registration(sks.RigidMotion(), sks.L2Loss(), n_iter=10).fit(source, target)
    back = pickle.loads(pickle.dumps(reg))
    assert torch.equal(back.parameter_, reg.parameter_)
    assert torch.equal(back.transform().points, reg.transform().points)
    fresh = clone(reg)
    assert fresh.get_params()["n_iter"] == 10 and not hasattr(fresh, "parameter_")


def test_transform_of_another_shape_and_points():
    source, target = small_pair()
    reg = sks.Registration(sks.RigidMotion(), sks.L2Loss(), n_iter=20).fit(source, target)
    shifted = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)
    other = sks.PolyData(torch.zeros(2, 3, dtype=torch.float64))
    assert torch.allclose(reg.transform(other).points, shifted.expand(2, 3), atol=1e-6)
    assert torch.allclose(reg.transform_points(np.zeros((1, 3))), shifted[None], atol=1e-6)
    with pytest.raises(ValueError, match="2D"):
        reg.transform_points(np.zeros((1, 2)))


def test_mismatched_dimensions_and_devices_raise_before_any_computation(monkeypatch):
    source, target = small_pair()
    model = sks.RigidMotion()
    monkeypatch.setattr(model, "morph", lambda *a, **k: pytest.fail("computed before checking"))
    reg = sks.Registration(model, sks.L2Loss())
    flat = sks.PolyData(source.points[:, :2])
    with pytest.raises(ValueError, match="dimension"):
        reg.fit(source, flat)
    with pytest.raises(ValueError, match="dtype"):
        reg.fit(source, target.to(dtype=torch.float32))
    with pytest.raises(TypeError, match="PolyData"):
        reg.fit(source, target.points)
    # the "meta" device stands in for a GPU on machines without one: only the device differs
    other_device = "cuda" if torch.cuda.is_available() else "meta"
    with pytest.raises(ValueError, match="devices"):
        reg.fit(source, target.to(other_device))


def test_bad_parameters_raise_in_fit():
    source, target = small_pair()
    for kwargs, message in [({"n_iter": 0}, "n_iter"), ({"optimizer": "sgd"}, "optimizer"),
                            ({"regularization_weight": -1}, "regularization_weight")]:
        with pytest.raises(ValueError, match=message):
            sks.Registration(sks.RigidMotion(), sks.L2Loss(), **kwargs).fit(source, target)


def test_adam_also_decreases_the_loss():
    source, _ = small_pair()
    # a rotation: the centroid-matching start already solves a pure translation
    rotation = torch.tensor(Rotation.from_rotvec([0.3, -0.2, 0.4]).as_matrix(), dtype=torch.float64)
    target = source.with_points(source.points @ rotation.T)
    reg = sks.Registration(sks.RigidMotion(), sks.L2Loss(), optimizer="adam", learning_rate=0.05, n_iter=50)
    reg.fit(source, target)
    assert reg.loss_ < 0.05 * reg.loss_history_["total"][0]


def test_verbose_shows_a_progress_bar_with_the_loss(capsys):
    source, target = small_pair()
    sks.Registration(sks.RigidMotion(), sks.L2Loss(), n_iter=3, verbose=True, tol=0).fit(source, target)
    assert "loss=" in capsys.readouterr().err


# ---------------------------------------------------------------- real faces
def posed(shape, angle_deg, axis, translation):
    """``shape`` rotated about its centroid by a known rotation, then translated (float64)."""
    rotation = torch.tensor(Rotation.from_rotvec(np.radians(angle_deg) * np.asarray(axis) / np.linalg.norm(axis)).as_matrix())
    points = shape.points.double()
    centroid = points.mean(dim=0)
    moved = (points - centroid) @ rotation.T + centroid + torch.tensor(translation, dtype=torch.float64)
    return shape.to(dtype=torch.float64).with_points(moved), rotation


def rotation_error_deg(estimated, true):
    cosine = ((torch.trace(estimated.T @ true) - 1) / 2).clamp(-1, 1)
    return math.degrees(math.acos(float(cosine)))


def test_rigid_l2_recovers_a_known_motion_of_a_real_face():
    face = load_faces().shapes[0].to(dtype=torch.float64)
    target, rotation = posed(face, 40.0, [1.0, 2.0, -0.5], [12.0, -7.0, 5.0])
    model = sks.RigidMotion()
    reg = sks.Registration(model, sks.L2Loss(), n_iter=100, tol=1e-14).fit(face, target)
    estimated = model.rotation_matrix(reg.parameter_, 3)
    assert rotation_error_deg(estimated, rotation) < 0.1
    # rotation about the centroid, then translation: the centroid moves by exactly the translation
    moved_centroid = reg.transform_points(face.points.mean(dim=0, keepdim=True))[0]
    error = (moved_centroid - face.points.mean(dim=0) - torch.tensor([12.0, -7.0, 5.0], dtype=torch.float64)).norm()
    assert float(error) < 0.01  # mm


def test_rigid_sinkhorn_without_correspondence_on_a_real_face():
    faces = load_faces(resolution=1000)
    face = faces.shapes[3]
    target, _ = posed(face, 35.0, [0.0, 1.0, 0.3], [10.0, 5.0, -8.0])
    source = face.to(dtype=torch.float64)
    # the target's vertex order is shuffled: the loss cannot use correspondences. The debiased
    # Sinkhorn divergence vanishes only for equal measures, so a 2 mm blur still aligns exactly.
    order = torch.randperm(target.n_points, generator=torch.Generator().manual_seed(0))
    shuffled = sks.PolyData(target.points[order], triangles=torch.argsort(order)[target.triangles])
    reg = sks.Registration(sks.RigidMotion(), sks.SinkhornLoss(blur=2.0, scaling=0.7), n_iter=60).fit(source, shuffled)
    mean_error = (reg.transform().points - target.points).norm(dim=1).mean()
    assert float(mean_error) < 1.0  # mm
