"""End-to-end tests of the demo: the dysmorphology study and its report, the skull LDDMM registrations, the
rigid face, the figures and the CSV files.

The demo runs once per module (about 1.5 minutes on a busy 2-core CPU) and every test reads its results, so
that the numbers the tests check are the very ones the demo reports. To stay fast, the dysmorphology study
runs here with the known correspondence (``DEMO_TEST_PARAMETERS``) on the demo's own population; its
registration stage is tested in ``test_dysmorphology.py`` on a few faces. ``SKSHAPES_TEST_FULL_DEMO=1`` runs
the demo exactly as ``skshapes demo`` does (registration of the 60 faces: about 5 minutes more).
"""

import math
import os

import numpy as np
import pandas
import pytest
import torch

from skshapes.datasets import SKULL_NAMES
from skshapes.demo import (
    DYSMORPHOLOGY_PARAMETERS,
    FACE_PARAMETERS,
    OUTPUT_FILES,
    SKULL_PARAMETERS,
    SUMMARY_COLUMNS,
    run_demo,
    run_dysmorphology,
    skull_registration,
)
from skshapes.losses import SinkhornLoss

pytestmark = pytest.mark.slow

FACE_NAME = "SIMPOP_01 (posed)"
FULL = os.environ.get("SKSHAPES_TEST_FULL_DEMO") == "1"
DEMO_TEST_PARAMETERS = {} if FULL else {
    "correspondence": "known", "n_permutations": 1000, "sweep_effects_mm": (0.0, 6.0), "sweep_n_permutations": 200,
}
DYSMORPHOLOGY_FIGURES = [OUTPUT_FILES[k] for k in ("mean_faces", "difference_map", "t_map", "roc")]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as in the demo: these problems are small, and several threads contend on a busy CPU."""
    from skshapes.demo import _torch_threads

    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def demo(tmp_path_factory, one_thread):
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, run_demo(out_dir, progress=False, dysmorphology_parameters=DEMO_TEST_PARAMETERS)


def _result(demo, name):
    (result,) = [r for r in demo[1].results if r.name == name]
    return result


@pytest.mark.parametrize("name", SKULL_NAMES)
def test_skull_registration_reaches_5_percent(demo, name):
    result = _result(demo, name)
    morphed = result.registration.morphed_shape_
    assert torch.isfinite(morphed.points).all()
    assert morphed.n_points == result.source.n_points
    # the Sinkhorn loss recomputed from scratch, not read from the optimiser's history
    loss = SinkhornLoss(blur=SKULL_PARAMETERS["blur"], scaling=SKULL_PARAMETERS["scaling"])
    with torch.no_grad():
        initial = float(loss(result.source, result.target))
        final = float(loss(morphed, result.target))
    assert final < 0.05 * initial, f"{name}: final {final:.4g} is {100 * final / initial:.1f} % of {initial:.4g}"
    assert math.isclose(final, result.final_loss, rel_tol=1e-3, abs_tol=1e-4)
    assert math.isclose(initial, result.initial_loss, rel_tol=1e-3)
    # the deformed grid (what the figure shows) is finite too
    grid = torch.stack(torch.meshgrid(torch.linspace(-150, 100, 20), torch.linspace(-100, 150, 20), indexing="ij"), -1)
    moved = result.registration.transform_points(grid.reshape(-1, 2))
    assert torch.isfinite(moved).all()


def test_demo_uses_the_skull_parameters(demo):
    """The tests and the demo share SKULL_PARAMETERS: the fitted estimators carry them."""
    reference = skull_registration()
    for name in SKULL_NAMES:
        reg = _result(demo, name).registration
        assert repr(reg.model) == repr(reference.model)
        assert repr(reg.loss) == repr(reference.loss)
        assert reg.regularization_weight == SKULL_PARAMETERS["regularization_weight"]
        assert reg.n_iter == SKULL_PARAMETERS["n_iter"]
        assert reg.model.sigma == SKULL_PARAMETERS["sigma"]


def test_face_rigid_registration_recovers_the_pose(demo):
    result = _result(demo, FACE_NAME)
    assert result.extra["known_angle"] == pytest.approx(FACE_PARAMETERS["angle_degrees"])
    assert FACE_PARAMETERS["angle_degrees"] >= 30
    # the face differs from the template (about 8 mm RMS), so the pose is recovered up to a little
    assert result.extra["angle_error"] < 2.0
    assert result.final_loss < 0.1 * result.initial_loss
    assert torch.isfinite(result.registration.morphed_shape_.points).all()
    translation = result.registration.parameter_[3:].double()
    known = torch.tensor(FACE_PARAMETERS["translation_mm"], dtype=torch.float64)
    assert float(torch.linalg.norm(translation - known)) < 3.0  # mm


def test_demo_writes_figures(demo):
    out_dir, outcome = demo
    figures = sorted(p.name for p in out_dir.glob("*.png"))
    registrations = sorted([f"skull_{name}.png" for name in SKULL_NAMES] + ["face_SIMPOP_01_rigid.png"])
    assert figures == sorted(registrations + DYSMORPHOLOGY_FIGURES)
    assert sorted(p.name for p in outcome.figures) == figures
    import matplotlib.image

    for name in registrations:
        image = matplotlib.image.imread(out_dir / name)
        assert image.shape[0] >= 500 and image.shape[1] >= 1000, name
        rgb = image[..., :3]
        # not blank: many distinct colours, and the red of the registered source is there
        assert rgb.std() > 0.05, name
        red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
        assert red.mean() > 0.002, name


def test_demo_writes_summary(demo):
    out_dir, outcome = demo
    summary = pandas.read_csv(out_dir / "summary.csv")
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["shape"]) == list(SKULL_NAMES) + [FACE_NAME]
    assert (summary["points"] > 100).all()
    assert summary.loc[summary["shape"] == FACE_NAME, "points"].item() == outcome.results[-1].target.n_points
    assert (summary["final_loss"] < summary["initial_loss"]).all()
    assert np.isfinite(summary[["initial_loss", "final_loss", "seconds"]].to_numpy()).all()
    skulls = summary[summary["shape"].isin(SKULL_NAMES)]
    assert (skulls["final_loss"] < 0.05 * skulls["initial_loss"]).all()
    assert (summary["iterations"] >= 1).all()
    assert (skulls["iterations"] <= SKULL_PARAMETERS["n_iter"]).all()
    pandas.testing.assert_frame_equal(summary, outcome.summary, check_exact=False, rtol=1e-5)


def test_demo_rejects_unknown_skulls():
    with pytest.raises(ValueError, match="unknown skull"):
        from skshapes.demo import register_skulls

        register_skulls(["homo floresiensis"])


# ----------------------------------------------------- the demo's figures
def test_plot_writes_pngs_for_2d_and_3d(tmp_path):
    import matplotlib.image

    from skshapes.datasets import load_faces, load_skulls
    from skshapes.viz import plot

    skulls = load_skulls()
    path = plot(skulls.shapes, labels=skulls.names, title="skulls", units=None, screenshot=tmp_path / "a" / "s.png")
    assert path == tmp_path / "a" / "s.png" and path.is_file()
    face = load_faces(resolution=500).shapes[0]
    path = plot(face, scalars=face.points[:, 2], scalars_title="z (mm)", screenshot=tmp_path / "f.png",
                camera_position="xy")
    image = matplotlib.image.imread(path)
    assert image[..., :3].std() > 0.05


def test_plot_rejects_bad_input(tmp_path):
    from skshapes.datasets import load_faces, load_skulls
    from skshapes.viz import plot

    skull = load_skulls().shapes[0]
    face = load_faces(resolution=500).shapes[0]
    with pytest.raises(ValueError, match="2D or all be 3D"):
        plot([skull, face])
    with pytest.raises(TypeError, match="PolyData"):
        plot([skull, "face"])
    with pytest.raises(ValueError, match="labels"):
        plot([skull, skull], labels=["one"])
    with pytest.raises(ValueError, match="scalars"):
        plot(skull, scalars=np.zeros(3))


def test_plot_registration_needs_a_fitted_estimator():
    from sklearn.exceptions import NotFittedError

    from skshapes.viz import plot_registration

    with pytest.raises(NotFittedError):
        plot_registration(skull_registration())


# ------------------------------------------------------ the dysmorphology study
def _numbers(out_dir):
    table = pandas.read_csv(out_dir / OUTPUT_FILES["numbers"])
    return dict(zip(table["quantity"], table["value"]))


def test_dysmorphology_finds_the_simulated_region(demo):
    out_dir, outcome = demo
    study = outcome.dysmorphology
    numbers = _numbers(out_dir)
    effect = DYSMORPHOLOGY_PARAMETERS["effect_mm"]
    dice = float(numbers["Dice overlap with the true region"])
    measured = float(numbers["measured effect (fit of the visible true pattern)"])
    assert dice >= 0.7, dice
    assert abs(measured - effect) <= 0.2 * effect, measured
    assert float(numbers["cross-validated AUC"]) >= 0.9
    assert dice == pytest.approx(study.evaluation.dice, rel=1e-5)
    assert int(numbers["subjects"]) == DYSMORPHOLOGY_PARAMETERS["n_subjects"]
    assert int(numbers["controls"]) + int(numbers["syndrome subjects"]) == DYSMORPHOLOGY_PARAMETERS["n_subjects"]
    assert int(numbers["significant vertices inside the true region"]) <= int(
        numbers["FWER-significant vertices (TFCE)"])
    if FULL:  # registration: the correspondences are within 1.5 mm of the truth on average
        assert float(numbers["correspondence error vs truth, mean"]) < 1.5
    else:
        assert float(numbers["correspondence error vs truth, mean"]) == 0.0
    times = {q: float(v) for q, v in numbers.items() if str(q).startswith("time:")}
    assert times["time: total"] == pytest.approx(outcome.stage_seconds["total"], rel=1e-3)
    assert all(v >= 0 for v in times.values())


def test_dysmorphology_detectability_table(demo):
    out_dir, outcome = demo
    table = pandas.read_csv(out_dir / OUTPUT_FILES["detectability"])
    expected = DEMO_TEST_PARAMETERS.get("sweep_effects_mm", DYSMORPHOLOGY_PARAMETERS["sweep_effects_mm"])
    assert list(table["effect_mm"]) == list(expected)
    null, largest = table.iloc[0], table.iloc[-1]
    assert null["effect_mm"] == 0 and null["n_significant"] == 0
    assert largest["auc"] > null["auc"] + 0.3
    assert largest["dice"] >= 0.7


def test_dysmorphology_csv_files(demo):
    out_dir, outcome = demo
    analysis = outcome.dysmorphology.analysis
    n_points, n_subjects = analysis.mean_shape_.n_points, DYSMORPHOLOGY_PARAMETERS["n_subjects"]
    vertices = pandas.read_csv(out_dir / OUTPUT_FILES["vertices"])
    assert len(vertices) == n_points
    for column in ("p_uncorrected", "p_fwer", "p_fdr", "p_fwer_tfce"):
        assert vertices[column].between(0, 1).all(), column
    assert (vertices["significant"] == (vertices["p_fwer_tfce"] < 0.05)).all()
    np.testing.assert_allclose(vertices["t"], analysis.t_, rtol=1e-5)
    np.testing.assert_allclose(vertices["mean_difference_mm"], analysis.mean_difference_mm_, rtol=1e-5, atol=1e-6)
    assert vertices["true_region"].sum() == int(outcome.dysmorphology.data.region_mask.sum())
    subjects = pandas.read_csv(out_dir / OUTPUT_FILES["subjects"])
    assert len(subjects) == n_subjects
    assert set(subjects["group"]) == {"control", "syndrome"}
    assert {"Age", "Sex", "BMI", "cv_probability_syndrome", "PC1_mm", "correspondence_error_mm"} <= set(subjects)
    roc = pandas.read_csv(out_dir / OUTPUT_FILES["roc_points"])
    assert (np.diff(roc["false_positive_rate"]) >= 0).all() and (np.diff(roc["true_positive_rate"]) >= 0).all()
    assert roc["true_positive_rate"].iloc[-1] == 1.0


def test_dysmorphology_figures(demo):
    import matplotlib.image

    out_dir, _ = demo
    for name in DYSMORPHOLOGY_FIGURES:
        image = matplotlib.image.imread(out_dir / name)[..., :3]
        assert image.shape[0] >= 500 and image.shape[1] >= 600, name
        assert image.std() > 0.05, name
    # the heat maps show the retrusion in blue
    for name in (OUTPUT_FILES["difference_map"], OUTPUT_FILES["t_map"]):
        rgb = matplotlib.image.imread(out_dir / name)[..., :3]
        blue = (rgb[..., 2] > 0.5) & (rgb[..., 0] < 0.35)
        assert blue.mean() > 0.005, name


def test_report_links_every_file(demo):
    import re

    out_dir, outcome = demo
    report = (out_dir / OUTPUT_FILES["report"]).read_text(encoding="utf-8")
    assert outcome.report_path == out_dir / OUTPUT_FILES["report"]
    images = re.findall(r'<img src="([^"]+)"', report)
    assert sorted(images) == sorted(p.name for p in out_dir.glob("*.png"))
    for name in [v for k, v in OUTPUT_FILES.items() if v.endswith(".csv")]:
        assert (out_dir / name).is_file(), name
        assert name in report, name
    assert "<script" not in report.lower()
    study = outcome.dysmorphology
    assert f"AUC of {study.analysis.roc_auc_:.2f}" in report
    assert f"Dice overlap <b>{study.evaluation.dice:.2f}</b>" in report
    for heading in ("Population", "The average faces", "Where the faces differ", "Can a new face be classified",
                    "Numbers", "Registrations of the bundled shapes", "Run times"):
        assert heading in report, heading


def test_run_dysmorphology_rejects_unknown_parameters(tmp_path):
    with pytest.raises(ValueError, match="unknown dysmorphology parameters"):
        run_dysmorphology(tmp_path, {"n_faces": 10})
