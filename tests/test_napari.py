"""The napari plugin: reader, ``add_to_napari`` and the registration dock widget, headless.

Runs with napari, pytest-qt and a Qt binding installed (the ``dev`` extra);
skipped otherwise. ``QT_QPA_PLATFORM=offscreen`` is set here so that no
display is needed. The plugin is registered from ``skshapes/viz/napari.yaml``
in npe2's test plugin manager, so these tests do not depend on the package's
entry point being installed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import skshapes as sks
from skshapes.datasets import get_data_dir
from skshapes.viz import add_to_napari, layer_data, shape_from_layer

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt loads: no display needed
napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")

MANIFEST = Path(sks.viz.__file__).parent / "napari.yaml"


@pytest.fixture
def plugin(npe2pm):
    """The skshapes plugin, registered from its manifest file for the duration of a test."""
    with npe2pm.tmp_plugin(manifest=str(MANIFEST)) as plugin:
        yield plugin


@pytest.fixture(scope="module")
def face():
    return sks.read(get_data_dir("faces") / "faces" / "Template.obj").decimate(n_points=300)


def _rotated(shape, angle=0.3, shift=(4.0, -2.0, 1.0)):
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=shape.dtype)
    centre = shape.points.mean(dim=0)
    return shape.with_points((shape.points - centre) @ rotation.T + centre + torch.tensor(shift))


# ---------------------------------------------------------------- reader
def test_manifest_is_valid_and_names_the_contributions(plugin):
    manifest = plugin.manifest
    assert manifest.name == "skshapes"
    assert {c.id for c in manifest.contributions.commands} == {"skshapes.get_reader", "skshapes.registration_widget"}
    [reader] = manifest.contributions.readers
    assert set(reader.filename_patterns) == {"*.vtk", "*.vtp", "*.ply", "*.obj", "*.stl"}


def test_reader_opens_a_mesh_as_a_surface(make_napari_viewer, plugin):
    viewer = make_napari_viewer()
    path = get_data_dir("faces") / "faces" / "Template_1K.obj"
    layers = viewer.open(str(path), plugin="skshapes")
    assert [type(layer).__name__ for layer in layers] == ["Surface"]
    surface = layers[0]
    assert surface.name == "Template_1K"
    shape = sks.read(path)
    np.testing.assert_allclose(surface.data[0], shape.points.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(surface.data[1], shape.triangles.numpy())


def test_reader_opens_a_curve_as_paths(make_napari_viewer, plugin):
    viewer = make_napari_viewer()
    path = get_data_dir("skulls") / "skulls" / "template.vtk"
    [layer] = viewer.open(str(path), plugin="skshapes")
    assert type(layer).__name__ == "Shapes"
    assert set(layer.shape_type) == {"path"}
    skull = sks.read(path)
    # every edge of the curve is a segment of exactly one path
    n_segments = sum(len(path) - 1 for path in layer.data)
    assert n_segments == skull.n_edges


def test_reader_declines_other_files():
    from skshapes.viz._napari import get_reader

    assert get_reader("image.tif") is None
    assert get_reader(["a.ply", "b.tif"]) is None
    assert callable(get_reader(["a.ply", "B.STL"]))


# ------------------------------------------------------------ add_to_napari
def test_add_to_napari_gives_one_layer_per_kind(make_napari_viewer, face):
    viewer = make_napari_viewer()
    mesh = sks.PolyData(face.points, triangles=face.triangles, landmarks=torch.tensor([0, 5, 9]))
    surface, landmarks = add_to_napari(viewer, mesh, name="face", values=face.points[:, 2])
    assert type(surface).__name__ == "Surface" and surface.name == "face"
    assert len(surface.data) == 3 and surface.data[2].shape == (face.n_points,)
    assert type(landmarks).__name__ == "Points" and landmarks.name == "face landmarks"
    np.testing.assert_allclose(landmarks.data, face.points[[0, 5, 9]].numpy())
    [cloud] = add_to_napari(viewer, sks.PolyData(face.points), name="cloud")
    assert type(cloud).__name__ == "Points" and cloud.data.shape == (face.n_points, 3)
    square = sks.PolyData(torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]),
                          edges=torch.tensor([[0, 1], [1, 2], [2, 3], [3, 0]]))
    [curve] = add_to_napari(viewer, square, name="square", color="red")
    assert type(curve).__name__ == "Shapes" and curve.nshapes == 1
    assert len(curve.data[0]) == 5  # a closed loop comes back to its first point
    assert len(viewer.layers) == 4
    # and back: the surface becomes the same PolyData
    again = shape_from_layer(surface)
    np.testing.assert_allclose(again.points.numpy(), face.points.numpy(), rtol=1e-6)


def test_shape_from_layer_applies_the_layer_transform(make_napari_viewer, face):
    viewer = make_napari_viewer()
    [surface] = add_to_napari(viewer, face, scale=(2.0, 2.0, 2.0), translate=(10.0, 0.0, 0.0))
    world = shape_from_layer(surface).points.numpy()
    np.testing.assert_allclose(world, 2.0 * face.points.numpy() + [10.0, 0.0, 0.0], rtol=1e-5, atol=1e-4)


def test_layer_data_rejects_bad_input(face):
    with pytest.raises(TypeError, match="PolyData"):
        layer_data(face.points)
    with pytest.raises(ValueError, match="values"):
        layer_data(face, values=np.zeros(3))


# ------------------------------------------------------------ the widget
def _dock_widget(viewer):
    """The registration widget, made by napari from the plugin's widget contribution."""
    _, widget = viewer.window.add_plugin_dock_widget("skshapes", "Shape registration")
    return widget


