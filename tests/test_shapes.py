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


# ------------------------------------------------------------------ hostile and malformed files
def _hostile_files():
    """(name, bytes, expected message) for each kind of malformed file that read() documents."""
    tiny_vtk = b"# vtk DataFile Version 4.2\nt\nASCII\nDATASET POLYDATA\n"
    ply_head = b"ply\nformat binary_little_endian 1.0\nelement vertex %d\nproperty float x\nproperty float y\nproperty float z\n"
    vtp = (
        b'<?xml version="1.0"?>\n<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian" header_type="UInt32"%s>'
        b'<PolyData><Piece NumberOfPoints="%d" NumberOfPolys="0"><Points>'
        b'<DataArray type="Float32" NumberOfComponents="3" format="binary">%s</DataArray>'
        b"</Points></Piece></PolyData></VTKFile>\n"
    )
    import base64
    import zlib

    bomb_header = np.array([1, 10**9 % 2**32, 10**9 % 2**32, 20], dtype="<u4").tobytes()
    blocks_header = np.array([2**32 - 1, 4096, 0], dtype="<u4").tobytes()
    return [
        ("empty.vtk", b"", "empty"),
        ("absurd_points.vtk", tiny_vtk + b"POINTS 1000000000000 float\n0 0 0\n", "3000000000000 values declared"),
        ("absurd_binary_points.vtk", (tiny_vtk.replace(b"ASCII", b"BINARY") + b"POINTS 1099511627776 float\n\0\0\0\0"),
         "bytes left in the file"),
        ("wrong_cell_size.vtk", tiny_vtk + b"POINTS 3 float\n0 0 0 1 0 0 0 1 0\nPOLYGONS 2 9\n3 0 1 2 3 0 1 2\n",
         "9 values declared"),
        ("cell_beyond_values.vtk", tiny_vtk + b"POINTS 3 float\n0 0 0 1 0 0 0 1 0\nPOLYGONS 1 4\n7 0 1 2\n",
         "beyond the 4 values"),
        ("index_out_of_range.vtk", tiny_vtk + b"POINTS 3 float\n0 0 0 1 0 0 0 1 0\nPOLYGONS 1 4\n3 0 1 9\n",
         "out of range: found \\[0, 9\\] for 3 points"),
        ("nan.vtk", tiny_vtk + b"POINTS 3 float\n0 0 0 nan 0 0 0 1 0\nPOLYGONS 1 4\n3 0 1 2\n", "NaN or inf"),
        ("inf.obj", b"v 0 0 0\nv 1 0 inf\nv 0 1 0\nf 1 2 3\n", "NaN or inf"),
        ("float32_overflow.obj", b"v 0 0 0\nv 1 0 1e300\nv 0 1 0\nf 1 2 3\n", "NaN or inf"),
        ("long_line.vtk", b"# vtk DataFile Version 4.2\n" + b"x" * (1 << 20), "longer than"),
        ("unknown_keyword.vtk", tiny_vtk + b"POINTS 1 float\n0 0 0\nBANANAS 3\n", "unexpected keyword 'BANANAS'"),
        ("volume.vtk", (b"# vtk DataFile Version 4.2\nt\nASCII\nDATASET UNSTRUCTURED_GRID\nPOINTS 4 float\n"
                        b"0 0 0 1 0 0 0 1 0 0 0 1\nCELLS 1 5\n4 0 1 2 3\nCELL_TYPES 1\n10\n"), "volume"),
        ("absurd_vertices.ply", ply_head % (2**32 - 1) + b"end_header\n" + b"\0" * 12, "only 12 bytes left"),
        ("absurd_faces.ply", (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                              b"property float z\nelement face 1000000000000\n"
                              b"property list uchar int vertex_indices\nend_header\n0 0 0\n"),
         "1000000000000 records declared"),
        ("no_end_header.ply", b"ply\nformat ascii 1.0\ncomment " + b"x" * (2 << 20), "no 'end_header'"),
        ("trailing.ply", ply_head % 1 + b"end_header\n" + b"\0" * 12 + b"GARBAGE", "7 bytes after the last element"),
        ("short_face.obj", b"v 0 0 0\nv 1 0 0\nf 1 2\n", "a face needs at least 3 vertices"),
        ("huge_polygon.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf " + b" ".join([b"1 2 3"] * 30000) + b"\n",
         "a polygon with 90000 vertices"),
        ("index_zero.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "OBJ indices start at 1"),
        ("out_of_range.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "out of range"),
        ("absurd_count.stl", b"\0" * 80 + np.array([2**32 - 1], "<u4").tobytes() + b"\0" * 50,
         "declares 4294967295 triangles"),
        ("absurd_points.vtp", vtp % (b"", 10**12, base64.b64encode(b"\0" * 16)), "far fewer bytes"),
        ("zip_bomb.vtp", vtp % (b' compressor="vtkZLibDataCompressor"', 10**9 // 12,
                                base64.b64encode(bomb_header) + base64.b64encode(zlib.compress(b"\0" * 100))),
         "(cannot come out of|far fewer bytes)"),
        ("absurd_blocks.vtp", vtp % (b' compressor="vtkZLibDataCompressor"', 1, base64.b64encode(blocks_header)),
         "compressed blocks declared"),
        ("entities.vtp", (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                          b'<VTKFile type="PolyData"><PolyData><Piece NumberOfPoints="1">&b;</Piece></PolyData></VTKFile>'),
         "entity declarations are not allowed"),
        ("wrong_type.vtp", b'<VTKFile type="ImageData"></VTKFile>', "expected 'PolyData'"),
    ]


@pytest.mark.parametrize("name, data, message", _hostile_files(), ids=[h[0] for h in _hostile_files()])
def test_malformed_and_hostile_files_raise_value_error_quickly_and_cheaply(tmp_path, name, data, message):
    import time
    import tracemalloc

    path = tmp_path / name
    path.write_bytes(data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=message) as raised:
            sks.read(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(raised.value) and isinstance(raised.value, sks.shapes.ShapeFileError)
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert peak < 64 * 2**20 + 8 * len(data), f"peak allocation {peak / 2**20:.1f} MiB"


def test_polygons_and_strips_are_triangulated_and_polylines_split(tmp_path):
    path = tmp_path / "mixed.vtk"
    path.write_bytes(
        b"# vtk DataFile Version 4.2\nt\nASCII\nDATASET POLYDATA\nPOINTS 6 float\n"
        b"0 0 0 1 0 0 1 1 0 0 1 0 2 0 0 2 1 0\nPOLYGONS 1 5\n4 0 1 2 3\nTRIANGLE_STRIPS 1 5\n4 1 4 2 5\n"
        b"LINES 1 4\n3 0 1 4\n"
    )
    shape = sks.read(path)
    assert shape.n_triangles == 4 and shape.edges.tolist() == [[0, 1], [1, 4]]
    assert_close(shape.triangle_areas.sum(), torch.tensor(2.0), rtol=1e-6)
    obj = tmp_path / "quad.obj"
    obj.write_bytes(b"v 0 0 0\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 -1/1\nl 1 2 3\n")
    shape = sks.read(obj, dim=3)
    assert shape.n_triangles == 2 and shape.edges.tolist() == [[0, 1], [1, 2]]


def _defective_mesh():
    """A square (2 triangles) plus a duplicated triangle, a zero-area triangle and a flap on edge (0, 2)."""
    points = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1], [2, 2, 0], [3, 3, 0]])
    triangles = np.array([[0, 1, 2], [0, 2, 3], [2, 1, 0], [2, 5, 6], [0, 2, 4], [4, 4, 1]])
    return sks.PolyData(points, triangles=triangles, landmarks=[4, 6], point_data={"id": np.arange(7)})


