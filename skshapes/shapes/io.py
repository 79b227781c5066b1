"""Reading, writing and converting shapes through pyvista, meshio and trimesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .polydata import PolyData

# VTK's OBJ reader splits vertices that carry several texture coordinates, which
# breaks vertex-to-vertex correspondence between meshes; meshio keeps the order.
_MESHIO_FIRST = {".obj"}
_PYVISTA_WRITERS = {".vtk", ".vtp", ".ply", ".stl", ".obj"}


def read(path, dim=None) -> PolyData:
    """Read a mesh, curve or point cloud from a file.

    Parameters
    ----------
    path : str or path-like
        A ``.vtk``, ``.vtp``, ``.ply``, ``.obj`` or ``.stl`` file, or any
        format that meshio reads. Vertex order is preserved.
    dim : {None, 2, 3}
        Dimension of the result. ``None``: 2 when every z coordinate is exactly
        zero (2D data stored in 3D files, as VTK does), else 3.

    Returns
    -------
    PolyData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file cannot be parsed or holds an invalid shape; the message
        names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    readers = [_read_meshio, _read_pyvista] if path.suffix.lower() in _MESHIO_FIRST else [_read_pyvista, _read_meshio]
    errors = []
    for reader in readers:
        try:
            return reader(path, dim)
        except (ValueError, TypeError) as error:
            errors.append(f"{reader.__name__[6:]}: {error}")
        except (Exception, SystemExit) as error:  # parsers raise anything on broken files; meshio even exits
            errors.append(f"{reader.__name__[6:]}: {type(error).__name__}: {error}")
    raise ValueError(f"could not read {path}: " + "; ".join(errors))


def _read_pyvista(path, dim):
    import pyvista

    return from_pyvista(pyvista.read(str(path)), dim=dim)


def _read_meshio(path, dim):
    import meshio

    mesh = meshio.read(str(path))
    triangles = [c.data for c in mesh.cells if c.type == "triangle"]
    quads = [c.data for c in mesh.cells if c.type == "quad"]
    triangles += [q[:, [0, 1, 2]] for q in quads] + [q[:, [0, 2, 3]] for q in quads]
    edges = [c.data for c in mesh.cells if c.type == "line"]
    return _from_arrays(
        np.asarray(mesh.points),
        np.concatenate(triangles) if triangles else None,
        np.concatenate(edges) if edges else None,
        dim,
    )


def _from_arrays(points, triangles, edges, dim, landmarks=None, point_data=None) -> PolyData:
    points = np.asarray(points)
    if points.ndim == 2 and points.shape[1] == 3 and points.shape[0] > 0:
        if dim == 2 or (dim is None and np.all(points[:, 2] == 0)):
            points = points[:, :2]
    elif dim == 3 and points.ndim == 2 and points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((len(points), 1), points.dtype)], axis=1)
    # float32 by default (files store float32 or less); float64 stays opt-in via .to(dtype=...)
    points = points.astype(np.float32)
    return PolyData(points, triangles=triangles, edges=edges, landmarks=landmarks, point_data=point_data)


def from_pyvista(mesh, dim=None) -> PolyData:
    """Convert a pyvista (or VTK) dataset to :class:`PolyData`.

    Polygons are triangulated, polylines split into segments, vertex order
    kept. Point arrays become ``point_data``; a field array ``"landmarks"``
    becomes the landmarks. ``dim`` as in :func:`read`.

    Raises
    ------
    TypeError
        If ``mesh`` is not a pyvista/VTK dataset.
    ValueError
        If the dataset holds an invalid shape.
    """
    import pyvista

    if not isinstance(mesh, pyvista.DataSet):
        try:
            mesh = pyvista.wrap(mesh)
        except Exception as error:
            raise TypeError(f"expected a pyvista or VTK dataset, got {type(mesh).__name__}") from error
        if mesh is None or not isinstance(mesh, pyvista.DataSet):
            raise TypeError("expected a pyvista or VTK dataset")
    if not isinstance(mesh, pyvista.PolyData):
        mesh = mesh.extract_surface()
    triangles = None
    if np.asarray(mesh.faces).size:
        # triangulate() keeps the points and their order; it only splits polygons
        faces = np.asarray(mesh.triangulate().faces)
        triangles = faces.reshape(-1, 4)[:, 1:]
    edges = _segments(np.asarray(mesh.lines)) if mesh.n_lines else None
    landmarks = np.asarray(mesh.field_data["landmarks"]) if "landmarks" in mesh.field_data else None
    point_data = {name: np.asarray(mesh.point_data[name]) for name in mesh.point_data.keys() if name != "Normals"}
    return _from_arrays(np.asarray(mesh.points), triangles, edges, dim, landmarks, point_data)


