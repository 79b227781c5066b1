# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Build an average skull and its main variations
#
# **What you will do.** Starting from the outlines of five skulls, compute
# their *average shape* (an *atlas*) and the few *modes of variation* that
# describe how the skulls differ from it, then draw each mode as a skull that
# changes from one extreme to the other.
#
# **Why.** An average shape and its modes of variation summarise a group
# (patients with a condition, a growth series, species): they say what is
# typical and what varies most. A new subject can then be described by a few
# numbers (its *scores* along the modes) and compared with the group.
#
# **How, in one paragraph.** The average is not the average of point
# coordinates (the skulls have different numbers of points, with no
# correspondence between them). Instead, skshapes looks for the *template*
# shape that can be deformed onto every skull with the least deformation
# overall: each skull is then described by one smooth deformation of the
# template. The deformations, written as vectors attached to the template
# (*momenta*), can be averaged and analysed by principal component analysis
# (PCA), like any measurements.
#
# **Data.** 2D outlines of five hominid skulls, from *Australopithecus* to
# *Homo sapiens* (cranium, eye socket and jaw). Coordinates are in arbitrary
# "data units"; a skull is about 200 units long. The same code works on 3D
# meshes (bones, faces, organs).
#
# **Time.** About 30 seconds.
#
# **What you need to change.** Nothing, except possibly the folder of the data
# in the cell marked *✏️ DATA LOCATION*.

# %% [markdown]
# ## 1. Set-up
#
# The tools, and a folder `FIGURES` where the pictures are saved before being
# shown here.

# %%
import os
from pathlib import Path

import numpy as np
import torch
from IPython.display import Image, display
from matplotlib.figure import Figure

import skshapes as sks
from skshapes.datasets import load_skulls

torch.set_num_threads(1)  # these shapes are small: one processor thread is the fastest

FIGURES = Path("tutorial_figures") / "02_average_skull"
FIGURES.mkdir(parents=True, exist_ok=True)
UNITS = "data units"


def show(picture):
    """Display a saved picture (PNG file) below the cell."""
    display(Image(filename=str(picture)))


# %% [markdown]
# ## ✏️ DATA LOCATION
#
# By default skshapes finds its data in the folder named by the environment
# variable `SKSHAPES_DATA`, then in `../shared/data` next to the skshapes
# checkout. **If your copy of the data is elsewhere, write its folder here**
# (the folder that contains `skulls/` and `faces/`). Leave `None` otherwise.

# %%
DATA_DIR = None  # ✏️ the only line you may need to change

if DATA_DIR is not None:
    os.environ["SKSHAPES_DATA"] = str(DATA_DIR)

# %% [markdown]
# ## 2. The skulls and a starting template
#
# `load_skulls` returns the five outlines and a deliberately crude *starting
# template*: a circle for the cranium, a smaller one for the eye socket and
# straight lines for the face and jaw. The atlas will reshape it into the
# average skull; starting from something this schematic shows that no
# careful initial guess is needed.

# %%
skulls = load_skulls()
species = {"australopithecus": "Australopithecus", "habilis": "H. habilis", "erectus": "H. erectus",
           "neandertalis": "H. neanderthalensis", "sapiens": "H. sapiens"}
names = [species[name] for name in skulls.names]
for name, skull in zip(names, skulls.shapes):
    print(f"{name:<20} {skull.n_points} points")
print(f"{'starting template':<20} {skulls.template.n_points} points")

picture = sks.plot(
    [*skulls.shapes, skulls.template],
    labels=[*names, "starting template"],
    colors=[*sks.viz.PALETTE[:5], "black"],
    line_widths=[1.5] * 5 + [3.0],
    units=UNITS,
    title="Five skull outlines and the schematic starting template",
    screenshot=FIGURES / "1_skulls.png",
)
show(picture)

# %% [markdown]
# ## 3. The atlas: the average skull
#
# `sks.Atlas` needs the same two ingredients as a registration (see tutorial 1):
#
# - the **deformation model**, `LDDMM`: smooth deformations that never tear or
#   fold the outline. `sigma=20` (data units, a tenth of a skull) is the size
#   of the regions that move together;
# - the **loss**, `SinkhornLoss`, which measures how far a deformed template is
#   from a skull without needing corresponding points (`blur=1`: details
#   smaller than one unit are ignored).
#
# `regularization_weight` balances the two: how much large deformations are
# penalised compared with the remaining mismatch. `n_iter=40` optimisation
# steps are enough for a good picture; a study would use more (the atlas keeps
# improving slowly).

# %%
atlas = sks.Atlas(
    sks.LDDMM(sigma=20.0, n_steps=5),
    sks.SinkhornLoss(blur=1.0, scaling=0.8),
    regularization_weight=1e-3,
    n_iter=40,
    template=skulls.template,
)
atlas.fit(skulls.shapes)

history = atlas.loss_history_["data"]
print(f"mismatch between the template and the skulls (mean Sinkhorn loss): "
      f"{history[0]:.1f} at the start, {history[-1]:.2f} after {atlas.n_iter_} steps")

# %% [markdown]
# ## 4. The main variations: tangent PCA
#
# Each skull is now described by its *momentum*: the vectors that deform the
# template onto it. `sks.TangentPCA` finds the directions along which these
# momenta vary most (the *modes*), measured in the metric of the deformations
# themselves. `explained_variance_ratio_` says which share of the differences
# between the skulls each mode describes.
#
# With five skulls there are at most four modes. We keep two.

# %%
pca = sks.TangentPCA(n_components=2, model=atlas.model_, template=atlas.template_)
pca.fit(atlas.momenta_)
scores = pca.transform(atlas.momenta_)  # one row per skull: its coordinates along the modes
for k, ratio in enumerate(pca.explained_variance_ratio_):
    print(f"mode {k + 1}: {100 * ratio:.0f} % of the variation between the skulls")