def test_defects_warn_on_read_and_clean_removes_them(tmp_path):
    from skshapes.shapes import MeshQualityWarning, find_defects

    shape = _defective_mesh()
    assert find_defects(shape) == {"degenerate_triangles": 2, "duplicated_triangles": 1, "non_manifold_edges": 1}
    path = tmp_path / "defects.vtk"
    shape.save(path)
    with pytest.warns(MeshQualityWarning, match="2 degenerate triangles.*1 duplicated.*1 non-manifold"):
        sks.read(path)
    with pytest.warns(MeshQualityWarning, match="1 non-manifold") as record:
        cleaned = sks.read(path, clean=True)
    assert "degenerate" not in str(record[0].message)
    assert cleaned.n_triangles == 3 and find_defects(cleaned) == {"non_manifold_edges": 1}
    # vertex 5 only served the zero-area triangle: dropped; vertex 6 too, but it is a landmark
    assert cleaned.n_points == 6 and cleaned.point_data["id"].tolist() == [0, 1, 2, 3, 4, 6]
    assert cleaned.landmark_points.tolist() == [[0.5, 0.5, 1.0], [3.0, 3.0, 0.0]]


def test_clean_merges_close_vertices_and_keeps_order_landmarks_and_dtype():
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1e-9, 0], [1, 1, 0]], dtype=torch.float64)
    square = sks.PolyData(points, triangles=[[0, 1, 2], [3, 4, 2]], landmarks=[3], point_data={"t": torch.arange(5)})
    exact = square.clean()
    assert exact.n_points == 5 and torch.equal(exact.triangles, square.triangles)
    merged = square.clean(tolerance=1e-6)
    assert merged.dtype == torch.float64 and merged.n_points == 4
    assert merged.triangles.tolist() == [[0, 1, 2], [1, 3, 2]]
    assert merged.landmarks.tolist() == [1] and merged.point_data["t"].tolist() == [0, 1, 2, 4]
    cloud = sks.PolyData(torch.tensor([[0.0, 0], [1, 0], [0, 0], [2, 0]]))
    assert cloud.clean().points.tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    curve = sks.PolyData(torch.tensor([[0.0, 0], [1, 0], [1, 0], [2, 0]]), edges=[[0, 1], [1, 2], [2, 3], [3, 2]])
    assert curve.clean().edges.tolist() == [[0, 1], [1, 2]]
    with pytest.raises(ValueError, match="tolerance"):
        square.clean(tolerance=-1.0)
    with pytest.raises(TypeError, match="tolerance"):
        square.clean(tolerance="1")
    with pytest.raises(ValueError, match="nothing is left"):
        sks.PolyData(np.zeros((3, 3)), triangles=[[0, 1, 2]]).clean()
    with pytest.raises(ValueError, match="NaN"):
        square.with_points(square.points * float("nan")).clean()


