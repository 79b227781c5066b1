"""PermutationGLM: OLS statistics against lstsq, permutations against a brute-force loop, calibration, TFCE, sklearn."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.stats
import torch
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import estimator_checks

from skshapes.statistics import glm as glm_module
from skshapes.statistics.glm import PermutationGLM, benjamini_hochberg, tfce

from conftest import DATA_FREE_CHECKS, assert_close

# Closed-form OLS in float64 (QR against lstsq's SVD): agreement to rounding, far below this.
OLS_RTOL = 1e-6
# Permuted statistics: our batched formula ||E||^2 - ||G'PE||^2 against a refit by lstsq per permutation.
PERMUTED_RTOL = 1e-9


def simulate(n=24, n_features=7, k=1, c=2, seed=0, effect=0.0):
    """Y (n, F) with nuisance effects, X (n, k) correlated with the covariates (n, c)."""
    rng = np.random.default_rng(seed)
    covariates = rng.normal(size=(n, c))
    X = rng.normal(size=(n, k)) + (0.6 * covariates[:, :1] if c else 0.0)
    Y = rng.normal(size=(n, n_features)) + 3.0 + covariates @ rng.normal(size=(c, n_features))
    Y += effect * X[:, :1]
    return Y, X, covariates


def ols(Y, M, C):
    """Reference OLS by numpy.linalg.lstsq: beta (p, F), t (F,) for a 1-row C, residual sum of squares."""
    beta, *_ = np.linalg.lstsq(M, Y, rcond=None)
    rss = ((Y - M @ beta) ** 2).sum(axis=0)
    dof = M.shape[0] - M.shape[1]
    C = np.atleast_2d(C)
    variance = C @ np.linalg.inv(M.T @ M) @ C.T
    t = (C @ beta)[0] / np.sqrt(rss / dof * variance[0, 0])
    return beta, t, rss


def design_of(X, covariates):
    return np.column_stack([X, np.ones(len(X)), covariates])


# ---------------------------------------------------------------------- observed statistics
@pytest.mark.parametrize("contrast", [None, [0.0, 1.0, 0.0], [1.0, -1.0, 0.5]])
def test_t_effect_and_beta_equal_lstsq_with_covariates(contrast):
    Y, X, covariates = simulate(n=30, n_features=40, k=3, c=2, seed=1, effect=0.4)
    glm = PermutationGLM(n_permutations=20, random_state=0).fit(Y, X, contrast=contrast, covariates=covariates)
    M = design_of(X, covariates)
    c = np.r_[[1.0, 0.0, 0.0] if contrast is None else contrast, 0.0, 0.0, 0.0]
    beta, t, _ = ols(Y, M, c)
    assert_close(glm.t_, t, rtol=OLS_RTOL, name="t_")
    assert glm.statistic_ is glm.t_ and not hasattr(glm, "f_")
    assert_close(glm.beta_, beta, rtol=OLS_RTOL, atol=1e-12, name="beta_")
    assert_close(glm.effect_, c @ beta, rtol=OLS_RTOL, atol=1e-12, name="effect_")
    assert glm.dof_ == 30 - 6 and glm.design_.shape == (30, 6) and glm.contrast_.shape == (1, 6)


def test_effect_is_the_adjusted_group_difference():
    """With a 0/1 group and no covariate, effect_ is the difference of the group means and t the pooled t test."""
    rng = np.random.default_rng(3)
    group = np.repeat([0.0, 1.0], [9, 11])
    Y = rng.normal(size=(20, 5)) + 2.0 * group[:, None]
    glm = PermutationGLM(n_permutations=10, random_state=0).fit(Y, group)
    assert_close(glm.effect_, Y[group == 1].mean(0) - Y[group == 0].mean(0), rtol=1e-12, name="effect_")
    assert_close(glm.t_, scipy.stats.ttest_ind(Y[group == 1], Y[group == 0]).statistic, rtol=1e-10, name="t_")


@pytest.mark.parametrize(
    "contrast, reduced_columns",
    [
        # beta_0 = beta_1 = 0: the reduced model drops X[:, 0] and X[:, 1]
        ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], lambda X: X[:, [2]]),
        # beta_0 = beta_1 = beta_2: the reduced model has their sum as one column
        ([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]], lambda X: X.sum(axis=1, keepdims=True)),
    ],
)
def test_f_equals_the_nested_model_f(contrast, reduced_columns):
    Y, X, covariates = simulate(n=25, n_features=30, k=3, c=2, seed=2, effect=0.5)
    glm = PermutationGLM(n_permutations=20, random_state=0).fit(Y, X, contrast=contrast, covariates=covariates)
    full, reduced = design_of(X, covariates), design_of(reduced_columns(X), covariates)
    _, _, rss_full = ols(Y, full, np.eye(1, full.shape[1]))
    _, _, rss_reduced = ols(Y, reduced, np.eye(1, reduced.shape[1]))
    m, dof = 2, 25 - full.shape[1]
    f = ((rss_reduced - rss_full) / m) / (rss_full / dof)
    assert_close(glm.f_, f, rtol=OLS_RTOL, name="f_")
    assert glm.statistic_ is glm.f_ and not hasattr(glm, "t_") and glm.effect_.shape == (2, 30)


def test_one_row_f_contrast_is_t_squared():
    Y, X, covariates = simulate(n=20, n_features=10, k=2, seed=4)
    t = PermutationGLM(n_permutations=50, random_state=1).fit(Y, X, [1.0, 2.0], covariates)
    f = PermutationGLM(n_permutations=50, random_state=1).fit(Y, X, [[1.0, 2.0]], covariates)
    assert_close(f.f_, t.t_**2, rtol=1e-10, name="f_")
    assert_close(f.h0_max_, t.h0_max_**2, rtol=1e-10, name="h0_max_")  # two-sided |t| and F agree
    assert_close(f.p_fwer_, t.p_fwer_, rtol=0, name="p_fwer_")


# ---------------------------------------------------------------------- permutations against brute force
def brute_force_null(glm, Y, X, covariates, contrast, reduced):
    """Permuted t (or F) maps by an explicit loop: build Y* as the method says, refit by lstsq.

    ``reduced`` is the design of the model under H0, written by hand.
    """
    M = design_of(X, covariates)
    C = np.atleast_2d(contrast)
    C = np.concatenate([C, np.zeros((C.shape[0], M.shape[1] - X.shape[1]))], axis=1)
    dof = M.shape[0] - M.shape[1]
    fit_full = M @ np.linalg.lstsq(M, Y, rcond=None)[0]
    fit_reduced = reduced @ np.linalg.lstsq(reduced, Y, rcond=None)[0]
    beta_hat = np.linalg.lstsq(M, Y, rcond=None)[0]
    maps = []
    for perm in glm.permutation_indices():
        if glm.method == "freedman-lane":
            Y_star = (Y - fit_reduced)[perm] + fit_reduced
        elif glm.method == "manly":
            Y_star = Y[perm]
        else:
            Y_star = (Y - fit_full)[perm] + fit_full
        beta = np.linalg.lstsq(M, Y_star, rcond=None)[0]
        rss = ((Y_star - M @ beta) ** 2).sum(axis=0)
        effect = C @ (beta - beta_hat) if glm.method == "ter-braak" else C @ beta
        variance = C @ np.linalg.inv(M.T @ M) @ C.T
        if C.shape[0] == 1 and np.ndim(contrast) == 1:
            maps.append(effect[0] / np.sqrt(rss / dof * variance[0, 0]))
        else:
            quadratic = np.einsum("mf,mf->f", effect, np.linalg.solve(variance, effect))
            maps.append(quadratic / C.shape[0] / (rss / dof))
    return np.array(maps)


def oriented(values, tail):
    return {"two-sided": np.abs(values), "greater": values, "less": -values}[tail]


@pytest.mark.parametrize(
    "method, tail, contrast",
    [
        ("freedman-lane", "two-sided", [1.0, 0.0]),
        ("freedman-lane", "greater", [1.0, 0.0]),
        ("freedman-lane", "less", [1.0, -1.0]),
        ("freedman-lane", "two-sided", [[1.0, 0.0], [0.0, 1.0]]),
        ("manly", "two-sided", [1.0, 0.0]),
        ("ter-braak", "greater", [1.0, 0.0]),
    ],
)
def test_p_values_equal_a_brute_force_loop_over_the_same_permutations(method, tail, contrast):
    Y, X, covariates = simulate(n=10, n_features=6, k=2, c=2, seed=5, effect=0.8)
    glm = PermutationGLM(n_permutations=60, method=method, tail=tail, random_state=7, batch_size=7)
    glm.fit(Y, X, contrast=contrast, covariates=covariates)
    # the model under H0, by hand: C beta = 0 leaves these columns
    if np.ndim(contrast) == 2:
        reduced = np.column_stack([np.ones(10), covariates])
    elif contrast == [1.0, 0.0]:
        reduced = np.column_stack([X[:, 1], np.ones(10), covariates])
    else:  # beta_0 = beta_1
        reduced = np.column_stack([X.sum(axis=1), np.ones(10), covariates])
    null = oriented(brute_force_null(glm, Y, X, covariates, contrast, reduced), tail)
    observed = oriented(glm.statistic_, tail)
    N = glm.n_permutations
    assert_close(glm.h0_max_, null.max(axis=1), rtol=PERMUTED_RTOL, name="h0_max_")
    assert_close(glm.p_uncorrected_, (1 + (null >= observed).sum(axis=0)) / (N + 1), rtol=0, name="p_uncorrected_")
    expected_fwer = (1 + (null.max(axis=1)[:, None] >= observed).sum(axis=0)) / (N + 1)
    assert_close(glm.p_fwer_, expected_fwer, rtol=0, name="p_fwer_")


def test_permutations_are_reproducible_and_independent_of_batching_and_jobs():
    Y, X, covariates = simulate(n=15, n_features=20, seed=6)
    reference = PermutationGLM(n_permutations=300, random_state=3).fit(Y, X, covariates=covariates)
    perms = reference.permutation_indices()
    assert perms.shape == (300, 15) and (np.sort(perms, axis=1) == np.arange(15)).all()
    assert len({tuple(p) for p in perms}) > 290  # drawn at random, not one repeated permutation
    for params in ({"batch_size": 1}, {"batch_size": 17}, {"n_jobs": 2}, {"batch_size": 1000}):
        other = PermutationGLM(n_permutations=300, random_state=3, **params).fit(Y, X, covariates=covariates)
        assert_close(other.h0_max_, reference.h0_max_, rtol=1e-12, name=f"h0_max_ {params}")
        assert_close(other.p_uncorrected_, reference.p_uncorrected_, rtol=0, name=f"p_uncorrected_ {params}")
    assert_close(reference.permutation_indices(250, 260), perms[250:260], rtol=0, name="permutation range")
    different = PermutationGLM(n_permutations=300, random_state=4).fit(Y, X, covariates=covariates)
    assert not np.array_equal(different.h0_max_, reference.h0_max_)


def test_p_values_are_never_below_one_over_n_plus_one():
    Y, X, covariates = simulate(n=20, n_features=5, seed=7, effect=10.0)  # a huge effect
    glm = PermutationGLM(n_permutations=99, random_state=0).fit(Y, X, covariates=covariates)
    assert glm.p_fwer_.min() == pytest.approx(1 / 100) and glm.p_uncorrected_.min() == pytest.approx(1 / 100)
    assert (glm.p_fwer_ >= glm.p_uncorrected_).all() and (glm.p_fwer_ <= 1).all()


def test_fdr_equals_scipy_benjamini_hochberg():
    false_discovery_control = getattr(scipy.stats, "false_discovery_control", None)
    if false_discovery_control is None:
        pytest.skip("scipy.stats.false_discovery_control needs scipy >= 1.11")
    Y, X, covariates = simulate(n=30, n_features=200, seed=8)
    Y[:, :20] += 1.2 * X[:, :1]
    glm = PermutationGLM(n_permutations=400, random_state=0).fit(Y, X, covariates=covariates)
    assert_close(glm.p_fdr_, false_discovery_control(glm.p_uncorrected_, method="bh"), rtol=1e-12, name="p_fdr_")
    p = np.random.default_rng(0).uniform(size=500) ** 3
    assert_close(benjamini_hochberg(p), false_discovery_control(p, method="bh"), rtol=1e-12, name="BH")


# ---------------------------------------------------------------------- statistical behaviour
def null_dataset(rng, n=30, n_features=50):
    """No effect of x; features correlated (moving average of width 7); covariates correlated with x and with Y."""
    x = rng.normal(size=n)
    covariates = np.column_stack([0.7 * x + 0.7 * rng.normal(size=n), rng.normal(size=n)])
    noise = rng.standard_t(df=5, size=(n, n_features + 6))
    noise = np.stack([noise[:, j : j + 7].sum(axis=1) for j in range(n_features)], axis=1)
    Y = noise + covariates @ rng.normal(scale=2.0, size=(2, n_features))
    return Y, x, covariates


def test_freedman_lane_family_wise_error_is_calibrated():
    """Max-statistic FWER at 0.05 on 1000 null data sets is within [0.02, 0.08].

    Design: 30 subjects, 50 features made strongly correlated (each is the sum of 7
    consecutive i.i.d. Student-t(5) noises: heavy tails, neighbour correlation 6/7), two
    covariates, one correlated with the tested regressor x (correlation ~0.7) and both
    with large effects on Y, and no effect of x. This is the setting where permutation
    schemes that ignore the nuisance (e.g. Manly) misbehave and Freedman-Lane should stay
    close to nominal (Winkler et al. 2014). Each data set gets 200 permutations; a data
    set is a family-wise error when any feature has p_fwer < 0.05. The number of errors is
    Binomial(1000, ~0.05): standard deviation 0.007, so [0.02, 0.08] is about +-4.3 sd and
    would catch a liberal or conservative test (e.g. FWER 0.1 or 0.01), while the seeds
    are fixed so the test is deterministic.
    """
    rng = np.random.default_rng(2026)
    errors = 0
    n_datasets = 1000
    for i in range(n_datasets):
        Y, x, covariates = null_dataset(rng)
        glm = PermutationGLM(n_permutations=200, random_state=i, batch_size=200).fit(Y, x, covariates=covariates)
        errors += bool((glm.p_fwer_ < 0.05).any())
    assert 0.02 <= errors / n_datasets <= 0.08, f"FWER {errors / n_datasets:.3f}"


def test_planted_effect_is_found_where_it_is_and_not_elsewhere():
    rng = np.random.default_rng(11)
    n, n_features = 40, 400
    x = rng.normal(size=n)
    covariates = np.column_stack([0.5 * x + rng.normal(size=n), rng.normal(size=n)])
    Y = rng.normal(size=(n, n_features)) + covariates @ rng.normal(size=(2, n_features))
    signal = np.arange(n_features) < 25
    Y[:, signal] += 1.5 * x[:, None]
    glm = PermutationGLM(n_permutations=1000, random_state=0).fit(Y, x, covariates=covariates)
    assert (glm.p_fwer_[signal] < 0.05).mean() >= 0.9
    assert (glm.p_fwer_[~signal] < 0.05).sum() <= 1
    assert (glm.effect_[signal] > 1.0).all()  # the planted slope, 1.5 per unit of x
    assert (glm.p_fdr_[signal] < 0.05).all() and (glm.p_fdr_[~signal] < 0.05).sum() <= 3


# ---------------------------------------------------------------------- TFCE
def grid_edges(rows, cols):
    index = np.arange(rows * cols).reshape(rows, cols)
    return np.concatenate(
        [
            np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], 1),
            np.stack([index[:-1].ravel(), index[1:].ravel()], 1),
        ]
    )


def tfce_reference(statistic, edges, extent, height, n_steps, tail):
    """TFCE by its definition: for each threshold, label the supra-threshold subgraph and add e^E h^H dh."""
    n = len(statistic)
    signs = {"two-sided": (1, -1), "greater": (1,), "less": (-1,)}[tail]
    top = np.abs(statistic).max() if tail == "two-sided" else max((statistic * signs[0]).max(), 0.0)
    out = np.zeros(n)
    if top == 0:
        return out
    thresholds = np.linspace(0.0, top, n_steps + 1)[1:]
    dh = top / n_steps
    for sign in signs:
        values = sign * statistic
        for h in thresholds:
            active = values >= h
            keep = active[edges[:, 0]] & active[edges[:, 1]]
            graph = sparse.coo_matrix((np.ones(keep.sum()), (edges[keep, 0], edges[keep, 1])), shape=(n, n))
            _, labels = connected_components(graph, directed=False)
            size = np.bincount(labels[active], minlength=n)
            out[active] += sign * size[labels[active]] ** extent * h**height * dh
    return out


@pytest.mark.parametrize("tail", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("extent, height", [(1.0, 2.0), (0.5, 2.0)])
@pytest.mark.parametrize("graph", ["grid", "path"])
def test_tfce_equals_the_threshold_loop(tail, extent, height, graph):
    """A grid plus long links (more edges than vertices: labelled on a maximum spanning forest), and a path with
    two components (fewer edges than vertices: labelled on the graph itself)."""
    rng = np.random.default_rng(12)
    if graph == "grid":
        edges = np.concatenate([grid_edges(5, 6), rng.integers(0, 30, size=(6, 2))])
    else:
        edges = np.stack([np.arange(29), np.arange(1, 30)], axis=1)[np.arange(29) != 14]
    maps = rng.normal(scale=2.0, size=(4, 30))
    maps[3] = np.abs(maps[3])  # no negative part
    ours = tfce(maps, edges, extent=extent, height=height, n_steps=25, tail=tail)
    for b in range(len(maps)):
        expected = tfce_reference(maps[b], edges, extent, height, 25, tail)
        assert_close(ours[b], expected, rtol=1e-10, atol=1e-12, name=f"map {b}")
    one = tfce(maps[0], edges, extent=extent, height=height, n_steps=25, tail=tail)
    assert_close(one, ours[0], rtol=1e-12, name="1-D")


def test_tfce_accepts_triangles_and_sparse_adjacency():
    triangles = np.array([[0, 1, 2], [1, 2, 3], [4, 5, 6]])
    edges = np.array([[0, 1], [1, 2], [2, 0], [1, 3], [2, 3], [4, 5], [5, 6], [6, 4]])
    values = np.random.default_rng(0).normal(size=7)
    expected = tfce(values, edges)
    assert_close(tfce(values, triangles), expected, rtol=0, name="triangles")
    matrix = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(7, 7)).tocsr()
    assert_close(tfce(values, matrix), expected, rtol=0, name="sparse")


def test_tfce_enhances_an_extended_effect_more_than_isolated_spikes():
    edges = grid_edges(20, 20)
    values = np.zeros((20, 20))
    values[2:8, 2:8] = 3.0  # a 6 x 6 patch
    for i, j in [(15, 15), (15, 3), (3, 15), (12, 8)]:
        values[i, j] = 3.0  # isolated spikes of the same height
    enhanced = tfce(values.ravel(), edges).reshape(20, 20)
    assert enhanced[2:8, 2:8].min() > 30 * enhanced[15, 15]
    assert enhanced[15, 15] == pytest.approx(enhanced[12, 8])
    # the closed form for a plateau of height 3 and 36 vertices: sum_j 36 (3 j / 100)^2 (3 / 100)
    assert enhanced[4, 4] == pytest.approx(36 * sum((3 * j / 100) ** 2 * 0.03 for j in range(1, 101)))


def test_tfce_null_distribution_equals_brute_force():
    rows, cols = 4, 5
    edges = grid_edges(rows, cols)
    Y, X, covariates = simulate(n=12, n_features=rows * cols, k=1, c=1, seed=13, effect=0.5)
    glm = PermutationGLM(n_permutations=30, tfce=True, tfce_steps=20, random_state=2, batch_size=8)
    glm.fit(Y, X, covariates=covariates, adjacency=edges)
    assert_close(glm.tfce_, tfce_reference(glm.t_, edges, 1.0, 2.0, 20, "two-sided"), rtol=1e-10, name="tfce_")
    reduced = np.column_stack([np.ones(12), covariates])
    null = brute_force_null(glm, Y, X, covariates, [1.0], reduced)
    h0 = [np.abs(tfce_reference(t, edges, 1.0, 2.0, 20, "two-sided")).max() for t in null]
    assert_close(glm.h0_max_tfce_, np.array(h0), rtol=1e-8, name="h0_max_tfce_")
    expected = (1 + (np.array(h0)[:, None] >= np.abs(glm.tfce_) * (1 - 1e-12)).sum(axis=0)) / 31
    assert_close(glm.p_fwer_tfce_, expected, rtol=0, name="p_fwer_tfce_")


def test_tfce_finds_a_weak_extended_effect_that_max_t_misses():
    """A weak effect (0.8 sd) over a 7 x 7 patch of a 16 x 16 grid: TFCE pools the patch, max-t does not."""
    rng = np.random.default_rng(14)
    n, rows = 30, 16
    x = np.repeat([0.0, 1.0], n // 2)
    Y = rng.normal(size=(n, rows, rows))
    Y[:, 4:11, 4:11] += 0.8 * x[:, None, None]
    Y = Y.reshape(n, -1)
    glm = PermutationGLM(n_permutations=200, tfce=True, tfce_steps=50, random_state=0)
    glm.fit(Y, x, adjacency=grid_edges(rows, rows))
    patch = np.zeros((rows, rows), bool)
    patch[4:11, 4:11] = True
    patch = patch.ravel()
    assert (glm.p_fwer_tfce_[patch] < 0.05).mean() > 0.8
    assert (glm.p_fwer_[patch] < 0.05).mean() < 0.4
    assert (glm.p_fwer_tfce_[~patch] < 0.05).mean() < 0.1  # some leakage at the patch border is expected


# ---------------------------------------------------------------------- memory, dtype, devices
def test_memory_is_bounded_by_the_batch_not_the_permutations(monkeypatch):
    """The permutations go through permuted_statistics in batches of at most batch_size: the largest array
    the null distribution allocates is (batch_size, r, n_features), and only h0_max_ grows with n_permutations."""
    seen = []
    original = glm_module.permuted_statistics

    def spy(E, G, sigma, *args, **kwargs):
        result = original(E, G, sigma, *args, **kwargs)
        seen.append((sigma.shape[0], tuple(result.shape)))
        return result

    monkeypatch.setattr(glm_module, "permuted_statistics", spy)
    Y, X, covariates = simulate(n=20, n_features=300, seed=15)
    glm = PermutationGLM(n_permutations=1000, batch_size=64, random_state=0).fit(Y, X, covariates=covariates)
    assert max(b for b, _ in seen) == 64 and sum(b for b, _ in seen) == 1000 and len(seen) == 16
    assert all(shape == (b, 300) for b, shape in seen)
    assert glm.h0_max_.shape == (1000,) and glm.batch_size_ == 64
    # "auto" sizes the batch from the memory budget, (r + 6) * F * 8 bytes per permutation in float64
    seen.clear()
    Y, X, covariates = simulate(n=10, n_features=20_000, seed=15)
    auto = PermutationGLM(n_permutations=100, random_state=0, device="cpu").fit(Y, X, covariates=covariates)
    expected = glm_module.AUTO_BATCH_BYTES["cpu"] // ((3 + 6) * 20_000 * 8)
    assert auto.batch_size_ == expected == max(b for b, _ in seen) and sum(b for b, _ in seen) == 100
    small = PermutationGLM(n_permutations=50, random_state=0).fit(Y[:, :10], X, covariates=covariates)
    assert small.batch_size_ == 50  # capped at n_permutations


def test_float32_null_distribution_is_close_and_statistics_stay_float64():
    Y, X, covariates = simulate(n=25, n_features=50, seed=16, effect=0.5)
    double = PermutationGLM(n_permutations=200, random_state=0, device="cpu").fit(Y, X, covariates=covariates)
    single = PermutationGLM(n_permutations=200, random_state=0, device="cpu", dtype="float32")
    single.fit(Y, X, covariates=covariates)
    assert single.t_.dtype == np.float64 and np.array_equal(single.t_, double.t_)
    # float32 products over 25 subjects: relative error ~1e-6, amplified a little by the variance subtraction
    assert_close(single.h0_max_, double.h0_max_, rtol=1e-4, name="h0_max_ float32")
    assert np.abs(single.p_uncorrected_ - double.p_uncorrected_).max() <= 2 / 201


def test_torch_inputs_and_no_modification_of_the_inputs():
    Y, X, covariates = simulate(n=15, n_features=8, seed=17)
    copies = [a.copy() for a in (Y, X, covariates)]
    from_numpy = PermutationGLM(n_permutations=50, random_state=0).fit(Y, X, covariates=covariates)
    for array, copy in zip((Y, X, covariates), copies):
        assert np.array_equal(array, copy)
    from_torch = PermutationGLM(n_permutations=50, random_state=0).fit(
        torch.from_numpy(Y).float(), torch.from_numpy(X[:, 0]), covariates=covariates.tolist()
    )
    assert isinstance(from_torch.t_, np.ndarray) and from_torch.t_.dtype == np.float64
    assert_close(from_torch.t_, from_numpy.t_, rtol=1e-5, name="t_ from float32 tensors")


def test_constant_features_get_zero_statistic_and_p_one():
    Y, X, covariates = simulate(n=15, n_features=6, seed=18)
    Y[:, 2] = 0.1
    Y[:, 4] = 2.0 * covariates[:, 0] - 1.0  # entirely explained by the nuisance
    with pytest.warns(UserWarning, match="2 of 6 features have no variance left"):
        glm = PermutationGLM(n_permutations=40, random_state=0).fit(Y, X, covariates=covariates)
    assert glm.t_[2] == glm.t_[4] == 0.0 and glm.p_fwer_[2] == glm.p_uncorrected_[4] == 1.0
    assert np.isfinite(glm.h0_max_).all() and np.isfinite(glm.t_).all()


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda Y, X, Z: (Y[:, 0], X, Z), r"Y must have shape \(n_subjects, n_features\)"),
        (lambda Y, X, Z: (Y, X[:-1], Z), "X has 19 rows but Y has 20 subjects"),
        (lambda Y, X, Z: (Y, X, Z[:-2]), "covariates has 18 rows"),
        (
            lambda Y, X, Z: (np.where(np.arange(20)[:, None] == 3, np.nan, Y), X, Z),
            r"Y contains NaN or inf values \(rows \[3\]\)",
        ),
        (lambda Y, X, Z: (Y, np.where(np.arange(20)[:, None] == 5, np.inf, X), Z), "X contains NaN or inf"),
        (lambda Y, X, Z: (Y, X, np.column_stack([Z, Z[:, 0]])), "rank deficient.*linear combination"),
        (lambda Y, X, Z: (Y, np.ones((20, 1)), Z), r"X\[:, 0\] is constant, collinear with the intercept"),
        (lambda Y, X, Z: (Y, X, np.column_stack([Z, np.full(20, 3.0)])), r"covariates\[:, 2\] is constant"),
        (lambda Y, X, Z: (Y, X, np.random.default_rng(0).normal(size=(20, 18))), "no residual degree of freedom"),
    ],
)
def test_invalid_data_raise_value_error_naming_the_problem(change, match):
    Y, X, covariates = simulate(n=20, n_features=5, seed=19)
    Y, X, covariates = change(Y, X, covariates)
    with pytest.raises(ValueError, match=match):
        PermutationGLM(n_permutations=10).fit(Y, X, covariates=covariates)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"contrast": [1.0, 0.0, 0.0]}, r"contrast must have shape \(2,\) or \(m, 2\)"),
        ({"contrast": [0.0, 0.0]}, "contrast is all zeros"),
        ({"contrast": [[1.0, 1.0], [2.0, 2.0]]}, "contrast rows are linearly dependent"),
        ({"contrast": [1.0, np.nan]}, "contrast contains NaN"),
        ({"adjacency": np.array([[0, 1]])}, "adjacency is only used by TFCE"),
    ],
)
def test_invalid_contrast_or_adjacency(kwargs, match):
    Y, X, covariates = simulate(n=20, n_features=5, k=2, seed=20)
    with pytest.raises(ValueError, match=match):
        PermutationGLM(n_permutations=10).fit(Y, X, covariates=covariates, **kwargs)


def test_invalid_tfce_inputs():
    Y, X, _ = simulate(n=20, n_features=5, k=2, seed=20)
    with pytest.raises(ValueError, match="tfce=True needs the adjacency"):
        PermutationGLM(n_permutations=10, tfce=True).fit(Y, X)
    with pytest.raises(ValueError, match=r"adjacency indices must be in \[0, 5\)"):
        PermutationGLM(n_permutations=10, tfce=True).fit(Y, X, adjacency=[[0, 1], [4, 5]])
    with pytest.raises(ValueError, match=r"triangles \(T, 3\), edges \(E, 2\)"):
        PermutationGLM(n_permutations=10, tfce=True).fit(Y, X, adjacency=np.zeros((3, 4), int))
    with pytest.raises(TypeError, match="integer vertex indices"):
        PermutationGLM(n_permutations=10, tfce=True).fit(Y, X, adjacency=[[0.5, 1.0]])
    with pytest.raises(ValueError, match="tail='less' needs a t contrast"):
        PermutationGLM(n_permutations=10, tail="less").fit(Y, X, contrast=[[1.0, 0.0]])


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"n_permutations": 0}, ValueError, "n_permutations must be >= 1"),
        ({"n_permutations": 10.0}, TypeError, "n_permutations must be an int"),
        ({"method": "smith"}, ValueError, "method must be one of"),
        ({"tail": "both"}, ValueError, "tail must be one of"),
        ({"tfce": 1}, TypeError, "tfce must be a bool"),
        ({"tfce_extent": 0.0}, ValueError, "tfce_extent must be a finite number > 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": "big"}, ValueError, "batch_size must be a positive int or 'auto'"),
        ({"dtype": "float16"}, ValueError, "dtype must be None, 'float64' or 'float32'"),
        ({"device": "nowhere"}, ValueError, "device must be 'auto' or a torch device"),
    ],
)
def test_invalid_parameters(params, error, match):
    Y, X, _ = simulate(n=20, n_features=5, seed=21)
    with pytest.raises(error, match=match):
        PermutationGLM(**params).fit(Y, X)


# ---------------------------------------------------------------------- scikit-learn conformance
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_sklearn_data_free_checks(check):
    estimator = PermutationGLM()
    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


def test_clone_pickle_and_not_fitted():
    Y, X, covariates = simulate(n=15, n_features=10, seed=22)
    glm = PermutationGLM(n_permutations=30, tail="greater", random_state=0)
    with pytest.raises(NotFittedError):
        glm.permutation_indices()
    assert glm.fit(Y, X, covariates=covariates) is glm
    fresh = clone(glm)
    assert fresh.get_params() == glm.get_params() and not hasattr(fresh, "t_")
    restored = pickle.loads(pickle.dumps(glm))
    for name in ("t_", "p_fwer_", "p_uncorrected_", "p_fdr_", "h0_max_", "effect_", "beta_"):
        assert np.array_equal(getattr(restored, name), getattr(glm, name)), name
    assert np.array_equal(restored.permutation_indices(), glm.permutation_indices())
    refit = clone(glm).fit(Y, X, covariates=covariates)
    assert np.array_equal(refit.h0_max_, glm.h0_max_)
