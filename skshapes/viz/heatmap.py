"""Per-vertex maps on a template: signed values on a diverging colour map, an optional significance mask.

Built on the helpers of :mod:`skshapes.viz.plotting` (same look, axes and
off-screen behaviour as :func:`~skshapes.viz.plot`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..shapes import PolyData
from .plotting import _as_shape_list, _plot_2d, _plot_3d, _scalars_list

__all__ = ["MASK_STYLES", "plot_heatmap"]

#: How ``mask`` is drawn: a black outline around the masked region, or grey outside it.
MASK_STYLES = ("outline", "grey")
_OUTLINE_COLOR = "#000000"
_NOT_MASKED_COLOR = "#9a9a9a"


def plot_heatmap(
    template,
    values,
    screenshot=None,
    units="mm",
    symmetric=True,
    cmap="RdBu_r",
    clim=None,
    title=None,
    mask=None,
    mask_style="outline",
    mask_label="significant",
    label="value",
    window_size=None,
    camera_position=None,
    show_edges=False,
    show_landmarks=False,
):
    """Draw one value per vertex of a template on a diverging colour map centred on 0.

    The map for vertex-wise statistics: mean displacements along the normal,
    t-statistics or effect sizes of a :class:`~skshapes.PermutationGLM`,
    signed distances. 3D shapes are rendered with pyvista (off-screen when
    ``screenshot`` is given), 2D curves with matplotlib; a colour bar gives
    the values with their units.

    Parameters
    ----------
    template : PolyData
        The shape carrying the values, N points (a 3D triangle mesh, or any
        2D or 3D shape).
    values : array-like or torch.Tensor, shape (N,), or str
        One finite value per vertex (a str names a ``point_data`` key of
        ``template``), in ``units``.
    screenshot : str or path-like, optional
        Write a PNG there (parent folders are created) and return its path.
    units : str or None, default "mm"
        Unit of the values and of the axes, written on the colour bar and the
        axes (``None``: none).
    symmetric : bool, default True
        Colour range ``(-m, m)`` with ``m = max |values|``, so that 0 falls on
        the neutral middle colour of ``cmap``. If False, the range is
        ``(min, max)`` and the middle colour is not 0 in general.
    cmap : str or matplotlib colormap, default "RdBu_r"
        A diverging colour map (blue negative, red positive by default).
    clim : (float, float), optional
        Colour range; overrides ``symmetric``.
    title : str, optional
        Figure title.
    mask : array-like of bool, shape (N,), optional
        Vertices to single out, e.g. ``glm.p_fwer_ < 0.05``. Drawn as set by
        ``mask_style``; an all-False mask outlines nothing (or greys all).
    mask_style : {"outline", "grey"}, default "outline"
        ``"outline"``: a black contour around the masked region (3D meshes:
        the level line 1/2 of the mask interpolated over the triangles; 2D:
        a black band under masked segments or rings around masked points),
        values shown everywhere. ``"grey"``: vertices outside the mask drawn
        in light grey, values shown on the mask only.
    mask_label : str, default "significant"
        What the mask means, written in the legend.
    label : str, default "value"
        What the values are; the colour bar reads ``"label (units)"``.
    window_size : (int, int), optional
        Image size in pixels (default (1024, 768)).
    camera_position : str or list, optional
        pyvista camera position (``"xy"``, ``"iso"``...), 3D only.
    show_edges : bool, default False
        Draw the edges of 3D triangle meshes.
    show_landmarks : bool, default False
        Draw the template's landmarks.

    Returns
    -------
    pathlib.Path or pyvista.Plotter or matplotlib.figure.Figure
        The PNG's path when ``screenshot`` is given, else the plotter (3D,
        call ``.show()``) or the figure (2D).

    Raises
    ------
    TypeError
        If ``template`` is not a PolyData, or ``values`` or ``mask`` are not
        arrays of numbers.
    ValueError
        If ``values`` or ``mask`` do not have one entry per vertex, ``values``
        has NaN or infinite entries, ``mask`` is not boolean (or 0/1),
        ``mask_style`` is unknown or ``clim`` is not an increasing pair.

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> from skshapes.viz import plot_heatmap
    >>> grid = sks.PolyData(torch.rand(50, 3))
    >>> plot_heatmap(grid, grid.points[:, 0] - 0.5, screenshot="heatmap.png")  # doctest: +SKIP
    PosixPath('heatmap.png')
    """
    if not isinstance(template, PolyData):
        raise TypeError(f"template must be a PolyData, got {type(template).__name__}")
    shapes = _as_shape_list(template, "template")
    values = _scalars_list(values, shapes, name="values", finite=True)[0]
    if values is None:
        raise TypeError("values must be an array of one value per vertex, got None")
    mask = _check_mask(mask, template.n_points)
    if mask_style not in MASK_STYLES:
        raise ValueError(f"mask_style must be one of {MASK_STYLES}, got {mask_style!r}")
    clim = _color_range(values, clim, symmetric)
    bar_title = f"{label} ({units})" if units else label
    grey = mask is not None and mask_style == "grey"
    shown = np.where(mask, values, np.nan) if grey else values
    legend, color = [None], _OUTLINE_COLOR
    if mask is not None:
        legend = [f"{mask_label} (outlined)"] if mask_style == "outline" else [f"not {mask_label}"]
        color = _OUTLINE_COLOR if mask_style == "outline" else _NOT_MASKED_COLOR
    style = dict(
        title=title, units=units, show_landmarks=show_landmarks, cmap=cmap, clim=clim, scalars_title=bar_title,
        window_size=window_size or (1024, 768), line_widths=[4.0],
    )
    if template.dim == 2:
        import matplotlib

        colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        style["cmap"] = colormap.with_extremes(bad=_NOT_MASKED_COLOR)
        overlay = _outline_2d(template, mask, legend[0], color) if mask is not None else None
        return _plot_2d(shapes, [shown], [color], [None], screenshot, overlay=overlay, **style)
    overlay = _outline_3d(template, mask) if mask is not None and mask_style == "outline" else None
    return _plot_3d(
        shapes, [shown], [color], legend, screenshot, camera_position=camera_position, opacity=1.0,
        show_edges=show_edges, mesh_kwargs=dict(nan_color=_NOT_MASKED_COLOR), overlay=overlay, **style,
    )


# ---------------------------------------------------------------- checks
def _check_mask(mask, n_points):
    """``None`` or a boolean (N,) array."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask must be boolean (or 0/1), one entry per vertex; got dtype {mask.dtype}")
        mask = mask.astype(bool)
    if mask.shape != (n_points,):
        raise ValueError(f"mask must have shape ({n_points},) (one entry per vertex), got {mask.shape}")
    return mask


