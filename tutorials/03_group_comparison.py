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
# # Where does a syndrome change the face? Group comparison with permutation tests
#
# **What you will do.** Compare the faces of patients with a syndrome with
# those of controls, point by point over the whole face, and draw a map of
# where the two groups differ, by how many millimetres, and where the
# difference is statistically significant once age, sex and body-mass index
# are taken into account.
#
# **Why.** Many syndromes change the face subtly (a retruded midface, widely
# spaced eyes, a small chin). A point-by-point comparison shows *where* and
# *how much*, without choosing measurements in advance. Testing thousands of
# points at once needs care: at a 5 % threshold, 5 % of points with no real
# difference would come out "significant" by chance. *Permutation tests* with
# *family-wise error* (FWER) control keep the chance of even one false
# positive anywhere on the face below 5 %.
#
# **Data.** A simulated study, so that the right answer is known: 80 faces
# (40 "syndrome", 40 controls) built from 45 real-looking simulated faces, each
# with an age, sex and BMI. The syndrome faces get a *midface retrusion*: the
# nose, upper lip and cheeks pushed backwards by up to 3 mm. Every face is
# then placed in a random position, as if scanned.
#
# **Time.** About 30 seconds.
#
# **What you need to change.** Nothing, except possibly the folder of the data
# in the cell marked *✏️ DATA LOCATION*.

# %% [markdown]
# ## 1. Set-up

# %%
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyvista
import torch
from IPython.display import Image, display

import skshapes as sks
from skshapes.datasets import make_dysmorphic_faces

pyvista.OFF_SCREEN = True  # draw pictures into files, not windows
torch.set_num_threads(1)

FIGURES = Path("tutorial_figures") / "03_group_comparison"
FIGURES.mkdir(parents=True, exist_ok=True)


def show(picture):
    """Display a saved picture (PNG file) below the cell."""
    display(Image(filename=str(picture)))


# %% [markdown]
# ## ✏️ DATA LOCATION
#
# By default skshapes finds its data in the folder named by the environment
# variable `SKSHAPES_DATA`, then in `../shared/data` next to the skshapes
# checkout. **If your copy of the data is elsewhere, write its folder here**
# (the folder that contains `faces/` and `skulls/`). Leave `None` otherwise.

# %%
DATA_DIR = None  # ✏️ the only line you may need to change

if DATA_DIR is not None:
    os.environ["SKSHAPES_DATA"] = str(DATA_DIR)

# %% [markdown]
# ## 2. The study
#
# `make_dysmorphic_faces` simulates the study. Each face is a mesh of about
# 1,000 points *in correspondence*: point number *i* is the same anatomical
# place on every face. With your own scans, you get such meshes by fitting one
# template onto every scan (tutorial 1, step 6: the deformed template).
#
# `labels` says who has the syndrome (1) and who is a control (0);
# `covariates` holds age, sex and BMI. The two groups have similar ages and
# BMIs here; in a real study they often do not, which is why we correct for
# them below.

# %%
study = make_dysmorphic_faces(n_subjects=80, effect_mm=3.0, region="midface", resolution=1000, random_state=0)
faces, labels, covariates = study.shapes, study.labels, study.covariates
print(f"{len(faces)} faces of {faces[0].n_points} points; {labels.sum()} syndrome, {(labels == 0).sum()} controls")
covariates.assign(group=np.where(labels == 1, "syndrome", "control")).groupby("group").agg(["mean", "std"]).round(1)

# %% [markdown]
# **The answer we hope to find.** Because the study is simulated, we know where
# the syndrome acts: the map below shows by how many millimetres it moves each
# point. The analysis does not use it; we only compare with it at the end.

# %%
FRONT = "xy"  # the camera: the face seen from the front

true_shift = study.displacement.norm(dim=1).numpy()
show(sks.viz.plot_heatmap(
    study.template, true_shift, symmetric=False, cmap="magma_r", label="displacement", camera_position=FRONT,
    title="What the simulated syndrome does: displacement of each point", screenshot=FIGURES / "1_truth.png",
))

