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
# # Your first registration: align a face scan to a template
#
# **What you will do.** Take a 3D face scan that was acquired in an arbitrary
# position, bring it into the position of a reference face (the *template*),
# then bend the template onto the scan so that every point of the template
# finds its anatomical counterpart on the scan. At each step you will see a
# picture and the remaining distance between the two surfaces, in millimetres.
#
# **Why.** Scanners (stereophotogrammetry, CT, MRI surface extraction) return
# faces, skulls and organs wherever the patient happened to be. Before two
# shapes can be compared, the position has to be removed (a *rigid*
# registration: rotation and translation only, the anatomy is unchanged).
# Comparing the anatomy itself then needs a *non-rigid* registration: a smooth
# deformation that maps the template onto the scan. Here it is an LDDMM
# deformation (Large Deformation Diffeomorphic Metric Mapping), which never
# tears or folds the surface.
#
# **Time.** About a minute on a laptop, without a graphics card.
#
# **What you need to change.** Nothing, except possibly the folder of the data
# in the cell marked *✏️ DATA LOCATION* below.

# %% [markdown]
# ## 1. Set-up
#
# The first cell loads the tools. `skshapes` (imported as `sks`) holds the
# shapes, the registrations and the plots; pictures are rendered without a
# window (*off-screen*) and saved as PNG files in the folder `FIGURES`, then
# shown in this notebook.

# %%
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyvista
import torch
from IPython.display import Image, display

import skshapes as sks
from skshapes.datasets import load_faces

pyvista.OFF_SCREEN = True  # draw pictures into files, not windows
torch.set_num_threads(1)  # these shapes are small: one processor thread is the fastest

FIGURES = Path("tutorial_figures") / "01_first_registration"
FIGURES.mkdir(parents=True, exist_ok=True)
# the camera of the 3D pictures: a three-quarter view from the front right, the top of the head up
VIEW = [(1.0, 0.3, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)]


def show(picture):
    """Display a saved picture (PNG file) below the cell."""
    display(Image(filename=str(picture)))


# %% [markdown]
# ## ✏️ DATA LOCATION
#
# The faces used here ship with skshapes' data folder. By default skshapes looks
# in the folder named by the environment variable `SKSHAPES_DATA`, then in
# `../shared/data` next to the skshapes checkout. **If your copy of the data is
# elsewhere, write its folder here** (the folder that contains `faces/` and
# `skulls/`), e.g. `DATA_DIR = "/home/me/skshapes-data"`. Leave `None` otherwise.

# %%
DATA_DIR = None  # ✏️ the only line you may need to change

if DATA_DIR is not None:
    os.environ["SKSHAPES_DATA"] = str(DATA_DIR)

# %% [markdown]
# ## 2. Load a face and the template
#
# `load_faces` returns 45 simulated faces and a template face, all in
# millimetres. The full meshes have 7,160 points; `resolution=600` simplifies
# them to about 600 points so that everything runs in seconds. The simplified
# faces keep their *correspondence*: point number *i* is the same anatomical
# place (say, the tip of the nose) on every face. We will use that at the end
# to check the result; registration itself never needs it.
#
# The template also carries five *landmarks* (inner eye corners, nose tip,
# mouth corners), drawn as small dark balls in the pictures.

# %%
faces = load_faces(resolution=600)
template = faces.template
face = faces.shapes[faces.names.index("SIMPOP_21")]
print(f"template: {template.n_points} points, {template.n_triangles} triangles")
print(f"face SIMPOP_21: {face.n_points} points")
print(faces.metadata.set_index("ID").loc["SIMPOP_21"])

# %% [markdown]
# ## 3. Pose the face like a new scan
#
# A new scan never arrives in the template's position. To mimic one, we turn the
# face by 30° around the vertical axis (as if the patient looked to the side)
# and shift it by a few centimetres. With your own data you would instead read
# the scan from a file, e.g. `scan = sks.read("my_scan.ply")` (`.ply`, `.obj`,
# `.stl`, `.vtk` and `.vtp` files are supported).

