"""Multi-scale curvatures of oriented point clouds (skshapes.features): known surfaces, symmetries, conventions."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.spatial import ConvexHull

import skshapes as sks
from skshapes.features import curvatures, tangent_frames

R = 3.0


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def sphere(n=600, radius=R, dtype=torch.float64, seed=0):
    """Random points of a sphere and their exact outward normals."""
    normals = torch.nn.functional.normalize(torch.randn(n, 3, generator=_generator(seed), dtype=dtype), dim=1)
    return radius * normals, normals


def cylinder(n=800, radius=R, height=4 * R, dtype=torch.float64, seed=0):
    """Random points of the cylinder x^2 + y^2 = radius^2, |z| <= height / 2, with outward normals."""
    g = _generator(seed)
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=dtype)
    z = height * (torch.rand(n, generator=g, dtype=dtype) - 0.5)
    normals = torch.stack([theta.cos(), theta.sin(), torch.zeros_like(theta)], dim=1)
    return torch.cat([radius * normals[:, :2], z[:, None]], dim=1), normals


def random_rotation(seed=1, dtype=torch.float64):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=_generator(seed), dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def fibonacci_sphere_mesh(n=1500, radius=R):
    """A triangulated sphere (convex hull of a Fibonacci lattice), for normals estimated from a mesh."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi, theta = torch.acos(1 - 2 * i / n), math.pi * (1 + 5**0.5) * i
    points = torch.stack([phi.sin() * theta.cos(), phi.sin() * theta.sin(), phi.cos()], dim=1)
    triangles = torch.as_tensor(ConvexHull(points.numpy()).simplices, dtype=torch.int64)
    # orient the triangles outwards
    a, b, c = points[triangles].unbind(1)
    flip = (torch.linalg.cross(b - a, c - a) * (a + b + c)).sum(1) < 0
    triangles[flip] = triangles[flip][:, [0, 2, 1]]
    return sks.PolyData(radius * points, triangles=triangles)


def test_tangent_frames_are_direct_orthonormal():
    normals = torch.nn.functional.normalize(torch.randn(500, 3, generator=_generator(), dtype=torch.float64), dim=1)
    normals[:3] = torch.tensor([[0.0, 0, 1], [0, 0, -1], [1, 0, 0]], dtype=torch.float64)
    u, v = tangent_frames(normals)
    frames = torch.stack([u, v, normals], dim=1)
    torch.testing.assert_close(frames @ frames.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(500, 3, 3))
    torch.testing.assert_close(torch.det(frames), torch.ones(500, dtype=torch.float64))


@pytest.mark.parametrize("k", [None, 40])
def test_sphere(k):
    points, normals = sphere()
    out = curvatures(points, normals, [0.2 * R, 0.5 * R], k=k)
    assert out.shape == (600, 4) and out.dtype == torch.float64
    torch.testing.assert_close(out[:, 0::2], torch.full((600, 2), 1 / R, dtype=torch.float64), rtol=0.03, atol=0)
    torch.testing.assert_close(out[:, 1::2], torch.full((600, 2), 1 / R**2, dtype=torch.float64), rtol=0.03, atol=0)
    # inward normals: H changes sign, K does not
    flipped = curvatures(points, -normals, [0.2 * R, 0.5 * R], k=k)
    torch.testing.assert_close(flipped[:, 0::2], -out[:, 0::2])
    torch.testing.assert_close(flipped[:, 1::2], out[:, 1::2])


def test_sphere_with_mesh_normals_and_noise():
    """Normals estimated from a triangulation, points jittered: still within a few % at 0.2 R."""
    mesh = fibonacci_sphere_mesh()
    points = mesh.points + 0.002 * R * torch.randn(mesh.points.shape, generator=_generator(2), dtype=torch.float64)
    out = curvatures(points, mesh.normals, 0.2 * R)
    assert abs(float(out[:, 0].mean()) * R - 1) < 0.03 and float((out[:, 0] * R - 1).abs().max()) < 0.1
    assert abs(float(out[:, 1].mean()) * R**2 - 1) < 0.05


def test_cylinder():
    points, normals = cylinder()
    out = curvatures(points, normals, [0.2 * R])
    torch.testing.assert_close(out[:, 0], torch.full((800,), 1 / (2 * R), dtype=torch.float64), rtol=0.03, atol=0)
    assert float(out[:, 1].abs().max()) < 0.03 / R**2


