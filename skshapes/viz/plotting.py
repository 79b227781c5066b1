"""Static figures of shapes and registrations: matplotlib for 2D, pyvista for 3D.

Every function works without a display: pyvista renders off-screen and
matplotlib figures are created without pyplot (no global state, no GUI
backend). Pass ``screenshot="figure.png"`` to write a PNG and get its path
back.
"""

from __future__ import annotations

import functools

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..shapes import PolyData

__all__ = ["plot", "plot_registration", "PALETTE", "SOURCE_COLOR", "TARGET_COLOR", "MORPHED_COLOR"]

#: Colours given to successive shapes (colour-blind friendly "tab10" order).
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
#: Colours of :func:`plot_registration`: source grey, target blue, registered source red.
SOURCE_COLOR, TARGET_COLOR, MORPHED_COLOR = "#8c8c8c", "#1f77b4", "#d62728"
_GRID_COLOR = "#b0b0b0"
_LANDMARK_COLOR = "#111111"
_TARGET_LANDMARK_COLOR = "#2ca02c"
_CONTROL_COLOR = "#ff7f0e"
RESIDUALS = ("distance", "correspondence")


# ---------------------------------------------------------------- checks
def _as_shape_list(shapes, name="shapes") -> list[PolyData]:
    if isinstance(shapes, PolyData):
        return [shapes]
    if isinstance(shapes, Sequence) and not isinstance(shapes, (str, bytes)):
        shapes = list(shapes)
        if not shapes:
            raise ValueError(f"{name} is empty: give at least one PolyData")
        for i, shape in enumerate(shapes):
            if not isinstance(shape, PolyData):
                raise TypeError(f"{name}[{i}] must be a PolyData, got {type(shape).__name__}")
        return shapes
    raise TypeError(f"{name} must be a PolyData or a list of PolyData, got {type(shapes).__name__}")


def _per_shape(value, n, name, default):
    """Broadcast ``colors``/``labels`` to one entry per shape."""
    if value is None:
        return [default(i) for i in range(n)]
    if isinstance(value, str):
        if n != 1:
            return [value] * n if name == "colors" else _fail_length(name, n, 1)
        return [value]
    value = list(value)
    if len(value) != n:
        _fail_length(name, n, len(value))
    return value


def _fail_length(name, n, got):
    raise ValueError(f"{name} must have one entry per shape ({n}), got {got}")


def _scalars_list(scalars, shapes, name="scalars", finite=False) -> list:
    """One entry per shape: None or a (N,) float array, finite if asked (``name`` is named in errors)."""
    n = len(shapes)
    if scalars is None:
        return [None] * n
    if isinstance(scalars, str) or (n == 1 and not _is_list_of_arrays(scalars)):
        scalars = [scalars]
    scalars = list(scalars)
    if len(scalars) != n:
        _fail_length(name, n, len(scalars))
    result = []
    for i, (values, shape) in enumerate(zip(scalars, shapes)):
        which = name if n == 1 else f"{name}[{i}]"
        if values is None:
            result.append(None)
            continue
        if isinstance(values, str):
            if values not in shape.point_data:
                raise ValueError(
                    f"{which}={values!r} is not in the shape's point_data (keys: {sorted(shape.point_data)})"
                )
            values = shape.point_data[values]
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{which} must be numbers (an array of floats), got {type(values).__name__}") from None
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (shape.n_points,):
            raise ValueError(
                f"{which} must have shape ({shape.n_points},) (one value per point), got {values.shape}"
            )
        bad = ~np.isfinite(values)
        if finite and bad.any():
            raise ValueError(
                f"{which} has {int(bad.sum())} NaN or infinite value(s) (first at point {int(np.argmax(bad))}): "
                "give a finite value per point"
            )
        result.append(values)
    return result


def _is_list_of_arrays(value) -> bool:
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return False
    try:
        first = next(iter(value))
    except (TypeError, StopIteration):
        return False
    return first is None or isinstance(first, (str, np.ndarray, torch.Tensor, list, tuple))


def _axis_label(axis: str, units: str | None) -> str:
    return f"{axis} ({units})" if units else axis


def _numpy(points) -> np.ndarray:
    return points.detach().cpu().numpy().astype(float)


