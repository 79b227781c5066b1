"""Reading, writing and converting shapes: skshapes' own parsers, pyvista, meshio and trimesh."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._formats import MAX_POLYGON_VERTICES, PARSERS, FileFormatError, RawMesh
from .polydata import PolyData

_PYVISTA_WRITERS = {".vtk", ".vtp", ".ply", ".stl", ".obj"}


class ShapeFileError(ValueError):
    """A file that :func:`read` cannot turn into a shape; the message names the file and the problem."""


def read(path, dim=None, clean=False) -> PolyData:
    """Read a mesh, curve or point cloud from a file.

    ``.vtk`` (legacy, ASCII or binary, ``POLYDATA`` or ``UNSTRUCTURED_GRID``),
    ``.vtp`` and ``.vtu`` (VTK XML: ASCII, base64 or appended arrays, zlib or
    LZMA compression), ``.ply`` (ASCII or binary), ``.obj`` and ``.stl``
    (ASCII or binary) are parsed by skshapes itself
    (:mod:`skshapes.shapes._formats`, numpy and the standard library): a
    malformed or hostile file raises a :class:`ValueError`; it cannot crash
    the interpreter (VTK's C++ readers can), keep the reader busy for long,
    or make it allocate memory from a count that the file is too small to
    hold. Other extensions go to meshio (pure Python, with its own checks).
    For a format that only VTK reads, and a file you trust:
    ``sks.PolyData.from_pyvista(pyvista.read(path))``.

    Polygons and triangle strips are triangulated, polylines split into
    segments, and the vertex order of the file is kept (STL stores triangle
    soups: exact duplicate corners become one vertex, in the order they
    first appear). Point arrays become ``point_data`` (normals excepted); a
    field array ``"landmarks"`` (VTK formats) becomes the landmarks.
    Coordinates are float32; ``shape.to(dtype=torch.float64)`` for double
    precision.

    Parameters
    ----------
    path : str or path-like
        The file; its extension picks the format.
    dim : {None, 2, 3}
        Dimension of the result. ``None``: 2 when every z coordinate is exactly
        zero (2D data stored in 3D files, as VTK does), else 3.
    clean : bool
        Apply :meth:`PolyData.clean` to the result: merge duplicate
        vertices, drop degenerate and duplicated cells and unused vertices.

    Returns
    -------
    PolyData

    Raises
    ------
    FileNotFoundError
        If ``path`` is not an existing file.
    ValueError
        (a :class:`ShapeFileError`) If the file cannot be parsed or holds no
        valid shape; the message names the file and the problem: an empty or
        truncated file; a count in a header that the data do not match, or
        that the file is too small to hold; a value that does not parse;
        NaN or infinite coordinates; vertex indices out of range; a polygon
        with fewer than 3 or more than 1024 vertices; data after the last
        declared element; volume cells; an unknown format.
    OSError
        If the file exists but cannot be read (permissions, I/O error).

    Warns
    -----
    MeshQualityWarning
        If the shape has degenerate triangles (a repeated vertex or zero
        area), duplicated triangles, non-manifold edges (shared by more than
        two triangles), or degenerate or duplicated segments: common in real
        scans, so no error. ``clean=True`` removes all but the non-manifold
        edges; ``warnings.simplefilter("error", skshapes.shapes.MeshQualityWarning)``
        turns the warning into an exception.

    Examples
    --------
    >>> import skshapes as sks
    >>> scan = sks.read("scan.ply", clean=True)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in PARSERS:
            data = path.read_bytes()
            if not data.strip():
                raise FileFormatError("the file is empty")
            shape = _assemble(PARSERS[suffix](data), dim)
        else:
            shape = _read_meshio(path, dim)
        if clean:
            shape = shape.clean()
    except ValueError as error:
        cause = None if isinstance(error, FileFormatError) else error
        raise ShapeFileError(f"could not read {path}: {error}") from cause
    from .cleaning import MeshQualityWarning, describe_defects, find_defects

    defects = find_defects(shape)
    if defects:
        hint = "" if clean else "; read(path, clean=True) or shape.clean() removes the degenerate and duplicated cells"
        warnings.warn(f"{path}: {describe_defects(defects)}{hint}", MeshQualityWarning, stacklevel=2)
    return shape


def _read_meshio(path, dim) -> PolyData:
    import meshio

    try:
        mesh = meshio.read(str(path))
    except (Exception, SystemExit) as error:  # meshio raises anything on broken files, and even exits
        hint = ""
        if "deduce file format" in str(error):
            hint = (
                f" (skshapes reads {', '.join(sorted(PARSERS))} and meshio's formats; for a format that only VTK "
                "reads, and a file you trust: sks.PolyData.from_pyvista(pyvista.read(path)))"
            )
        raise ValueError(f"meshio: {type(error).__name__}: {error}{hint}") from error
    surface = {"triangle", "quad", "polygon", "line", "vertex"}
    volume = sorted({block.type for block in mesh.cells} - surface)
    if volume:
        raise ValueError(f"volume (or unsupported) cells {volume}: extract the surface first")
    polys = [_regular(b.data) for b in mesh.cells if b.type in ("triangle", "quad", "polygon")]
    lines = [_regular(b.data) for b in mesh.cells if b.type == "line"]
    raw = RawMesh(points=np.asarray(mesh.points, dtype=np.float64))
    raw.polys = _join(polys) if polys else None
    raw.lines = _join(lines) if lines else None
    return _assemble(raw, dim)


def _regular(block) -> tuple:
    block = np.asarray(block, dtype=np.int64)
    return np.arange(len(block) + 1, dtype=np.int64) * block.shape[1], block.reshape(-1)


def _join(cells: list) -> tuple:
    offsets, connectivity = cells[0]
    for more_offsets, more in cells[1:]:
        offsets = np.concatenate([offsets, more_offsets[1:] + offsets[-1]])
        connectivity = np.concatenate([connectivity, more])
    return offsets, connectivity


def _assemble(raw: RawMesh, dim) -> PolyData:
    """Check the arrays of a :class:`RawMesh` against each other and build the shape.

    The connectivity is checked before the one VTK filter used here (the
    triangulation of polygons and strips) sees it: VTK does not check indices.

    Raises
    ------
    ValueError
        If the points are not (N, 2)/(N, 3), empty or not finite, a vertex
        index is out of range, or a polygon or strip has fewer than 3
        vertices; and as :class:`PolyData`.
    """
    points = np.asarray(raw.points)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"points must have shape (N, 2) or (N, 3), got {points.shape}")
    if len(points) == 0:
        raise ValueError("the file holds no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        raise ValueError(f"points contains NaN or inf values ({int((~finite).sum())} points affected)")
    n = len(points)
    cells = {"polygons": raw.polys, "lines": raw.lines, "triangle strips": raw.strips}
    cells = {name: c for name, c in cells.items() if c is not None and len(c[0]) > 1}
    for name, (offsets, connectivity) in cells.items():
        if len(connectivity):
            low, high = int(connectivity.min()), int(connectivity.max())
            if low < 0 or high >= n:
                raise ValueError(f"{name} have vertex indices out of range: found [{low}, {high}] for {n} points")
        if name != "lines" and bool((np.diff(offsets) < 3).any()):
            raise ValueError(f"{int((np.diff(offsets) < 3).sum())} {name} have fewer than 3 vertices")
        if name == "polygons" and int(np.diff(offsets).max()) > MAX_POLYGON_VERTICES:
            raise ValueError(
                f"a polygon with {int(np.diff(offsets).max())} vertices: polygons of more than "
                f"{MAX_POLYGON_VERTICES} vertices are not triangulated"
            )
    triangles = None
    if "polygons" in cells and "triangle strips" not in cells and bool((np.diff(raw.polys[0]) == 3).all()):
        triangles = raw.polys[1].reshape(-1, 3)
    elif "polygons" in cells or "triangle strips" in cells:
        import pyvista

        kwargs = {}
        if "polygons" in cells:
            kwargs["faces"] = _legacy_cells(*raw.polys)
        if "triangle strips" in cells:
            kwargs["strips"] = _legacy_cells(*raw.strips)
        mesh = pyvista.PolyData(_pad_3d(points), **kwargs).triangulate()  # indices checked: safe for VTK
        faces = np.asarray(mesh.faces)
        triangles = faces.reshape(-1, 4)[:, 1:] if faces.size else None
    edges = _segments(*cells["lines"]) if "lines" in cells else None
    # normals are recomputed from the triangles (PolyData.normals); other numeric arrays are kept
    point_data = {name: value for name, value in raw.point_data.items() if name != "Normals" and _numeric(value)}
    return _from_arrays(points, triangles, edges, dim, raw.landmarks, point_data)


def _legacy_cells(offsets: np.ndarray, connectivity: np.ndarray) -> np.ndarray:
    """``(offsets, connectivity)`` as VTK's legacy cell array ``[n0, ids..., n1, ids...]``."""
    sizes = np.diff(offsets)
    out = np.empty(len(connectivity) + len(sizes), dtype=np.int64)
    starts = offsets[:-1] + np.arange(len(sizes))
    out[starts] = sizes
    keep = np.ones(len(out), dtype=bool)
    keep[starts] = False
    out[keep] = connectivity
    return out


def _pad_3d(points: np.ndarray) -> np.ndarray:
    if points.shape[1] == 2:
        return np.concatenate([points, np.zeros((len(points), 1), points.dtype)], axis=1)
    return points


def _numeric(value) -> bool:
    value = np.asarray(value)
    return value.dtype != object and (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_)


def _segments(offsets: np.ndarray, connectivity: np.ndarray) -> np.ndarray | None:
    """Split polylines ``(offsets, connectivity)`` into (E, 2) segments between consecutive vertices."""
    if len(connectivity) < 2:
        return None
    keep = np.ones(len(connectivity) - 1, dtype=bool)
    boundaries = offsets[1:-1] - 1  # (last vertex of a polyline, first of the next) is no segment
    keep[boundaries[(boundaries >= 0) & (boundaries < len(keep))]] = False
    return np.stack([connectivity[:-1][keep], connectivity[1:][keep]], axis=1)


def _from_arrays(points, triangles, edges, dim, landmarks=None, point_data=None) -> PolyData:
    points = np.asarray(points)
    if points.ndim == 2 and points.shape[1] == 3 and points.shape[0] > 0:
        if dim == 2 or (dim is None and np.all(points[:, 2] == 0)):
            points = points[:, :2]
    elif dim == 3 and points.ndim == 2 and points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((len(points), 1), points.dtype)], axis=1)
    # float32 by default (files store float32 or less); float64 stays opt-in via .to(dtype=...)
    with np.errstate(over="ignore"):
        points = points.astype(np.float32)
    return PolyData(points, triangles=triangles, edges=edges, landmarks=landmarks, point_data=point_data)