def _color_range(values, clim, symmetric):
    if clim is not None:
        try:
            low, high = (float(c) for c in clim)
        except (TypeError, ValueError):
            raise ValueError(f"clim must be a pair of numbers (low, high), got {clim!r}") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"clim must be finite with low < high, got {clim!r}")
        return low, high
    if symmetric:
        bound = float(np.abs(values).max()) or 1.0
        return -bound, bound
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low - 1.0, high + 1.0)


# -------------------------------------------------------------- overlays
def _outline_3d(template, mask):
    """Draw the level line 1/2 of ``mask`` interpolated over the template (black tubes)."""

    def overlay(plotter, actors):
        if template.kind != "mesh":  # curves and clouds: rings around the masked points
            from .plotting import _diagonal, _point_spheres

            points = template.points.detach().cpu().numpy()[mask]
            if len(points):
                rings = _point_spheres(points, 0.012 * _diagonal([template]))
                plotter.add_mesh(rings, color=_OUTLINE_COLOR, style="wireframe", line_width=1.5)
            return
        probe = actors[0].mapper.dataset.copy()
        probe.point_data["mask"] = mask.astype(float)
        lines = probe.contour([0.5], scalars="mask")
        if lines.n_points:
            plotter.add_mesh(lines, color=_OUTLINE_COLOR, line_width=4, render_lines_as_tubes=True)

    return overlay


def _outline_2d(template, mask, legend, color):
    """2D: a black band under masked segments (curves, triangle edges) or rings around masked points."""

    def overlay(ax, line_widths):
        from matplotlib.collections import LineCollection
        from matplotlib.lines import Line2D

        if color == _OUTLINE_COLOR:
            points = template.points.detach().cpu().numpy()
            edges = _edges(template)
            if edges is None:
                ax.scatter(*points[mask].T, s=60, facecolors="none", edgecolors=_OUTLINE_COLOR, linewidths=1.5,
                           zorder=3)
            else:
                kept = edges[mask[edges].all(axis=1)]
                ax.add_collection(LineCollection(points[kept], colors=_OUTLINE_COLOR, linewidths=line_widths[0] + 5,
                                                 zorder=1, capstyle="round"))
            handle = Line2D([], [], color=_OUTLINE_COLOR, linewidth=4, label=legend)
        else:
            handle = Line2D([], [], color=color, linewidth=4, label=legend)
        ax.figure.legend(handles=[handle], loc="outside lower center", frameon=False)  # below: hides nothing

    return overlay


def _edges(shape):
    """The (E, 2) edges of a curve or the unique edges of a triangle mesh; None for a cloud."""
    if shape.edges is not None:
        return shape.edges.cpu().numpy()
    if shape.triangles is None:
        return None
    triangles = shape.triangles.cpu().numpy()
    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(edges, axis=1), axis=0)