# ------------------------------------------------------------------ plot
def plot(
    shapes,
    scalars=None,
    screenshot=None,
    colors=None,
    labels=None,
    title=None,
    units="mm",
    show_landmarks=True,
    cmap="viridis",
    clim=None,
    scalars_title=None,
    window_size=None,
    camera_position=None,
    opacity=1.0,
    show_edges=False,
    line_widths=None,
):
    """Plot one or several shapes (meshes, curves, point clouds) in one view.

    3D shapes are rendered with pyvista (off-screen when ``screenshot`` is
    given), 2D shapes with matplotlib, axes in equal aspect in both cases.

    Parameters
    ----------
    shapes : PolyData or list of PolyData
        Shapes of one dimension (all 2D or all 3D).
    scalars : array-like (N,), str, or list of those (one per shape), optional
        Values per point drawn with ``cmap`` (a string names a ``point_data``
        key). Shapes without scalars are drawn in their colour.
    screenshot : str or path-like, optional
        Write a PNG there (parent folders are created) and return its path.
    colors : str or list of str, optional
        One colour per shape (default: :data:`PALETTE` in order).
    labels : str or list of str, optional
        One legend entry per shape (default: no legend for a single shape,
        "shape 0", "shape 1"... for several).
    title : str, optional
        Figure title.
    units : str or None, default "mm"
        Unit written on the axes (``None``: none).
    show_landmarks : bool, default True
        Draw the shapes' landmarks as small dark spheres (3D) or dots (2D).
    cmap : str, default "viridis"
        Colour map of ``scalars``.
    clim : (float, float), optional
        Range of the colour map (default: over all scalars).
    scalars_title : str, optional
        Title of the colour bar.
    window_size : (int, int), optional
        Image size in pixels (default (1024, 768)).
    camera_position : str or list, optional
        pyvista camera position (``"xy"``, ``"iso"``...), 3D only.
    opacity : float, default 1.0
        Opacity of 3D surfaces.
    show_edges : bool, default False
        Draw the edges of 3D triangle meshes.
    line_widths : float or list of float, optional
        Width of the lines of curves (and of 2D triangle edges), one for
        all shapes or one per shape, in points (default 2 in 2D, 4 in 3D).
        A wide line drawn first shows around a thinner one lying on it.

    Returns
    -------
    pathlib.Path or pyvista.Plotter or matplotlib.figure.Figure
        The PNG's path when ``screenshot`` is given, else the plotter (3D,
        call ``.show()``) or the figure (2D).

    Raises
    ------
    TypeError
        If ``shapes`` is not a PolyData or a list of PolyData.
    ValueError
        If the shapes mix 2D and 3D, or ``colors``/``labels``/``scalars``/
        ``line_widths`` do not have one entry per shape or one value per
        point.
    """
    shapes = _as_shape_list(shapes)
    dims = {shape.dim for shape in shapes}
    if len(dims) > 1:
        raise ValueError("shapes must all be 2D or all be 3D, got a mix")
    colors = _per_shape(colors, len(shapes), "colors", lambda i: PALETTE[i % len(PALETTE)])
    default_label = (lambda i: None) if len(shapes) == 1 else (lambda i: f"shape {i}")
    labels = _per_shape(labels, len(shapes), "labels", default_label)
    values = _scalars_list(scalars, shapes)
    if line_widths is not None and np.ndim(line_widths) == 0:
        line_widths = [float(line_widths)] * len(shapes)
    line_widths = _per_shape(line_widths, len(shapes), "line_widths", lambda i: 2.0 if dims == {2} else 4.0)
    if clim is None and any(v is not None for v in values):
        stacked = np.concatenate([v for v in values if v is not None])
        clim = (float(stacked.min()), float(stacked.max()))
    style = dict(
        title=title, units=units, show_landmarks=show_landmarks, cmap=cmap, clim=clim,
        scalars_title=scalars_title, window_size=window_size or (1024, 768), line_widths=line_widths,
    )
    if dims == {2}:
        return _plot_2d(shapes, values, colors, labels, screenshot, **style)
    return _plot_3d(
        shapes, values, colors, labels, screenshot, camera_position=camera_position,
        opacity=opacity, show_edges=show_edges, **style,
    )


# -------------------------------------------------------------------- 2D
def _new_figure(window_size, ncols=1):
    from matplotlib.figure import Figure

    dpi = 100
    return Figure(figsize=(window_size[0] / dpi, window_size[1] / dpi), dpi=dpi, layout="constrained")


def _draw_2d(ax, shape, color, label, values=None, cmap="viridis", norm=None, linewidth=2.0, zorder=2,
             show_landmarks=True, linestyle="-"):
    """Draw one 2D shape on a matplotlib axes; return the mappable if scalars are drawn."""
    from matplotlib.collections import LineCollection

    points = _numpy(shape.points)
    mappable = None
    if shape.triangles is not None:
        import matplotlib.tri as mtri

        triangulation = mtri.Triangulation(points[:, 0], points[:, 1], shape.triangles.cpu().numpy())
        if values is not None:
            mappable = ax.tripcolor(triangulation, values, cmap=cmap, norm=norm, shading="gouraud", zorder=zorder)
        ax.triplot(triangulation, color=color, linewidth=0.5 * linewidth, label=label, zorder=zorder)
    elif shape.edges is not None:
        segments = points[shape.edges.cpu().numpy()]
        # an explicit colour would keep matplotlib from mapping the values to the lines
        collection = LineCollection(segments, colors=None if values is not None else color, linewidths=linewidth,
                                    label=label, zorder=zorder,
                                    linestyles=linestyle, capstyle="round", joinstyle="round")
        if values is not None:
            collection.set_array(values[shape.edges.cpu().numpy()].mean(axis=1))
            collection.set_cmap(cmap)
            collection.set_norm(norm)
            mappable = collection
        ax.add_collection(collection)
    else:
        if values is not None:
            mappable = ax.scatter(points[:, 0], points[:, 1], c=values, cmap=cmap, norm=norm, s=12, label=label,
                                  zorder=zorder)
        else:
            ax.scatter(points[:, 0], points[:, 1], color=color, s=12, label=label, zorder=zorder)
    if show_landmarks and shape.landmarks is not None:
        lm = points[shape.landmarks.cpu().numpy()]
        ax.scatter(lm[:, 0], lm[:, 1], s=36, color=color, edgecolors=_LANDMARK_COLOR, linewidths=1.2,
                   zorder=zorder + 1)
    return mappable