# %%
angle = np.radians(30.0)
turn = torch.tensor(
    [[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]],
    dtype=face.dtype,
)
centre = face.points.mean(dim=0)
shift = torch.tensor([40.0, -20.0, 30.0], dtype=face.dtype)  # millimetres
scan = face.with_points((face.points - centre) @ turn.T + centre + shift)

picture = sks.plot(
    [template, scan],
    labels=["template", "scan (SIMPOP_21, posed)"],
    title="The template and the scan, as acquired",
    camera_position=VIEW,
    screenshot=FIGURES / "1_before.png",
)
show(picture)


# %% [markdown]
# ## 4. How far apart are they? A distance in millimetres
#
# For every point of one surface we measure the distance to the nearest place
# on the other surface, and summarise these distances by their *median* (half
# of the points are closer than that) and their *95th percentile* (only 5 % of
# the points are farther). This is the number to watch at each step.

# %%
def surface_distance(moving, fixed):
    """Distance (mm) from each point of ``moving`` to the surface of ``fixed``."""
    probe = pyvista.PolyData(moving.points.detach().numpy().astype(float))
    distances = probe.compute_implicit_distance(fixed.to_pyvista())["implicit_distance"]
    return np.abs(np.asarray(distances))


def summarise(distances):
    return {"median (mm)": float(np.median(distances)), "95th percentile (mm)": float(np.percentile(distances, 95))}


def describe(step):
    values = steps[step]
    print(f"{step}: median distance {values['median (mm)']:.1f} mm, "
          f"95th percentile {values['95th percentile (mm)']:.1f} mm")


steps = {"as acquired": summarise(surface_distance(scan, template))}
describe("as acquired")

# %% [markdown]
# ## 5. Rigid registration: remove the position
#
# A `Registration` needs two ingredients:
#
# - a **deformation model**, what the shape is allowed to do: here
#   `RigidMotion()`, a rotation and a translation;
# - a **loss**, how the mismatch between the two shapes is measured: here
#   `SinkhornLoss`, which compares the two surfaces as distributions of area
#   (it needs no landmarks and no correspondence). Its `blur` (4 mm) is the
#   scale below which details are ignored: the position is a coarse property.
#
# `fit(scan, template)` moves the *scan* (the source) onto the *template* (the
# target). The registration starts by matching the centres of the two shapes,
# then refines the rotation and translation (`n_iter` steps at most).

# %%
rigid = sks.Registration(sks.RigidMotion(), sks.SinkhornLoss(blur=4.0, scaling=0.5), n_iter=20)
rigid.fit(scan, template)
aligned_scan = rigid.morphed_shape_  # the scan in the template's position

rotation = sks.RigidMotion.rotation_matrix(rigid.parameter_)
angle_found = np.degrees(np.arccos(np.clip((float(torch.trace(rotation)) - 1) / 2, -1.0, 1.0)))
print(f"rotation found: {angle_found:.1f} degrees")
steps["after rigid registration"] = summarise(surface_distance(aligned_scan, template))
describe("after rigid registration")

# %% [markdown]
# The picture has three panels: *before* (the scan in grey, the template as a
# blue wireframe), *after* (the scan moved by the rigid registration, in red)
# and the distance from each point of the moved scan to the template, as
# colours. The remaining few millimetres are the real differences of anatomy
# between this person and the template: a rigid motion cannot remove them.
#
# The rotation found is not exactly our 30°: the scan SIMPOP_21 was itself
# acquired turned about 16° away from the template, so the registration
# undoes both.

# %%
picture = sks.viz.plot_registration(
    rigid, template, source=scan,
    labels=("scan as acquired", "template", "scan after rigid registration"),
    title="Step 1: rigid registration of the scan onto the template",
    camera_position=VIEW,
    screenshot=FIGURES / "2_rigid.png",
)
show(picture)