# %% [markdown]
# `sks.shoot` turns a momentum back into a shape by deforming the template with
# it. The **mean shape**, the template deformed by the average momentum, is the
# best picture of the average skull: the template itself moves only slowly
# during the optimisation and still shows traces of the circles it started
# from.
#
# In the picture, the five skulls are drawn thin and in colour, the average
# skull thick and black.

# %%
mean_shape = sks.shoot(atlas.template_, pca.mean_, atlas.model_)

picture = sks.plot(
    [*skulls.shapes, mean_shape],
    labels=[*names, "average skull (mean shape of the atlas)"],
    colors=[*sks.viz.PALETTE[:5], "black"],
    line_widths=[1.2] * 5 + [3.5],
    units=UNITS,
    title=f"The average skull after {atlas.n_iter_} steps",
    screenshot=FIGURES / "2_average.png",
)
show(picture)

# %% [markdown]
# ## 5. Each skull's position along the modes
#
# The scores place every skull relative to the average (the centre, 0, 0).
# Here the first mode, which carries most of the variation, orders the skulls
# in time, from *Australopithecus* to *Homo sapiens*: the atlas found the
# main trend of human evolution without being told the species' ages.

# %%
figure = Figure(figsize=(7, 5.5), dpi=100, layout="constrained")
ax = figure.add_subplot()
for (x, y), name, color in zip(scores.tolist(), names, sks.viz.PALETTE):
    ax.scatter(x, y, s=90, color=color, edgecolors="black", zorder=3)
    ax.annotate(name, (x, y), textcoords="offset points", xytext=(8, 6), fontsize=10)
ax.axhline(0, color="#999999", linewidth=0.8)
ax.axvline(0, color="#999999", linewidth=0.8)
ratios = pca.explained_variance_ratio_
ax.set_xlabel(f"score on mode 1 ({100 * ratios[0]:.0f} % of the variation)")
ax.set_ylabel(f"score on mode 2 ({100 * ratios[1]:.0f} % of the variation)")
ax.set_title("Each skull's coordinates along the first two modes (0, 0: the average skull)")
ax.margins(0.3)
ax.grid(True, color="#e6e6e6")
figure.savefig(FIGURES / "3_scores.png", facecolor="white")
show(FIGURES / "3_scores.png")

# %% [markdown]
# ## 6. What each mode looks like
#
# A mode is easiest to understand as a film: the average skull pushed along
# the mode, to 2 standard deviations on each side (about the range of the
# group). Blue is -2 standard deviations, black the average, red +2.

# %%
def mode_shape(k, sd):
    """The average skull moved along mode ``k`` (0 = first) by ``sd`` standard deviations."""
    momentum = pca.mean_ + sd * np.sqrt(pca.explained_variance_[k]) * pca.components_[k]
    return sks.shoot(atlas.template_, momentum, atlas.model_)


mode_displacements = []
for k in range(2):
    low, middle, high = (mode_shape(k, sd) for sd in (-2, 0, 2))
    mode_displacements.append(float((high.points - low.points).norm(dim=1).max()))
    # the skulls with the most extreme scores on each side of the mode
    lowest, highest = names[int(scores[:, k].argmin())], names[int(scores[:, k].argmax())]
    picture = sks.plot(
        [low, middle, high],
        labels=[f"-2 standard deviations (side of {lowest})", "average skull",
                f"+2 standard deviations (side of {highest})"],
        colors=["#1f77b4", "black", "#d62728"],
        line_widths=[2.0, 2.5, 2.0],
        units=UNITS,
        title=f"Mode {k + 1} ({100 * ratios[k]:.0f} % of the variation): largest displacement "
              f"{mode_displacements[k]:.0f} {UNITS} between -2 and +2 SD",
        screenshot=FIGURES / f"{4 + k}_mode_{k + 1}.png",
    )
    show(picture)

summary = {
    "initial_data_term": history[0],
    "atlas_data_term": history[-1],
    "explained_variance_ratio": [float(r) for r in ratios],
    "mode_displacements": mode_displacements,
    "mode_1_scores": dict(zip(skulls.names, scores[:, 0].tolist())),
    "figures": sorted(str(path) for path in FIGURES.glob("*.png")),
}

# %% [markdown]
# ## Reading the result
#
# - **Mode 1** is mostly the size of the braincase: small, with a face that is
#   large in comparison, on the side of *Australopithecus* and *H. habilis*;
#   large and rounded on the side of *H. neanderthalensis* and *H. sapiens*.
#   The extreme on the side of *Australopithecus* lies beyond the smallest
#   skull of the group, which is why it looks exaggerated.
# - **Mode 2** is a much smaller variation of the form of the braincase: long
#   and low (the side of *H. neanderthalensis* and *H. erectus*) or high and
#   rounded (the side of *H. sapiens*).
#
# With five subjects, these percentages describe these five skulls only: a
# study needs many more subjects before the modes can be read as properties of
# a population.
#
# ## What next
#
# - **Your own shapes**: read them with `sks.read(path)` into a list and pass
#   it to `atlas.fit`. Use a real subject as the starting template (or leave
#   `template=None`: the first shape is used), and choose `sigma` at about a
#   tenth of the size of the shapes, in their units.
# - **Many or large shapes**: `sks.Atlas(..., n_jobs=4)` computes the subjects
#   in parallel, also on a Dask cluster (see the user guide).
# - **New subjects**: register the atlas template onto a new shape (tutorial 1)
#   and call `pca.transform` on its momentum to get its scores.
