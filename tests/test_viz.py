"""Pictures: each figure function writes a real, non-blank image off-screen, in the colours it promises.

One canonical scene (the decimated face template, camera "xy", 600 x 450
pixels) is compared with a stored reference, ``tests/baseline/plot_face.png``,
within a mean absolute difference of :data:`BASELINE_TOLERANCE` grey levels.
After an intended change of the figures (or of VTK), look at the new picture,
then regenerate the reference with::

    SKSHAPES_UPDATE_BASELINE=1 .venv/bin/python -m pytest tests/test_viz.py -k baseline

(the test then writes the reference and skips) and commit the new PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import skshapes as sks
from skshapes.datasets import get_data_dir, load_skulls
from skshapes.viz import animate, geodesic_path, plot, plot_heatmap, plot_registration

BASELINE = Path(__file__).parent / "baseline"
#: Mean |difference| allowed against the reference, in grey levels (0-255) averaged over pixels and channels:
#: anti-aliasing and driver differences move edges by a pixel (< 1 grey level on average), a moved or
#: recoloured shape or a missing colour bar costs more than 5.
BASELINE_TOLERANCE = 2.0


@pytest.fixture(autouse=True)
def _off_screen(monkeypatch):
    import pyvista

    monkeypatch.setattr(pyvista, "OFF_SCREEN", True)


@pytest.fixture(scope="module")
def face():
    return sks.read(get_data_dir("faces") / "faces" / "Template.obj").decimate(n_points=300)


@pytest.fixture(scope="module")
def skulls():
    return load_skulls()


def _rgb(path, frame=None):
    """The image at ``path`` as an (H, W, 3) float array in [0, 1] (``frame``: that frame of a GIF)."""
    from PIL import Image

    image = Image.open(path)
    if frame is not None:
        image.seek(frame)
    return np.asarray(image.convert("RGB"), dtype=float) / 255.0


def _assert_not_blank(rgb, name):
    assert rgb.std() > 0.05, f"{name}: the image is blank or nearly (std {rgb.std():.3f})"
    assert (rgb.sum(axis=2) < 2.9).mean() > 0.01, f"{name}: almost nothing but white"


def _fraction(rgb, colour):
    """Share of the pixels of a colour family: "red", "blue" (saturated) or "black"."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    masks = {
        "red": (r > 0.55) & (g < 0.4) & (b < 0.4),
        "blue": (b > 0.45) & (b > r + 0.2) & (b > g + 0.05),
        "black": rgb.max(axis=2) < 0.15,
    }
    return float(masks[colour].mean())


def _rotated(shape, angle=0.3, shift=(4.0, -2.0, 1.0)):
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=shape.dtype)
    centre = shape.points.mean(dim=0)
    return shape.with_points((shape.points - centre) @ rotation.T + centre + torch.tensor(shift))


@pytest.fixture(scope="module")
def face_registration(face):
    target = _rotated(face)
    reg = sks.Registration(model=sks.RigidMotion(), loss=sks.NearestNeighborsLoss(), n_iter=15).fit(face, target)
    return reg, target


@pytest.fixture(scope="module")
def skull_registration(skulls):
    reg = sks.Registration(model=sks.LDDMM(sigma=20.0, n_steps=4), loss=sks.SinkhornLoss(blur=2.0, scaling=0.7),
                           regularization_weight=1e-3, n_iter=8)
    return reg.fit(skulls.template, skulls.shapes[0]), skulls.shapes[0]


