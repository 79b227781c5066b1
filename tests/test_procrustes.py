"""Generalised Procrustes analysis: recovery of known similarities, no reflections, references, sklearn conformance."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import DATA_FREE_CHECKS
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.transform import Rotation
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import estimator_checks

from skshapes.datasets import load_faces, load_skulls
from skshapes.statistics.procrustes import GeneralizedProcrustes


# Closed-form alignments in float64: every step is an SVD or an average, exact up to rounding.
EXACT = 1e-10


@pytest.fixture(scope="module")
def faces():
    return load_faces()


@pytest.fixture(scope="module")
def face_landmarks(faces):
    """The five template landmarks, (5, 3) float64, in mm."""
    return faces.landmarks.to(torch.float64).numpy()


@pytest.fixture(scope="module")
def face_population(faces):
    """The five landmarks of the 45 simulated faces, (45, 5, 3) float64, in mm, not pose-aligned."""
    return np.stack([face.landmark_points.to(torch.float64).numpy() for face in faces.shapes])


@pytest.fixture(scope="module")
def skull_landmarks():
    """Twelve points along a skull outline, (12, 2) float64."""
    points = load_skulls().shapes[0].points.to(torch.float64).numpy()
    return points[:: len(points) // 12][:12]


def random_rotations(n, dim, seed):
    """``n`` proper rotations (det +1) in ``dim`` dimensions."""
    if dim == 3:
        return Rotation.random(n, random_state=seed).as_matrix()
    angles = np.random.default_rng(seed).uniform(-np.pi, np.pi, n)
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def similar_copies(base, n=6, seed=0, scaling=True):
    """``s_k R_k base_k + t_k``: copies of ``base`` (L, D), or of each ``base[k]`` (n, L, D), by known similarities."""
    rng = np.random.default_rng(seed)
    rotations = random_rotations(n, base.shape[-1], seed)
    scales = rng.uniform(0.5, 2.0, n) if scaling else np.ones(n)
    translations = rng.normal(scale=50.0, size=(n, base.shape[-1]))
    X = scales[:, None, None] * base @ rotations.transpose(0, 2, 1) + translations[:, None, :]
    return X, rotations, scales, translations


def opa_residual(source, target):
    """Residual of the rotation-only (det +1) least-squares fit of centred ``source`` to centred ``target``."""
    source, target = source - source.mean(0), target - target.mean(0)
    u, _, vh = np.linalg.svd(source.T @ target)
    d = np.sign(np.linalg.det(vh.T @ u.T))
    rotation = vh.T @ np.diag([1.0] * (source.shape[1] - 1) + [d]) @ u.T
    return np.linalg.norm(source @ rotation.T - target)


# ------------------------------------------------------------- known answers
@pytest.mark.parametrize("data", ["face_landmarks", "skull_landmarks"])
def test_similar_copies_align_to_zero_residual(data, request):
    base = request.getfixturevalue(data)
    X, rotations, scales, translations = similar_copies(base)
    gpa = GeneralizedProcrustes().fit(X)

    aligned = gpa.transform(X)
    assert np.abs(aligned - gpa.mean_shape_).max() < EXACT
    assert gpa.procrustes_distances_.max() < EXACT
    # the mean is the original configuration, centred and at unit centroid size, up to a rotation
    centred = base - base.mean(0)
    assert np.linalg.norm(gpa.mean_shape_) == pytest.approx(1.0, abs=EXACT)
    assert opa_residual(centred / np.linalg.norm(centred), gpa.mean_shape_) < EXACT
    # the learned parameters undo the known similarities
    assert np.abs(gpa.translations_ - X.mean(axis=1)).max() < EXACT
    assert np.abs(gpa.scales_ * scales * np.linalg.norm(centred) - 1).max() < EXACT
    common = gpa.rotations_ @ rotations  # R_fit R_true is the same rotation for every copy
    assert np.abs(common - common[0]).max() < EXACT
    assert np.abs(np.linalg.det(gpa.rotations_) - 1).max() < EXACT


def test_fit_transform_is_fit_then_transform_and_the_stored_parameters(face_landmarks):
    X, *_ = similar_copies(face_landmarks + np.random.default_rng(3).normal(size=(6, 5, 3)), seed=1)
    gpa = GeneralizedProcrustes()
    fitted = gpa.fit_transform(X)
    assert np.abs(fitted - gpa.transform(X)).max() < EXACT
    by_hand = gpa.scales_[:, None, None] * (X - gpa.translations_[:, None, :]) @ gpa.rotations_.transpose(0, 2, 1)
    assert np.abs(fitted - by_hand).max() < EXACT
    assert np.abs(np.linalg.norm(fitted - gpa.mean_shape_, axis=(1, 2)) - gpa.procrustes_distances_).max() < EXACT


def test_reflections_are_never_used(face_landmarks):
    mirror = face_landmarks * np.array([-1.0, 1.0, 1.0])
    X = np.stack([face_landmarks, mirror @ random_rotations(1, 3, 5)[0].T])
    # scipy's ordinary Procrustes allows reflections: for it the mirrored copy matches exactly
    assert scipy_procrustes(X[0], X[1])[2] < EXACT
    gpa = GeneralizedProcrustes().fit(X)
    assert gpa.procrustes_distances_.min() > 0.05
    assert np.abs(np.linalg.det(gpa.rotations_) - 1).max() < EXACT
    aligned = gpa.transform(mirror[None])
    assert np.linalg.norm(aligned[0] - gpa.mean_shape_) > 0.05


def test_scaling_false_preserves_sizes_and_aligns_rigid_copies(skull_landmarks):
    X, rotations, _, _ = similar_copies(skull_landmarks, scaling=False)
    gpa = GeneralizedProcrustes(scaling=False).fit(X)
    assert np.all(gpa.scales_ == 1.0)
    centred = skull_landmarks - skull_landmarks.mean(0)
    assert np.linalg.norm(gpa.mean_shape_) == pytest.approx(np.linalg.norm(centred), rel=EXACT)
    assert opa_residual(centred, gpa.mean_shape_) < EXACT * np.linalg.norm(centred)
    assert np.abs(gpa.transform(X) - gpa.mean_shape_).max() < EXACT * np.linalg.norm(centred)
    # sizes of new configurations are preserved by transform
    bigger = 3.0 * X[:2]
    sizes = np.linalg.norm(bigger - bigger.mean(axis=1, keepdims=True), axis=(1, 2))
    assert np.linalg.norm(gpa.transform(bigger), axis=(1, 2)) == pytest.approx(sizes, rel=EXACT)


# ----------------------------------------------------------------- references
def test_transform_matches_scipy_ordinary_procrustes(face_population):
    gpa = GeneralizedProcrustes().fit(face_population)
    new = face_population[0] @ random_rotations(1, 3, 7)[0].T * 1.7 + 4.0
    mean_std, fitted, disparity = scipy_procrustes(gpa.mean_shape_, new)
    # scipy standardises the mean (already centred, unit size) and fits the new configuration to it;
    # near shapes need no reflection, so its result is the rotation-only fit
    assert np.abs(mean_std - gpa.mean_shape_).max() < EXACT
    assert np.abs(gpa.transform(new[None])[0] - fitted).max() < EXACT
    # disparity = sin^2 rho = the squared full Procrustes distance
    assert np.linalg.norm(gpa.transform(new[None])[0] - gpa.mean_shape_) ** 2 == pytest.approx(disparity, rel=1e-8)


def test_two_configurations_agree_with_scipy_disparity(face_population):
    # For two shapes at Procrustes angle rho, the full Procrustes mean bisects the angle:
    # each is at distance d = sin(rho/2) from it, and scipy's disparity is sin^2(rho) = 1 - (1 - 2 d^2)^2.
    X = face_population[:2]
    disparity = scipy_procrustes(X[0], X[1])[2]
    gpa = GeneralizedProcrustes(tol=1e-12).fit(X)
    d = gpa.procrustes_distances_
    assert d[0] == pytest.approx(d[1], rel=1e-8)
    assert 1 - (1 - 2 * d[0] ** 2) ** 2 == pytest.approx(disparity, rel=1e-8)


def test_planar_mean_is_the_complex_eigenvector(skull_landmarks):
    # Kent (1994); Dryden & Mardia (2016), Result 6.2: in 2D the full Procrustes mean is the leading
    # eigenvector of sum_i z_i z_i^* / (z_i^* z_i), z_i the centred configurations as complex vectors.
    rng = np.random.default_rng(11)
    X, *_ = similar_copies(skull_landmarks, n=8, seed=2)
    X = X + rng.normal(scale=5.0, size=X.shape)
    gpa = GeneralizedProcrustes(tol=1e-12).fit(X)
    z = X[..., 0] + 1j * X[..., 1]
    z = z - z.mean(axis=1, keepdims=True)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    eigenvector = np.linalg.eigh(np.einsum("ij,ik->jk", z, z.conj()))[1][:, -1]
    mean = gpa.mean_shape_[:, 0] + 1j * gpa.mean_shape_[:, 1]
    assert abs(np.vdot(eigenvector, mean)) == pytest.approx(1.0, abs=1e-10)


def test_real_population_is_invariant_to_similarities_of_each_face(face_population):
    gpa = GeneralizedProcrustes().fit(face_population)
    assert 0 < gpa.procrustes_distances_.max() < 0.2 and gpa.n_iter_ < gpa.n_iter
    moved = np.stack([similar_copies(face, n=1, seed=k)[0][0] for k, face in enumerate(face_population)])
    again = GeneralizedProcrustes().fit(moved)
    assert again.procrustes_distances_ == pytest.approx(gpa.procrustes_distances_, abs=1e-7)
    assert opa_residual(again.mean_shape_, gpa.mean_shape_) < 1e-7


# ---------------------------------------------------------- types and copies
def test_outputs_follow_the_input_type_and_the_input_is_not_modified(face_population):
    X64 = face_population[:5].copy()
    gpa = GeneralizedProcrustes().fit(X64)
    assert isinstance(gpa.mean_shape_, np.ndarray) and gpa.mean_shape_.dtype == np.float64
    assert np.array_equal(X64, face_population[:5])

    X32 = torch.as_tensor(face_population[:5], dtype=torch.float32)
    before = X32.clone()
    gpa32 = GeneralizedProcrustes().fit(X32)
    aligned = gpa32.transform(X32)
    assert isinstance(aligned, torch.Tensor) and aligned.dtype == torch.float32
    assert gpa32.mean_shape_.dtype == torch.float32 and torch.equal(X32, before)
    assert np.abs(aligned.numpy() - gpa.transform(X64)).max() < 1e-5
    # a numpy-fitted estimator transforms tensors, and integer input becomes float64
    assert gpa.transform(X32).dtype == torch.float32
    assert gpa.transform(np.round(face_population[:2]).astype(int)).dtype == np.float64


def test_convergence_warning_when_n_iter_is_too_small(face_population):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gpa = GeneralizedProcrustes(n_iter=1).fit(face_population)
    assert gpa.n_iter_ == 1


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((3, 5)), "shape \\(n_samples, n_landmarks, D\\)"),
        (np.zeros((3, 5, 4)), "2D or 3D"),
        (np.ones((1, 5, 3)), "at least 2 configuration"),
        (np.ones((3, 1, 3)), "at least 2 landmarks"),
        (np.where(np.arange(30).reshape(2, 5, 3) == 7, np.nan, 1.0), "NaN or inf"),
        (np.where(np.arange(30).reshape(2, 5, 3) == 7, np.inf, 1.0), "NaN or inf"),
        (np.ones((2, 5, 3)), "zero centroid size"),
    ],
)
def test_fit_rejects_invalid_configurations(X, match):
    with pytest.raises(ValueError, match=match):
        GeneralizedProcrustes().fit(X)


def test_fit_rejects_non_numeric_data():
    with pytest.raises(TypeError, match="X must"):
        GeneralizedProcrustes().fit([[["a", "b"]]])


@pytest.mark.parametrize(
    "params, error",
    [({"n_iter": 0}, ValueError), ({"n_iter": 2.5}, TypeError), ({"tol": -1.0}, ValueError),
     ({"tol": "small"}, TypeError), ({"scaling": "yes"}, TypeError)],
)
def test_invalid_parameters_raise_at_fit(params, error, face_population):
    with pytest.raises(error, match=next(iter(params))):
        GeneralizedProcrustes(**params).fit(face_population[:3])


def test_transform_checks_landmark_count_and_dimension(face_population, skull_landmarks):
    gpa = GeneralizedProcrustes().fit(face_population[:3])
    with pytest.raises(ValueError, match="4 landmarks in 3D"):
        gpa.transform(face_population[:2, :4])
    with pytest.raises(ValueError, match="in 2D"):
        gpa.transform(face_population[:2, :, :2])
    with pytest.raises(ValueError, match="zero centroid size"):
        gpa.transform(np.ones((1, 5, 3)))


def test_transform_before_fit_raises_not_fitted(face_population):
    with pytest.raises(NotFittedError):
        GeneralizedProcrustes().transform(face_population[:2])


# -------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(check):
    estimator = GeneralizedProcrustes()
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_clone_and_pickle_round_trip(face_population):
    gpa = GeneralizedProcrustes(scaling=False, n_iter=20, tol=1e-6).fit(face_population[:6])
    copy = clone(gpa)
    assert copy.get_params() == gpa.get_params() and not hasattr(copy, "mean_shape_")
    restored = pickle.loads(pickle.dumps(gpa))
    assert np.array_equal(restored.transform(face_population[6:9]), gpa.transform(face_population[6:9]))
    assert restored.n_iter_ == gpa.n_iter_