def _finish_2d_axes(ax, units, limits=None):
    ax.set_aspect("equal", adjustable="datalim" if limits is None else "box")
    if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
    else:
        ax.autoscale_view()
    ax.set_xlabel(_axis_label("x", units))
    ax.set_ylabel(_axis_label("y", units))
    ax.grid(True, color="#e6e6e6", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)


def _plot_2d(shapes, values, colors, labels, screenshot, title, units, show_landmarks, cmap, clim,
             scalars_title, window_size, line_widths, overlay=None):
    """The 2D branch of :func:`plot`; ``overlay(ax, linewidths)`` may draw more on the axes."""
    from matplotlib.colors import Normalize

    fig = _new_figure(window_size)
    ax = fig.add_subplot()
    norm = Normalize(*clim) if clim is not None else None
    mappable = None
    for shape, v, color, label, width in zip(shapes, values, colors, labels, line_widths):
        m = _draw_2d(ax, shape, color, label, v, cmap, norm, linewidth=width, show_landmarks=show_landmarks)
        mappable = m or mappable
    if overlay is not None:
        overlay(ax, line_widths)
    _finish_2d_axes(ax, units, _limits_2d(shapes))
    if any(label is not None for label in labels):
        # below the axes, where it cannot hide a shape
        longest = max(len(label) for label in labels if label is not None)
        ncol = min(len(shapes), 4 if longest <= 20 else 2 if longest <= 55 else 1)
        fig.legend(loc="outside lower center", ncol=ncol, frameon=False)
    if mappable is not None:
        fig.colorbar(mappable, ax=ax, label=scalars_title or "")
    if title:
        ax.set_title(title)
    return _save_figure(fig, screenshot)


def _limits_2d(shapes, margin=0.05):
    points = np.concatenate([_numpy(s.points) for s in shapes])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = margin * float((high - low).max() or 1.0)
    return (low[0] - pad, high[0] + pad), (low[1] - pad, high[1] + pad)


def _save_figure(fig, screenshot):
    if screenshot is None:
        return fig
    path = Path(screenshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi, facecolor="white")
    return path


# -------------------------------------------------------------------- 3D
@functools.lru_cache(maxsize=None)
def _quiet_offscreen_vtk():
    """Without a display, VTK warns on stderr ("bad X server connection") before it falls back to off-screen
    rendering, which works: keep VTK's errors on stderr, drop its warnings (once, for the process)."""
    try:
        from vtkmodules.vtkCommonCore import vtkLogger

        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    except ImportError:  # pragma: no cover - VTK builds without the logger
        pass


def _plotter(screenshot, window_size, shape=(1, 1), **kwargs):
    import pyvista

    off_screen = True if screenshot is not None else bool(pyvista.OFF_SCREEN)
    if off_screen:
        _quiet_offscreen_vtk()
    plotter = pyvista.Plotter(off_screen=off_screen, window_size=list(window_size), shape=shape, border=False,
                              **kwargs)
    plotter.set_background("white")
    return plotter


def _landmark_spheres(shape, radius):
    return _point_spheres(_numpy(shape.landmark_points), radius)


def _point_spheres(points, radius):
    """Small spheres at ``points`` (P, 2 or 3), as one pyvista mesh (2D points get z = 0)."""
    import pyvista

    if points.shape[1] == 2:
        points = np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return pyvista.PolyData(points).glyph(geom=pyvista.Sphere(radius=radius), scale=False, orient=False)


def _diagonal(shapes) -> float:
    points = np.concatenate([_numpy(s.points) for s in shapes])
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) or 1.0


