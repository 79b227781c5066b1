"""Wasserstein barycentre: closed forms (translations, dilations), POT's exact LP barycentre, inputs, sklearn API."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from conftest import DATA_FREE_CHECKS
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import estimator_checks

from skshapes.datasets import load_skulls
from skshapes.losses import SinkhornLoss
from skshapes.shapes import PolyData, farthest_point_sampling
from skshapes.statistics.barycenter import WassersteinBarycenter


SHIFTS_2D = torch.tensor([[0.0, 0.0], [30.0, 10.0], [-10.0, 40.0]], dtype=torch.float64)


@pytest.fixture(scope="module")
def skulls():
    return load_skulls()


@pytest.fixture(scope="module")
def skull_points(skulls):
    """One skull outline as a cloud of 89 points, float64 (the outline spans ~150 units)."""
    return skulls.shapes[0].points.to(torch.float64)[::2]


def subsample(shape, n):
    points = shape.points.to(torch.float64)
    return points[farthest_point_sampling(points, n)]


def exact_objective(support, clouds, weights):
    """sum_k w_k W_2^2(support, cloud_k) / 2 for uniform measures, by POT's exact LP solver."""
    ot = pytest.importorskip("ot")
    support = np.asarray(support)
    a = np.full(len(support), 1.0 / len(support))
    total = 0.0
    for w, cloud in zip(weights, clouds):
        cloud = np.asarray(cloud)
        total += w * 0.5 * ot.emd2(a, np.full(len(cloud), 1.0 / len(cloud)), ot.dist(support, cloud))
    return total


# ------------------------------------------------------------- closed forms
@pytest.mark.parametrize("weights", [None, [0.2, 0.5, 0.3]])
def test_translated_copies_give_the_cloud_at_the_weighted_mean_translation(skull_points, weights):
    # Translations enter the quadratic cost linearly, so tau_{t_bar} beta is a fixed point:
    # the barycentre is the cloud at the weighted mean translation, and F = sum_k w_k |t_k - t_bar|^2 / 2.
    blur = 1.0
    bary = WassersteinBarycenter(blur=blur).fit([skull_points + t for t in SHIFTS_2D], weights=weights)
    w = torch.as_tensor(bary.weights_)
    mean_shift = (w[:, None] * SHIFTS_2D).sum(dim=0)
    error = (bary.barycenter_ - (skull_points + mean_shift)).norm(dim=1)
    assert float(error.mean()) < blur
    centroid_shift = bary.barycenter_.mean(dim=0) - skull_points.mean(dim=0)
    assert float((centroid_shift - mean_shift).norm()) < 1e-3 * float(mean_shift.norm())
    spread = 0.5 * float((w * ((SHIFTS_2D - mean_shift) ** 2).sum(dim=1)).sum())
    assert bary.loss_ == pytest.approx(spread, rel=1e-3)
    assert bary.loss_history_[-1] == bary.loss_ and len(bary.loss_history_) == bary.n_iter_ + 1


def test_translated_copies_in_3d_from_another_initial_cloud():
    g = torch.Generator().manual_seed(0)
    cloud = 10.0 * torch.rand(40, 3, generator=g, dtype=torch.float64)
    shifts = torch.tensor([[5.0, 0.0, 0.0], [0.0, -5.0, 2.0]], dtype=torch.float64)
    blur = 0.2
    bary = WassersteinBarycenter(blur=blur, init=cloud + 3.0).fit([cloud + t for t in shifts], weights=[3, 1])
    target = cloud + (0.75 * shifts[0] + 0.25 * shifts[1])
    assert float((bary.barycenter_ - target).norm(dim=1).mean()) < blur
    assert float((bary.barycenter_.mean(dim=0) - target.mean(dim=0)).norm()) < 1e-3 * float(target.mean(dim=0).norm())


