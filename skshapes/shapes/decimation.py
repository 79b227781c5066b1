"""Decimation of meshes (quadric edge collapse) and point clouds (farthest-point sampling).

Mesh decimation records its edge collapses so that the same collapses can be
replayed on every mesh of a population in dense correspondence: the decimated
meshes then stay in correspondence (vertex i <-> vertex i).
"""

from __future__ import annotations

import numpy as np
import torch

from .polydata import PolyData


def decimate(shape: PolyData, n_points: int):
    """Decimate ``shape`` to about ``n_points`` vertices.

    Parameters
    ----------
    shape : PolyData
        A triangle mesh (quadric edge collapse through ``fast-simplification``,
        Garland & Heckbert, SIGGRAPH 1997) or a point cloud (farthest-point
        sampling, deterministic: it starts from vertex 0).
    n_points : int
        Target number of vertices, ``1 <= n_points <= shape.n_points``. Mesh
        decimation reaches it approximately (it removes triangles).

    Returns
    -------
    decimated : PolyData
    collapses : numpy.ndarray of int, shape (C, 2), or None
        For meshes, the edge collapses to pass to :func:`replay_decimation`.

    Raises
    ------
    ValueError
        If ``n_points`` is out of range, or ``shape`` is a curve (not supported yet).
    """
    n_points = int(n_points)
    if not 1 <= n_points <= shape.n_points:
        raise ValueError(f"n_points must be in [1, {shape.n_points}], got {n_points}")
    if n_points == shape.n_points:
        return shape.copy(), (np.zeros((0, 2), dtype=np.int64) if shape.kind == "mesh" else None)
    if shape.kind == "mesh":
        return _decimate_mesh(shape, n_points)
    if shape.kind == "cloud":
        return _subsample(shape, farthest_point_sampling(shape.points, n_points)), None
    raise ValueError("decimate supports triangle meshes and point clouds, not curves")


def _decimate_mesh(shape, n_points):
    import fast_simplification

    if shape.dim != 3:
        raise ValueError("mesh decimation needs a 3D triangle mesh")
    points = shape.points.detach().cpu().numpy().astype(np.float64)
    triangles = shape.triangles.cpu().numpy()
    # A closed or open surface has about twice as many triangles as vertices.
    reduction = 1.0 - n_points / shape.n_points
    _, _, collapses = fast_simplification.simplify(points, triangles, target_reduction=reduction, return_collapses=True)
    return replay_decimation(shape, collapses), collapses


def replay_decimation(shape: PolyData, collapses) -> PolyData:
    """Apply recorded edge collapses to a mesh with the same triangles as the one decimated.

    Parameters
    ----------
    shape : PolyData
        A triangle mesh with the same triangles (and vertex count) as the mesh
        whose :func:`decimate` produced ``collapses``.
    collapses : array-like of int, shape (C, 2)

    Returns
    -------
    PolyData
        The decimated mesh, with the landmarks mapped to their new vertex and
        point data taken from one original vertex of each new vertex.

    Raises
    ------
    ValueError
        If ``shape`` is not a 3D triangle mesh.
    """
    import fast_simplification

    if shape.kind != "mesh" or shape.dim != 3:
        raise ValueError("replay_decimation needs a 3D triangle mesh")
    points = shape.points.detach().cpu().numpy().astype(np.float64)
    new_points, new_triangles, mapping = fast_simplification.replay_simplification(
        points, shape.triangles.cpu().numpy().astype(np.int32), np.asarray(collapses)
    )
    mapping = np.asarray(mapping, dtype=np.int64)
    # one original vertex per new vertex, to carry point data
    representative = np.empty(len(new_points), dtype=np.int64)
    representative[mapping[::-1]] = np.arange(len(mapping))[::-1]
    landmarks = None if shape.landmarks is None else mapping[shape.landmarks.cpu().numpy()]
    point_data = {k: v.detach().cpu().numpy()[representative] for k, v in shape.point_data.items()}
    return PolyData(
        torch.as_tensor(new_points, dtype=shape.dtype),
        triangles=np.asarray(new_triangles, dtype=np.int64),
        landmarks=landmarks,
        point_data=point_data,
    ).to(shape.device)


def farthest_point_sampling(points: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` points chosen greedily, each the farthest from those already chosen.

    Starts from point 0, so the result is deterministic. O(N n) time, O(N) memory.

    Returns
    -------
    torch.Tensor of int64, shape (n,)
    """
    points = points.detach()
    chosen = torch.zeros(n, dtype=torch.int64, device=points.device)
    distances = torch.full((points.shape[0],), float("inf"), dtype=points.dtype, device=points.device)
    for i in range(1, n):
        distances = torch.minimum(distances, ((points - points[chosen[i - 1]]) ** 2).sum(dim=1))
        chosen[i] = torch.argmax(distances)
    return chosen


def _subsample(shape: PolyData, indices: torch.Tensor) -> PolyData:
    return PolyData(
        shape.points.detach()[indices],
        point_data={k: v[indices] for k, v in shape.point_data.items()},
    )