def from_pyvista(mesh, dim=None) -> PolyData:
    """Convert a pyvista (or VTK) dataset to :class:`PolyData`.

    Polygons and triangle strips are triangulated, polylines split into
    segments, vertex order kept; datasets other than ``PolyData`` go through
    ``extract_surface()``. Numeric point arrays become ``point_data``
    (``"Normals"`` excepted); a field array ``"landmarks"`` becomes the
    landmarks. ``dim`` as in :func:`read`. The connectivity is checked
    before a VTK filter runs on it, so that a dataset with out-of-range
    indices raises instead of crashing VTK.

    Raises
    ------
    TypeError
        If ``mesh`` is not a pyvista/VTK dataset.
    ValueError
        If the dataset holds an invalid shape: no points, NaN/inf
        coordinates, vertex indices out of range, a polygon with fewer than
        3 or more than 1024 vertices (as :func:`read`).
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
        if isinstance(mesh, pyvista.UnstructuredGrid) and mesh.n_cells:
            connectivity = np.asarray(mesh.cell_connectivity)
            if connectivity.size and (connectivity.min() < 0 or connectivity.max() >= mesh.n_points):
                raise ValueError(f"cells have vertex indices out of range for {mesh.n_points} points")
        with warnings.catch_warnings():  # pyvista >= 0.47 announces a change of default algorithm
            warnings.simplefilter("ignore", getattr(pyvista, "PyVistaFutureWarning", FutureWarning))
            mesh = mesh.extract_surface()
    raw = RawMesh(
        points=np.asarray(mesh.points),
        polys=_vtk_cells(mesh.GetPolys()),
        lines=_vtk_cells(mesh.GetLines()),
        strips=_vtk_cells(mesh.GetStrips()),
        point_data={name: np.asarray(mesh.point_data[name]) for name in mesh.point_data if name != "Normals"},
        landmarks=np.asarray(mesh.field_data["landmarks"]) if "landmarks" in mesh.field_data else None,
    )
    return _assemble(raw, dim)


def _vtk_cells(cell_array) -> tuple | None:
    """``(offsets, connectivity)`` of a vtkCellArray, or None when it has no cells."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    if cell_array is None or cell_array.GetNumberOfCells() == 0:
        return None
    return (
        vtk_to_numpy(cell_array.GetOffsetsArray()).astype(np.int64),
        vtk_to_numpy(cell_array.GetConnectivityArray()).astype(np.int64),
    )


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
