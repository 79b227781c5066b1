"""
Atlas and tangent PCA: the average skull and its main modes of variation
========================================================================

An *atlas* summarises a population of shapes by an average shape, the
*template*, and one deformation from the template to each subject. With
:class:`~skshapes.Atlas`, the deformations are LDDMM geodesics, each
described by an initial *momentum*: vectors on the template's control
points, in the units of the data per unit time. The template is estimated
together with the momenta so that, on average over the subjects, the
deformed template fits the subject well (data term) with the least
deformation (regularization): it is a Fréchet mean, the shape "in the
middle" of the population in the metric of the deformations.

The momenta all live at the same template, in one vector space (the
*tangent space*), where ordinary statistics apply. :class:`~skshapes.TangentPCA`
finds their principal components in the metric of the deformations (the
kernel metric of the LDDMM model), and :func:`~skshapes.shoot` turns a
momentum back into a shape: the mode of variation number ``k`` at ``s``
standard deviations is the template shot with the momentum
``mean_ + s * sqrt(explained_variance_[k]) * components_[k]``.

Here the population is the bundled outlines of five hominid skulls (2D,
in the units of the data: the outlines span about 200 units) and the
initial template is a schematic skull (a circle, an orbit and straight
lines for the face). The figure shows the initial template and
the atlas over the five skulls, the subjects' coordinates along the first
two modes, and the first two modes at -2, 0 and +2 standard deviations.
The modes are centred on the *mean shape*, the template shot with the
mean of the momenta. Once the atlas has converged, the mean momentum is
close to zero and the mean shape close to the template; the template
converges slowly, though (its points move little at each iteration compared
with the momenta), so after a few tens of iterations the mean shape is the
better picture of the average skull. The atlas template fits the population better than the
schematic template it started from: the mean data term of the atlas is
compared with that of registrations of the five skulls from the fixed
initial template, with the same settings and number of iterations.

With five subjects, there are at most four modes, and the percentages
describe these five skulls only: a real study needs many more subjects
before the modes can be read as properties of a population.

When to use it: describing the typical shape of a group and how it varies
(growth, evolution, disease), building a shape model to compare new
subjects with, or reducing shapes to a few numbers (the scores along the
modes) for a regression or a classifier.
"""

import numpy as np
import torch
from _common import setup
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import skshapes as sks
from skshapes.datasets import load_skulls
from skshapes.viz import PALETTE

example = setup(__file__, __doc__)

# %%
# The population and the initial template.
skulls = load_skulls()
species = {"australopithecus": "Australopithecus", "habilis": "H. habilis", "erectus": "H. erectus",
           "neandertalis": "H. neanderthalensis", "sapiens": "H. sapiens"}
names = [species[name] for name in skulls.names]

# %%
# The atlas: LDDMM with a kernel of width 20 (about a tenth of a skull's
# length) and control points on the template's points (they move with the
# template), a Sinkhorn data term, and a small weight on the deformation
# cost. The same problem with the template kept fixed
# (``optimize_template=False``) is five registrations from the initial template: the
# reference the atlas must beat.
n_iter, n_steps = example.pick(30, 5), example.pick(5, 3)


def make_atlas(optimize_template):
    return sks.Atlas(
        sks.LDDMM(sigma=20.0, n_steps=n_steps), sks.SinkhornLoss(blur=1.0, scaling=0.8),
        regularization_weight=1e-3, n_iter=n_iter, template=skulls.template, optimize_template=optimize_template,
    )


atlas = make_atlas(optimize_template=True).fit(skulls.shapes)
registrations = make_atlas(optimize_template=False).fit(skulls.shapes)
atlas_data, registrations_data = float(atlas.data_losses_.mean()), float(registrations.data_losses_.mean())
print(f"mean Sinkhorn data term after {n_iter} iterations: atlas {atlas_data:.4g}, "
      f"registrations from the initial template {registrations_data:.4g}")

# %%
# Tangent PCA of the momenta, in the metric of the atlas's model at its
# template. Its attributes are numpy arrays, which :func:`~skshapes.shoot`
# accepts.
pca = sks.TangentPCA(n_components=3, model=atlas.model_, template=atlas.template_).fit(atlas.momenta_)
scores = pca.transform(atlas.momenta_)  # (subjects, modes), a tensor like the momenta
ratios = pca.explained_variance_ratio_
print("explained variance: " + ", ".join(f"mode {k + 1} {100 * r:.1f} %" for k, r in enumerate(ratios)))
for name, score in zip(names, scores.tolist()):
    print(f"  {name:<20} scores " + ", ".join(f"{s:+8.2f}" for s in score))


def mode_shape(k, sd):
    """The template shot along mode ``k`` (0-based) at ``sd`` standard deviations."""
    momentum = pca.mean_ + sd * np.sqrt(pca.explained_variance_[k]) * pca.components_[k]
    return sks.shoot(atlas.template_, momentum, atlas.model_)


modes = {(k, sd): mode_shape(k, sd) for k in (0, 1) for sd in (-2, 0, 2)}

