"""Shapes as napari layers, and back.

Nothing here imports napari: :func:`layer_data` builds napari's
``(data, kwargs, layer_type)`` tuples from plain numpy arrays, and
:func:`add_to_napari` hands them to a viewer that the caller already has.

Coordinates are passed as they are: the point ``(x, y, z)`` of a shape is the
position ``(x, y, z)`` on the layer's axes 0, 1, 2 (napari's default 3D
orientation draws them as a rotation, without mirroring).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..shapes import PolyData
from .plotting import PALETTE, _numpy, _scalars_list

__all__ = ["add_to_napari", "layer_data", "shape_from_layer"]

_DEFAULT_COLOR = PALETTE[0]
_LANDMARK_COLOR = "#ff7f0e"  # orange: visible on napari's dark and light themes


def layer_data(shape, name=None, values=None, color=None, landmarks=True, **kwargs):
    """napari layer data tuples for a shape: what a reader returns, what :func:`add_to_napari` adds.

    - triangle meshes (2D or 3D): a ``"surface"`` layer ``(vertices, faces)``,
      or ``(vertices, faces, values)`` with ``values``;
    - point clouds: a ``"points"`` layer (values as the feature ``"value"``,
      drawn with a colour map);
    - curves: a ``"shapes"`` layer of ``"path"`` shapes, one per chain of
      edges (closed loops end on their first point); with ``values``, one
      ``"line"`` per edge coloured by the mean of its two end values;
    - landmarks (if the shape has some and ``landmarks`` is True): one more
      ``"points"`` layer named ``"<name> landmarks"``.

    Parameters
    ----------
    shape : PolyData
        N points in 2D or 3D.
    name : str, optional
        Layer name (default: napari's).
    values : array-like (N,) or str, optional
        One value per point (a str names a ``point_data`` key).
    color : str, optional
        Colour of the layer (meshes: every vertex; clouds: the points;
        curves: the lines). Default: napari's grey for meshes, blue
        (``PALETTE[0]``) otherwise. Ignored where ``values`` are drawn.
    landmarks : bool, default True
        Add the landmarks as a points layer.
    **kwargs
        More keyword arguments of the main layer (``opacity``, ``colormap``,
        ``shading``, ``scale``, ``units``...), overriding the defaults.

    Returns
    -------
    list of (data, dict, str)
        napari ``LayerDataTuple`` s: the shape's layer first, then the
        landmarks' layer if any. Arrays are numpy (vertices float, faces
        int64), on the CPU.

    Raises
    ------
    TypeError
        If ``shape`` is not a PolyData.
    ValueError
        If ``values`` does not have one value per point.
    """
    if not isinstance(shape, PolyData):
        raise TypeError(f"shape must be a PolyData, got {type(shape).__name__}")
    values = _scalars_list(values, [shape], name="values")[0]
    points = _numpy(shape.points)
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) or 1.0
    meta = {} if name is None else {"name": name}
    if shape.kind == "mesh":
        faces = shape.triangles.cpu().numpy().astype(np.int64)
        meta["shading"] = "smooth"
        if values is not None:
            data = (points, faces, values)
            meta["colormap"] = "viridis"
        else:
            data = (points, faces)
            if color is not None:
                meta["vertex_colors"] = np.tile(_rgba(color), (len(points), 1))
        kind = "surface"
    elif shape.kind == "cloud":
        data, kind = points, "points"
        meta.update(size=0.01 * diagonal, border_width=0)
        if values is not None:
            meta.update(features={"value": values}, face_color="value", face_colormap="viridis")
        else:
            meta["face_color"] = color or _DEFAULT_COLOR
    else:
        edges = shape.edges.cpu().numpy()
        meta["edge_width"] = 0.005 * diagonal
        if values is not None:
            data = [points[edge] for edge in edges]
            meta.update(shape_type="line", features={"value": values[edges].mean(axis=1)}, edge_color="value",
                        edge_colormap="viridis")
        else:
            data = [points[chain] for chain in _chains(edges)]
            meta.update(shape_type="path", edge_color=color or _DEFAULT_COLOR)
        kind = "shapes"
    meta.update(kwargs)
    tuples = [(data, meta, kind)]
    if landmarks and shape.landmarks is not None:
        landmark_meta = dict(size=0.025 * diagonal, face_color=_LANDMARK_COLOR, border_width=0)
        if name is not None:
            landmark_meta["name"] = f"{name} landmarks"
        for key in ("scale", "translate", "rotate", "shear", "affine", "units"):
            if key in kwargs:  # the landmarks follow the shape
                landmark_meta[key] = kwargs[key]
        tuples.append((_numpy(shape.landmark_points), landmark_meta, "points"))
    return tuples


def add_to_napari(viewer, shape, name=None, values=None, color=None, landmarks=True, **kwargs):
    """Add a shape to a napari viewer: mesh -> Surface, point cloud -> Points, curve -> Shapes (paths).

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer (napari itself is not imported here).
    shape : PolyData
        N points in 2D or 3D; see :func:`layer_data` for what each kind of
        shape becomes.
    name : str, optional
        Layer name; the landmarks' layer is ``"<name> landmarks"``.
    values : array-like (N,) or str, optional
        One value per point, drawn with a colour map (a str names a
        ``point_data`` key).
    color : str, optional
        Colour of the layer where no values are drawn.
    landmarks : bool, default True
        Also add the shape's landmarks (if any) as a Points layer.
    **kwargs
        Keyword arguments of the main layer (``opacity``, ``colormap``,
        ``blending``, ``scale``...).

    Returns
    -------
    list of napari.layers.Layer
        The shape's layer, then its landmarks' layer if one was added.

    Raises
    ------
    TypeError
        If ``shape`` is not a PolyData.
    ValueError
        If ``values`` does not have one value per point.

    Examples
    --------
    >>> import napari, skshapes as sks  # doctest: +SKIP
    >>> from skshapes.viz import add_to_napari  # doctest: +SKIP
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> [surface] = add_to_napari(viewer, sks.read("face.ply"), name="face")  # doctest: +SKIP
    """
    layers = []
    for data, meta, kind in layer_data(shape, name=name, values=values, color=color, landmarks=landmarks,
                                       **kwargs):
        layers.append(getattr(viewer, f"add_{kind}")(data, **meta))
    return layers


def shape_from_layer(layer, dtype=torch.float32):
    """The PolyData of a napari Surface or Points layer, in world coordinates.

    The layer's transform (scale, translate, rotate, shear, affine) is
    applied, so that layers with different transforms are compared where
    napari draws them.

    Parameters
    ----------
    layer : napari.layers.Surface or napari.layers.Points
        A surface ``(vertices, faces[, values])`` (values go to
        ``point_data["values"]``), or points (a cloud).
    dtype : torch.dtype, default torch.float32
        Dtype of the coordinates.

    Returns
    -------
    PolyData
        A triangle mesh (Surface) or a point cloud (Points), on the CPU.

    Raises
    ------
    TypeError
        If ``layer`` is neither a Surface nor a Points layer.
    ValueError
        If the layer is empty, not 2D or 3D, or holds NaN coordinates.
    """
    kind = layer.__class__.__name__  # not type(): napari hands plugins proxies of its layers
    if kind == "Surface":
        vertices, faces = np.asarray(layer.data[0], dtype=float), np.asarray(layer.data[1], dtype=np.int64)
        values = layer.data[2] if len(layer.data) > 2 else None
    elif kind == "Points":
        vertices, faces, values = np.asarray(layer.data, dtype=float), None, None
    else:
        raise TypeError(f"layer must be a napari Surface or Points layer, got {kind}")
    vertices = _to_world(layer, vertices)
    point_data = None
    if values is not None and np.ndim(values) == 1 and len(values) == len(vertices):
        point_data = {"values": torch.as_tensor(np.asarray(values, dtype=float), dtype=dtype)}
    return PolyData(torch.as_tensor(vertices, dtype=dtype),
                    triangles=None if faces is None else torch.as_tensor(faces), point_data=point_data)


def _to_world(layer, coordinates):
    """Data -> world coordinates of a layer: its affine after scale, translate, rotate and shear."""
    from napari.utils.transforms import Affine

    if len(coordinates) == 0:
        return coordinates
    inner = Affine(scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear)
    return np.asarray(layer.affine(inner(coordinates)), dtype=float)


def _rgba(color):
    from matplotlib.colors import to_rgba

    return np.asarray(to_rgba(color), dtype=np.float32)


def _chains(edges):
    """Edges (E, 2) chained into polylines (lists of vertex indices), split at ends and branch points.

    Closed loops come back to their first vertex. Every edge is in exactly
    one chain (self-loops are dropped).
    """
    neighbours = defaultdict(list)
    for k, (a, b) in enumerate(edges):
        if a != b:
            neighbours[int(a)].append((int(b), k))
            neighbours[int(b)].append((int(a), k))
    used = np.zeros(len(edges), dtype=bool)
    used[edges[:, 0] == edges[:, 1]] = True

    def walk(start):
        chain, vertex = [start], start
        while True:
            step = next(((w, k) for w, k in neighbours[vertex] if not used[k]), None)
            if step is None:
                return chain
            vertex, k = step
            used[k] = True
            chain.append(vertex)
            if len(neighbours[vertex]) != 2:  # an end or a branch point
                return chain

    chains = []
    for vertex in sorted(neighbours):  # open chains start at ends and branch points
        if len(neighbours[vertex]) != 2:
            while any(not used[k] for _, k in neighbours[vertex]):
                chains.append(walk(vertex))
    for k in range(len(edges)):  # what is left are closed loops
        if not used[k]:
            chains.append(walk(int(edges[k, 0])))
    return chains