def _segments(lines: np.ndarray) -> np.ndarray:
    """Split a VTK cell array of polylines ``[n, i0, ..., i(n-1), n, ...]`` into (E, 2) segments."""
    segments, offset = [], 0
    while offset < len(lines):
        n = int(lines[offset])
        if n < 0 or offset + 1 + n > len(lines):
            raise ValueError("malformed line connectivity")
        ids = lines[offset + 1 : offset + 1 + n]
        segments.append(np.stack([ids[:-1], ids[1:]], axis=1))
        offset += 1 + n
    return np.concatenate(segments) if segments else np.zeros((0, 2), dtype=np.int64)


def to_pyvista(shape: PolyData):
    """Convert to :class:`pyvista.PolyData` (2D shapes get z = 0)."""
    import pyvista

    points = shape.points.detach().cpu().numpy()
    if shape.dim == 2:
        points = np.concatenate([points, np.zeros((len(points), 1), points.dtype)], axis=1)
    kwargs = {}
    if shape.triangles is not None:
        tri = shape.triangles.cpu().numpy()
        kwargs["faces"] = np.concatenate([np.full((len(tri), 1), 3), tri], axis=1).ravel()
    if shape.edges is not None:
        edges = shape.edges.cpu().numpy()
        kwargs["lines"] = np.concatenate([np.full((len(edges), 1), 2), edges], axis=1).ravel()
    mesh = pyvista.PolyData(points, **kwargs)
    for name, value in shape.point_data.items():
        mesh.point_data[name] = value.detach().cpu().numpy()
    if shape.landmarks is not None:
        mesh.field_data["landmarks"] = shape.landmarks.cpu().numpy()
    return mesh


def to_trimesh(shape: PolyData):
    """Convert a 3D triangle mesh to :class:`trimesh.Trimesh` (vertex order kept).

    Raises
    ------
    ValueError
        If the shape is not a 3D triangle mesh.
    """
    import trimesh

    if shape.triangles is None or shape.dim != 3:
        raise ValueError(f"to_trimesh needs a 3D triangle mesh, got a {shape.dim}D {shape.kind}")
    return trimesh.Trimesh(
        shape.points.detach().cpu().numpy(), shape.triangles.cpu().numpy(), process=False
    )


def from_trimesh(mesh) -> PolyData:
    """Convert a :class:`trimesh.Trimesh` (vertex order kept).

    Raises
    ------
    TypeError
        If ``mesh`` has no ``vertices``/``faces``.
    """
    if not (hasattr(mesh, "vertices") and hasattr(mesh, "faces")):
        raise TypeError(f"expected a trimesh.Trimesh, got {type(mesh).__name__}")
    return _from_arrays(np.asarray(mesh.vertices), np.asarray(mesh.faces), None, 3)


def save(shape: PolyData, path) -> None:
    """Write ``shape`` to ``path``; the extension picks the format.

    Raises
    ------
    ValueError
        If the extension is not one of .vtk .vtp .ply .stl .obj.
    """
    path = Path(path)
    if path.suffix.lower() not in _PYVISTA_WRITERS:
        raise ValueError(f"cannot write {path.suffix!r} files; use one of {sorted(_PYVISTA_WRITERS)}")
    to_pyvista(shape).save(str(path))
