"""
Similarity registration: pose and size
======================================

A similarity is a rigid motion combined with a uniform change of scale:
:math:`x \\mapsto s R (x - c) + c + t`. It removes position, orientation
and overall size, and keeps everything else, i.e. the *form* of the shape.
This is the classical normalisation of geometric morphometrics (Procrustes
superimposition with scaling): two skulls of the same form but different
sizes become identical, so that what is left measures proportions.

Here a hominid skull outline (2D, in the units of the data) is rotated by
25°, enlarged by 30 % and translated; the registration, driven by a
:class:`~skshapes.SinkhornLoss`, must find these values again. The grey grid
of the figure is moved by the fitted map: it stays square, only turned,
enlarged and shifted, which is what tells a similarity apart from an
affine or a non-linear deformation.

When to use it: comparing forms across subjects of different sizes
(children and adults, species), or when size is analysed separately (as the
centroid size). Keep :class:`~skshapes.RigidMotion` when size itself is a
finding.
"""

import math

import torch
from _common import rotation_angle_degrees, setup

import skshapes as sks
from skshapes.datasets import load_skulls
from skshapes.viz import plot_registration

example = setup(__file__, __doc__)

# %%
# A known similarity: the parameter of :class:`~skshapes.Similarity` in 2D is
# (angle in radians, log of the scale, translation). ``transform_points``
# applies it about the centroid of the reference shape.
skull = load_skulls().shapes[4]  # Homo sapiens
true_angle, true_scale, true_translation = 25.0, 1.3, torch.tensor([30.0, -20.0])
truth = torch.cat([torch.tensor([math.radians(true_angle), math.log(true_scale)]), true_translation])
target = skull.with_points(sks.Similarity().transform_points(skull.points, skull, truth))

# %%
# Registration from the identity.
reg = sks.Registration(sks.Similarity(), sks.SinkhornLoss(blur=1.0, scaling=0.5), n_iter=example.pick(25, 20))
reg.fit(skull, target)

scale = float(sks.Similarity.scale(reg.parameter_))
angle = math.degrees(float(reg.parameter_[0]))
translation = sks.Similarity.translation(reg.parameter_)
results = {
    "scale": scale,
    "true_scale": true_scale,
    "angle_degrees": angle,
    "true_angle_degrees": true_angle,
    "translation_error": float(torch.linalg.norm(translation - true_translation)),
    "rotation_error_degrees": rotation_angle_degrees(
        sks.Similarity.rotation_matrix(reg.parameter_).double()
        @ sks.Similarity.rotation_matrix(truth).double().T
    ),
}
print(f"scale:       found {scale:.4f}, true {true_scale}")
print(f"rotation:    found {angle:.2f}°, true {true_angle}°")
print(f"translation: found ({translation[0]:.2f}, {translation[1]:.2f}), "
      f"true ({true_translation[0]:.0f}, {true_translation[1]:.0f}) (error {results['translation_error']:.3f})")

# %%
# The figure: before (left) and after (right), over a grid moved by the
# fitted similarity.
path = plot_registration(
    reg, target, source=skull, screenshot=example.figure, units="data units",
    title=f"Similarity registration: scale {scale:.3f} (true {true_scale}), rotation {angle:.1f}° "
          f"(true {true_angle:.0f}°)",
    labels=("skull (H. sapiens)", "skull rotated, scaled x1.3, shifted", "registered skull"),
)
example.wrote(path)