# %% [markdown]
# ## 3. Remove the position of each scan: Procrustes alignment
#
# The faces were scanned in different positions: any difference of position
# would swamp the few millimetres we are looking for. *Generalised Procrustes
# analysis* turns and shifts all faces together so that corresponding points
# are as close as possible. `scaling=False` keeps the faces' sizes, so the
# differences stay in millimetres (`scaling=True` would also remove size, to
# study shape alone).

# %%
points = np.stack([face.points.numpy() for face in faces]).astype(np.float64)  # (faces, points, 3)
gpa = sks.GeneralizedProcrustes(scaling=False)
aligned = gpa.fit_transform(points)
mean_face = sks.PolyData(torch.as_tensor(gpa.mean_shape_, dtype=torch.float32), triangles=study.template.triangles)
spread_before = np.linalg.norm(points - points.mean(axis=0), axis=2).mean()
spread_after = np.linalg.norm(aligned - gpa.mean_shape_, axis=2).mean()
print(f"mean distance of a point to the average position: {spread_before:.1f} mm as scanned, "
      f"{spread_after:.1f} mm after alignment")


def four_faces(coordinates, title, filename):
    """The first four faces, drawn translucent on top of each other."""
    meshes = [sks.PolyData(torch.as_tensor(coordinates[i], dtype=torch.float32), triangles=study.template.triangles)
              for i in range(4)]
    return sks.plot(
        meshes, labels=[f"subject {i + 1} ({'syndrome' if labels[i] else 'control'})" for i in range(4)],
        opacity=0.6, camera_position=[(1.0, 0.3, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)],
        title=title, screenshot=FIGURES / filename,
    )


show(four_faces(points, "Four faces as scanned", "2_as_scanned.png"))
show(four_faces(aligned, "The same four faces after Procrustes alignment", "3_aligned.png"))

# %% [markdown]
# ## 4. One number per point and per face: inwards or outwards, in mm
#
# For every face and every point, we measure how far the point lies in front
# of (positive) or behind (negative) the same point of the average face, along
# the direction perpendicular to the skin (the surface *normal*). This gives a
# table with one row per face and one column per point.

# %%
normals = mean_face.normals.numpy().astype(np.float64)
depth = ((aligned - gpa.mean_shape_) * normals).sum(axis=2)  # (faces, points), mm
print(depth.shape)

# %% [markdown]
# ## 5. The permutation test, point by point
#
# `sks.PermutationGLM` fits, at every point, the linear model
#
# > depth = *b* × syndrome + *c*₁ × age + *c*₂ × sex + *c*₃ × BMI + constant
#
# and tests whether *b*, the difference between the groups **at equal age,
# sex and BMI**, is zero. Its p-values come from reshuffling the subjects
# (permutations, here with the Freedman-Lane method, which handles the
# covariates correctly) rather than from a textbook distribution, so they stay
# valid when the data are not normally distributed.
#
# - `effect_`: *b* at each point, in mm (negative: syndrome faces are behind);
# - `p_uncorrected_`: the p-value of each point on its own;
# - `p_fwer_`: the p-value corrected for testing all points at once (the
#   maximum-statistic method): points with `p_fwer_ < 0.05` are significant with
#   less than a 5 % chance of any false positive on the whole face.
#
# `n_permutations=1000` takes a few seconds; use 10,000 for a publication (the
# smallest possible p-value is 1 / (n_permutations + 1)).

# %%
glm = sks.PermutationGLM(n_permutations=1000, random_state=0)
glm.fit(depth, labels.astype(float), covariates=covariates[["Age", "Sex", "BMI"]].to_numpy(float))
significant = glm.p_fwer_ < 0.05
print(f"largest group difference: {glm.effect_.min():.2f} mm (syndrome behind controls)")
print(f"points with p < 0.05: {(glm.p_uncorrected_ < 0.05).sum()} uncorrected, "
      f"{significant.sum()} after family-wise correction (out of {len(significant)})")

# %% [markdown]
# ## 6. The maps
#
# `sks.viz.plot_heatmap` paints one value per point on a face (here the
# template, which is in correspondence with every face) with a colour scale
# centred on zero: blue where the syndrome faces lie behind the controls, red
# where they lie in front.
#
# First the difference between the groups at every point, significant or not,
# with the significant region outlined in black. Then the same map restricted
# to the points that survive the family-wise correction; the others are grey.

