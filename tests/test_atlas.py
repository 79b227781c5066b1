"""Deterministic atlas of the five hominid skulls: better than registrations from the initial template,
independent of the subjects' order, of n_jobs and of the joblib backend (Dask), and resumable from a checkpoint.

All fits use the same small budget (8 L-BFGS iterations, 3 RK4 steps) so that the file runs in about a
minute; the comparisons are between fits of identical settings.
"""

from __future__ import annotations

import joblib
import pytest
import torch
from sklearn.base import clone

import skshapes as sks
from skshapes.datasets import load_skulls
from skshapes.statistics import Atlas
from skshapes.statistics import atlas as atlas_module

N_ITER = 8


@pytest.fixture(scope="module")
def skulls():
    return load_skulls()


def make_atlas(skulls, **kwargs):
    settings = dict(
        model=sks.LDDMM(sigma=20.0, n_steps=3, backend="torch"), loss=sks.SinkhornLoss(blur=1.0, scaling=0.8),
        regularization_weight=1e-3, n_iter=N_ITER, template=skulls.template,
    )
    return Atlas(**{**settings, **kwargs})


@pytest.fixture(scope="module")
def reference(skulls):
    return make_atlas(skulls).fit(skulls.shapes)


def diameter(shape):
    return float(torch.cdist(shape.points, shape.points).max())


def template_gap(a, b):
    return float(torch.linalg.norm(a.template_.points - b.template_.points, dim=1).max())


def test_atlas_beats_registrations_from_the_initial_template(skulls, reference):
    registrations = make_atlas(skulls, optimize_template=False).fit(skulls.shapes)
    assert torch.equal(registrations.template_.points, skulls.template.points)
    assert reference.data_losses_.mean() < registrations.data_losses_.mean()
    assert reference.momenta_.shape == (5, skulls.template.n_points, 2)
    assert reference.loss_ < reference.loss_history_["total"][0]
    # each subject's registration reproduces the atlas's terms
    for reg, data in zip(reference.registrations_, reference.data_losses_):
        assert reg.data_loss_ == pytest.approx(float(data))
        assert torch.equal(reg.transform().points, reg.morphed_shape_.points)


def test_template_does_not_depend_on_the_order_of_the_subjects(skulls, reference):
    order = [3, 0, 4, 2, 1]
    permuted = make_atlas(skulls).fit([skulls.shapes[i] for i in order])
    assert template_gap(permuted, reference) < 0.01 * diameter(reference.template_)
    # float32 sums in another order, amplified by L-BFGS: measured 0.4 % of the largest momentum
    assert torch.allclose(permuted.momenta_, reference.momenta_[order], atol=0.02 * float(reference.momenta_.abs().max()))


def test_two_jobs_give_the_same_atlas(skulls, reference):
    parallel = make_atlas(skulls, n_jobs=2).fit(skulls.shapes)
    assert template_gap(parallel, reference) < 1e-5 * diameter(reference.template_)


def test_atlas_on_a_dask_cluster(skulls, reference):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
            on_dask = make_atlas(skulls).fit(skulls.shapes)
    assert template_gap(on_dask, reference) < 1e-5 * diameter(reference.template_)


def test_resuming_a_crashed_fit_from_its_checkpoint_gives_the_uninterrupted_atlas(skulls, reference, tmp_path, monkeypatch):
    terms, calls = atlas_module._subject_terms, []

    def crash_after_five_iterations(*args):
        calls.append(1)
        if len(calls) > 5 * 5 * 2:  # 5 subjects, about 2 evaluations per L-BFGS iteration
            raise KeyboardInterrupt("simulated crash")
        return terms(*args)

    monkeypatch.setattr(atlas_module, "_subject_terms", crash_after_five_iterations)
    with pytest.raises(KeyboardInterrupt):
        make_atlas(skulls, checkpoint_dir=tmp_path, checkpoint_every=2).fit(skulls.shapes)
    saved = torch.load(tmp_path / atlas_module.CHECKPOINT_NAME, weights_only=False)
    assert 2 <= len(saved["history"]["total"]) < N_ITER  # the crash happened mid-fit, after a checkpoint

    monkeypatch.setattr(atlas_module, "_subject_terms", terms)
    resumed = make_atlas(skulls, checkpoint_dir=tmp_path, checkpoint_every=2).fit(skulls.shapes)
    assert resumed.n_iter_ == reference.n_iter_
    assert template_gap(resumed, reference) < 1e-6 * diameter(reference.template_)
    assert resumed.loss_history_["total"] == pytest.approx(reference.loss_history_["total"], rel=1e-6)


def test_checkpoint_of_another_problem_is_refused(skulls, tmp_path):
    make_atlas(skulls, n_iter=1, checkpoint_dir=tmp_path, checkpoint_every=1).fit(skulls.shapes[:2])
    with pytest.raises(ValueError, match="delete it to start afresh"):
        make_atlas(skulls, n_iter=1, checkpoint_dir=tmp_path).fit(skulls.shapes)


def test_atlas_input_checks_and_clone(skulls):
    with pytest.raises(ValueError, match="empty"):
        make_atlas(skulls).fit([])
    with pytest.raises(TypeError, match="sequence of PolyData"):
        make_atlas(skulls).fit(skulls.template)
    with pytest.raises(TypeError, match="model must be"):
        Atlas().fit(skulls.shapes)
    faces_like = sks.PolyData(torch.rand(10, 3))
    with pytest.raises(ValueError):
        make_atlas(skulls).fit([skulls.shapes[0], faces_like])
    assert clone(make_atlas(skulls, n_jobs=2)).get_params()["n_jobs"] == 2