# %%
# How far the modes move the outline: the largest displacement of a point
# between -2 and +2 standard deviations.
spread = [float((modes[k, 2].points - modes[k, -2].points).norm(dim=1).max()) for k in (0, 1)]
print(f"largest displacement between -2 SD and +2 SD: mode 1 {spread[0]:.1f}, mode 2 {spread[1]:.1f} (data units)")
results = {
    "atlas_data_term": atlas_data,
    "registrations_data_term": registrations_data,
    "explained_variance_ratio": ratios,
    "mode_displacements": np.array(spread),
    "template_displacement": float((atlas.template_.points - skulls.template.points).norm(dim=1).max()),
}


# %%
# The figure: the curves are drawn with matplotlib, on axes of equal aspect.
def draw(ax, shape, color, label=None, width=1.6, style="-", alpha=1.0):
    points = shape.points.detach().cpu().numpy()
    ax.add_collection(LineCollection(points[shape.edges.cpu().numpy()], colors=color, linewidths=width,
                                     linestyles=style, alpha=alpha, label=label, capstyle="round"))


every_shape = [*skulls.shapes, skulls.template, atlas.template_, *modes.values()]
corners = torch.cat([shape.points.detach().cpu() for shape in every_shape])
low, high = corners.min(dim=0).values.numpy(), corners.max(dim=0).values.numpy()
pad = 0.05 * float((high - low).max())


def finish(ax, title):
    ax.set_xlim(low[0] - pad, high[0] + pad)
    ax.set_ylim(low[1] - pad, high[1] + pad)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("x (data units)", fontsize=8)
    ax.set_ylabel("y (data units)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


fig = Figure(figsize=(13.5, 12.5), dpi=100, layout="constrained")
axes = fig.subplots(3, 3)
for ax in axes[0, :2]:
    for skull, name, color in zip(skulls.shapes, names, PALETTE):
        draw(ax, skull, color, name if ax is axes[0, 0] else None, width=1.0, alpha=0.8)
draw(axes[0, 0], skulls.template, "black", "initial template", width=2.6)
finish(axes[0, 0], "Initial template (schematic) and the five skulls")
axes[0, 0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=3, frameon=False)
draw(axes[0, 1], atlas.template_, "black", "atlas template", width=1.4, style="--")
draw(axes[0, 1], modes[0, 0], "black", "mean shape", width=2.6)
finish(axes[0, 1], f"Atlas after {atlas.n_iter_} iterations: its template (dashed)\n"
                   "and the mean shape, the centre of the modes (solid)")
axes[0, 1].legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=2, frameon=False)

ax = axes[0, 2]
for (x, y), name, color in zip(scores[:, :2].tolist(), names, PALETTE):
    ax.scatter(x, y, s=70, color=color, edgecolors="black", linewidths=0.6, zorder=3, label=name)
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=3, frameon=False)
ax.axhline(0, color="#999999", linewidth=0.8)
ax.axvline(0, color="#999999", linewidth=0.8)
ax.set_xlabel(f"score on mode 1 ({100 * ratios[0]:.0f} % of the variance)", fontsize=8)
ax.set_ylabel(f"score on mode 2 ({100 * ratios[1]:.0f} % of the variance)", fontsize=8)
ax.set_title("Each skull's coordinates along the first two modes\n(0, 0 = mean shape)", fontsize=10)
ax.tick_params(labelsize=7)
ax.margins(0.25)
ax.grid(True, color="#e6e6e6", linewidth=0.6)

sd_colors = {-2: "#1f77b4", 0: "black", 2: "#d62728"}
for row, k in [(1, 0), (2, 1)]:
    for column, sd in enumerate((-2, 0, 2)):
        ax = axes[row, column]
        if sd != 0:
            draw(ax, modes[k, 0], "#9a9a9a", width=1.2, style="--")
        draw(ax, modes[k, sd], sd_colors[sd], width=2.2)
        # the subject with the most extreme score on that side of the mode
        nearest = names[int(scores[:, k].argmin() if sd < 0 else scores[:, k].argmax())]
        where = "mean shape (0 SD)" if sd == 0 else f"{sd:+d} SD, on the side of {nearest}"
        finish(ax, f"Mode {k + 1} ({100 * ratios[k]:.0f} % of the variance)\n{where}")
handles = [Line2D([], [], color="#9a9a9a", linestyle="--", linewidth=1.2, label="mean shape (0 SD), for reference"),
           Line2D([], [], color=sd_colors[-2], linewidth=2.2, label="mode at -2 standard deviations (SD)"),
           Line2D([], [], color=sd_colors[2], linewidth=2.2, label="mode at +2 standard deviations (SD)")]
fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False, fontsize=9)
fig.suptitle("Skull atlas (LDDMM, sigma = 20) and tangent PCA of its momenta: the first two modes at "
             "-2, 0 and +2 standard deviations", fontsize=12)
fig.savefig(example.figure, facecolor="white")
example.wrote(example.figure)

# %%
# The modes are deformations of the whole plane: shoot any combination of
# them, e.g. ``pca.inverse_transform(scores)`` for given scores, to get a
# plausible skull of this population, or project a new skull on them by
# registering the atlas template onto it and calling ``pca.transform``.
