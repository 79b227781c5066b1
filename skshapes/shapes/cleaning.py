"""Mesh defects that real scans carry (degenerate, duplicated triangles; non-manifold edges) and their removal."""

from __future__ import annotations

import numpy as np

#: Default relative tolerance: a triangle whose height is below this fraction of the
#: shape's bounding-box diagonal counts as degenerate (float32 resolves about 6e-8).
RELATIVE_TOLERANCE = 1e-7


class MeshQualityWarning(UserWarning):
    """A shape read from a file has degenerate or duplicated cells, or non-manifold edges.

    Common in real scans and harmless for most computations (the losses
    give such cells zero weight and finite gradients). ``sks.read(path,
    clean=True)`` or :meth:`~skshapes.PolyData.clean` removes what can be
    removed; ``warnings.simplefilter("error", MeshQualityWarning)`` turns
    the warning into an exception, ``"ignore"`` silences it. Use
    :func:`find_defects` to count the defects of any shape.
    """


def _diagonal(points: np.ndarray) -> float:
    points = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if len(points) else 0.0


def _as_3d(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return points


def _keys(rows: np.ndarray, n: int) -> np.ndarray:
    """One int64 key per sorted row of vertex indices (rows of 2 or 3 indices below ``n``)."""
    rows = np.sort(rows, axis=1).astype(np.int64)
    if n ** rows.shape[1] < 2**62:
        key = rows[:, 0]
        for column in range(1, rows.shape[1]):
            key = key * n + rows[:, column]
        return key
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)


def _degenerate_triangles(points: np.ndarray, triangles: np.ndarray, height: float) -> np.ndarray:
    """Mask of triangles with a repeated vertex or a height at most ``height`` (trimesh's criterion)."""
    from trimesh.triangles import nondegenerate

    repeated = (
        (triangles[:, 0] == triangles[:, 1]) | (triangles[:, 1] == triangles[:, 2]) | (triangles[:, 0] == triangles[:, 2])
    )
    corners = _as_3d(points)[triangles]
    return repeated | ~nondegenerate(corners, height=height)


def find_defects(shape, tolerance: float | None = None) -> dict[str, int]:
    """Count the defects of a mesh or curve that :meth:`~skshapes.PolyData.clean` deals with.

    Parameters
    ----------
    shape : PolyData
    tolerance : float, optional
        Height (triangles) or length (segments) at or below which a cell
        counts as degenerate, in the units of the points; default
        ``1e-7`` times the bounding-box diagonal (float32 round-off).

    Returns
    -------
    dict
        ``degenerate_triangles`` (a repeated vertex, or zero height),
        ``duplicated_triangles`` (the same three vertices as an earlier
        triangle, in any order), ``non_manifold_edges`` (shared by more
        than two triangles), ``degenerate_edges`` and ``duplicated_edges``
        (the same for segments). Zero counts are left out: an empty dict
        means no defect.
    """
    points = shape.points.detach().cpu().numpy()
    n = len(points)
    if tolerance is None:
        tolerance = RELATIVE_TOLERANCE * _diagonal(points)
    counts = {}
    if shape.triangles is not None:
        triangles = shape.triangles.cpu().numpy()
        counts["degenerate_triangles"] = int(_degenerate_triangles(points, triangles, tolerance).sum())
        keys = _keys(triangles, n)
        order = np.argsort(keys, kind="stable")
        first = np.concatenate([[True], keys[order][1:] != keys[order][:-1]])
        counts["duplicated_triangles"] = int((~first).sum())
        # a duplicated triangle is already counted: count each edge once per distinct triangle
        distinct = triangles[order[first]]
        edges = np.concatenate([distinct[:, [0, 1]], distinct[:, [1, 2]], distinct[:, [2, 0]]])
        edges = np.sort(_keys(edges[edges[:, 0] != edges[:, 1]], n))
        starts = np.flatnonzero(np.concatenate([[True], edges[1:] != edges[:-1], [True]]))
        counts["non_manifold_edges"] = int((np.diff(starts) > 2).sum())
    if shape.edges is not None:
        edges = shape.edges.cpu().numpy()
        lengths = np.linalg.norm(points[edges[:, 1]].astype(np.float64) - points[edges[:, 0]], axis=1)
        counts["degenerate_edges"] = int(((edges[:, 0] == edges[:, 1]) | (lengths <= tolerance)).sum())
        keys = np.sort(_keys(edges, n))
        counts["duplicated_edges"] = int((keys[1:] == keys[:-1]).sum())
    return {name: count for name, count in counts.items() if count}


def describe_defects(defects: dict[str, int]) -> str:
    """A sentence for a warning or an error message."""
    labels = {
        "degenerate_triangles": "degenerate triangles (a repeated vertex or zero area)",
        "duplicated_triangles": "duplicated triangles",
        "non_manifold_edges": "non-manifold edges (shared by more than two triangles)",
        "degenerate_edges": "degenerate segments (zero length)",
        "duplicated_edges": "duplicated segments",
    }
    return ", ".join(f"{count} {labels[name]}" for name, count in defects.items())


