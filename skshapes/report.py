"""Figures, CSV tables and the HTML report of a :class:`~skshapes.dysmorphology.DysmorphologyAnalysis`.

The figures are composed with matplotlib (titles, colour bars in mm, scale
bars) from off-screen pyvista renderings of the meshes, with parallel
projection so that every panel of a figure has the same scale. The report is
plain HTML (no JavaScript) with the PNGs and CSVs beside it.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

__all__ = [
    "figure_difference_map",
    "figure_mean_faces",
    "figure_roc",
    "figure_t_map",
    "html_table",
    "midline_profile",
    "region_outline",
    "render_views",
]

#: Colours of the report: controls blue, syndrome orange (colour-blind safe), outlines black and green.
CONTROL_COLOR, SYNDROME_COLOR = "#1f77b4", "#e6550d"
SIGNIFICANT_OUTLINE, TRUE_OUTLINE = "#000000", "#00a651"
SKIN = "#e8c4a8"
VIEWS = ("front", "side")
VIEW_TITLES = {"front": "front view", "side": "side view (face to the right)"}


# ------------------------------------------------------------ rendering
def region_outline(points, triangles, mask, normals=None, lift=0.4):
    """Line segments (S, 2, 3) along the border of a vertex region of a triangle mesh.

    Each triangle with vertices both inside and outside ``mask`` contributes
    the segment joining the midpoints of its two mixed edges; the segments
    are lifted by ``lift`` (mm) along ``normals`` so that the surface does
    not hide them.
    """
    points = np.asarray(points, dtype=float)
    triangles = np.asarray(triangles, dtype=np.int64)
    mask = np.asarray(mask, dtype=bool)
    inside = mask[triangles]
    mixed = inside.any(1) & ~inside.all(1)
    segments = []
    for tri, ins in zip(triangles[mixed], inside[mixed]):
        mids = [(points[tri[i]] + points[tri[(i + 1) % 3]]) / 2 for i in range(3) if ins[i] != ins[(i + 1) % 3]]
        if normals is not None:
            lifted = lift * np.asarray(normals, dtype=float)[tri].mean(0)
            mids = [m + lifted for m in mids]
        segments.append(mids[:2])
    return np.asarray(segments, dtype=float).reshape(-1, 2, 3)


def render_views(points, triangles, scalars=None, cmap="RdBu_r", clim=None, color=SKIN, outlines=(),
                 views=VIEWS, size=(520, 640), half_height=None, faded=None):
    """Off-screen renderings of a face mesh from the front and the side, with parallel projection.

    Parameters
    ----------
    points : array-like, shape (N, 3)
        Vertices in the template's frame (x lateral, y up, z anterior, mm).
    triangles : array-like of int, shape (T, 3)
    scalars : array-like, shape (N,), optional
        Values coloured with ``cmap`` over ``clim``.
    color : str
        Surface colour without scalars.
    outlines : sequence of (segments, color)
        Line segments from :func:`region_outline`.
    faded : array-like of bool, shape (N,), optional
        Vertices whose colour is blended 65 % towards light grey (e.g. where
        a difference is not significant).
    views : sequence of {"front", "side"}
    size : (int, int)
        Width and height of each image (pixels).
    half_height : float, optional
        Half the height of the view in mm (the same for every view, so the
        images share one scale); default: 0.55 times the largest extent.

    Returns
    -------
    images : list of numpy.ndarray (H, W, 3), uint8
    mm_per_pixel : float
    """
    import pyvista

    points = np.asarray(points, dtype=float)
    faces = np.column_stack([np.full(len(triangles), 3), np.asarray(triangles)]).ravel()
    mesh = pyvista.PolyData(points, faces)
    centre = (points.max(0) + points.min(0)) / 2
    extent = float((points.max(0) - points.min(0)).max())
    half_height = 0.55 * extent if half_height is None else float(half_height)
    directions = {"front": np.array([0.0, 0.0, 1.0]), "side": np.array([-1.0, 0.0, 0.0])}
    images = []
    for view in views:
        plotter = pyvista.Plotter(off_screen=True, window_size=list(size))
        plotter.set_background("white")
        if scalars is not None:
            # strong ambient light: shadows would read as colours of the map
            lighting = dict(smooth_shading=True, ambient=0.45, diffuse=0.6, specular=0.0)
            if faded is None:
                mesh.point_data["values"] = np.asarray(scalars, dtype=float)
                plotter.add_mesh(mesh, scalars="values", cmap=cmap, clim=clim, show_scalar_bar=False, **lighting)
            else:
                import matplotlib
                from matplotlib.colors import Normalize

                colors = matplotlib.colormaps[cmap](Normalize(*clim, clip=True)(np.asarray(scalars, dtype=float)))
                fade = np.asarray(faded, dtype=bool)
                colors[fade, :3] = 0.35 * colors[fade, :3] + 0.65 * 0.85
                mesh.point_data["colors"] = (255 * colors[:, :3]).astype(np.uint8)
                plotter.add_mesh(mesh, scalars="colors", rgb=True, **lighting)
        else:
            plotter.add_mesh(mesh, color=color, smooth_shading=True, specular=0.15)
        for segments, line_color in outlines:
            if len(segments):
                lines = pyvista.line_segments_from_points(np.asarray(segments).reshape(-1, 3))
                plotter.add_mesh(lines, color=line_color, line_width=5, render_lines_as_tubes=True)
        plotter.camera.focal_point = centre
        plotter.camera.position = centre + 3 * extent * directions[view]
        plotter.camera.up = (0.0, 1.0, 0.0)
        plotter.enable_parallel_projection()
        plotter.camera.parallel_scale = half_height
        plotter.camera.clipping_range = (0.1, 10 * extent)
        images.append(plotter.screenshot(return_img=True))
        plotter.close()
    return images, 2 * half_height / size[1]


def _show(ax, image, mm_per_pixel, title=None, scale_bar_mm=20.0):
    """An image on matplotlib axes, without ticks, with a scale bar of ``scale_bar_mm``."""
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    if scale_bar_mm:
        h, w = image.shape[:2]
        length = scale_bar_mm / mm_per_pixel
        x0, y0 = 0.06 * w, 0.95 * h
        ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
        ax.text(x0 + length / 2, y0 - 0.015 * h, f"{scale_bar_mm:g} mm", ha="center", va="bottom", fontsize=9)


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor="white")
    return path


# -------------------------------------------------------------- figures
def midline_profile(points, width_mm=3.0):
    """The vertices within ``width_mm`` of the face's midsagittal plane, sorted from chin to forehead.

    Returns
    -------
    numpy.ndarray, shape (P, 2)
        (up, anterior) coordinates in mm: ``y`` and ``z`` of the template's frame.
    """
    points = np.asarray(points, dtype=float)
    middle = np.median(points[:, 0])
    near = np.abs(points[:, 0] - middle) < width_mm
    profile = points[near][:, [1, 2]]
    order = np.argsort(profile[:, 0])
    profile = profile[order]
    # the most anterior point in each 2 mm band of height: the silhouette of the profile
    bands = np.floor(profile[:, 0] / 2.0)
    keep = [np.flatnonzero(bands == b)[np.argmax(profile[bands == b, 1])] for b in np.unique(bands)]
    return profile[keep]


def figure_mean_faces(analysis, path, group_names=("controls", "syndrome")):
    """Mean faces of both groups (front and side views) and their midline profiles overlaid."""
    triangles = analysis.template_.triangles.cpu().numpy()
    control = analysis.mean_control_.points.detach().cpu().numpy().astype(float)
    syndrome = analysis.mean_syndrome_.points.detach().cpu().numpy().astype(float)
    n_control, n_syndrome = int((analysis.labels_ == 0).sum()), int((analysis.labels_ == 1).sum())
    extent = float((control.max(0) - control.min(0)).max())
    fig = _figure(13.0, 8.6)
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 1, 1.15])
    for row, (points, name, count, color) in enumerate(
        [(control, group_names[0], n_control, CONTROL_COLOR), (syndrome, group_names[1], n_syndrome, SYNDROME_COLOR)]
    ):
        images, mm = render_views(points, triangles, half_height=0.55 * extent)
        for col, (image, view) in enumerate(zip(images, VIEWS)):
            ax = fig.add_subplot(grid[row, col])
            _show(ax, image, mm, f"{name} (n = {count}), {view}")
            ax.title.set_color(color)
    ax = fig.add_subplot(grid[:, 2])
    for points, name, color, style in [(control, group_names[0], CONTROL_COLOR, "-"),
                                       (syndrome, group_names[1], SYNDROME_COLOR, "--")]:
        profile = midline_profile(points)
        ax.plot(profile[:, 1], profile[:, 0], style, color=color, linewidth=2.2, label=f"mean, {name}")
    profile = midline_profile(control)
    tip = profile[np.argmax(profile[:, 1])]
    ax.annotate("nose tip", xy=(tip[1], tip[0]), xytext=(tip[1] + 6, tip[0] + 12), fontsize=9,
                arrowprops=dict(arrowstyle="-", color="#555555"))
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("anterior (mm)  \u2192 face points right")
    ax.set_ylabel("superior (mm)")
    ax.set_title("midline profiles of the mean faces", fontsize=11)
    ax.grid(True, color="#e6e6e6")
    ax.legend(loc="lower left", fontsize=9)
    fig.suptitle("The two groups' average faces (generalized Procrustes alignment, sizes in mm)", fontsize=13)
    return _save(fig, path)


def _diverging_panels(analysis, values, path, title, bar_label, clim, outlines, legend, extra_ticks=None,
                      faded=None):
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    triangles = analysis.template_.triangles.cpu().numpy()
    mean = analysis.mean_shape_.points.detach().cpu().numpy().astype(float)
    images, mm = render_views(mean, triangles, scalars=values, cmap="RdBu_r", clim=clim, outlines=outlines,
                              faded=faded)
    fig = _figure(11.5, 6.4)
    axes = fig.subplots(1, 2)
    for ax, image, view in zip(axes, images, VIEWS):
        _show(ax, image, mm, VIEW_TITLES[view])
    bar = fig.colorbar(ScalarMappable(Normalize(*clim), "RdBu_r"), ax=axes, shrink=0.8, pad=0.02)
    bar.set_label(bar_label, fontsize=10)
    if extra_ticks:
        ticks = [t for t in bar.get_ticks() if clim[0] <= t <= clim[1]
                 and all(abs(t - v) > 0.08 * (clim[1] - clim[0]) for v in extra_ticks)]
        for value in extra_ticks:
            bar.ax.axhline(value, color="black", linewidth=1.5, linestyle=":")
        ticks = sorted(ticks + list(extra_ticks))
        bar.set_ticks(ticks, labels=[f"{t:.2f}" if t in extra_ticks else f"{t:g}" for t in ticks])
    if legend:
        handles = [Line2D([], [], color=c, linewidth=3, label=label) for label, c in legend]
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=10)
    fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def _outlines(analysis, true_mask):
    triangles = analysis.template_.triangles.cpu().numpy()
    mean = analysis.mean_shape_.points.detach().cpu().numpy().astype(float)
    outlines, legend = [], []
    if analysis.significant_.any():
        outlines.append((region_outline(mean, triangles, analysis.significant_, analysis.normals_),
                         SIGNIFICANT_OUTLINE))
        method = ", TFCE" if analysis.tfce else ""
        legend.append((f"significant difference (family-wise error < {100 * analysis.alpha:g} %{method}): "
                       f"{int(analysis.significant_.sum())} vertices", SIGNIFICANT_OUTLINE))
    else:
        legend.append((f"no vertex is FWER-significant (p < {analysis.alpha:g})", "#999999"))
    if true_mask is not None:
        outlines.append((region_outline(mean, triangles, true_mask, analysis.normals_, lift=0.6), TRUE_OUTLINE))
        legend.append(("simulated region (ground truth)", TRUE_OUTLINE))
    return outlines, legend


def figure_difference_map(analysis, path, true_mask=None):
    """Signed covariate-adjusted mean difference (mm) along the normals, with the significant region outlined."""
    values = analysis.mean_difference_mm_
    limit = max(float(np.abs(values).max()), 0.5)
    limit = math.ceil(limit * 2) / 2
    outlines, legend = _outlines(analysis, true_mask)
    return _diverging_panels(
        analysis, values, path,
        "Where the syndrome faces differ: mean difference (syndrome \u2212 control), adjusted for age, sex and BMI\n"
        "(colours faded where the difference is not significant)",
        "difference along the surface normal (mm)\nblue: syndrome surface lies inward (retruded)\n"
        "red: outward (protruding)",
        (-limit, limit), outlines, legend, faded=~analysis.significant_,
    )


def figure_t_map(analysis, path, true_mask=None):
    """t statistics of the group difference on the mean face, with the FWER threshold on the colour bar."""
    values = analysis.t_
    threshold = float(np.quantile(analysis.glm_.h0_max_, 1 - analysis.alpha))
    limit = max(float(np.abs(values).max()), threshold * 1.2)
    limit = math.ceil(limit)
    outlines, legend = _outlines(analysis, true_mask)
    return _diverging_panels(
        analysis, values, path,
        f"Strength of evidence: t statistic per vertex (Freedman-Lane permutation GLM, "
        f"{analysis.glm_.n_permutations} permutations)",
        f"t (syndrome \u2212 control)\ndotted: |t| = {threshold:.2f}, above which a single vertex is\n"
        f"significant (max-t, family-wise error < {100 * analysis.alpha:g} %)",
        (-limit, limit), outlines, legend, extra_ticks=[threshold, -threshold],
    )


def figure_roc(analysis, path):
    """Cross-validated ROC curve of the syndrome classifier, with its AUC."""
    fig = _figure(6.2, 6.0)
    ax = fig.add_subplot()
    roc = analysis.roc_curve_
    ax.plot([0, 1], [0, 1], ":", color="#888888", label="chance (AUC 0.5)")
    ax.step(roc.fpr, roc.tpr, where="post", color=SYNDROME_COLOR, linewidth=2.5,
            label=f"shape classifier (AUC {analysis.roc_auc_:.3f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("1 \u2212 specificity (controls called syndrome)")
    ax.set_ylabel("sensitivity (syndrome subjects detected)")
    ax.grid(True, color="#e6e6e6")
    ax.legend(loc="lower right")
    ax.set_title(f"Classifying syndrome vs control from face shape\n{analysis.n_splits}-fold cross-validation, "
                 f"{analysis.pca_.n_components_} principal components + logistic regression", fontsize=10)
    return _save(fig, path)


# ----------------------------------------------------------------- html
def html_table(rows, header=None, align_right_from=1):
    """An HTML table from a list of rows (values are escaped; floats shown as given)."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for k, value in enumerate(row):
            cls = ' class="num"' if k >= align_right_from else ""
            cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1150px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; } th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.92em; color: #444; margin-top: 0.3em; }
.note { background: #f7f7f0; border-left: 4px solid #c9c38a; padding: 0.5em 1em; font-size: 0.95em; }
.key { font-size: 1.1em; } code { background: #f3f3f3; padding: 0 0.2em; }
"""


def figure_html(path, caption):
    return (f'<figure><img src="{html.escape(Path(path).name)}" alt="{html.escape(caption)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def page(title, body):
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")