def test_dilations_give_the_mean_dilation(skull_points):
    # The OT map between s1 beta and s2 beta is the dilation x -> (s2 / s1) x (the gradient of a convex
    # function), so the W2 barycentre of dilations (and translations) is the mean dilation (Agueh & Carlier 2011).
    centred = skull_points - skull_points.mean(dim=0)
    shift = torch.tensor([20.0, -10.0], dtype=torch.float64)
    blur = 1.0
    bary = WassersteinBarycenter(blur=blur).fit([0.5 * centred, 1.5 * centred + shift])
    error = (bary.barycenter_ - (centred + shift / 2)).norm(dim=1)
    assert float(error.mean()) < blur and float(error.max()) < blur
    assert bary.loss_ < bary.loss_history_[0]


def test_matches_the_exact_free_support_barycentre_of_pot(skulls):
    # Cuturi & Doucet (2014), Algorithm 2 in POT with exact (LP) transport, from the same initial support.
    # Here blur (1 unit) is well below the point spacing (~15 units): the Sinkhorn loop needs scaling=0.99
    # to be accurate (with 0.9 the barycentre's exact objective is ~15% above POT's).
    ot = pytest.importorskip("ot")
    clouds = [subsample(skulls.shapes[1], 30), subsample(skulls.shapes[4], 20)]
    weights = np.array([0.7, 0.3])
    arrays = [c.numpy() for c in clouds]
    reference = ot.lp.free_support_barycenter(
        arrays, [np.full(len(x), 1.0 / len(x)) for x in arrays], arrays[0].copy(), weights=weights,
        numItermax=100, stopThr=1e-9,
    )
    bary = WassersteinBarycenter(blur=1.0, scaling=0.99).fit(clouds, weights=weights)
    support = bary.barycenter_.numpy()
    uniform = np.full(len(support), 1.0 / len(support))
    assert np.sqrt(ot.emd2(uniform, uniform, ot.dist(support, reference))) < 0.1 * bary.blur
    reference_objective = exact_objective(reference, arrays, weights)
    assert exact_objective(support, arrays, weights) == pytest.approx(reference_objective, rel=1e-4)
    # the debiased Sinkhorn objective is close to the exact one at this blur (entropic bias ~ blur^2)
    assert bary.loss_ == pytest.approx(reference_objective, rel=1e-2)


def test_zero_weight_shapes_are_ignored(skull_points):
    shapes = [skull_points + t for t in SHIFTS_2D]
    bary = WassersteinBarycenter(blur=1.0).fit(shapes, weights=[0.0, 2.0, 0.0])
    assert np.allclose(bary.weights_, [0.0, 1.0, 0.0])
    # initialised on the only shape that counts, which is its own barycentre
    assert float((bary.barycenter_ - shapes[1]).abs().max()) < 1e-3 and bary.n_iter_ <= 1


# ------------------------------------------------------------ inputs, outputs
def test_curves_give_a_polydata_cloud_with_their_length_weighted_centroid(skulls):
    curves = [shape.to(dtype=torch.float64) for shape in skulls.shapes[:3]]
    bary = WassersteinBarycenter(blur=5.0, n_points=40).fit(curves, weights=[1.0, 1.0, 2.0])
    assert isinstance(bary.barycenter_, PolyData) and bary.barycenter_.kind == "cloud"
    assert bary.barycenter_.points.shape == (40, 2) and bary.barycenter_.dtype == torch.float64
    # each curve is the measure of its segment lengths; the barycentre's centroid is the mean of theirs
    # (a fixed-point step preserves it exactly when the transport plans meet their marginals, which
    # GeomLoss's loop does up to a small fraction of blur)
    centroids = torch.stack([(c.point_weights[:, None] * c.points).sum(0) / c.point_weights.sum() for c in curves])
    expected = (torch.as_tensor(bary.weights_)[:, None] * centroids).sum(dim=0)
    assert float((bary.barycenter_.points.mean(dim=0) - expected).norm()) < 0.05 * bary.blur
    assert bary.loss_ < 0.5 * bary.loss_history_[0]
    assert all(b <= a for a, b in zip(bary.loss_history_, bary.loss_history_[1:]))