# %%
show(sks.viz.plot_heatmap(
    study.template, glm.effect_, label="syndrome - controls", camera_position=FRONT,
    mask=significant, mask_style="outline", mask_label="significant (FWER p < 0.05)",
    title="Difference between the groups, adjusted for age, sex and BMI", screenshot=FIGURES / "4_difference.png",
))

# %%
show(sks.viz.plot_heatmap(
    study.template, glm.effect_, label="syndrome - controls", camera_position=FRONT,
    mask=significant, mask_style="grey", mask_label="significant",
    title="Significant differences only (FWER-corrected p < 0.05)", screenshot=FIGURES / "5_significant.png",
))

# %% [markdown]
# ## 7. Did we find the right place?
#
# We compare the significant points with the region that the simulation
# really moved (the points moved by at least 10 % of the 3 mm peak):
#
# - *found*: significant and truly moved;
# - *false alarms*: significant but not moved (family-wise control keeps these
#   rare);
# - *missed*: moved but not significant, mostly at the border of the region,
#   where the true displacement is only a fraction of a millimetre, well below
#   the natural variation between faces.
#
# The *Dice* coefficient summarises the overlap (1: perfect, 0: none).

# %%
truth = study.region_mask.numpy()
found, false_alarms, missed = (significant & truth).sum(), (significant & ~truth).sum(), (~significant & truth).sum()
dice = 2 * found / (significant.sum() + truth.sum())
pd.Series({"truly moved": truth.sum(), "significant": significant.sum(), "found": found,
           "false alarms": false_alarms, "missed": missed, "Dice": round(float(dice), 2)}, dtype=object)

# %% [markdown]
# The same comparison as a picture: the true displacement (the first map of
# this tutorial) with the significant region outlined. The outline surrounds
# the part of the region that moved most.

# %%
show(sks.viz.plot_heatmap(
    study.template, true_shift, symmetric=False, cmap="magma_r", label="true displacement", camera_position=FRONT,
    mask=significant, mask_style="outline", mask_label="significant (FWER p < 0.05)",
    title="Where the syndrome really acts, and what the test found", screenshot=FIGURES / "6_check.png",
))

# %% [markdown]
# ## 8. A sanity check: no syndrome, no finding
#
# The same analysis on a study where the "syndrome" does nothing
# (`effect_mm=0`, the same subjects and positions) should find nothing,
# except by rare chance: that is what the family-wise error control promises.

# %%
null_study = make_dysmorphic_faces(n_subjects=80, effect_mm=0.0, region="midface", resolution=1000, random_state=0)
null_points = np.stack([face.points.numpy() for face in null_study.shapes]).astype(np.float64)
null_gpa = sks.GeneralizedProcrustes(scaling=False)
null_aligned = null_gpa.fit_transform(null_points)
null_depth = ((null_aligned - null_gpa.mean_shape_) * normals).sum(axis=2)
null_glm = sks.PermutationGLM(n_permutations=1000, random_state=0).fit(
    null_depth, null_study.labels.astype(float), covariates=null_study.covariates[["Age", "Sex", "BMI"]].to_numpy(float)
)
print(f"significant points without a syndrome: {(null_glm.p_fwer_ < 0.05).sum()}")

summary = {
    "n_significant": int(significant.sum()),
    "false_positives": int(false_alarms),
    "dice": float(dice),
    "effect_min_mm": float(glm.effect_.min()),
    "null_n_significant": int((null_glm.p_fwer_ < 0.05).sum()),
    "figures": sorted(str(path) for path in FIGURES.glob("*.png")),
}

# %% [markdown]
# ## What next
#
# - **Your own study**: fit one template onto every scan (tutorial 1) to get
#   meshes in correspondence, put the groups in `labels` and the covariates in
#   a table (e.g. `pd.read_csv("covariates.csv")`), and run sections 3 to 6.
# - **More power for regional effects**: `sks.PermutationGLM(tfce=True)` with
#   `fit(..., adjacency=template.triangles)` uses *threshold-free cluster
#   enhancement*, which rewards differences that extend over neighbouring points.
# - **Direction of the change**: test the three coordinates of the
#   displacement instead of the depth to find sideways changes (e.g. widely
#   spaced eyes).