def test_from_pyvista_checks_connectivity_before_vtk_sees_it():
    import pyvista

    mesh = pyvista.PolyData(np.zeros((3, 3)), faces=np.array([4, 0, 1, 2, 7]), force_float=True)
    with pytest.raises(ValueError, match="out of range"):
        sks.PolyData.from_pyvista(mesh)


def test_unknown_extensions_go_to_meshio_and_fail_cleanly(tmp_path):
    off = tmp_path / "tri.off"
    off.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert sks.read(off, dim=3).n_triangles == 1
    junk = tmp_path / "junk.msh"
    junk.write_bytes(b"$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$Nodes\n1 999999999999 1 9\n")
    with pytest.raises(ValueError, match="junk.msh"):
        sks.read(junk)


@pytest.mark.parametrize("binary", [False, True], ids=["ascii", "binary"])
@pytest.mark.parametrize("extension", [".vtk", ".vtp"])
def test_string_arrays_and_normals_are_skipped_other_arrays_kept(tmp_path, binary, extension):
    import pyvista

    mesh = pyvista.Sphere(theta_resolution=5, phi_resolution=5)
    mesh.point_data["label"] = np.arange(mesh.n_points)
    mesh.point_data["names"] = [f"vertex {i}" for i in range(mesh.n_points)]
    mesh.field_data["landmarks"] = np.array([1, 2])
    mesh.field_data["comment"] = ["a b", "", "c"]
    mesh.save(tmp_path / f"strings{extension}", binary=binary)
    shape = sks.read(tmp_path / f"strings{extension}")
    assert sorted(shape.point_data) == ["label"] and shape.landmarks.tolist() == [1, 2]
    assert shape.point_data["label"].tolist() == list(range(mesh.n_points))


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian"])
def test_ply_with_polygons_texture_lists_and_face_colours(tmp_path, fmt):
    import struct

    header = (
        f"ply\nformat {fmt} 1.0\ncomment extra elements and list types\nelement vertex 5\nproperty float x\n"
        "property float y\nproperty float z\nproperty uchar quality\nelement face 2\n"
        "property list uchar int vertex_indices\nproperty list uchar float texcoord\nproperty uchar red\nend_header\n"
    ).encode()
    if fmt == "ascii":
        body = b"0 0 0 1\n1 0 0 2\n1 1 0 3\n0 1 0 4\n2 0 0 5\n3 1 4 2 6 .1 .2 .3 .4 .5 .6 255\n4 0 1 2 3 2 .5 .5 7\n"
    else:
        points = SQUARE.tolist() + [[2.0, 0.0, 0.0]]
        body = b"".join(struct.pack("<3fB", *p, q) for p, q in zip(points, [1, 2, 3, 4, 5]))
        body += struct.pack("<B3iB6fB", 3, 1, 4, 2, 6, *[0.1] * 6, 255) + struct.pack("<B4iB2fB", 4, 0, 1, 2, 3, 2, 0.5, 0.5, 7)
    (tmp_path / "square.ply").write_bytes(header + body)
    shape = sks.read(tmp_path / "square.ply", dim=3)
    assert shape.n_triangles == 3 and shape.point_data["quality"].tolist() == [1, 2, 3, 4, 5]
    assert_close(shape.point_weights.sum(), torch.tensor(1.5), rtol=1e-6)  # a square and a half
