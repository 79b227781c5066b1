"""Helpers of ``bench_correspondence.py``: random poses (closest points on a mesh: ``skshapes.dysmorphology``)."""

from __future__ import annotations

import numpy as np
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
