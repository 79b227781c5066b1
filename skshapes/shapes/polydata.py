"""The :class:`PolyData` container: points with optional triangles, edges and landmarks."""

from __future__ import annotations

import torch

from .validation import check_cells, check_landmarks, check_point_data, check_points


class PolyData:
    """A shape: a point cloud, a polyline (curve) or a triangle mesh, in 2D or 3D.

    Parameters
    ----------
    points : array-like, shape (N, D)
        Vertex coordinates, D = 2 or 3, in the data's units (mm for the
        bundled faces). float32 is the default: integers and nested Python
        sequences become float32; float32 and float64 arrays and tensors
        keep their dtype (float64 is opt-in). numpy arrays and torch tensors
        are accepted and always copied.
    triangles : array-like of int, shape (T, 3), optional
        Vertex indices of triangles (counter-clockwise for outward normals).
    edges : array-like of int, shape (E, 2), optional
        Vertex indices of the segments of polylines.
    landmarks : array-like of int, shape (L,), optional
        Indices of landmark vertices.
    point_data : dict of array-like, each (N, ...), optional
        Per-point signals (curvatures, labels, displacements...).

    Raises
    ------
    TypeError
        If an input is not numeric.
    ValueError
        If ``points`` is empty, holds NaN/inf or is not (N, 2)/(N, 3); if a
        connectivity array is not integer, has the wrong shape or an index out
        of range; if ``point_data`` arrays do not have N rows. The message
        names the field.

    Notes
    -----
    Connectivity, landmarks and point data live on the device of ``points``.
    """

    def __init__(self, points, triangles=None, edges=None, landmarks=None, point_data=None):
        self._points = check_points(points)
        device, n = self._points.device, self._points.shape[0]
        self.triangles = check_cells(triangles, n, 3, "triangles", device)
        self.edges = check_cells(edges, n, 2, "edges", device)
        self.landmarks = check_landmarks(landmarks, n, device)
        self.point_data = check_point_data(point_data, n, device)

    # ------------------------------------------------------------------ basics
    @property
    def points(self) -> torch.Tensor:
        """Vertex coordinates, shape (N, D)."""
        return self._points

    @property
    def n_points(self) -> int:
        """Number of vertices N."""
        return self._points.shape[0]

    @property
    def dim(self) -> int:
        """Ambient dimension D (2 or 3)."""
        return self._points.shape[1]

    @property
    def device(self) -> torch.device:
        return self._points.device

    @property
    def dtype(self) -> torch.dtype:
        return self._points.dtype

    @property
    def n_triangles(self) -> int:
        return 0 if self.triangles is None else self.triangles.shape[0]

    @property
    def n_edges(self) -> int:
        return 0 if self.edges is None else self.edges.shape[0]

    @property
    def kind(self) -> str:
        """``"mesh"``, ``"curve"`` or ``"cloud"``: what :attr:`point_weights` measures."""
        if self.triangles is not None:
            return "mesh"
        if self.edges is not None:
            return "curve"
        return "cloud"

    def __repr__(self) -> str:
        parts = [f"n_points={self.n_points}", f"dim={self.dim}"]
        if self.triangles is not None:
            parts.append(f"n_triangles={self.n_triangles}")
        if self.edges is not None:
            parts.append(f"n_edges={self.n_edges}")
        if self.landmarks is not None:
            parts.append(f"n_landmarks={self.landmarks.shape[0]}")
        if self.point_data:
            parts.append(f"point_data={sorted(self.point_data)}")
        if self.device.type != "cpu" or self.dtype != torch.float32:
            parts.append(f"device={self.device}, dtype={self.dtype}")
        return f"PolyData({', '.join(parts)})"

    # ------------------------------------------------------------- derivation
    def with_points(self, points: torch.Tensor) -> PolyData:
        """The same connectivity, landmarks and point data on new coordinates.

        Differentiable: used by deformation models, so ``points`` may carry an
        autograd graph. Only the shape (N, D) is checked (no NaN scan, which
        would synchronise the GPU at every optimisation step).

        Raises
        ------
        ValueError
            If ``points`` does not have the shape of :attr:`points`.
        """
        if points.shape != self._points.shape:
            raise ValueError(f"points must have shape {tuple(self._points.shape)}, got {tuple(points.shape)}")
        new = object.__new__(PolyData)
        new._points = points
        new.triangles, new.edges, new.landmarks = self.triangles, self.edges, self.landmarks
        new.point_data = dict(self.point_data)
        return new

    def copy(self) -> PolyData:
        """A deep copy, detached from any autograd graph."""
        return self._map(lambda t: t.detach().clone())

    def to(self, device=None, dtype=None) -> PolyData:
        """A copy on ``device`` (and, for the coordinates, in floating ``dtype``)."""
        new = self._map(lambda t: t.to(device))
        if dtype is not None:
            new._points = new._points.to(dtype)
        return new

    def _map(self, fn) -> PolyData:
        new = object.__new__(PolyData)
        new._points = fn(self._points)
        new.triangles, new.edges, new.landmarks = (
            None if t is None else fn(t) for t in (self.triangles, self.edges, self.landmarks)
        )
        new.point_data = {key: fn(value) for key, value in self.point_data.items()}
        return new

    # -------------------------------------------------------------- geometry
    @property
    def landmark_points(self) -> torch.Tensor:
        """Coordinates of the landmarks, shape (L, D).

        Raises
        ------
        ValueError
            If the shape has no landmarks.
        """
        if self.landmarks is None:
            raise ValueError("this shape has no landmarks")
        return self._points[self.landmarks]

    @property
    def triangle_area_vectors(self) -> torch.Tensor:
        """Cross products ``(b - a) x (c - a) / 2`` per triangle, shape (T, 3) (3D meshes).

        Their norms are the triangle areas, their directions the oriented normals.
        """
        a, b, c = (self._points[self.triangles[:, i]] for i in range(3))
        if self.dim == 2:
            zero = torch.zeros_like(a[:, :1])
            a, b, c = (torch.cat([v, zero], dim=1) for v in (a, b, c))
        return torch.linalg.cross(b - a, c - a) / 2

    @property
    def triangle_areas(self) -> torch.Tensor:
        """Area of each triangle, shape (T,), in squared units."""
        return torch.linalg.norm(self.triangle_area_vectors, dim=1)

    @property
    def edge_lengths(self) -> torch.Tensor:
        """Length of each segment, shape (E,)."""
        return torch.linalg.norm(self._points[self.edges[:, 1]] - self._points[self.edges[:, 0]], dim=1)

    @property
    def point_weights(self) -> torch.Tensor:
        """Mass of each vertex, shape (N,), differentiable w.r.t. :attr:`points`.

        Triangle meshes: a third of the area of the incident triangles
        (barycentric vertex area, squared units). Curves: half the length of
        the incident segments (units). Point clouds: 1/N. Vertices outside
        every cell get zero mass on meshes and curves.
        """
        if self.triangles is not None:
            cell_mass, cells = self.triangle_areas / 3, self.triangles
        elif self.edges is not None:
            cell_mass, cells = self.edge_lengths / 2, self.edges
        else:
            return torch.full((self.n_points,), 1.0 / self.n_points, dtype=self.dtype, device=self.device)
        weights = torch.zeros(self.n_points, dtype=self.dtype, device=self.device)
        return weights.index_add(0, cells.reshape(-1), cell_mass.repeat_interleave(cells.shape[1]))

    @property
    def normals(self) -> torch.Tensor:
        """Unit vertex normals, shape (N, D).

        Triangle meshes in 3D: area-weighted mean of the incident triangles'
        normals (orientation from the triangles' winding). Curves in 2D: the
        length-weighted mean of the incident segments' tangents rotated by
        -90 degrees. Isolated vertices get a zero vector.

        Raises
        ------
        ValueError
            For point clouds, 3D curves and 2D triangle meshes, where vertex
            normals are not defined by the connectivity.
        """
        if self.triangles is not None and self.dim == 3:
            cell_normals, cells = self.triangle_area_vectors, self.triangles
        elif self.edges is not None and self.dim == 2 and self.triangles is None:
            tangents = self._points[self.edges[:, 1]] - self._points[self.edges[:, 0]]
            cell_normals, cells = torch.stack([tangents[:, 1], -tangents[:, 0]], dim=1), self.edges
        else:
            raise ValueError(
                f"normals are defined for 3D triangle meshes and 2D curves, not for a {self.dim}D {self.kind}"
            )
        sums = torch.zeros_like(self._points).index_add(
            0, cells.reshape(-1), cell_normals.repeat_interleave(cells.shape[1], dim=0)
        )
        norms = torch.linalg.norm(sums, dim=1, keepdim=True)
        return sums / norms.clamp_min(torch.finfo(self.dtype).tiny)

    # ------------------------------------------------------- conversions, I/O
    def decimate(self, n_points: int) -> PolyData:
        """A coarser version with about ``n_points`` vertices.

        Triangle meshes are simplified by quadric edge collapse
        (``fast-simplification``, Garland & Heckbert 1997); point clouds are
        sub-sampled by farthest-point sampling. Landmarks follow their vertex.
        See :func:`skshapes.shapes.decimation.decimate`.
        """
        from .decimation import decimate

        return decimate(self, n_points)[0]

    def clean(self, tolerance: float = 0.0) -> PolyData:
        """A copy without duplicate vertices, degenerate or duplicated cells, or unused vertices.

        Vertices closer than ``tolerance`` (units of the points; 0: exact
        duplicates) are merged by :meth:`pyvista.PolyData.clean`; triangles
        of zero area and repeated triangles (any order or orientation) are
        dropped with trimesh's criteria, segments likewise; vertices that
        no cell uses are dropped, landmarks excepted. Vertex order, landmarks
        and ``point_data`` follow. See :func:`skshapes.shapes.clean`.

        Raises
        ------
        ValueError
            If ``tolerance`` is negative or not finite, the points are not
            finite, or nothing is left (every cell degenerate).
        TypeError
            If ``tolerance`` is not a real number.
        """
        from .cleaning import clean

        return clean(self, tolerance)

    def to_pyvista(self):
        """A :class:`pyvista.PolyData` (2D points get z = 0; landmarks go to field data)."""
        from .io import to_pyvista

        return to_pyvista(self)

    @classmethod
    def from_pyvista(cls, mesh, dim=None) -> PolyData:
        """Build from a pyvista/VTK mesh; see :func:`skshapes.shapes.io.from_pyvista`."""
        from .io import from_pyvista

        return from_pyvista(mesh, dim=dim)

    def to_trimesh(self):
        """A :class:`trimesh.Trimesh` with the same vertex order (3D triangle meshes only)."""
        from .io import to_trimesh

        return to_trimesh(self)

    @classmethod
    def from_trimesh(cls, mesh) -> PolyData:
        """Build from a :class:`trimesh.Trimesh`, keeping its vertex order."""
        from .io import from_trimesh

        return from_trimesh(mesh)

    def save(self, path) -> None:
        """Write to ``.vtk``, ``.vtp``, ``.ply``, ``.stl`` or ``.obj`` (by extension)."""
        from .io import save

        save(self, path)
