"""
Affine registration: global stretching and shearing
===================================================

An affine map :math:`x \\mapsto A (x - c) + c + t` adds to a similarity
the stretches along any direction and the shears: a skull that is longer
and lower, or a face that is wider, differ from a reference by a (nearly)
affine map. Its matrix :math:`A` summarises such global differences in a
few numbers: its determinant is the change of area (volume in 3D), its
singular values the stretches along the principal directions.

Here the outline of an *Australopithecus* skull is stretched by 20 %
horizontally, flattened by 15 % vertically and sheared; the registration
must recover the matrix. The grid moved by the fitted map shows straight,
parallel lines that are no longer square: that is an affine map.

When to use it: to capture and remove global differences of proportion
before a non-linear registration (:class:`~skshapes.LDDMM`), or to measure
them. Its matrix is unconstrained: check ``det A > 0`` (no mirror image) on
real data.
"""

import torch
from _common import setup

import skshapes as sks
from skshapes.datasets import load_skulls
from skshapes.viz import plot_registration

example = setup(__file__, __doc__)

# %%
# A known affine map. The parameter of :class:`~skshapes.AffineDeformation`
# is :math:`A - I` (row by row) followed by the translation.
skull = load_skulls().shapes[0]  # Australopithecus
true_matrix = torch.tensor([[1.2, 0.3], [-0.1, 0.85]])
true_translation = torch.tensor([20.0, 10.0])
truth = torch.cat([(true_matrix - torch.eye(2)).flatten(), true_translation])
target = skull.with_points(sks.AffineDeformation().transform_points(skull.points, skull, truth))

# %%
# Registration from the identity.
reg = sks.Registration(sks.AffineDeformation(), sks.SinkhornLoss(blur=1.0, scaling=0.5),
                       n_iter=example.pick(25, 20))
reg.fit(skull, target)

matrix = sks.AffineDeformation.matrix(reg.parameter_)
results = {
    "matrix": matrix.tolist(),
    "true_matrix": true_matrix.tolist(),
    "matrix_error": float((matrix - true_matrix).abs().max()),
    "translation_error": float(torch.linalg.norm(sks.AffineDeformation.translation(reg.parameter_) - true_translation)),
    "area_ratio": float(torch.linalg.det(matrix)),
    "true_area_ratio": float(torch.linalg.det(true_matrix)),
}
print(f"matrix found:\n{matrix.numpy().round(4)}\ntrue:\n{true_matrix.numpy()}")
print(f"largest error on a coefficient: {results['matrix_error']:.4f}; "
      f"translation error: {results['translation_error']:.3f}")
print(f"change of area det A: found {results['area_ratio']:.4f}, true {results['true_area_ratio']:.4f}")

# %%
# The figure: before (left) and after (right), over a grid moved by the
# fitted map.
a = matrix.tolist()
path = plot_registration(
    reg, target, source=skull, screenshot=example.figure, units="data units",
    title=f"Affine registration: A = [[{a[0][0]:.3f}, {a[0][1]:.3f}], [{a[1][0]:.3f}, {a[1][1]:.3f}]] "
          "(true [[1.2, 0.3], [-0.1, 0.85]])",
    labels=("skull (Australopithecus)", "skull stretched and sheared", "registered skull"),
)
example.wrote(path)