def test_output_type_and_dtype_follow_the_inputs_which_are_not_modified(skull_points):
    clouds32 = [(skull_points + t).to(torch.float32) for t in SHIFTS_2D[:2]]
    before = [c.clone() for c in clouds32]
    bary = WassersteinBarycenter(blur=1.0).fit(clouds32)
    assert isinstance(bary.barycenter_, torch.Tensor) and bary.barycenter_.dtype == torch.float32
    assert all(torch.equal(c, b) for c, b in zip(clouds32, before))
    arrays = [c.numpy() for c in clouds32]
    out = WassersteinBarycenter(blur=1.0).fit(arrays).barycenter_
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert np.abs(out - bary.barycenter_.numpy()).max() < 1e-4


def test_objective_is_the_weighted_sinkhorn_divergence(skull_points):
    shapes = [skull_points, 1.2 * skull_points + 5.0]
    bary = WassersteinBarycenter(blur=2.0).fit(shapes, weights=[1.0, 3.0])
    loss = SinkhornLoss(blur=2.0)
    cloud = PolyData(bary.barycenter_)
    value = sum(w * float(loss(cloud, PolyData(s))) for w, s in zip(bary.weights_, shapes))
    assert bary.loss_ == pytest.approx(value, rel=1e-10)


def test_convergence_warning_when_n_iter_is_too_small(skull_points):
    centred = skull_points - skull_points.mean(dim=0)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        bary = WassersteinBarycenter(blur=1.0, n_iter=1, tol=0.0).fit([0.5 * centred, 1.5 * centred])
    assert bary.n_iter_ == 1


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "weights, match",
    [([1.0, 1.0], "shape \\(3,\\)"), ([1.0, -1.0, 1.0], "non-negative"), ([0.0, 0.0, 0.0], "all zero"),
     ([1.0, np.nan, 1.0], "finite"), ([[1.0, 1.0, 1.0]], "shape \\(3,\\)")],
)
def test_invalid_weights_raise(skull_points, weights, match):
    with pytest.raises(ValueError, match=match):
        WassersteinBarycenter().fit([skull_points] * 3, weights=weights)


def test_invalid_shapes_raise(skull_points, skulls):
    bad = skull_points.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="shapes\\[1\\] contains NaN"):
        WassersteinBarycenter().fit([skull_points, bad])
    with pytest.raises(ValueError, match="empty"):
        WassersteinBarycenter().fit([])
    with pytest.raises(TypeError, match="sequence"):
        WassersteinBarycenter().fit(skull_points)
    with pytest.raises(TypeError, match="not a mix"):
        WassersteinBarycenter().fit([skulls.shapes[0], skull_points])
    with pytest.raises(ValueError, match="differ in dimension"):
        WassersteinBarycenter().fit([skull_points, torch.zeros(5, 3, dtype=torch.float64)])
    with pytest.raises(ValueError, match="shapes\\[1\\] must have shape \\(N, D\\)"):
        WassersteinBarycenter().fit([skull_points, torch.zeros(5, dtype=torch.float64)])


@pytest.mark.parametrize(
    "params, error, match",
    [({"blur": 0.0}, ValueError, "blur"), ({"blur": "big"}, TypeError, "blur"),
     ({"scaling": 1.5}, ValueError, "scaling"), ({"reach": -1.0}, ValueError, "reach"),
     ({"n_iter": 0}, ValueError, "n_iter"), ({"n_iter": 1.5}, TypeError, "n_iter"),
     ({"tol": -1.0}, ValueError, "tol"), ({"n_points": 1000}, ValueError, "n_points"),
     ({"init": torch.zeros(4, 3)}, ValueError, "init is 3D"), ({"backend": "gpu"}, ValueError, "backend")],
)
def test_invalid_parameters_raise_at_fit(skull_points, params, error, match):
    with pytest.raises(error, match=match):
        WassersteinBarycenter(**params).fit([skull_points, skull_points + 1.0])


# -------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(check):
    estimator = WassersteinBarycenter()
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_clone_get_params_and_pickle(skull_points):
    bary = WassersteinBarycenter(blur=2.0, n_points=30, tol=1e-2).fit([skull_points, skull_points + 3.0])
    copy = clone(bary)
    assert copy.get_params() == bary.get_params() and not hasattr(copy, "barycenter_")
    assert copy.get_params()["n_points"] == 30
    restored = pickle.loads(pickle.dumps(bary))
    assert torch.equal(restored.barycenter_, bary.barycenter_) and restored.loss_history_ == bary.loss_history_