def clean(shape, tolerance: float = 0.0):
    """A copy of ``shape`` without duplicate vertices, degenerate or duplicated cells, or unused vertices.

    1. Vertices closer than ``tolerance`` are merged (:meth:`pyvista.PolyData.clean`,
       i.e. ``vtkCleanPolyData``; ``tolerance=0`` merges exact duplicates
       only); cells that lose a vertex that way disappear.
    2. Triangles of zero area (height at most ``max(tolerance, 1e-7 x
       diagonal)``, :func:`trimesh.triangles.nondegenerate`) and repeated
       triangles (the same vertices in any order or orientation, first one
       kept, as :meth:`trimesh.Trimesh.unique_faces`) are dropped; segments
       likewise.
    3. Vertices that no cell uses are dropped, except landmarks (point
       clouds keep every merged point).

    The vertices keep their relative order; a merged vertex takes the
    coordinates and ``point_data`` of the first of its group (lowest
    index), and landmarks follow their vertex. Non-manifold edges are not
    repaired (there is no canonical fix): :func:`find_defects` counts them.

    Parameters
    ----------
    shape : PolyData
    tolerance : float
        Merge distance, in the units of the points; must be >= 0.

    Returns
    -------
    PolyData
        A new shape, detached from any autograd graph, on the device and in
        the dtype of ``shape``.

    Raises
    ------
    ValueError
        If ``tolerance`` is negative or not finite, the points are not
        finite, or nothing is left (every cell degenerate).
    TypeError
        If ``tolerance`` is not a real number.
    """
    import numbers

    import pyvista
    import torch

    from .polydata import PolyData

    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise TypeError(f"tolerance must be a real number, got {type(tolerance).__name__}")
    if not 0 <= tolerance < np.inf:
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
    points = shape.points.detach().cpu().numpy()
    if not np.isfinite(points).all():  # possible after with_points(); VTK's point locator needs finite bounds
        raise ValueError("cannot clean a shape whose points contain NaN or inf values")
    n = len(points)
    triangles = None if shape.triangles is None else shape.triangles.cpu().numpy()
    edges = None if shape.edges is None else shape.edges.cpu().numpy()
    landmarks = None if shape.landmarks is None else shape.landmarks.cpu().numpy()
    # every vertex also becomes a VTK vertex cell: its cell, which VTK never drops, says where it went
    kwargs = {"verts": np.stack([np.ones(n, dtype=np.int64), np.arange(n)], axis=1).ravel()}
    if triangles is not None:
        kwargs["faces"] = np.concatenate([np.full((len(triangles), 1), 3), triangles], axis=1).ravel()
    if edges is not None:
        kwargs["lines"] = np.concatenate([np.full((len(edges), 1), 2), edges], axis=1).ravel()
    mesh = pyvista.PolyData(_as_3d(points), **kwargs)
    out = mesh.clean(tolerance=float(tolerance), lines_to_points=False, polys_to_lines=False, strips_to_polys=False)
    to_vtk = _cells(out.GetVerts(), 1).reshape(-1)
    if len(to_vtk) != n:
        raise RuntimeError(f"vtkCleanPolyData returned {len(to_vtk)} vertex cells for {n} vertices")
    # VTK orders the points as it meets them: number them by the first (lowest) original vertex of each group
    first = np.full(out.n_points, n, dtype=np.int64)
    np.minimum.at(first, to_vtk, np.arange(n))
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    representative = first[order]
    new_points = points[representative]
    new_triangles = rank[_cells(out.GetPolys(), 3)] if triangles is not None else None
    new_edges = rank[_cells(out.GetLines(), 2)] if edges is not None else None
    new_landmarks = None if landmarks is None else rank[to_vtk[landmarks]]
    anchors = np.arange(len(new_points)) if (triangles is None and edges is None) else new_landmarks
    height = max(float(tolerance), RELATIVE_TOLERANCE * _diagonal(new_points))
    if new_triangles is not None and len(new_triangles):
        import trimesh

        new_triangles = new_triangles[~_degenerate_triangles(new_points, new_triangles, height)]
        if len(new_triangles):
            unique = trimesh.Trimesh(_as_3d(new_points), new_triangles, process=False).unique_faces()
            new_triangles = new_triangles[unique]
    if new_edges is not None and len(new_edges):
        lengths = np.linalg.norm(new_points[new_edges[:, 1]].astype(np.float64) - new_points[new_edges[:, 0]], axis=1)
        new_edges = new_edges[lengths > height]
        _, kept = np.unique(np.sort(new_edges, axis=1), axis=0, return_index=True)
        new_edges = new_edges[np.sort(kept)]
    had_cells = triangles is not None or edges is not None
    if had_cells and not any(c is not None and len(c) for c in (new_triangles, new_edges)):
        raise ValueError("nothing is left after cleaning: every cell is degenerate")
    # drop the vertices that the dropped cells left unused (landmarks stay)
    used = np.zeros(len(new_points), dtype=bool)
    for cells in (new_triangles, new_edges, anchors):
        if cells is not None:
            used[cells.reshape(-1)] = True
    if not used.any():
        raise ValueError("nothing is left after cleaning: every cell is degenerate")
    index = np.cumsum(used) - 1
    source = torch.as_tensor(representative[used])
    point_data = {name: value.detach()[source.to(value.device)] for name, value in shape.point_data.items()}
    result = PolyData(
        torch.as_tensor(new_points[used], device=shape.device).to(shape.dtype),
        triangles=None if new_triangles is None or not len(new_triangles) else index[new_triangles],
        edges=None if new_edges is None or not len(new_edges) else index[new_edges],
        landmarks=None if new_landmarks is None else index[new_landmarks],
        point_data=point_data,
    )
    return result


def _cells(cell_array, width: int) -> np.ndarray:
    """The cells of a vtkCellArray whose cells all have ``width`` vertices, as (C, width)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    connectivity = vtk_to_numpy(cell_array.GetConnectivityArray()).astype(np.int64)
    return connectivity.reshape(-1, width)