# %% [markdown]
# ## 6. Non-rigid registration (LDDMM): bend the template onto the scan
#
# Now that the scan sits in the template's position, we deform the *template*
# onto the *aligned scan*. The result is the template's mesh, with its points
# and landmarks placed on this person's face: the basis of dense
# correspondence, averages and group comparisons (see the other tutorials).
#
# The LDDMM settings, in plain terms:
#
# - `sigma=15.0` (mm): the size of the regions that move together. Smaller
#   values allow finer, more local deformations.
# - `control_points=100`: the deformation is steered from about 100 points
#   spread over the template (fewer points, faster).
# - `regularization_weight=1e-3`: how much large deformations are penalised
#   compared with the remaining mismatch.
# - the loss is again `SinkhornLoss`, now with a finer `blur` of 2 mm.

# %%
lddmm = sks.Registration(
    sks.LDDMM(sigma=15.0, n_steps=4, control_points=100),
    sks.SinkhornLoss(blur=2.0, scaling=0.6),
    regularization_weight=1e-3,
    n_iter=25,
)
lddmm.fit(template, aligned_scan)
fitted_template = lddmm.morphed_shape_

steps["template before LDDMM"] = summarise(surface_distance(template, aligned_scan))
steps["template after LDDMM"] = summarise(surface_distance(fitted_template, aligned_scan))
describe("template before LDDMM")
describe("template after LDDMM")

# %% [markdown]
# In the picture: the template (grey) and the aligned scan (blue wireframe)
# before; the deformed template (red) on the scan after, with the control
# points (orange) that steer the deformation; and the remaining distance,
# now below a millimetre over most of the face.

# %%
picture = sks.viz.plot_registration(
    lddmm, aligned_scan, source=template,
    labels=("template", "aligned scan", "template after LDDMM"),
    title="Step 2: LDDMM registration of the template onto the aligned scan",
    control_points=True,
    camera_position=VIEW,
    screenshot=FIGURES / "3_lddmm.png",
)
show(picture)

# %% [markdown]
# ## 7. The distances, step by step
#
# The table gathers the distances between the two surfaces at each step
# (millimetres).

# %%
table = pd.DataFrame(steps).T.round(2)
table

# %% [markdown]
# ## 8. A check that only simulated data allow
#
# A small surface distance means that the template *lies on* the scan, not
# that each of its points landed on the *right* anatomical place (a point of
# the cheek could slide along the surface). Because these simulated faces are
# in correspondence, we can measure that too: the distance between each point
# of the deformed template and the same point of the scan. It drops from
# several millimetres (the template simply placed on the aligned scan) to
# about a millimetre.

# %%
vertex_error_before = (template.points - aligned_scan.points).norm(dim=1)
vertex_error_after = (fitted_template.points - aligned_scan.points).norm(dim=1)
print(f"distance to the corresponding point: {float(vertex_error_before.mean()):.1f} mm before LDDMM, "
      f"{float(vertex_error_after.mean()):.1f} mm after (mean over the points)")

# %% [markdown]
# ## 9. Save the result
#
# The registered shapes are ordinary meshes: save them to open them in other
# software (3D Slicer, MeshLab, ParaView...).

# %%
aligned_scan.save(FIGURES / "scan_aligned_to_template.ply")
fitted_template.save(FIGURES / "template_fitted_to_scan.ply")
print(sorted(path.name for path in FIGURES.iterdir()))

summary = {
    "rotation_degrees": angle_found,
    "median_mm": {step: values["median (mm)"] for step, values in steps.items()},
    "vertex_error_before_mm": float(vertex_error_before.mean()),
    "vertex_error_after_mm": float(vertex_error_after.mean()),
    "figures": sorted(str(path) for path in FIGURES.glob("*.png")),
}

# %% [markdown]
# ## What next
#
# - **Your own scans**: replace `scan` by `sks.read("your_scan.ply")`. Keep the
#   units in millimetres (or change `blur` and `sigma` accordingly), and
#   simplify large meshes with `scan.decimate(n_points=2000)` first.
# - **Other models**: `sks.Similarity()` also fits a size difference,
#   `sks.AffineDeformation()` any stretching; see the user guide.
# - **Many subjects**: tutorial 2 builds an average shape and its main
#   variations; tutorial 3 finds where a syndrome changes the face.
