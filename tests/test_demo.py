"""End-to-end tests of the demo: the skull LDDMM registrations, the rigid face, the figures and summary.csv.

The demo runs once per module (about a minute on a 2-core CPU) and every
test reads its results, so that the registrations the tests check are the
very ones the demo reports.
"""

import math

import numpy as np
import pandas
import pytest
import torch

from skshapes.datasets import SKULL_NAMES
from skshapes.demo import FACE_PARAMETERS, SKULL_PARAMETERS, SUMMARY_COLUMNS, run_demo, skull_registration
from skshapes.losses import SinkhornLoss

pytestmark = pytest.mark.slow

FACE_NAME = "SIMPOP_01 (posed)"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as in the demo: these problems are small, and several threads contend on a busy CPU."""
    from skshapes.demo import _torch_threads

    with _torch_threads(1):
        yield


@pytest.fixture(scope="module")
def demo(tmp_path_factory, one_thread):
    out_dir = tmp_path_factory.mktemp("demo")
    return out_dir, run_demo(out_dir, progress=False)


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
    expected = sorted([f"skull_{name}.png" for name in SKULL_NAMES] + ["face_SIMPOP_01_rigid.png"])
    assert figures == expected
    assert sorted(p.name for p in outcome.figures) == expected
    import matplotlib.image

    for name in expected:
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
