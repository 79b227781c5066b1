"""Animated GIFs of deformation paths: a fitted registration's geodesic, or any sequence of shapes.

3D frames are rendered off-screen by pyvista and written with
:meth:`pyvista.Plotter.open_gif` (needs ``imageio``, in the ``viz`` extra);
2D frames are drawn with matplotlib and written with Pillow.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch

from ..shapes import PolyData
from .plotting import (
    _GRID_COLOR,
    _LANDMARK_COLOR,
    MORPHED_COLOR,
    TARGET_COLOR,
    _add_3d,
    _as_shape_list,
    _decorate_3d,
    _diagonal,
    _draw_2d,
    _finish_2d_axes,
    _fitted_model,
    _limits_2d,
    _new_figure,
    _numpy,
    _plotter,
    _point_spheres,
    _set_camera,
)

__all__ = ["animate", "geodesic_path"]


def geodesic_path(reg, n_frames=20):
    r"""The shapes along a fitted registration's deformation, at times ``t = 0, 1/(n-1), ..., 1``.

    The shape at time :math:`t` is the source deformed by the parameter
    scaled by :math:`t`, with the same (frozen) model as in ``fit``. For
    :class:`~skshapes.LDDMM` this is the geodesic itself: the Hamiltonian is
    quadratic in the momenta, so shooting :math:`t p_0` for unit time reaches
    where shooting :math:`p_0` is at time :math:`t` (up to the integrator's
    error). For rigid motions and similarities it is the constant-speed
    rotation (and scaling) about the centroid; for affine maps, the straight
    line :math:`I + t M` between the matrices. The last shape is
    ``reg.morphed_shape_``.

    Parameters
    ----------
    reg : Registration
        A fitted :class:`~skshapes.Registration`.
    n_frames : int, default 20
        Number of shapes, at least 2.

    Returns
    -------
    list of PolyData
        ``n_frames`` shapes with the source's connectivity, on the CPU, without
        autograd graph.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``reg`` is not fitted.
    TypeError, ValueError
        If ``n_frames`` is not an int >= 2.
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(reg)
    n_frames = _check_n_frames(n_frames)
    source = reg.source_
    model = _fitted_model(reg).frozen_for(source)
    shapes = []
    with torch.no_grad():
        for t in np.linspace(0.0, 1.0, n_frames):
            parameter = reg.parameter_ * float(t)
            shapes.append(model.morph(source, parameter).shape.copy().to("cpu"))
    return shapes


