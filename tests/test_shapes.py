"""PolyData: validation, geometry against closed forms, conversions and file round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_close

import skshapes as sks
from skshapes.shapes import decimate, farthest_point_sampling, replay_decimation

SQUARE = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
SQUARE_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])


def tetrahedron():
    points = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    triangles = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # outward winding
    return sks.PolyData(points, triangles=triangles, landmarks=[0, 3], point_data={"label": np.arange(4)})


BAD_INPUTS = [
    ("NaN point", dict(points=[[0.0, np.nan, 0]]), "NaN"),
    ("inf point", dict(points=[[0.0, np.inf, 0]]), "NaN or inf"),
    ("empty points", dict(points=np.zeros((0, 3))), "empty"),
    ("4-D points", dict(points=np.zeros((5, 4))), "dimension 4"),
    ("1-D points", dict(points=np.zeros(5)), "shape \\(N, D\\)"),
    ("triangle index out of range", dict(points=SQUARE, triangles=[[0, 1, 4]]), "triangles has vertex indices out of range"),
    ("negative triangle index", dict(points=SQUARE, triangles=[[0, 1, -1]]), "triangles has vertex indices out of range"),
    ("float triangles", dict(points=SQUARE, triangles=np.array([[0.0, 1, 2]])), "triangles must hold integer"),
    ("quads as triangles", dict(points=SQUARE, triangles=[[0, 1, 2, 3]]), "triangles must have shape \\(C, 3\\)"),
    ("edge out of range", dict(points=SQUARE, edges=[[0, 9]]), "edges has vertex indices out of range"),
    ("float edges", dict(points=SQUARE, edges=np.array([[0.5, 1]])), "edges must hold integer"),
    ("landmark out of range", dict(points=SQUARE, landmarks=[7]), "landmarks has vertex indices out of range"),
    ("float landmarks", dict(points=SQUARE, landmarks=[0.0]), "landmarks must be integer"),
    ("point_data wrong rows", dict(points=SQUARE, point_data={"t": np.zeros(3)}), "point_data\\['t'\\] must have 4 rows"),
]


@pytest.mark.parametrize("label, kwargs, message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_value_error_naming_the_problem(label, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sks.PolyData(**kwargs)


def test_non_numeric_points_raise_type_error():
    with pytest.raises(TypeError, match="points"):
        sks.PolyData([["a", "b", "c"]])


def test_callers_arrays_are_copied_never_modified():
    points = SQUARE.copy()
    tensor = torch.tensor(SQUARE, dtype=torch.float32)
    shape_np, shape_t = sks.PolyData(points, triangles=SQUARE_TRIANGLES), sks.PolyData(tensor)
    shape_np.points[0, 0] = 42.0
    shape_t.points[0, 0] = 42.0
    assert points[0, 0] == 0.0 and tensor[0, 0] == 0.0
    moved = shape_np.copy()
    moved.points[1] += 1
    assert shape_np.points[1, 0] == 1.0


def test_dtypes_are_kept_and_integers_become_float32():
    assert sks.PolyData(SQUARE.astype(np.float64)).dtype == torch.float64
    assert sks.PolyData(SQUARE.astype(np.float32)).dtype == torch.float32
    assert sks.PolyData(SQUARE.astype(np.int64)).dtype == torch.float32
    assert sks.PolyData(SQUARE, triangles=SQUARE_TRIANGLES.astype(np.int32)).triangles.dtype == torch.int64


def test_point_weights_of_a_mesh_are_barycentric_vertex_areas():
    square = sks.PolyData(SQUARE, triangles=SQUARE_TRIANGLES)
    # each triangle has area 1/2; vertices 0 and 2 touch both, 1 and 3 one
    assert_close(square.point_weights, torch.tensor([1 / 3, 1 / 6, 1 / 3, 1 / 6], dtype=torch.float64), rtol=1e-12)
    assert_close(square.triangle_areas, torch.tensor([0.5, 0.5], dtype=torch.float64), rtol=1e-12)


def test_point_weights_of_a_curve_are_half_incident_lengths():
    points = np.array([[0.0, 0], [3, 0], [3, 4]])
    curve = sks.PolyData(points, edges=[[0, 1], [1, 2]])
    assert_close(curve.point_weights, torch.tensor([1.5, 3.5, 2.0], dtype=torch.float64), rtol=1e-12)


def test_point_weights_of_a_cloud_are_uniform():
    cloud = sks.PolyData(np.random.default_rng(0).normal(size=(8, 3)))
    assert_close(cloud.point_weights, torch.full((8,), 1 / 8, dtype=torch.float64), rtol=1e-12)


def test_point_weights_are_differentiable():
    points = torch.tensor(SQUARE, requires_grad=True)
    area = sks.PolyData(SQUARE, triangles=SQUARE_TRIANGLES).with_points(points).point_weights.sum()
    (gradient,) = torch.autograd.grad(area, points)
    # vertex 1 = (1, 0) lies in triangle (0, 0)-(1, 0)-(1, 1) only: the gradient of its area is
    # half the opposite edge's length (sqrt 2 / 2) along the outward normal (1, -1) / sqrt 2
    assert_close(gradient[1], torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_normals_of_a_closed_mesh_point_outwards():
    tet = tetrahedron()
    normals = tet.normals
    assert_close(normals.norm(dim=1), torch.ones(4), rtol=1e-6)
    centroid = tet.points.mean(dim=0)
    assert bool(((tet.points - centroid) * normals).sum(dim=1).gt(0).all())
    # vertex 0 at the corner: the mean of the three axis-aligned faces' normals
    assert_close(normals[0], -torch.ones(3) / math.sqrt(3), rtol=1e-6)


def test_normals_of_a_2d_circle_are_radial():
    angles = torch.linspace(0, 2 * math.pi, 33, dtype=torch.float64)[:-1]
    points = torch.stack([angles.cos(), angles.sin()], dim=1)
    edges = torch.stack([torch.arange(32), (torch.arange(32) + 1) % 32], dim=1)  # counter-clockwise
    normals = sks.PolyData(points, edges=edges).normals
    assert_close(normals, points, rtol=0, atol=1e-12)


def test_normals_raise_for_point_clouds():
    with pytest.raises(ValueError, match="normals are defined for"):
        sks.PolyData(SQUARE).normals


@pytest.mark.parametrize("extension", [".vtk", ".vtp", ".ply", ".obj", ".stl"])
def test_mesh_file_round_trip(tmp_path, extension):
    tet = tetrahedron()
    path = tmp_path / f"tet{extension}"
    tet.save(path)
    back = sks.read(path)
    assert back.dim == 3 and back.dtype == torch.float32
    if extension == ".stl":  # STL stores triangle soups: compare the triangles' geometry
        original = tet.points[tet.triangles].reshape(-1, 3).sort(dim=0).values
        assert_close(back.points[back.triangles].reshape(-1, 3).sort(dim=0).values, original, rtol=0, atol=1e-6)
        return
    assert_close(back.points, tet.points, rtol=0, atol=1e-6)
    assert torch.equal(back.triangles, tet.triangles)
    if extension in (".vtk", ".vtp"):
        assert torch.equal(back.landmarks, tet.landmarks)
        assert torch.equal(back.point_data["label"], tet.point_data["label"])


def test_2d_curve_round_trip_stays_2d(tmp_path):
    curve = sks.PolyData(np.array([[0.0, 0], [1, 0], [1, 2]]), edges=[[0, 1], [1, 2]])
    curve.save(tmp_path / "curve.vtk")
    back = sks.read(tmp_path / "curve.vtk")
    assert back.dim == 2 and torch.equal(back.edges, curve.edges)
    assert_close(back.points, curve.points.float(), rtol=0, atol=1e-6)


def test_read_missing_and_garbage_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        sks.read(tmp_path / "missing.vtk")
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"ply\nthis is not a mesh\n")
    with pytest.raises(ValueError, match="garbage.ply"):
        sks.read(garbage)


def test_save_unknown_extension_raises(tmp_path):
    with pytest.raises(ValueError, match="cannot write"):
        tetrahedron().save(tmp_path / "tet.xyz")


def test_pyvista_and_trimesh_conversions_keep_vertex_order():
    tet = tetrahedron()
    for back in (sks.PolyData.from_pyvista(tet.to_pyvista()), sks.PolyData.from_trimesh(tet.to_trimesh())):
        assert torch.equal(back.points, tet.points)
        assert torch.equal(back.triangles, tet.triangles)
    with pytest.raises(ValueError, match="3D triangle mesh"):
        sks.PolyData(SQUARE).to_trimesh()


def test_polylines_with_many_points_are_split_into_segments():
    import pyvista

    mesh = pyvista.PolyData(np.array([[0.0, 0, 1], [1, 0, 1], [2, 0, 1], [3, 0, 1]]), lines=[4, 0, 1, 2, 3])
    shape = sks.PolyData.from_pyvista(mesh)
    assert shape.edges.tolist() == [[0, 1], [1, 2], [2, 3]]


def test_to_device_and_dtype():
    tet = tetrahedron()
    double = tet.to("cpu", dtype=torch.float64)
    assert double.dtype == torch.float64 and tet.dtype == torch.float32
    assert torch.equal(double.triangles, tet.triangles)


def test_with_points_checks_shape_and_keeps_connectivity():
    tet = tetrahedron()
    moved = tet.with_points(tet.points + 1)
    assert moved.triangles is tet.triangles and torch.equal(moved.landmarks, tet.landmarks)
    with pytest.raises(ValueError, match="shape"):
        tet.with_points(tet.points[:2])


def test_farthest_point_sampling_matches_a_naive_reference():
    points = torch.randn(200, 3, generator=torch.Generator().manual_seed(1))
    chosen = [0]
    for _ in range(19):
        distances = torch.cdist(points, points[chosen]).min(dim=1).values
        chosen.append(int(distances.argmax()))
    assert farthest_point_sampling(points, 20).tolist() == chosen


def test_decimating_a_cloud_keeps_the_farthest_points():
    cloud = sks.PolyData(torch.randn(100, 3, generator=torch.Generator().manual_seed(2)))
    small = cloud.decimate(10)
    assert small.n_points == 10
    assert_close(small.points, cloud.points[farthest_point_sampling(cloud.points, 10)], rtol=0)


def test_mesh_decimation_replays_on_a_moved_copy():
    import pyvista

    sphere = sks.PolyData.from_pyvista(pyvista.Sphere(theta_resolution=30, phi_resolution=30))
    sphere = sks.PolyData(sphere.points, triangles=sphere.triangles, landmarks=[0, 100])
    small, collapses = decimate(sphere, 200)
    assert 150 <= small.n_points <= 250
    # the same collapses on a translated copy give the translated decimation
    shifted = replay_decimation(sphere.with_points(sphere.points + 5.0), collapses)
    assert torch.equal(shifted.triangles, small.triangles)
    assert_close(shifted.points, small.points + 5.0, rtol=0, atol=1e-5)
    assert torch.equal(shifted.landmarks, small.landmarks)
    with pytest.raises(ValueError, match="n_points"):
        decimate(sphere, 0)
