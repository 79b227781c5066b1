"""
L2 loss: shapes in correspondence (Procrustes superimposition)
==============================================================

When the vertices of two shapes correspond (vertex i is the same anatomical
point on both, as after a dense registration to a common template, or for
landmark configurations), the simplest data term is the mean squared
distance between corresponding vertices, :class:`~skshapes.L2Loss`. Its
square root is the RMS vertex error that correspondence studies report. It
is cheap, and with a rigid or similarity model it has a closed-form
optimum: the Procrustes superimposition of geometric morphometrics.

Here the face template is superimposed on the face SIMPOP_05 of the
simulated population (both with the same vertices) by a similarity
registration with the L2 loss, and the result is checked against the
closed-form solution (Umeyama's algorithm). The third panel of the figure
shows how far each vertex still is from its counterpart: the remaining
differences are the face's form, not its pose or size.

When to use it: only for shapes in correspondence (it raises an error
otherwise); use :class:`~skshapes.SinkhornLoss`,
:class:`~skshapes.VarifoldLoss` or :class:`~skshapes.CurrentsLoss` for
shapes sampled independently.
"""

import torch
from _common import procrustes, rotation_angle_degrees, setup

import skshapes as sks
from skshapes.datasets import load_faces
from skshapes.viz import plot_registration

example = setup(__file__, __doc__)

# %%
# The template and a face, in correspondence.
faces = load_faces(resolution=example.pick(400, 250))
template = faces.template
face = faces.shapes[faces.names.index("SIMPOP_05")]
rms_scanned = float(sks.L2Loss()(template, face)) ** 0.5

# %%
# Similarity registration with the L2 loss, started (as every registration
# of these faces, which were scanned some 85 mm apart) from matching
# centroids: the optimiser then only has to find the rotation and the scale.
shift = face.points.mean(dim=0) - template.points.mean(dim=0)
start = template.with_points(template.points + shift)
rms_before = float(sks.L2Loss()(start, face)) ** 0.5
reg = sks.Registration(sks.Similarity(), sks.L2Loss(), n_iter=50).fit(start, face)
scale = float(sks.Similarity.scale(reg.parameter_))
rotation = sks.Similarity.rotation_matrix(reg.parameter_).double()
translation = sks.Similarity.translation(reg.parameter_) + shift  # the whole translation, from the template
rms_after = reg.data_loss_ ** 0.5

# %%
# The closed-form optimum.
reference_scale, reference_rotation, reference_translation = procrustes(template.points, face.points, scaling=True)
results = {
    "rms_scanned_mm": rms_scanned,
    "rms_before_mm": rms_before,
    "rms_after_mm": rms_after,
    "scale": scale,
    "reference_scale": reference_scale,
    "rotation_difference_degrees": rotation_angle_degrees(rotation @ reference_rotation.T),
    "translation_difference_mm": float(torch.linalg.norm(translation.double() - reference_translation)),
}
print(f"RMS vertex error: {rms_scanned:.2f} mm as scanned, {rms_before:.2f} mm once the centroids match, "
      f"{rms_after:.2f} mm after the registration")
print(f"scale: {scale:.5f} (closed form {reference_scale:.5f}); "
      f"rotation differs from the closed form by {results['rotation_difference_degrees']:.4f}°, "
      f"translation by {results['translation_difference_mm']:.4f} mm")

# %%
# The figure: the third panel is coloured by the distance between
# corresponding vertices.
path = plot_registration(
    reg, face, source=start, screenshot=example.figure, residual="correspondence",
    camera_position=[(1.0, 0.3, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)],
    title=f"Similarity + L2 loss (Procrustes superimposition) of the face template onto SIMPOP_05: "
          f"scale {scale:.3f}, RMS vertex error {rms_before:.2f} -> {rms_after:.2f} mm",
    labels=("face template (centred)", "SIMPOP_05", "superimposed template"),
)
example.wrote(path)