def test_widget_registers_a_rotated_copy(make_napari_viewer, plugin, face):
    viewer = make_napari_viewer()
    target = _rotated(face)
    [source_layer] = add_to_napari(viewer, face, name="source")
    [target_layer] = add_to_napari(viewer, target, name="target")
    widget = _dock_widget(viewer)
    widget.set_options(source=source_layer, target=target_layer, model="rigid", loss="nearest", n_iter=20)
    before = np.linalg.norm(face.points.numpy() - target.points.numpy(), axis=1).mean()
    [layer] = widget.run(background=False)
    assert layer.name == "source registered" and layer in viewer.layers
    assert isinstance(layer, napari.layers.Surface)
    np.testing.assert_array_equal(layer.data[1], face.triangles.numpy())
    # the vertices are in correspondence: the registered source lies on the target
    after = np.linalg.norm(layer.data[0] - target.points.numpy(), axis=1).mean()
    assert before > 10.0 and after < 0.05, (before, after)
    assert "data term" in widget._status.value


def test_widget_runs_in_a_worker_with_sinkhorn(make_napari_viewer, plugin, qtbot, face):
    viewer = make_napari_viewer()
    target = _rotated(face, angle=0.2)
    [source_layer] = add_to_napari(viewer, face, name="source")
    [target_layer] = add_to_napari(viewer, target, name="target")
    widget = _dock_widget(viewer)
    assert widget._target.value is target_layer  # the target defaults to the other surface
    widget.set_options(source=source_layer, target=target_layer, model="rigid", loss="sinkhorn", n_iter=15)
    worker = widget.run(background=True)
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=5_000)
    registered = viewer.layers["source registered"]
    error = np.linalg.norm(registered.data[0] - target.points.numpy(), axis=1).mean()
    assert error < 0.5, error


def test_widget_reports_bad_choices(make_napari_viewer, plugin, face):
    viewer = make_napari_viewer()
    [layer] = add_to_napari(viewer, face, name="only")
    widget = _dock_widget(viewer)
    widget.set_options(source=layer, target=layer)
    with pytest.raises(ValueError, match="same layer"):
        widget.run(background=False)
    assert "failed" in widget._status.value
