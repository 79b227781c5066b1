"""TangentPCA (PCA of momenta in the kernel metric) and shoot (momentum -> shape)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

import skshapes as sks
from skshapes.reductions import kernel_matrix as scaled_kernel_matrix
from skshapes.statistics.shooting import shoot
from skshapes.statistics.tangent_pca import TangentPCA

from conftest import DATA_FREE_CHECKS, assert_close, assert_relative_close


SIGMA = 20.0  # the skull outlines span about 200 units; their template has 150 points about 8 apart


@pytest.fixture(scope="module")
def template():
    skulls = sks.datasets.load_skulls()
    return skulls.template.with_points(skulls.template.points.double())


def reference_kernel(q, sigma):
    """Dense K(q, q) written independently of the model: a sum of Gaussians exp(-|x - y|^2 / 2 s^2)."""
    sigmas = sigma if isinstance(sigma, tuple) else (sigma,)
    return sum(scaled_kernel_matrix(q / s, q / s) for s in sigmas)


def whiten(momenta, kernel):
    """Coordinates where the kernel metric is Euclidean: Lambda^1/2 U^T p for K = U Lambda U^T (K may be singular)."""
    values, vectors = np.linalg.eigh(kernel)
    root = vectors * np.sqrt(np.clip(values, 0, None))  # K = root root^T
    momenta = np.asarray(momenta, dtype=np.float64)
    return np.einsum("ck,...cd->...kd", root, momenta).reshape(*momenta.shape[:-2], -1)


def k_inner(a, b, kernel):
    return float(np.einsum("cd,ce,ed->", np.asarray(a), kernel, np.asarray(b)))


def angle_degrees(a, b, kernel):
    """Angle between the lines spanned by two momenta, in the kernel metric."""
    cosine = abs(k_inner(a, b, kernel)) / math.sqrt(k_inner(a, a, kernel) * k_inner(b, b, kernel))
    return math.degrees(math.acos(min(cosine, 1.0)))


def simulated_population(template, model, n_samples=60, noise=1e-4, seed=0):
    """Momenta from 3 modes orthonormal in the kernel metric, with exactly known variances, plus tiny noise.

    Modes 1 and 2 are smooth (K r), mode 3 is rough white noise: K-orthonormal, it has a large
    Euclidean norm, so that a Euclidean PCA ranks it first.
    """
    g = torch.Generator().manual_seed(seed)
    q = model.control_points_of(template).detach()
    kernel = reference_kernel(q, model.sigma).numpy()
    c, d = q.shape
    raw = [
        kernel @ torch.randn(c, d, generator=g, dtype=torch.float64).numpy(),
        kernel @ torch.randn(c, d, generator=g, dtype=torch.float64).numpy(),
        torch.randn(c, d, generator=g, dtype=torch.float64).numpy(),
    ]
    modes = []
    for vector in raw:  # Gram-Schmidt in the kernel metric
        for mode in modes:
            vector = vector - k_inner(vector, mode, kernel) * mode
        modes.append(vector / math.sqrt(k_inner(vector, vector, kernel)))
    modes = np.stack(modes)
    std = np.array([3.0, 2.0, 1.0])
    z = torch.randn(n_samples, 3, generator=g, dtype=torch.float64).numpy()
    z -= z.mean(axis=0)
    z = np.linalg.qr(z)[0] * math.sqrt(n_samples - 1)  # centred scores with sample covariance exactly I
    mean = 0.1 * (kernel @ torch.randn(c, d, generator=g, dtype=torch.float64).numpy())
    momenta = mean + np.einsum("nk,k,kcd->ncd", z, std, modes)
    momenta = momenta + noise * (kernel @ torch.randn(n_samples, c, d, generator=g, dtype=torch.float64).numpy())
    return momenta, modes, std**2, kernel


# --------------------------------------------------------------- recovery
@pytest.mark.parametrize("normalization", [None, "rows"])
def test_recovers_modes_orthogonal_in_the_kernel_metric(template, normalization):
    # control_points=None: the skull template has coincident points, so K(q, q) is exactly singular;
    # the dual (Gram) computation needs no factorisation of it.
    model = sks.LDDMM(sigma=SIGMA, backend="torch", normalization=normalization)
    momenta, modes, variances, kernel = simulated_population(template, model)
    pca = TangentPCA(n_components=3, model=model, template=template).fit(torch.from_numpy(momenta))

    assert pca.components_.shape == (3, *modes.shape[1:])
    # Principal angles between the subspaces, in whitened coordinates (the metric made Euclidean).
    angles = np.degrees(scipy.linalg.subspace_angles(whiten(pca.components_, kernel).T, whiten(modes, kernel).T))
    assert angles.max() < 1.0, angles
    # Distinct variances: each component is identified, not only the span.
    for k in range(3):
        assert angle_degrees(pca.components_[k], modes[k], kernel) < 1.0
    # The small noise moves them a little: measured angles <= 0.17 deg, variances within 0.15 %.
    np.testing.assert_allclose(pca.explained_variance_, variances, rtol=1e-2)
    gram = np.array([[k_inner(a, b, kernel) for b in pca.components_] for a in pca.components_])
    np.testing.assert_allclose(gram, np.eye(3), atol=1e-10)  # K-orthonormal components
    np.testing.assert_allclose(pca.mean_, momenta.mean(axis=0), rtol=0, atol=1e-12)
    assert pca.n_components_ == 3 and pca.n_samples_ == 60
    assert pca.explained_variance_ratio_.sum() > 0.999  # the noise holds the rest
    np.testing.assert_allclose(pca.control_points_, model.control_points_of(template).numpy())


def test_euclidean_pca_does_not_recover_them(template):
    """The metric matters: sklearn's PCA on the flattened momenta ranks the rough mode first."""
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta, modes, variances, kernel = simulated_population(template, model)
    euclidean = PCA(n_components=3).fit(momenta.reshape(len(momenta), -1))
    components = euclidean.components_.reshape(3, *modes.shape[1:])
    angles = [angle_degrees(components[k], modes[k], kernel) for k in range(3)]
    assert max(angles) > 30.0, angles  # measured: 89 degrees for all three; the first is mode 3
    assert angle_degrees(components[0], modes[2], kernel) < 1.0
    # The span is the same (the data lie on the 3 modes), only the directions and variances differ.
    spans = np.degrees(scipy.linalg.subspace_angles(whiten(components, kernel).T, whiten(modes, kernel).T))
    assert spans.max() < 1.0
    # Without model and template, TangentPCA is that Euclidean PCA.
    plain = TangentPCA(n_components=3).fit(momenta)
    for ours, theirs in zip(plain.components_, components):
        sign = np.sign(np.sum(ours * theirs))
        np.testing.assert_allclose(ours, sign * theirs, atol=1e-8)
    np.testing.assert_allclose(plain.explained_variance_, euclidean.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(plain.explained_variance_ratio_, euclidean.explained_variance_ratio_, rtol=1e-9)
    assert plain.control_points_ is None


@pytest.mark.parametrize("sigma", [SIGMA, (10.0, 40.0)])
def test_matches_cholesky_whitening_with_sklearn_pca(template, sigma):
    """Reference: K = L L^T, PCA of the whitened momenta L^T p, components mapped back by L^-T."""
    model = sks.LDDMM(sigma=sigma, control_points=30, backend="torch")  # 30 points ~40 apart: K well conditioned
    g = torch.Generator().manual_seed(3)
    q = model.control_points_of(template)
    kernel = reference_kernel(q, sigma).numpy()
    momenta = torch.randn(25, *q.shape, generator=g, dtype=torch.float64).numpy() * np.linspace(0.2, 2, 30)[:, None]
    factor = np.linalg.cholesky(kernel)
    whitened = np.einsum("ck,ncd->nkd", factor, momenta).reshape(25, -1)  # L^T p, flattened
    reference = PCA(n_components=5, svd_solver="full").fit(whitened)
    back = scipy.linalg.solve_triangular(
        factor.T, reference.components_.reshape(5, *q.shape).transpose(1, 0, 2).reshape(30, -1), lower=False
    )
    expected = back.reshape(30, 5, 2).transpose(1, 0, 2)

    pca = TangentPCA(n_components=5, model=model, template=template).fit(momenta)
    for ours, theirs in zip(pca.components_, expected):
        sign = np.sign(k_inner(ours, theirs, kernel))
        np.testing.assert_allclose(ours, sign * theirs, rtol=0, atol=1e-8 * np.abs(theirs).max())
    np.testing.assert_allclose(pca.explained_variance_, reference.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(pca.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-9)
    np.testing.assert_allclose(pca.singular_values_, reference.singular_values_, rtol=1e-9)
    scores = pca.transform(momenta)
    reference_scores = reference.transform(whitened)
    np.testing.assert_allclose(np.abs(scores), np.abs(reference_scores), rtol=0, atol=1e-8 * np.abs(scores).max())


def test_rows_normalisation_has_the_same_metric(template):
    """The rows-normalised LDDMM's Hamiltonian is the same 1/2 p^T K p: same PCA."""
    momenta = simulated_population(template, sks.LDDMM(sigma=SIGMA, backend="torch"), n_samples=20)[0]
    plain = TangentPCA(3, sks.LDDMM(sigma=SIGMA, backend="torch"), template).fit(momenta)
    rows = TangentPCA(3, sks.LDDMM(sigma=SIGMA, backend="torch", normalization="rows"), template).fit(momenta)
    np.testing.assert_array_equal(plain.components_, rows.components_)


# --------------------------------------------------------------- transforms
def test_round_trip_with_all_components(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    g = torch.Generator().manual_seed(1)
    momenta = torch.randn(12, 150, 2, generator=g, dtype=torch.float64)
    pca = TangentPCA(model=model, template=template).fit(momenta)
    assert pca.n_components_ == 11  # centred data: rank n_samples - 1
    scores = pca.transform(momenta)
    assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float64 and scores.shape == (12, 11)
    back = pca.inverse_transform(scores)
    assert_relative_close(back, momenta, rtol=1e-10, name="inverse_transform(transform(m))")
    # The training scores are centred, uncorrelated, with the explained variances.
    covariance = scores.T @ scores / 11
    assert_close(covariance, torch.diag(torch.from_numpy(pca.explained_variance_)), atol=1e-9, rtol=0)
    assert abs(pca.explained_variance_ratio_.sum() - 1) < 1e-12


def test_n_components_as_a_fraction_of_variance(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta, _, variances, _ = simulated_population(template, model)
    pca = TangentPCA(n_components=0.9, model=model, template=template).fit(momenta)
    # variances 9, 4, 1 (of 14): two components explain 92.9 %
    assert pca.n_components_ == 2
    assert TangentPCA(n_components=0.95, model=model, template=template).fit(momenta).n_components_ == 3


def test_outputs_follow_the_input_kind_and_dtype(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta = simulated_population(template, model, n_samples=10)[0]
    pca = TangentPCA(2, model, template).fit(momenta)
    for data in (momenta, momenta.astype(np.float32), torch.from_numpy(momenta).float()):
        scores = pca.transform(data)
        back = pca.inverse_transform(scores)
        assert type(scores) is type(data) and type(back) is type(data)
        assert scores.dtype == data.dtype and back.dtype == data.dtype
        assert tuple(back.shape) == tuple(data.shape)
    assert isinstance(pca.components_, np.ndarray) and pca.components_.dtype == np.float64


def test_inputs_are_not_modified(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta = torch.from_numpy(simulated_population(template, model, n_samples=10)[0])
    before = momenta.clone()
    pca = TangentPCA(2, model, template).fit(momenta)
    scores = pca.transform(momenta)
    scores_before = scores.clone()
    pca.inverse_transform(scores)
    assert torch.equal(momenta, before) and torch.equal(scores, scores_before)


# --------------------------------------------------------------- validation
def test_validation_errors(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta = torch.randn(5, 150, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"\(n_samples, C, D\)"):
        TangentPCA(model=model, template=template).fit(momenta[0])
    with pytest.raises(ValueError, match=r"parameter_shape.*\(150, 2\)"):
        TangentPCA(model=model, template=template).fit(momenta[:, :100])
    with pytest.raises(ValueError, match="at least 2"):
        TangentPCA().fit(momenta[:1])
    with pytest.raises(ValueError, match="together"):
        TangentPCA(model=model).fit(momenta)
    with pytest.raises(ValueError, match="together"):
        TangentPCA(template=template).fit(momenta)
    with pytest.raises(TypeError, match="LDDMM"):
        TangentPCA(model=sks.RigidMotion(), template=template).fit(momenta)
    with pytest.raises(TypeError, match="PolyData"):
        TangentPCA(model=model, template=template.points).fit(momenta)
    with pytest.raises(ValueError, match="n_components=5"):
        TangentPCA(n_components=5).fit(momenta)  # rank 4
    with pytest.raises(ValueError, match="n_components"):
        TangentPCA(n_components=1.5).fit(momenta)
    with pytest.raises(TypeError, match="n_components"):
        TangentPCA(n_components="all").fit(momenta)
    with pytest.raises(ValueError, match="NaN"):
        TangentPCA().fit(torch.full((3, 4, 2), float("nan")))
    with pytest.raises(TypeError, match="numbers"):
        TangentPCA().fit([["a"]])
    with pytest.raises(ValueError, match="zero variance"):
        TangentPCA().fit(torch.ones(3, 4, 2))
    pca = TangentPCA(2).fit(momenta)
    with pytest.raises(ValueError, match=r"\(n_samples, 150, 2\)"):
        pca.transform(momenta[:, :10])
    with pytest.raises(ValueError, match=r"\(n_samples, 2\)"):
        pca.inverse_transform(torch.zeros(3, 3))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        TangentPCA().transform(np.zeros((2, 3, 2)))
    with pytest.raises(NotFittedError):
        TangentPCA().inverse_transform(np.zeros((2, 1)))


# --------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(check):
    estimator = TangentPCA(n_components=3)
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_fit_returns_self_and_refit_forgets(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta = simulated_population(template, model, n_samples=10)[0]
    pca = TangentPCA(2, model, template)
    assert pca.fit(momenta) is pca
    assert set(vars(pca)) - {"n_components", "model", "template"} <= {
        name for name in vars(pca) if name.endswith("_") or name.startswith("_")
    }
    first = pca.components_.copy()
    pca.set_params(n_components=1).fit(momenta)
    assert pca.components_.shape[0] == 1
    np.testing.assert_allclose(pca.components_[0], first[0])


def test_pickle_and_clone(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch", control_points=30)
    momenta = torch.randn(8, 30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    pca = TangentPCA(3, model, template).fit(momenta)
    restored = pickle.loads(pickle.dumps(pca))
    assert torch.equal(restored.transform(momenta), pca.transform(momenta))
    np.testing.assert_array_equal(restored.components_, pca.components_)
    cloned = clone(pca)
    assert cloned.get_params()["n_components"] == 3 and not hasattr(cloned, "components_")
    assert torch.equal(cloned.template.points, template.points)
    np.testing.assert_array_equal(cloned.fit(momenta).components_, pca.components_)


# --------------------------------------------------------------- shoot
def test_shoot_a_mode_at_two_standard_deviations(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    momenta = simulated_population(template, model, n_samples=20)[0] * 0.5
    pca = TangentPCA(2, model, template).fit(momenta)
    for sign in (1, -1):
        mode = pca.mean_ + sign * 2 * math.sqrt(pca.explained_variance_[0]) * pca.components_[0]
        shape = shoot(template, mode, model)
        expected = model.morph(template, torch.from_numpy(mode)).shape
        assert isinstance(shape, sks.PolyData)
        assert torch.equal(shape.points, expected.points)
        assert torch.equal(shape.edges, template.edges)
        assert not torch.allclose(shape.points, template.points)
    path = shoot(template, mode, model, return_path=True)
    assert len(path) == model.n_steps + 1 and path[0] is template
    assert torch.equal(path[-1].points, shape.points)


def test_shoot_converts_dtype_and_keeps_gradients(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch", control_points=20)
    single = template.with_points(template.points.float())
    momentum = np.random.default_rng(0).normal(size=(20, 2))  # float64 numpy
    shape = shoot(single, momentum, model)
    assert shape.dtype == torch.float32
    expected = model.morph(single, torch.from_numpy(momentum).float()).shape
    assert torch.equal(shape.points, expected.points)
    tensor = torch.from_numpy(momentum).requires_grad_(True)
    moved = shoot(template, tensor, model)
    moved.points.sum().backward()
    assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
    zero = shoot(template, np.zeros((20, 2)), model)
    assert_close(zero.points, template.points, rtol=0, atol=1e-12)


def test_shoot_validation(template):
    model = sks.LDDMM(sigma=SIGMA, backend="torch")
    with pytest.raises(ValueError, match=r"momentum must have shape \(C, D\) = \(150, 2\)"):
        shoot(template, np.zeros((149, 2)), model)
    with pytest.raises(TypeError, match="template must be a PolyData"):
        shoot(template.points, np.zeros((150, 2)), model)
    with pytest.raises(TypeError, match="DeformationModel"):
        shoot(template, np.zeros((150, 2)), "lddmm")
    with pytest.raises(ValueError, match="NaN"):
        shoot(template, np.full((150, 2), np.nan), model)
    with pytest.raises(TypeError, match="numbers"):
        shoot(template, "zeros", model)
