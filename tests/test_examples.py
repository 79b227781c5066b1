"""The gallery (``examples/plot_*.py``) runs, writes a real picture and finds what it claims.

Each example runs in this process (``runpy``, so the data loaded by one are
cached for the next) in its fast mode (``--fast``: smaller shapes, fewer
iterations), writing into a temporary folder. Its ``results`` dict holds the
numbers it prints; :data:`CHECKS` holds, per example, the claims of its text
checked on those numbers, with tolerances that hold in the fast mode. One
example also runs as a command, the way a user runs it.
"""

from __future__ import annotations

import math
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def _rigid(r):
    assert r["angle_error_degrees"] < 2.0, r  # Sinkhorn vs Procrustes on known correspondences
    assert r["mean_vertex_error_mm"] < 3.0, r
    assert 10.0 < r["reference_angle_degrees"] < 25.0, r  # the face was scanned ~16 degrees off


def _similarity(r):
    assert abs(r["scale"] - r["true_scale"]) < 0.01, r
    assert r["rotation_error_degrees"] < 0.5, r
    assert r["translation_error"] < 0.5, r


def _affine(r):
    assert r["matrix_error"] < 0.01, r
    assert r["translation_error"] < 0.5, r
    assert math.isclose(r["area_ratio"], r["true_area_ratio"], rel_tol=0.01), r


def _lddmm(r):
    assert r["data_term_ratio"] < 0.05, r
    assert 0.0 < r["jacobian_min"] < 1.0 < r["jacobian_max"], r  # contraction and expansion, no folding
    assert r["deformation_cost"] > 0.0, r


def _sinkhorn(r):
    assert r["unbalanced_angle_error_degrees"] < 1.0, r
    assert r["unbalanced_translation_error"] < 1.0, r
    assert r["balanced_translation_error"] > 5.0, r  # the point of the example: balanced OT is pulled away


def _nearest_neighbors(r):
    assert r["angle_error_degrees"] < 1.5, r
    assert r["translation_error_mm"] < 1.5, r
    assert r["far_angle_error_degrees"] > 30.0, r  # the local minimum the text describes


def _l2(r):
    assert abs(r["scale"] - r["reference_scale"]) < 1e-3, r  # the closed-form Procrustes optimum
    assert r["rotation_difference_degrees"] < 0.1, r
    assert r["translation_difference_mm"] < 0.1, r
    assert r["rms_after_mm"] < 0.9 * r["rms_before_mm"] < 0.1 * r["rms_scanned_mm"], r


def _landmarks(r):
    assert r["combined_error_degrees"] < 1.0, r
    assert r["landmarks_only_error_degrees"] < 3.0, r
    assert r["surface_only_error_degrees"] > 30.0, r  # the wrong local minimum the text describes


def _varifold(r):
    assert r["data_term_ratio"] < 0.06, r
    assert r["sinkhorn_after"] < 0.05 * r["sinkhorn_before"], r  # a loss the registration did not optimise
    assert r["varifold_backwards"] <= 1e-5 * r["varifold_scale"], r  # blind to orientation
    assert r["currents_backwards"] > 0.5 * r["varifold_scale"], r


def _currents(r):
    assert r["vertex_error_after"] < 0.2 * r["vertex_error_before"], r  # known correspondence, never used
    assert r["vertex_error_backwards"] > r["vertex_error_before"], r  # currents need a consistent orientation
    assert r["data_term_ratio"] < 0.01, r


def _atlas_tangent_pca(r):
    assert r["atlas_data_term"] < r["registrations_data_term"], r  # the estimated template fits better
    ratios = np.asarray(r["explained_variance_ratio"])
    assert len(ratios) == 3 and (ratios > 0).all() and ratios.sum() <= 1 + 1e-9, r
    assert (np.diff(ratios) <= 0).all(), r  # modes sorted by decreasing variance
    assert ratios[0] > 0.5, r  # one dominant mode (hominid evolution) on these five skulls
    assert (r["mode_displacements"] > 1.0).all() and r["mode_displacements"][0] > r["mode_displacements"][1], r


def _atlas_dask(r):
    assert r["relative_template_difference"] < 1e-5, r  # the same atlas on Dask and in one process
    assert r["data_term_difference"] < 1e-4, r
    assert r["iterations"] >= 1, r


def _nn_dysmorphic(r):
    assert r["final_loss"] < r["initial_loss"], r  # the network learns (fast mode: a few epochs only)
    assert 0.0 <= r["test_accuracy"] <= 1.0 and 0.5 <= r["chance"] <= 1.0, r
    if not r["fast"]:  # the full run (not run by the tests): clearly better than chance on held-out faces
        assert r["test_accuracy"] > r["chance"] + 0.15, r


CHECKS = {
    "plot_rigid": _rigid,
    "plot_similarity": _similarity,
    "plot_affine": _affine,
    "plot_lddmm": _lddmm,
    "plot_loss_sinkhorn": _sinkhorn,
    "plot_loss_nearest_neighbors": _nearest_neighbors,
    "plot_loss_l2": _l2,
    "plot_loss_landmarks": _landmarks,
    "plot_loss_varifold": _varifold,
    "plot_loss_currents": _currents,
    "plot_atlas_tangent_pca": _atlas_tangent_pca,
    "plot_atlas_dask": _atlas_dask,
    "plot_nn_dysmorphic": _nn_dysmorphic,
}