def _add_3d(plotter, shape, color, values=None, cmap="viridis", clim=None, scalars_title=None, opacity=1.0,
            show_edges=False, show_landmarks=True, landmark_radius=1.0, scalar_bar=True, line_width=4,
            mesh_kwargs=None):
    """Add ``shape`` to ``plotter``; ``mesh_kwargs`` go to ``add_mesh`` (e.g. ``nan_color``). Returns the actor."""
    mesh = shape.to_pyvista()
    kwargs = dict(opacity=opacity, smooth_shading=shape.kind == "mesh", show_edges=show_edges)
    if shape.kind == "curve":
        kwargs.update(line_width=line_width, render_lines_as_tubes=True)
    elif shape.kind == "cloud":
        kwargs.update(point_size=8, render_points_as_spheres=True, style="points")
    kwargs.update(mesh_kwargs or {})
    if values is not None:
        name = scalars_title or "scalars"
        mesh.point_data[name] = values
        actor = plotter.add_mesh(mesh, scalars=name, cmap=cmap, clim=clim, show_scalar_bar=scalar_bar,
                                 scalar_bar_args=dict(title=name, color="black", vertical=True, position_x=0.8,
                                                      position_y=0.15, height=0.6, width=0.06, title_font_size=16,
                                                      label_font_size=14, fmt=_bar_format(clim, values)),
                                 **kwargs)
    else:
        actor = plotter.add_mesh(mesh, color=color, **kwargs)
    if show_landmarks and shape.landmarks is not None:
        plotter.add_mesh(_landmark_spheres(shape, landmark_radius), color=_LANDMARK_COLOR, smooth_shading=True)
    return actor


def _bar_format(clim, values) -> str:
    """Labels of a colour bar with enough digits to tell its ticks apart."""
    low, high = clim if clim is not None else (float(np.min(values)), float(np.max(values)))
    span = abs(high - low)
    return "%.1f" if span >= 2 else "%.2f" if span >= 0.2 else "%.3g"


def _decorate_3d(plotter, title, legend, units, font_size=12, camera_position=None, bounds=None):
    """Title, legend (lower right) and labelled axes around ``bounds`` (default: what the renderer shows)."""
    if title:
        plotter.add_text(title, position="upper_edge", font_size=font_size, color="black")
    if legend:
        entries = [[label, color] for label, color in legend if label]
        if entries:
            width = min(0.5, 0.04 + 0.011 * max(len(label) for label, _ in entries))
            height = 0.04 * len(entries)
            legend = plotter.add_legend(entries, bcolor="white", border=True, face="rectangle", loc=None,
                                        size=(width, height))
            # lower right corner, placed by hand: pyvista's loc="lower right" offsets by the height
            legend.SetPosition(1.0 - width - 0.01, 0.01)
            legend.SetPosition2(width, height)
    # axes with a few labelled ticks give the scale; the axis along the view is hidden
    along_view = {"xy": "z", "yx": "z", "xz": "y", "zx": "y", "yz": "x", "zy": "x"}.get(
        camera_position if isinstance(camera_position, str) else None
    )
    bounds, n_labels = _nice_bounds(plotter.renderer.bounds if bounds is None else bounds)
    plotter.show_bounds(
        bounds=bounds,
        xtitle=_axis_label("x", units), ytitle=_axis_label("y", units), ztitle=_axis_label("z", units),
        show_xaxis=along_view != "x", show_yaxis=along_view != "y", show_zaxis=along_view != "z",
        grid=False, location="outer", ticks="outside", color="#555555", font_size=9, bold=False,
        n_xlabels=n_labels[0], n_ylabels=n_labels[1], n_zlabels=n_labels[2], fmt="%.4g",
    )


def _nice_bounds(bounds):
    """Bounds rounded outwards to a round step (1, 2 or 5 times a power of ten), and the tick counts.

    The ticks then fall on round values (-60, -40, ... mm) rather than on the
    shapes' exact extremes.
    """
    bounds = np.asarray(bounds, dtype=float).reshape(3, 2)
    span = float((bounds[:, 1] - bounds[:, 0]).max()) or 1.0
    magnitude = 10.0 ** math.floor(math.log10(span / 4))
    step = next(m * magnitude for m in (1, 2, 5, 10) if span / (m * magnitude) <= 6)
    low, high = np.floor(bounds[:, 0] / step) * step, np.ceil(bounds[:, 1] / step) * step
    high = np.maximum(high, low + step)
    n_labels = [int(round((h - lo) / step)) + 1 for lo, h in zip(low, high)]
    return [v for pair in zip(low, high) for v in pair], n_labels


def _set_camera(plotter, camera_position, bounds=None):
    """Point the camera (isometric by default) at ``bounds`` (default: what the renderer shows)."""
    if camera_position is None:
        plotter.view_isometric()
    else:
        plotter.camera_position = camera_position
    if isinstance(camera_position, str) and camera_position in ("xy", "xz", "yz", "yx", "zx", "zy"):
        # views along an axis: no perspective, so that the axes' ticks measure the shape
        plotter.enable_parallel_projection()
        plotter.reset_camera(bounds=bounds)
        plotter.camera.zoom(1.05)  # parallel views fit the bounding sphere, leaving wide margins
    else:
        plotter.reset_camera(bounds=bounds)
        plotter.camera.zoom(0.9)  # room for the axes' labels


def _finish_plotter(plotter, screenshot):
    if screenshot is None:
        return plotter
    path = Path(screenshot)
    path.parent.mkdir(parents=True, exist_ok=True)
    plotter.screenshot(str(path))
    plotter.close()
    return path