def test_plane():
    g = _generator(3)
    points = torch.cat([10 * torch.rand(400, 2, generator=g), torch.zeros(400, 1)], dim=1)
    normals = torch.tensor([0.0, 0.0, 1.0]).expand(400, 3)
    out = curvatures(points, normals, [0.5, 2.0])
    assert out.shape == (400, 4) and out.dtype == torch.float32
    assert float(out.abs().max()) < 1e-5


def test_saddle():
    """z = (x^2 - y^2) / 2 at the origin: principal curvatures +-1, so H = 0 and K = -1."""
    g = _generator(4)
    xy = 0.3 * (2 * torch.rand(3000, 2, generator=g, dtype=torch.float64) - 1)
    xy[0] = 0.0
    x, y = xy.unbind(1)
    points = torch.stack([x, y, (x**2 - y**2) / 2], dim=1)
    normals = torch.nn.functional.normalize(torch.stack([-x, y, torch.ones_like(x)], dim=1), dim=1)
    h, k = curvatures(points, normals, 0.03)[0]
    # the surface bends away from +z along x (convex seen from the normal's side): with dn = S dx, S = diag(-1, 1)
    assert abs(float(h)) < 0.02 and abs(float(k) + 1) < 0.05


def test_invariant_to_rigid_motions_and_permutations():
    mesh = fibonacci_sphere_mesh(400)
    points = mesh.points * torch.tensor([1.0, 0.7, 0.5], dtype=torch.float64)  # an ellipsoid: varying curvatures
    normals = sks.PolyData(points, triangles=mesh.triangles).normals
    out = curvatures(points, normals, [0.5, 1.0])
    assert float(out[:, 0].std()) > 0.05  # not a constant
    rotation = random_rotation()
    moved = curvatures(points @ rotation.T + torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64),
                       normals @ rotation.T, [0.5, 1.0])
    torch.testing.assert_close(moved, out)
    order = torch.randperm(400, generator=_generator(5))
    torch.testing.assert_close(curvatures(points[order], normals[order], [0.5, 1.0]), out[order])


def test_knn_path_matches_dense_when_it_covers_the_window():
    points, normals = cylinder(n=500)
    normals = normals + 0.05 * torch.randn(normals.shape, generator=_generator(6), dtype=torch.float64)
    dense = curvatures(points, normals, [0.3])
    sparse = curvatures(points, normals, [0.3], k=120, backend="torch")
    torch.testing.assert_close(sparse, dense, rtol=1e-3, atol=1e-3)


def test_batch_never_mixes_clouds():
    points_a, normals_a = sphere(n=300, radius=2.0)
    points_b, normals_b = sphere(n=200, radius=4.0, seed=1)
    points, normals = torch.cat([points_a, points_b]), torch.cat([normals_a, normals_b])
    batch = torch.cat([torch.zeros(300), torch.ones(200)]).long()
    for k in (None, 30):
        out = curvatures(points, normals, [1.0], batch=batch, k=k)
        torch.testing.assert_close(out[:300], curvatures(points_a, normals_a, [1.0], k=k))
        torch.testing.assert_close(out[300:], curvatures(points_b, normals_b, [1.0], k=k))
        torch.testing.assert_close(out[:300, 0], torch.full((300,), 0.5, dtype=torch.float64), rtol=1e-4, atol=0)


def test_differentiable_and_empty():
    points, normals = sphere(n=100)
    points.requires_grad_(True)
    curvatures(points, normals, 1.0).sum().backward()
    assert torch.isfinite(points.grad).all()
    assert curvatures(torch.zeros(0, 3), torch.zeros(0, 3), [1.0, 2.0]).shape == (0, 4)


def test_errors():
    points, normals = sphere(n=10)
    with pytest.raises(ValueError, match="scales"):
        curvatures(points, normals, [])
    with pytest.raises(ValueError, match="scales"):
        curvatures(points, normals, [1.0, -1.0])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        curvatures(points[:, :2], normals[:, :2], 1.0)
    with pytest.raises(ValueError, match="dtype"):
        curvatures(points, normals.float(), 1.0)
    with pytest.raises(ValueError, match="k must be"):
        curvatures(points, normals, 1.0, k=0)
    with pytest.raises(TypeError):
        curvatures(points.long(), normals, 1.0)
