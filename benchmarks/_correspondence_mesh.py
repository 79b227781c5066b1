"""Helpers of ``bench_correspondence.py``: random poses and closest points on a triangle mesh (numpy/scipy)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation


def random_poses(n, seed=0, max_angle_deg=20.0, max_shift=10.0):
    """``n`` rigid poses: a rotation of at most ``max_angle_deg`` about a random axis, a shift of at most ``max_shift``.

    Returns a list of ``(R, t)`` (3x3 rotation matrix, translation), drawn in
    this order from ``numpy.random.default_rng(seed)``: the pose of face k
    does not depend on how many faces are run.
    """
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = np.deg2rad(rng.uniform(0.0, max_angle_deg))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        shift = direction * rng.uniform(0.0, max_shift)
        poses.append((Rotation.from_rotvec(axis * angle).as_matrix(), shift))
    return poses


def apply_pose(points, pose):
    """Rotate ``points`` (N, 3) about their centroid, then translate them."""
    rotation, shift = pose
    centroid = points.mean(axis=0)
    return (points - centroid) @ rotation.T + centroid + shift


def _closest_on_triangles(p, a, b, c):
    """Closest point of triangle (a, b, c) to p, row-wise (Ericson, Real-Time Collision Detection, 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def ratio(num, den):
        return num / np.where(den == 0, 1e-30, den)

    denom = va + vb + vc
    out = a + ab * ratio(vb, denom)[:, None] + ac * ratio(vc, denom)[:, None]  # inside the face
    # the regions below are disjoint except on their borders, where they agree; later ones win
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + (c - b) * ratio(d4 - d3, (d4 - d3) + (d5 - d6))[:, None]),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * ratio(d2, d2 - d6)[:, None]),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * ratio(d1, d1 - d3)[:, None]),
        ((d6 >= 0) & (d5 <= d6), c),
        ((d3 >= 0) & (d4 <= d3), b),
        ((d1 <= 0) & (d2 <= 0), a),
    ]
    for mask, value in regions:
        out[mask] = value[mask]
    return out


def project_onto_mesh(points, vertices, triangles, k=8):
    """The closest point of the mesh (vertices, triangles) to each point, among the triangles around its k nearest vertices.

    A post-processing step of dense registration that uses no
    correspondence: it removes the error along the target's normal and keeps
    the tangential one.
    """
    points = np.asarray(points, dtype=np.float64)
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    _, nearest = cKDTree(vertices).query(points, k=k)
    flat = triangles.ravel()
    counts = np.bincount(flat, minlength=len(vertices))
    order = np.argsort(flat, kind="stable")
    owners = flat[order]
    slots = np.arange(len(flat)) - np.concatenate([[0], np.cumsum(counts)[:-1]])[owners]
    incident = -np.ones((len(vertices), counts.max()), dtype=np.int64)
    incident[owners, slots] = order // 3
    candidates = incident[nearest].reshape(len(points), -1)
    best = np.full(len(points), np.inf)
    out = points.copy()
    for column in candidates.T:
        valid = column >= 0
        tri = triangles[np.where(valid, column, 0)]
        q = _closest_on_triangles(points, vertices[tri[:, 0]], vertices[tri[:, 1]], vertices[tri[:, 2]])
        d = np.where(valid, ((q - points) ** 2).sum(1), np.inf)
        better = d < best
        best[better], out[better] = d[better], q[better]
    return out