def _plot_3d(shapes, values, colors, labels, screenshot, title, units, show_landmarks, cmap, clim,
             scalars_title, window_size, camera_position, opacity, show_edges, line_widths, mesh_kwargs=None,
             overlay=None):
    """The 3D branch of :func:`plot`; ``overlay(plotter, actors)`` may add to the scene before the axes."""
    plotter = _plotter(screenshot, window_size)
    radius = 0.008 * _diagonal(shapes)
    actors = [
        _add_3d(plotter, shape, color, v, cmap, clim, scalars_title, opacity, show_edges, show_landmarks, radius,
                line_width=width, mesh_kwargs=mesh_kwargs)
        for shape, v, color, width in zip(shapes, values, colors, line_widths)
    ]
    if overlay is not None:
        overlay(plotter, actors)
    legend = [(label, color) for label, color in zip(labels, colors)]
    if show_landmarks and any(s.landmarks is not None for s in shapes) and any(labels):
        legend.append(("landmarks", _LANDMARK_COLOR))
    _decorate_3d(plotter, title, legend, units, camera_position=camera_position)
    _set_camera(plotter, camera_position)
    return _finish_plotter(plotter, screenshot)


# --------------------------------------------------------- registration
def plot_registration(
    reg,
    target=None,
    screenshot=None,
    source=None,
    title=None,
    units="mm",
    grid=True,
    n_grid_lines=16,
    window_size=None,
    camera_position=None,
    labels=("source", "target", "registered source"),
    control_points=False,
    jacobian=False,
    residual="distance",
):
    """Show a fitted registration: source, target and the registered source.

    2D (matplotlib): two panels with shared axes. *Before*: the source (grey)
    and the target (blue) over a regular grid. *After*: the registered
    source (red) and the target (blue) over the same grid moved by the fitted
    deformation (``reg.transform_points``), which shows where and how much
    space was deformed.

    3D (pyvista, off-screen): three linked views. *Before*: source (grey)
    and target (blue, translucent). *After*: registered source (red) and
    target (blue, translucent). *Residual*: the registered source coloured
    by its distance to the target surface, or with
    ``residual="correspondence"`` by the distance from each vertex to the
    target's vertex of the same index (in ``units``). Landmarks are drawn as
    small spheres: black on the source and registered source, green on the
    target.

    Options for LDDMM-type models: ``control_points=True`` marks the control
    points (orange) at time 0 on *Before* and at time 1 on *After*;
    ``jacobian=True`` (2D) adds a third panel with the determinant of the
    Jacobian of the deformation, :math:`\\det D\\varphi`, i.e. the local
    ratio of areas (> 1: expansion, < 1: contraction, <= 0: folding), drawn
    on the deformed grid on a logarithmic colour scale centred at 1.

    Parameters
    ----------
    reg : Registration
        A fitted :class:`~skshapes.Registration`.
    target : PolyData, optional
        The target passed to ``fit`` (the estimator does not keep it). Without
        it the figure shows the source and the registered source only.
    screenshot : str or path-like, optional
        Write a PNG there and return its path.
    source : PolyData, optional
        The source passed to ``fit`` (default: ``reg.source_``).
    title : str, optional
        Figure title; a line with the data term before and after registration
        is added below it.
    units : str or None, default "mm"
        Unit written on the axes and the colour bar.
    grid : bool, default True
        Draw the regular and the deformed grid (2D).
    n_grid_lines : int, default 16
        Grid lines per direction (2D).
    window_size : (int, int), optional
        Image size in pixels (default (1400, 700) in 2D, (1800, 650) in 3D).
    camera_position : str or list, optional
        pyvista camera position, 3D only (default isometric).
    labels : (str, str, str)
        Legend entries of the source, the target and the registered source.
    control_points : bool, default False
        Draw the model's control points (models with ``control_points_of``,
        e.g. :class:`~skshapes.LDDMM`).
    jacobian : bool, default False
        2D only: add a panel with the Jacobian determinant of the fitted
        deformation over the grid (models with ``jacobian_determinant``:
        all the built-in ones).
    residual : {"distance", "correspondence"}, default "distance"
        3D only: colour the third panel by the distance to the target
        surface (no correspondence needed), or by the distance between
        vertices of the same index (shapes in correspondence, e.g. for
        :class:`~skshapes.L2Loss`).

    Returns
    -------
    pathlib.Path or pyvista.Plotter or matplotlib.figure.Figure
        The PNG's path when ``screenshot`` is given, else the plotter or figure.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``reg`` is not fitted.
    ValueError
        If no source is given and ``reg`` has no ``source_``, the shapes'
        dimensions differ, ``residual`` is unknown or needs a target in
        correspondence, ``jacobian=True`` in 3D, or the model has no control
        points or Jacobian to draw.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(reg)
    if residual not in RESIDUALS:
        raise ValueError(f"residual must be one of {RESIDUALS}, got {residual!r}")
    if source is None:
        source = getattr(reg, "source_", None)
        if source is None:
            raise ValueError("pass source=: this registration does not keep its source")
    source = _as_shape_list(source, "source")[0]
    morphed = reg.morphed_shape_
    if target is not None:
        target = _as_shape_list(target, "target")[0]
        if target.dim != source.dim:
            raise ValueError(f"target is {target.dim}D but the source is {source.dim}D")
    if residual == "correspondence" and (target is None or target.n_points != morphed.n_points):
        found = "no target" if target is None else f"{target.n_points} target and {morphed.n_points} source points"
        raise ValueError(f"residual='correspondence' needs a target with one point per source point, got {found}")
    if jacobian and source.dim != 2:
        raise ValueError("jacobian=True is available for 2D registrations only")
    model = _fitted_model(reg)
    if control_points and not hasattr(model, "control_points_of"):
        raise ValueError(f"control_points=True needs a model with control points (LDDMM), got {type(model).__name__}")
    if jacobian and not hasattr(model, "jacobian_determinant"):
        raise ValueError(f"jacobian=True needs a model with jacobian_determinant, got {type(model).__name__}")
    controls = _control_points(reg, model) if control_points else None
    subtitle = _loss_line(reg)
    heading = "\n".join(t for t in (title, subtitle) if t)
    source, morphed = source.copy().to("cpu"), morphed.copy().to("cpu")
    target = None if target is None else target.copy().to("cpu")
    if source.dim == 2:
        size = window_size or ((2000, 700) if jacobian else (1400, 700))
        return _registration_2d(reg, source, target, morphed, screenshot, heading, units, grid, n_grid_lines,
                                size, labels, controls, model if jacobian else None)
    return _registration_3d(source, target, morphed, screenshot, heading, units, window_size or (1800, 650),
                            camera_position, labels, controls, residual)


def _fitted_model(reg):
    """The deformation model of a fitted registration (``None`` stands for its default, a rigid motion)."""
    if reg.model is not None:
        return reg.model
    from ..deformations import RigidMotion

    return RigidMotion()


def _control_points(reg, model):
    """The control points at time 0 and at time 1 (moved by the fitted deformation), as numpy arrays."""
    start = model.control_points_of(reg.source_).detach()
    return _numpy(start), _numpy(reg.transform_points(start))


def _loss_name(loss) -> str:
    """A readable name of a loss: "Sinkhorn loss", "Sinkhorn loss + 0.1 x landmark loss"..."""
    from ..losses.base import ScaledLoss, SumLoss

    if loss is None:
        return "Sinkhorn loss"  # the default of Registration
    if isinstance(loss, SumLoss):
        return f"{_loss_name(loss.first)} + {_loss_name(loss.second)}"
    if isinstance(loss, ScaledLoss):
        return f"{loss.weight:g} x {_loss_name(loss.loss)}"
    names = {
        "SinkhornLoss": "Sinkhorn loss",
        "NearestNeighborsLoss": "nearest-neighbours loss",
        "L2Loss": "L2 loss",
        "LandmarkLoss": "landmark loss",
        "VarifoldLoss": "varifold loss",
        "CurrentsLoss": "currents loss",
    }
    return names.get(type(loss).__name__, type(loss).__name__)


def _loss_line(reg) -> str | None:
    history = getattr(reg, "loss_history_", None) or {}
    data = history.get("data") or []
    if len(data) < 2:
        return None
    first, last = data[0], data[-1]
    percent = 100 * last / first if first > 0 else None
    if percent is None:
        ratio = ""
    else:  # two significant digits for tiny ratios, not "0.0 %"
        ratio = f" ({percent:.1f} % of initial)" if percent >= 0.1 else f" ({percent:.2g} % of initial)"
    n_iter = getattr(reg, "n_iter_", None)
    after = f" after {n_iter} iterations" if n_iter is not None else ""
    return f"data term ({_loss_name(getattr(reg, 'loss', None))}) {first:.4g} -> {last:.4g}{ratio}{after}"


def _grid_lines(low, high, n_lines, n_samples=120):
    """Polylines of a regular grid over the box [low, high] (2D), as a list of (n_samples, 2) arrays."""
    xs, ys = np.linspace(low[0], high[0], n_lines), np.linspace(low[1], high[1], n_lines)
    tx, ty = np.linspace(low[0], high[0], n_samples), np.linspace(low[1], high[1], n_samples)
    lines = [np.stack([np.full(n_samples, x), ty], axis=1) for x in xs]
    lines += [np.stack([tx, np.full(n_samples, y)], axis=1) for y in ys]
    return lines


def _registration_2d(reg, source, target, morphed, screenshot, heading, units, grid, n_grid_lines, window_size,
                     labels, controls=None, jacobian_model=None):
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    shown = [source, morphed] + ([target] if target is not None else [])
    (x0, x1), (y0, y1) = _limits_2d(shown, margin=0.08)
    fig = _new_figure(window_size)
    axes = fig.subplots(1, 3 if jacobian_model is not None else 2, sharex=True, sharey=True)
    handles = [
        Line2D([], [], color=SOURCE_COLOR, linewidth=2.5, label=labels[0]),
        Line2D([], [], color=TARGET_COLOR, linewidth=2.5, label=labels[1]),
        Line2D([], [], color=MORPHED_COLOR, linewidth=2.5, label=labels[2]),
    ]
    if target is None:
        handles.pop(1)
    if grid:
        lines = _grid_lines((x0, y0), (x1, y1), n_grid_lines)
        stacked = np.concatenate(lines)
        moved = reg.transform_points(torch.as_tensor(stacked, dtype=source.dtype)).cpu().numpy()
        moved_lines = np.split(moved, len(lines))
        axes[0].add_collection(LineCollection(lines, colors=_GRID_COLOR, linewidths=0.6, zorder=1))
        axes[1].add_collection(LineCollection(moved_lines, colors=_GRID_COLOR, linewidths=0.6, zorder=1))
        handles.append(Line2D([], [], color=_GRID_COLOR, linewidth=1.0, label="grid (left: regular, right: deformed)"))
    # the target wide and below, so that it shows around a registered source that lies right on it
    if target is not None:
        for ax in axes[:2]:
            _draw_2d(ax, target, TARGET_COLOR, None, linewidth=3.5, zorder=3)
    _draw_2d(axes[0], source, SOURCE_COLOR, None, linewidth=2.0, zorder=4)
    _draw_2d(axes[1], morphed, MORPHED_COLOR, None, linewidth=1.6, zorder=4)
    if controls is not None:
        for ax, points in zip(axes[:2], controls):
            ax.scatter(points[:, 0], points[:, 1], s=28, color=_CONTROL_COLOR, edgecolors=_LANDMARK_COLOR,
                       linewidths=0.8, zorder=6)
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=6, color=_CONTROL_COLOR,
                              markeredgecolor=_LANDMARK_COLOR, label=f"control points ({len(controls[0])})"))
    axes[0].set_title("Before registration")
    axes[1].set_title("After registration")
    if jacobian_model is not None:
        _jacobian_panel(fig, axes[2], reg, jacobian_model, morphed, ((x0, x1), (y0, y1)))
    for ax in axes:
        _finish_2d_axes(ax, units, ((x0, x1), (y0, y1)))
        if grid or ax is axes[-1] and jacobian_model is not None:
            ax.grid(False)  # the deformation grid (or the Jacobian map) replaces the axes' grid
    for ax in axes[1:]:
        ax.set_ylabel("")
        ax.tick_params(labelleft=True)
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    if heading:
        fig.suptitle(heading)
    return _save_figure(fig, screenshot)


def _round_ticks(low, high):
    """Ticks 1, 2, 5 x 10^k within [low, high] (for a logarithmic colour bar)."""
    ticks = [m * 10.0 ** k for k in range(-6, 7) for m in (1, 2, 5)]
    return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]


def _jacobian_panel(fig, ax, reg, model, morphed, limits, n_cells=80):
    """The Jacobian determinant of the fitted map on an ``n_cells`` x ``n_cells`` grid, drawn where the grid lands."""
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    (x0, x1), (y0, y1) = limits
    xs, ys = np.linspace(x0, x1, n_cells + 1), np.linspace(y0, y1, n_cells + 1)
    nodes = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1)  # (n + 1, n + 1, 2)
    source = reg.source_
    flat = torch.as_tensor(nodes.reshape(-1, 2), dtype=source.dtype, device=source.device)
    moved = _numpy(reg.transform_points(flat)).reshape(nodes.shape)
    with torch.no_grad():
        determinant = model.jacobian_determinant(flat, source, reg.parameter_)
    determinant = _numpy(determinant).reshape(nodes.shape[:2])
    low, high = float(determinant.min()), float(determinant.max())
    if low > 0:
        span = max(high, 1.0 / low, 1.25)
        norm, ticks = LogNorm(1.0 / span, span), _round_ticks(1.0 / span, span)
    else:  # folding: a logarithmic scale cannot show it
        norm, ticks = TwoSlopeNorm(vcenter=1.0, vmin=low, vmax=max(high, 1.25)), None
    mesh = ax.pcolormesh(moved[..., 0], moved[..., 1], determinant, cmap="RdBu_r", norm=norm, shading="gouraud",
                         zorder=1)
    _draw_2d(ax, morphed, "black", None, linewidth=1.5, zorder=4)
    bar = fig.colorbar(mesh, ax=ax, ticks=ticks, shrink=0.9)
    bar.set_label("area ratio det Dφ (> 1: expansion, < 1: contraction)")
    if ticks is not None:
        bar.ax.set_yticklabels([f"{t:g}" for t in ticks])
        bar.ax.minorticks_off()
    ax.set_title(f"Jacobian determinant (min {low:.2f}, max {high:.2f})\nregistered source in black")


def _distance_to(shape, target) -> np.ndarray:
    """Distance from each vertex of ``shape`` to ``target`` (its surface for meshes, else its points)."""
    points = _numpy(shape.points)
    if target.kind == "mesh" and target.dim == 3:
        import pyvista

        probe = pyvista.PolyData(points)
        distances = probe.compute_implicit_distance(target.to_pyvista())["implicit_distance"]
        return np.abs(np.asarray(distances, dtype=float))
    from scipy.spatial import cKDTree

    return cKDTree(_numpy(target.points)).query(points)[0]


def _registration_3d(source, target, morphed, screenshot, heading, units, window_size, camera_position, labels,
                     controls=None, residual="distance"):
    n_panels = 3 if target is not None else 2
    # a header row (the title, across the window) above the panels
    plotter = _plotter(screenshot, window_size, shape=(2, n_panels), row_weights=[1.4, 7],
                       groups=[(0, np.s_[:])])
    radius = 0.012 * _diagonal([source, morphed] + ([target] if target is not None else []))
    wireframe = " (blue wireframe)" if target is not None and target.kind == "mesh" else ""
    legend = [(labels[0], SOURCE_COLOR)]
    legend += [(labels[1] + wireframe, TARGET_COLOR)] if target is not None else []
    legend += [(labels[2], MORPHED_COLOR)]
    legend += [(f"landmarks of {labels[0]}", _LANDMARK_COLOR)] if source.landmarks is not None else []
    has_target_landmarks = target is not None and target.landmarks is not None
    legend += [(f"landmarks of {labels[1]}", _TARGET_LANDMARK_COLOR)] if has_target_landmarks else []
    legend += [(f"control points ({len(controls[0])})", _CONTROL_COLOR)] if controls is not None else []
    # header: the title on the left, one legend for all the panels on the right
    plotter.subplot(0, 0)
    if heading:
        plotter.add_text(heading, position="upper_left", font_size=12, color="black")
    width = min(0.3, 0.03 + 0.006 * max(len(label) for label, _ in legend))
    actor = plotter.add_legend([list(entry) for entry in legend], bcolor="white", border=True, face="rectangle",
                               loc=None, size=(width, 0.9))
    actor.SetPosition(1.0 - width - 0.005, 0.05)
    actor.SetPosition2(width, 0.9)

    def add_target():
        if target is None:
            return
        mesh = target.to_pyvista()
        style = dict(style="wireframe", line_width=1.0, opacity=0.7) if target.kind == "mesh" else {}
        if target.kind == "curve":
            style = dict(line_width=3, render_lines_as_tubes=True)
        elif target.kind == "cloud":
            style = dict(style="points", point_size=5, render_points_as_spheres=True)
        plotter.add_mesh(mesh, color=TARGET_COLOR, **style)
        if has_target_landmarks:
            plotter.add_mesh(_landmark_spheres(target, radius), color=_TARGET_LANDMARK_COLOR, smooth_shading=True)

    def add_controls(points):
        if controls is not None:
            plotter.add_mesh(_point_spheres(points, 0.8 * radius), color=_CONTROL_COLOR, smooth_shading=True)

    plotter.subplot(1, 0)
    _add_3d(plotter, source, SOURCE_COLOR, landmark_radius=radius)
    add_target()
    add_controls(None if controls is None else controls[0])
    _decorate_3d(plotter, "Before registration", None, units, font_size=11, camera_position=camera_position)
    _set_camera(plotter, camera_position)

    plotter.subplot(1, 1)
    _add_3d(plotter, morphed, MORPHED_COLOR, landmark_radius=radius)
    add_target()
    add_controls(None if controls is None else controls[1])
    _decorate_3d(plotter, "After registration", None, units, font_size=11, camera_position=camera_position)
    _set_camera(plotter, camera_position)

    if target is not None:
        plotter.subplot(1, 2)
        if residual == "correspondence":
            distances = np.linalg.norm(_numpy(morphed.points) - _numpy(target.points), axis=1)
            what, name = "Vertex error: distance from each vertex\nto the same vertex of the target", "vertex error"
        else:
            distances = _distance_to(morphed, target)
            what, name = f"Distance from {labels[2]} to target", "distance"
        unit = f" {units}" if units else ""
        clim = (0.0, float(np.percentile(distances, 99)) or 1.0)
        _add_3d(plotter, morphed, MORPHED_COLOR, distances, cmap="magma_r", clim=clim,
                scalars_title=f"{name} ({units})" if units else name, show_landmarks=False)
        summary = (
            f"{what}\n"
            f"median {np.median(distances):.1f}{unit}, 95th percentile {np.percentile(distances, 95):.1f}{unit}"
        )
        _decorate_3d(plotter, summary, None, units, font_size=10, camera_position=camera_position)
        _set_camera(plotter, camera_position)
    panels = [plotter.renderers.loc_to_index((1, j)) for j in range(n_panels)]
    plotter.link_views(views=panels)
    plotter.subplot(1, 0)
    _set_camera(plotter, camera_position)
    return _finish_plotter(plotter, screenshot)