def animate(
    path_or_registration,
    filename,
    n_frames=None,
    fps=10,
    target=None,
    color=MORPHED_COLOR,
    title=None,
    units="mm",
    window_size=(800, 600),
    camera_position=None,
    bounce=False,
    show_landmarks=True,
):
    """Write an animated GIF of a deformation path.

    Parameters
    ----------
    path_or_registration : Registration or list of PolyData
        A fitted :class:`~skshapes.Registration` (its path from the source to
        the registered source, see :func:`geodesic_path`), or the shapes of a
        path (e.g. ``sks.shoot(..., return_path=True)``, or
        ``GeodesicRegression.predict(times)``), all 2D or all 3D.
    filename : str or path-like
        Where to write the GIF (must end in ``.gif``; folders are created).
    n_frames : int, optional
        Number of frames, at least 2. Registration: default 20. List of
        shapes: default one frame per shape; any other number needs shapes
        with one point per point of the first (in correspondence), which are
        then interpolated linearly in time.
    fps : float, default 10
        Frames per second.
    target : PolyData, optional
        A shape drawn in every frame (blue: a wireframe for meshes), e.g. the
        registration's target.
    color : str, default :data:`MORPHED_COLOR`
        Colour of the moving shape.
    title : str, optional
        Shown above each frame, followed by the frame's time ``t``.
    units : str or None, default "mm"
        Unit written on the axes.
    window_size : (int, int), default (800, 600)
        Frame size in pixels.
    camera_position : str or list, optional
        pyvista camera position (3D; default isometric), fixed for all frames.
    bounce : bool, default False
        Play the path forwards then backwards (a seamless loop).
    show_landmarks : bool, default True
        Draw the moving shape's landmarks.

    Returns
    -------
    pathlib.Path
        The GIF's path.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If a registration is given and is not fitted.
    TypeError
        If ``path_or_registration`` is neither a registration nor a list of
        PolyData, or ``n_frames`` is not an int.
    ValueError
        If ``filename`` does not end in ``.gif``, ``n_frames < 2``, ``fps`` is
        not positive, the shapes mix dimensions, ``target`` has another
        dimension, or frames must be interpolated between shapes that are
        not in correspondence.
    ImportError
        For 3D shapes, if ``imageio`` is missing (``pip install imageio``).
    """
    path = Path(filename)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"filename must end in .gif, got {str(filename)!r}")
    if not (isinstance(fps, numbers.Real) and float(fps) > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    shapes, times = _frames(path_or_registration, n_frames)
    if target is not None:
        target = _as_shape_list(target, "target")[0].copy().to("cpu")
        if target.dim != shapes[0].dim:
            raise ValueError(f"target is {target.dim}D but the path is {shapes[0].dim}D")
    if bounce:
        shapes, times = shapes + shapes[-2:0:-1], times + times[-2:0:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    write = _animate_2d if shapes[0].dim == 2 else _animate_3d
    write(shapes, times, path, float(fps), target, color, title, units, tuple(window_size), camera_position,
          show_landmarks)
    return path


# ---------------------------------------------------------------- frames
def _check_n_frames(n_frames):
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral):
        raise TypeError(f"n_frames must be an int, got {type(n_frames).__name__}")
    if n_frames < 2:
        raise ValueError(f"n_frames must be at least 2, got {n_frames}")
    return int(n_frames)


def _frames(path_or_registration, n_frames):
    """The shapes to draw (CPU, detached) and their times in [0, 1]."""
    if hasattr(path_or_registration, "parameter_") or hasattr(path_or_registration, "fit"):
        n_frames = _check_n_frames(20 if n_frames is None else n_frames)
        return geodesic_path(path_or_registration, n_frames), list(np.linspace(0.0, 1.0, n_frames))
    if isinstance(path_or_registration, PolyData) or not isinstance(path_or_registration, (list, tuple)):
        raise TypeError(
            "path_or_registration must be a fitted Registration or a list of PolyData, "
            f"got {type(path_or_registration).__name__}"
        )
    shapes = [s.copy().to("cpu") for s in _as_shape_list(list(path_or_registration), "path_or_registration")]
    if len({s.dim for s in shapes}) > 1:
        raise ValueError("the shapes of the path must all be 2D or all be 3D, got a mix")
    if n_frames is None or n_frames == len(shapes):
        if len(shapes) < 2 and n_frames is None:
            raise ValueError("a path needs at least 2 shapes (or pass n_frames to repeat one)")
        return shapes, list(np.linspace(0.0, 1.0, len(shapes)))
    n_frames = _check_n_frames(n_frames)
    first = shapes[0]
    if any(s.n_points != first.n_points for s in shapes):
        raise ValueError(
            f"n_frames={n_frames} differs from the {len(shapes)} shapes of the path: interpolating needs shapes "
            "with the same number of points, in correspondence"
        )
    stacked = np.stack([_numpy(s.points) for s in shapes])  # (S, N, D)
    knots = np.linspace(0.0, 1.0, len(shapes))
    times = list(np.linspace(0.0, 1.0, n_frames))
    frames = []
    for t in times:
        k = min(int(np.searchsorted(knots, t, side="right")) - 1, len(shapes) - 2) if len(shapes) > 1 else 0
        if len(shapes) == 1:
            points = stacked[0]
        else:
            w = (t - knots[k]) / (knots[k + 1] - knots[k])
            points = (1 - w) * stacked[k] + w * stacked[k + 1]
        frames.append(first.with_points(torch.as_tensor(points, dtype=first.dtype)))
    return frames, times


def _caption(title, t):
    return f"{title}   t = {t:.2f}" if title else f"t = {t:.2f}"


# -------------------------------------------------------------------- 3D
def _animate_3d(shapes, times, path, fps, target, color, title, units, window_size, camera_position,
                show_landmarks):
    import importlib.util

    if importlib.util.find_spec("imageio") is None:
        raise ImportError("writing a 3D GIF needs imageio: pip install imageio (or skshapes[viz])")
    everything = shapes + ([target] if target is not None else [])
    points = np.concatenate([_numpy(s.points) for s in everything])
    low, high = points.min(axis=0), points.max(axis=0)
    bounds = [v for pair in zip(low, high) for v in pair]
    radius = 0.008 * _diagonal(everything)
    plotter = _plotter(path, window_size)
    try:
        if target is not None:
            style = dict(style="wireframe", line_width=1.0, opacity=0.6) if target.kind == "mesh" else {}
            _add_3d(plotter, target, TARGET_COLOR, show_landmarks=False, mesh_kwargs=style)
        _add_3d(plotter, shapes[0], color, show_landmarks=False, mesh_kwargs=dict(name="moving"))
        legend = [("time t", color)] + ([("target", TARGET_COLOR)] if target is not None else [])
        _decorate_3d(plotter, None, legend, units, camera_position=camera_position, bounds=bounds)
        _set_camera(plotter, camera_position, bounds=bounds)
        plotter.camera.zoom(0.85)  # room for the caption and the axes' labels
        caption = plotter.add_text(_caption(title, times[0]), position="upper_edge", font_size=12, color="black")
        plotter.open_gif(str(path), fps=fps)
        for shape, t in zip(shapes, times):
            # the same names replace the previous frame's actors; the camera stays where it was set
            _add_3d(plotter, shape, color, show_landmarks=False, mesh_kwargs=dict(name="moving"))
            if show_landmarks and shape.landmarks is not None:
                plotter.add_mesh(_point_spheres(_numpy(shape.landmark_points), radius), color=_LANDMARK_COLOR,
                                 smooth_shading=True, name="landmarks")
            caption.set_text("upper_edge", _caption(title, t))
            plotter.write_frame()
    finally:
        plotter.close()


# -------------------------------------------------------------------- 2D
def _animate_2d(shapes, times, path, fps, target, color, title, units, window_size, camera_position,
                show_landmarks):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    limits = _limits_2d(shapes + ([target] if target is not None else []))
    images = []
    for shape, t in zip(shapes, times):
        fig = _new_figure(window_size)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if target is not None:
            _draw_2d(ax, target, TARGET_COLOR, "target", linewidth=3.5, zorder=2, show_landmarks=False)
        _draw_2d(ax, shapes[0], _GRID_COLOR, "t = 0", linewidth=1.0, zorder=1, show_landmarks=False,
                 linestyle="--")
        _draw_2d(ax, shape, color, "time t", linewidth=2.0, zorder=3, show_landmarks=show_landmarks)
        _finish_2d_axes(ax, units, limits)
        ax.set_title(_caption(title, t))
        fig.legend(loc="outside lower center", ncol=3 if window_size[0] >= 450 else 1, frameon=False)
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
    # quantise all frames with one palette, so that colours do not flicker from frame to frame
    palette = images[len(images) // 2].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0,
                   disposal=1)