def test_importing_viz_needs_no_gui_library():
    """napari, magicgui, Qt, pyvista and matplotlib load when used, not on ``import skshapes.viz``."""
    import subprocess
    import sys

    code = (
        "import sys, skshapes.viz\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'pyvista', 'matplotlib', 'imageio'})\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"import skshapes.viz loaded {result.stdout.strip()}"


# ------------------------------------------------------------------ plot
def test_plot_3d_writes_a_picture_in_the_shape_colour(tmp_path, face):
    path = plot(face, screenshot=tmp_path / "face.png", camera_position="xy", window_size=(500, 400))
    rgb = _rgb(path)
    assert rgb.shape == (400, 500, 3)
    _assert_not_blank(rgb, "plot 3D")
    assert _fraction(rgb, "blue") > 0.05  # PALETTE[0], the first shape's colour


def test_plot_2d_writes_a_picture_in_the_shape_colours(tmp_path, skulls):
    path = plot(skulls.shapes[:2], colors=["#d62728", "#1f77b4"], screenshot=tmp_path / "skulls.png",
                window_size=(500, 400))
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot 2D")
    assert _fraction(rgb, "red") > 0.002 and _fraction(rgb, "blue") > 0.002


def test_plot_2d_colours_a_curve_by_its_scalars(skulls):
    """A curve drawn with scalars is coloured by them (an explicit colour used to win over the colour map)."""
    skull = skulls.template
    fig = plot(skull, scalars=skull.points[:, 0])
    [collection] = fig.axes[0].collections
    collection.update_scalarmappable()  # what drawing does
    colours = collection.get_edgecolor()
    assert len(np.unique(np.round(colours, 3), axis=0)) > 10


def test_plot_matches_the_baseline(tmp_path):
    """The canonical scene against ``tests/baseline/plot_face.png`` (see the module docstring to regenerate)."""
    face = sks.read(get_data_dir("faces") / "faces" / "Template.obj").decimate(n_points=500)
    reference = BASELINE / "plot_face.png"
    out = tmp_path / "plot_face.png"
    plot(face, scalars=face.points[:, 2], scalars_title="z (mm)", camera_position="xy", window_size=(600, 450),
         title="face template", screenshot=out)
    if os.environ.get("SKSHAPES_UPDATE_BASELINE"):
        BASELINE.mkdir(exist_ok=True)
        reference.write_bytes(out.read_bytes())
        pytest.skip(f"wrote the reference {reference}")
    new, old = _rgb(out), _rgb(reference)
    assert new.shape == old.shape, f"image size {new.shape} differs from the reference's {old.shape}"
    difference = 255 * np.abs(new - old).mean()
    assert difference < BASELINE_TOLERANCE, (
        f"mean |difference| to {reference.name} is {difference:.2f} grey levels (tolerance {BASELINE_TOLERANCE}); "
        f"the new picture is {out}"
    )


# ------------------------------------------------------- plot_registration
def test_plot_registration_3d(tmp_path, face_registration):
    reg, target = face_registration
    path = plot_registration(reg, target, screenshot=tmp_path / "reg3d.png", camera_position="xy")
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot_registration 3D")
    assert _fraction(rgb, "red") > 0.01  # the registered source


def test_plot_registration_2d(tmp_path, skull_registration):
    reg, target = skull_registration
    path = plot_registration(reg, target, screenshot=tmp_path / "reg2d.png", window_size=(800, 400))
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot_registration 2D")
    assert _fraction(rgb, "red") > 0.002 and _fraction(rgb, "blue") > 0.002


# ------------------------------------------------------------ plot_heatmap
def _bumps(shape):
    """Two bumps of opposite sign, +3 and -2 (mm), on either side of the face."""
    points = shape.points.numpy().astype(float)
    centre = points.mean(axis=0)
    right = np.exp(-((points - centre - [20.0, 0.0, 0.0]) ** 2).sum(axis=1) / 400.0)
    left = np.exp(-((points - centre + [20.0, 0.0, 0.0]) ** 2).sum(axis=1) / 400.0)
    return 3.0 * right - 2.0 * left


def test_plot_heatmap_3d_outlines_the_mask(tmp_path, face):
    values = _bumps(face)
    mask = np.abs(values) > 1.0
    path = plot_heatmap(face, values, mask=mask, screenshot=tmp_path / "heat.png", camera_position="xy",
                        window_size=(600, 450), label="displacement", title="two bumps")
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot_heatmap 3D")
    assert _fraction(rgb, "red") > 0.003 and _fraction(rgb, "blue") > 0.003  # both signs, and the colour bar
    without = _rgb(plot_heatmap(face, values, screenshot=tmp_path / "plain.png", camera_position="xy",
                                window_size=(600, 450), label="displacement", title="two bumps"))
    assert _fraction(rgb, "black") > _fraction(without, "black") + 0.002  # the outline


def test_plot_heatmap_3d_greys_outside_the_mask(tmp_path, face):
    values = _bumps(face)
    path = plot_heatmap(face, values, mask=values > 1.0, mask_style="grey", screenshot=tmp_path / "grey.png",
                        camera_position="xy", window_size=(600, 450))
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot_heatmap grey")
    assert _fraction(rgb, "red") > 0.003
    face_pixels = rgb[100:350, 200:400]
    assert _fraction(face_pixels, "blue") < 0.001  # the negative bump is not significant: grey, not blue


def test_plot_heatmap_centres_the_colours_on_zero(face):
    values = _bumps(face)
    plotter = plot_heatmap(face, values)
    try:
        low, high = plotter.mapper.scalar_range
    finally:
        plotter.close()
    assert low == pytest.approx(-values.max()) and high == pytest.approx(values.max())
    fig = plot_heatmap(load_skulls().template, np.linspace(-1.0, 4.0, 150), symmetric=True)
    norm = fig.axes[0].collections[0].norm
    assert (norm.vmin, norm.vmax) == (-4.0, 4.0)
    fig = plot_heatmap(load_skulls().template, np.linspace(-1.0, 4.0, 150), symmetric=False, clim=None)
    assert (fig.axes[0].collections[0].norm.vmin, fig.axes[0].collections[0].norm.vmax) == (-1.0, 4.0)


def test_plot_heatmap_2d(tmp_path, skulls):
    skull = skulls.template
    x = skull.points[:, 0] - skull.points[:, 0].mean()
    path = plot_heatmap(skull, x, mask=skull.points[:, 1] > skull.points[:, 1].mean(),
                        screenshot=tmp_path / "skull_heat.png", window_size=(600, 450))
    rgb = _rgb(path)
    _assert_not_blank(rgb, "plot_heatmap 2D")
    assert _fraction(rgb, "red") > 0.002 and _fraction(rgb, "blue") > 0.002 and _fraction(rgb, "black") > 0.002


def test_plot_heatmap_rejects_bad_input(face):
    n = face.n_points
    with pytest.raises(TypeError, match="template"):
        plot_heatmap(face.points, np.zeros(n))
    with pytest.raises(ValueError, match=rf"values must have shape \({n},\)"):
        plot_heatmap(face, np.zeros(n + 1))
    bad = np.zeros(n)
    bad[7] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plot_heatmap(face, bad)
    with pytest.raises(ValueError, match="mask must have shape"):
        plot_heatmap(face, np.zeros(n), mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        plot_heatmap(face, np.zeros(n), mask=np.full(n, 0.5))
    with pytest.raises(ValueError, match="mask_style"):
        plot_heatmap(face, np.zeros(n), mask=np.ones(n, dtype=bool), mask_style="dots")
    with pytest.raises(ValueError, match="clim"):
        plot_heatmap(face, np.zeros(n), clim=(1.0, -1.0))


# ----------------------------------------------------------------- animate
def test_geodesic_path_follows_the_lddmm_geodesic(skull_registration):
    """Shooting t p0 lands where the geodesic of p0 is at time t (the Hamiltonian is quadratic in p)."""
    reg, _ = skull_registration
    frames = geodesic_path(reg, n_frames=5)  # t = 0, 1/4, ..., 1: the model's own 4 steps
    steps = reg.model.morph(reg.source_, reg.parameter_, return_path=True).path
    assert len(frames) == 5
    torch.testing.assert_close(frames[0].points, reg.source_.points)
    torch.testing.assert_close(frames[-1].points, reg.morphed_shape_.points)
    for k in (1, 2, 3):
        # RK4 with 4 steps over different time spans: the two agree to the integrator's error, far below the
        # motion between frames (several mm)
        error = (frames[k].points - steps[k].points.detach()).norm(dim=1).max()
        motion = (steps[k].points - steps[k - 1].points).norm(dim=1).max()
        assert error < 0.05 * motion, (k, float(error), float(motion))


def test_animate_a_2d_registration(tmp_path, skull_registration):
    from PIL import Image

    reg, target = skull_registration
    path = animate(reg, tmp_path / "out" / "skull.gif", n_frames=6, fps=5, target=target, title="LDDMM",
                   window_size=(400, 300))
    assert path == tmp_path / "out" / "skull.gif"
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (400, 300)
        assert gif.info["duration"] == 200
    first, last = _rgb(path, 0), _rgb(path, 5)
    _assert_not_blank(last, "animate 2D")
    assert _fraction(last, "red") > 0.002 and _fraction(last, "blue") > 0.002
    assert np.abs(first - last).mean() > 0.002  # the shape moved


def test_animate_a_3d_registration(tmp_path, face_registration):
    from PIL import Image

    reg, target = face_registration
    path = animate(reg, tmp_path / "face.gif", n_frames=4, target=target, camera_position="xy",
                   window_size=(320, 240), bounce=True)
    with Image.open(path) as gif:
        assert gif.n_frames == 6  # 4 forwards, 2 back
    first, middle = _rgb(path, 0), _rgb(path, 3)
    _assert_not_blank(middle, "animate 3D")
    assert _fraction(middle, "red") > 0.02
    assert np.abs(first - middle).mean() > 0.002


def test_animate_a_list_of_shapes(tmp_path, skulls):
    from PIL import Image

    template = skulls.template
    path = [template, template.with_points(template.points * 1.2)]
    gif = animate(path, tmp_path / "grow.gif", n_frames=3, window_size=(300, 240))
    with Image.open(gif) as image:
        assert image.n_frames == 3
    with pytest.raises(ValueError, match="correspondence"):
        animate([template, skulls.shapes[0]], tmp_path / "bad.gif", n_frames=5)


def test_animate_rejects_bad_input(tmp_path, skull_registration, skulls):
    from sklearn.exceptions import NotFittedError

    reg, _ = skull_registration
    with pytest.raises(ValueError, match=r"\.gif"):
        animate(reg, tmp_path / "out.png")
    with pytest.raises(ValueError, match="at least 2"):
        animate(reg, tmp_path / "out.gif", n_frames=1)
    with pytest.raises(TypeError, match="n_frames"):
        animate(reg, tmp_path / "out.gif", n_frames=2.5)
    with pytest.raises(ValueError, match="fps"):
        animate(reg, tmp_path / "out.gif", fps=0)
    with pytest.raises(TypeError, match="Registration or a list"):
        animate(skulls.template, tmp_path / "out.gif")
    with pytest.raises(NotFittedError):
        animate(sks.Registration(), tmp_path / "out.gif")