#: Examples that need an optional dependency: skipped when it is missing.
REQUIRES = {"plot_atlas_dask": "distributed"}


def test_every_example_is_checked():
    assert sorted(CHECKS) == [script.stem for script in SCRIPTS]


def assert_real_picture(path: Path, min_kib=20, min_size=(500, 300)):
    """A PNG of a reasonable size, with real content (many colours, not a blank or flat image)."""
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    assert path.stat().st_size > min_kib * 1024, f"{path} is only {path.stat().st_size} bytes"
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], f"{path} is {width} x {height} pixels"
    rgb = image[..., :3].reshape(-1, 3)
    assert float(rgb.std(axis=0).max()) > 0.05, f"{path} is nearly uniform"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 50, f"{path} has very few colours"
    # the figures are on white: a blank render would be (almost) all white
    assert float((rgb < 0.9).any(axis=1).mean()) > 0.02, f"{path} is almost blank"


@pytest.fixture
def torch_threads():
    """The examples set one torch thread; restore the setting for the tests that follow."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_example(script, tmp_path, monkeypatch, capsys, torch_threads):
    if script.stem in REQUIRES:
        pytest.importorskip(REQUIRES[script.stem])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--fast"])
    namespace = runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert_real_picture(tmp_path / f"{script.stem}.png")
    assert f"wrote {tmp_path / script.stem}.png" in printed
    assert namespace["example"].fast
    results = namespace["results"]
    assert all(np.isfinite(v).all() for v in results.values()), results
    CHECKS[script.stem](results)


def test_example_as_a_command():
    """``python examples/plot_affine.py --help``: the script finds its helper module and documents its options."""
    completed = subprocess.run([sys.executable, str(EXAMPLES / "plot_affine.py"), "--help"], capture_output=True,
                               text=True, timeout=300, cwd=EXAMPLES.parent.parent)
    assert completed.returncode == 0, completed.stderr
    assert "--out DIR" in completed.stdout and "--fast" in completed.stdout
    assert "Affine registration" in completed.stdout  # the first line of the docstring


def test_setup_output_folder_and_fast_mode(tmp_path, monkeypatch, torch_threads):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _common import DEFAULT_OUT, FAST_ENV, setup

    monkeypatch.delenv(FAST_ENV, raising=False)
    example = setup("/somewhere/plot_thing.py", "Title\n=====\n", argv=["--out", str(tmp_path / "new")])
    assert example.name == "plot_thing" and not example.fast
    assert example.figure == tmp_path / "new" / "plot_thing.png" and (tmp_path / "new").is_dir()
    assert example.pick(100, 10) == 100
    assert torch.get_num_threads() == 1
    monkeypatch.setenv(FAST_ENV, "1")
    example = setup("plot_thing.py", None, argv=["--out", str(tmp_path)])
    assert example.fast and example.pick(100, 10) == 10
    monkeypatch.setenv(FAST_ENV, "0")
    assert not setup("plot_thing.py", None, argv=["--out", str(tmp_path)]).fast
    assert setup("plot_thing.py", None, argv=["--out", str(tmp_path), "--fast"]).fast
    # arguments that are not ours (sphinx-gallery, notebooks) are ignored
    assert setup("plot_thing.py", None, argv=["--out", str(tmp_path), "-f", "kernel.json"]).out == tmp_path
    assert DEFAULT_OUT == EXAMPLES / "_out"


def test_plot_registration_options_used_by_the_gallery(tmp_path, torch_threads):
    """The options added for the gallery: control points in 3D, errors for options that do not apply."""
    from scipy.spatial import ConvexHull

    import skshapes as sks
    from skshapes.viz import plot_registration

    torch.set_num_threads(1)
    sphere_points = torch.nn.functional.normalize(torch.randn(60, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    triangles = torch.as_tensor(ConvexHull(sphere_points.numpy()).simplices, dtype=torch.int64)
    source = sks.PolyData(10 * sphere_points, triangles=triangles)  # a sphere of radius 10
    target = source.with_points(source.points * torch.tensor([1.3, 1.0, 0.8]))
    lddmm = sks.Registration(sks.LDDMM(sigma=5.0, n_steps=2, control_points=12), sks.L2Loss(),
                             regularization_weight=1e-3, n_iter=3).fit(source, target)
    path = plot_registration(lddmm, target, screenshot=tmp_path / "cp.png", control_points=True,
                             residual="correspondence", title="control points")
    assert_real_picture(path)
    with pytest.raises(ValueError, match="2D registrations only"):
        plot_registration(lddmm, target, jacobian=True)
    with pytest.raises(ValueError, match="one point per source point"):
        plot_registration(lddmm, target.decimate(30), residual="correspondence")
    with pytest.raises(ValueError, match="residual must be one of"):
        plot_registration(lddmm, target, residual="nearest")
    rigid = sks.Registration(sks.RigidMotion(), sks.L2Loss(), n_iter=2).fit(source, target)
    with pytest.raises(ValueError, match="control points"):
        plot_registration(rigid, target, control_points=True)
