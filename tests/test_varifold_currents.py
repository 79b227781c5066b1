"""Tests of CurrentsLoss and VarifoldLoss, each against an independent reference.

References: dense float64 sums written here from the papers' formulas (cell
centres and area vectors recomputed from the vertices, the Binet and
spherical-Gaussian kernels evaluated as written, not through the library's
rewritings as Gaussian products on augmented features), closed forms for
pairs of segments, exact symmetries (reordering, orientation flips, rigid
motions), finite differences (``gradcheck``), and KeOps vs dense torch.

KeOps compiles each new formula once (5-25 s, then cached). The KeOps calls
here compile, on 3D meshes only: the fused value-and-gradient formula and the
plain kernel product for the three kernels in float64 (6 formulas), and the
plain kernel product of currents in float32 (1 formula, the one
``kernel_product`` uses for 3D momenta).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from conftest import assert_close, assert_relative_close

import skshapes as sks
from skshapes.datasets import get_data_dir, load_skulls
from skshapes.losses import CurrentsLoss, Loss, VarifoldLoss
from skshapes.reductions import gaussian_pairing, keops_available

F64 = torch.float64
requires_keops = pytest.mark.skipif(not keops_available(), reason="needs a working pykeops")

# the three kernels under test: name -> constructor(sigma, **options)
LOSSES = {
    "currents": lambda sigma, **kw: CurrentsLoss(sigma, **kw),
    "varifold-unoriented": lambda sigma, **kw: VarifoldLoss(sigma, orientation="unoriented", **kw),
    "varifold-oriented": lambda sigma, **kw: VarifoldLoss(sigma, orientation="oriented", sigma_normal=0.7, **kw),
}
SIGMA = {"mesh": 15.0, "curve": 10.0}  # mm on the faces (edges ~10 mm at 300 vertices); skull units (segments ~5)


# ----------------------------------------------------------------------------- data
@functools.cache
def _face(index: int) -> sks.PolyData:
    path = get_data_dir("faces") / "faces" / "simpop" / f"SIMPOP_{index:02d}.obj"
    return sks.read(path).decimate(300).to(dtype=F64)


def face(index=1, shift=(0.0, 0.0, 0.0)) -> sks.PolyData:
    """A real face (MeshMonk SIMPOP), decimated to ~300 vertices, float64, translated by ``shift`` mm."""
    shape = _face(index)
    return shape.with_points(shape.points + torch.tensor(shift, dtype=F64)).copy()


def skull(index=0, shift=(0.0, 0.0)) -> sks.PolyData:
    """A 2D skull outline (polyline), float64, translated by ``shift``."""
    shape = load_skulls().shapes[index].to(dtype=F64)
    return shape.with_points(shape.points + torch.tensor(shift, dtype=F64))


def pair(kind):
    """Two different real shapes of one kind, the second moved."""
    if kind == "mesh":
        return face(1), face(2, shift=(4.0, -3.0, 2.0))
    return skull(0), skull(1, shift=(5.0, -2.0))


def tiny_mesh(seed=0) -> sks.PolyData:
    """A 3x3-vertex height field, 8 triangles, generic coordinates."""
    generator = torch.Generator().manual_seed(seed)
    u, v = torch.meshgrid(torch.arange(3.0, dtype=F64), torch.arange(3.0, dtype=F64), indexing="ij")
    points = torch.stack([u, v, torch.zeros_like(u)], dim=-1).reshape(-1, 3)
    points = points + 0.3 * torch.rand(points.shape, dtype=F64, generator=generator)
    index = torch.arange(9).reshape(3, 3)
    a, b, c, d = index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]
    triangles = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3), torch.stack([a, c, d], -1).reshape(-1, 3)])
    return sks.PolyData(points, triangles=triangles)


def tiny_curve(seed=0, n=6) -> sks.PolyData:
    generator = torch.Generator().manual_seed(seed)
    points = torch.rand(n, 2, dtype=F64, generator=generator) * 2
    edges = torch.stack([torch.arange(n - 1), torch.arange(1, n)], dim=1)
    return sks.PolyData(points, edges=edges)


def flipped(shape: sks.PolyData) -> sks.PolyData:
    """Every cell's orientation reversed: triangle winding (a, b, c) -> (a, c, b), segments (p, q) -> (q, p)."""
    if shape.triangles is not None:
        return sks.PolyData(shape.points, triangles=shape.triangles[:, [0, 2, 1]])
    return sks.PolyData(shape.points, edges=shape.edges.flip(1))


def reordered(shape: sks.PolyData, seed=0) -> sks.PolyData:
    """Vertices permuted (cells remapped), cells permuted, and each triangle's corners rotated (same winding)."""
    generator = torch.Generator().manual_seed(seed)
    n = shape.n_points
    permutation = torch.randperm(n, generator=generator)  # new vertex k is old vertex permutation[k]
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(n)
    points = shape.points[permutation]
    if shape.triangles is not None:
        cells = inverse[shape.triangles][:, [1, 2, 0]]
        cells = cells[torch.randperm(cells.shape[0], generator=generator)]
        return sks.PolyData(points, triangles=cells)
    cells = inverse[shape.edges]
    cells = cells[torch.randperm(cells.shape[0], generator=generator)]
    return sks.PolyData(points, edges=cells)


# ------------------------------------------------------------ dense references
def reference_cells(shape):
    """Centres and oriented measure vectors, recomputed from the vertices."""
    points = shape.points
    if shape.triangles is not None:
        a, b, c = (points[shape.triangles[:, k]] for k in range(3))
        return (a + b + c) / 3, torch.linalg.cross(b - a, c - a) / 2
    p, q = points[shape.edges[:, 0]], points[shape.edges[:, 1]]
    return (p + q) / 2, q - p


def reference_inner(name, shape_s, shape_t, sigma, sigma_normal=0.7):
    """<S, T> as an explicit dense double sum over cell pairs, from the papers' formulas."""
    c, u = reference_cells(shape_s)
    d, v = reference_cells(shape_t)
    squared = ((c[:, None, :] - d[None, :, :]) ** 2).sum(-1)
    k_position = torch.exp(-squared / (2 * sigma**2))
    if name == "currents":
        return (k_position * (u @ v.T)).sum()
    area_u, area_v = u.norm(dim=1), v.norm(dim=1)
    cosines = (u / area_u[:, None]) @ (v / area_v[:, None]).T
    if name == "varifold-unoriented":
        k_direction = cosines**2  # Binet kernel
    else:
        k_direction = torch.exp(2 * (cosines - 1) / sigma_normal**2)  # oriented Gaussian on the sphere
    return (k_position * k_direction * area_u[:, None] * area_v[None, :]).sum()


def reference_loss(name, shape_s, shape_t, sigma):
    return (
        reference_inner(name, shape_s, shape_s, sigma)
        - 2 * reference_inner(name, shape_s, shape_t, sigma)
        + reference_inner(name, shape_t, shape_t, sigma)
    )


def value_and_grad(loss, shape_a, shape_b):
    points = shape_a.points.detach().clone().requires_grad_(True)
    value = loss(shape_a.with_points(points), shape_b)
    (grad,) = torch.autograd.grad(value, points)
    return value.detach(), grad


# ------------------------------------------------------------------ references
@pytest.mark.parametrize("kind", ["mesh", "curve"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_matches_dense_reference(name, kind):
    shape_a, shape_b = pair(kind)
    sigma = SIGMA[kind]
    value = LOSSES[name](sigma, backend="torch")(shape_a, shape_b)
    assert value.ndim == 0 and value.dtype == F64
    expected = reference_loss(name, shape_a, shape_b, sigma)
    # both are float64 sums of the same ~1e5-1e6 terms, in different orders and
    # (varifolds) through algebraically equal rewritings: round-off only
    assert_close(value, expected, rtol=1e-9, name=f"{name} on a {kind}")
    assert float(expected) > 1e-3 * float(reference_inner(name, shape_a, shape_a, sigma))  # a real mismatch


@pytest.mark.parametrize("name", list(LOSSES))
def test_sum_of_widths_is_the_sum_of_losses(name):
    shape_a, shape_b = pair("curve")
    multiscale = LOSSES[name]([5.0, 20.0], backend="torch")(shape_a, shape_b)
    expected = reference_loss(name, shape_a, shape_b, 5.0) + reference_loss(name, shape_a, shape_b, 20.0)
    assert_close(multiscale, expected, rtol=1e-9)


def two_segments(first, second, centre_offset):
    """Two unit segments in 2D given by their directions, the second centred at ``centre_offset``."""
    first, second, offset = (torch.tensor(t, dtype=F64) for t in (first, second, centre_offset))
    points = torch.stack([-first / 2, first / 2, offset - second / 2, offset + second / 2])
    a = sks.PolyData(points[:2], edges=torch.tensor([[0, 1]]))
    b = sks.PolyData(points[2:], edges=torch.tensor([[0, 1]]))
    return a, b


@pytest.mark.parametrize(
    "loss, segments, expected",
    [
        # parallel unit segments at distance h = 1.5: 2 - 2 exp(-h^2 / (2 sigma^2))
        (CurrentsLoss(2.0), ((1, 0), (1, 0), (0, 1.5)), 2 - 2 * math.exp(-(1.5**2) / 8)),
        # opposite directions, same centre: |u - (-u)|^2 = 4
        (CurrentsLoss(2.0), ((1, 0), (-1, 0), (0, 0)), 4.0),
        # perpendicular, same centre: currents see <u, v> = 0, varifolds <n, m>^2 = 0
        (CurrentsLoss(2.0), ((1, 0), (0, 1), (0, 0)), 2.0),
        (VarifoldLoss(2.0), ((1, 0), (0, 1), (0, 0)), 2.0),
        # opposite directions: the Binet kernel cannot tell them apart
        (VarifoldLoss(2.0), ((1, 0), (-1, 0), (0, 0)), 0.0),
        # 60 degrees apart, at distance 1: 2 - 2 exp(-1/8) cos^2(60)
        (VarifoldLoss(2.0), ((1, 0), (0.5, math.sqrt(3) / 2), (0, 1)), 2 - 2 * math.exp(-1 / 8) * 0.25),
        # oriented, opposite: 2 - 2 exp(2 (-1 - 1) / sigma_n^2)
        (VarifoldLoss(2.0, "oriented", 0.5), ((1, 0), (-1, 0), (0, 0)), 2 - 2 * math.exp(-16)),
        (VarifoldLoss(2.0, "oriented", 1.0), ((1, 0), (0, 1), (0, 0)), 2 - 2 * math.exp(-2)),
    ],
)
def test_closed_forms_for_two_segments(loss, segments, expected):
    a, b = two_segments(*segments)
    assert_close(loss(a, b), torch.tensor(expected, dtype=F64), rtol=1e-12, atol=1e-15, name=repr(loss))


# ------------------------------------------------------------------ properties
@pytest.mark.parametrize("kind", ["mesh", "curve"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_zero_for_identical_shapes_positive_for_different(name, kind):
    shape_a, shape_b = pair(kind)
    loss = LOSSES[name](SIGMA[kind])
    scale = float(reference_inner(name, shape_a, shape_a, SIGMA[kind]))
    # the same shape, its cells listed differently: only round-off remains of |S|^2 - 2|S|^2 + |S|^2
    assert abs(float(loss(shape_a, reordered(shape_a)))) <= 1e-12 * scale
    assert float(loss(shape_a, shape_b)) > 1e-3 * scale
    small_move = shape_a.with_points(shape_a.points + 0.1)
    assert 0 < float(loss(shape_a, small_move)) < float(loss(shape_a, shape_b))


@pytest.mark.parametrize("kind", ["mesh", "curve"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_invariant_to_vertex_and_cell_reordering(name, kind):
    shape_a, shape_b = pair(kind)
    loss = LOSSES[name](SIGMA[kind])
    expected = loss(shape_a, shape_b)
    assert_close(loss(reordered(shape_a, seed=1), reordered(shape_b, seed=2)), expected, rtol=1e-10)


@pytest.mark.parametrize("name", list(LOSSES))
def test_invariant_to_a_rigid_motion_of_both_shapes(name):
    shape_a, shape_b = pair("mesh")
    cos, sin = math.cos(0.7), math.sin(0.7)
    rotation = torch.tensor([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]], dtype=F64) @ torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]], dtype=F64
    )
    shift = torch.tensor([10.0, -20.0, 5.0], dtype=F64)
    moved_a, moved_b = (shape.with_points(shape.points @ rotation.T + shift) for shape in (shape_a, shape_b))
    loss = LOSSES[name](SIGMA["mesh"])
    assert_close(loss(moved_a, moved_b), loss(shape_a, shape_b), rtol=1e-10)


@pytest.mark.parametrize("kind", ["mesh", "curve"])
def test_orientation_flips(kind):
    """Unoriented varifolds ignore flips; oriented ones and currents do not; currents of -S: |S - (-S)|^2 = 4|S|^2."""
    shape_a, shape_b = pair(kind)
    sigma = SIGMA[kind]
    unoriented = LOSSES["varifold-unoriented"](sigma)
    assert_close(unoriented(flipped(shape_a), shape_b), unoriented(shape_a, shape_b), rtol=1e-10)
    assert abs(float(unoriented(shape_a, flipped(shape_a)))) <= 1e-12 * float(
        reference_inner("varifold-unoriented", shape_a, shape_a, sigma)
    )

    oriented = LOSSES["varifold-oriented"](sigma)
    self_oriented = float(reference_inner("varifold-oriented", shape_a, shape_a, sigma))
    assert float(oriented(shape_a, flipped(shape_a))) > self_oriented  # 2|S|^2 - 2<S, flip S>, the latter small
    assert abs(float(oriented(flipped(shape_a), shape_b)) - float(oriented(shape_a, shape_b))) > 1e-3 * self_oriented

    currents = LOSSES["currents"](sigma)
    assert_close(currents(shape_a, flipped(shape_a)), 4 * reference_inner("currents", shape_a, shape_a, sigma), 1e-10)
    # <flip S, flip T> = <S, T>: flipping both shapes changes nothing
    assert_close(currents(flipped(shape_a), flipped(shape_b)), currents(shape_a, shape_b), rtol=1e-10)


@pytest.mark.parametrize("name", list(LOSSES))
def test_float32_in_float32_out(name):
    shape_a, shape_b = (s.to(dtype=torch.float32) for s in pair("curve"))
    value = LOSSES[name](SIGMA["curve"])(shape_a, shape_b)
    assert value.dtype == torch.float32 and value.device == shape_a.device and value.ndim == 0
    expected = reference_loss(name, *pair("curve"), SIGMA["curve"])
    assert_close(value, expected.float(), rtol=1e-4)


# ------------------------------------------------------------------- gradients
@pytest.mark.parametrize("backend", ["torch", pytest.param("keops", marks=requires_keops)])
@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_on_a_tiny_mesh(name, backend):
    """Finite differences w.r.t. both shapes' points (KeOps: the fused gradient and its swapped pass).

    On KeOps, ``fast_mode`` (a random projection of the Jacobian, a few
    evaluations instead of 2 per coordinate) keeps the ~300 KeOps launches
    of the full check (~3 s) out of the suite; torch runs the full check.
    """
    shape_a, shape_b = tiny_mesh(0), tiny_mesh(1)
    shape_b = shape_b.with_points(shape_b.points + torch.tensor([0.3, -0.2, 0.4], dtype=F64))
    loss = LOSSES[name](1.0, backend=backend)

    def function(x, y):
        return loss(shape_a.with_points(x), shape_b.with_points(y))

    inputs = (shape_a.points.clone().requires_grad_(True), shape_b.points.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(function, inputs, fast_mode=backend == "keops")


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_on_a_tiny_curve(name):
    shape_a, shape_b = tiny_curve(0), tiny_curve(1)
    loss = LOSSES[name](0.8, backend="torch")

    def function(x, y):
        return loss(shape_a.with_points(x), shape_b.with_points(y))

    inputs = (shape_a.points.clone().requires_grad_(True), shape_b.points.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(function, inputs)


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
@pytest.mark.parametrize("name", list(LOSSES))
def test_degenerate_cells_keep_finite_gradients(name):
    """A zero-area triangle (repeated vertex) and a zero-length segment count for nothing, gradients stay finite."""
    mesh = tiny_mesh(0)
    points = mesh.points.clone()
    points[4] = points[0]  # collapses the two triangles that hold vertices 0 and 4
    # and a triangle with a repeated vertex
    degenerate = sks.PolyData(points, triangles=torch.cat([mesh.triangles, torch.tensor([[0, 0, 1]])]))
    curve = tiny_curve(0)
    curve_points = curve.points.clone()
    curve_points[2] = curve_points[1]
    degenerate_curve = sks.PolyData(curve_points, edges=curve.edges)
    for shape, other, sigma in ((degenerate, tiny_mesh(1), 1.0), (degenerate_curve, tiny_curve(1), 0.8)):
        with torch.autograd.detect_anomaly():
            value, grad = value_and_grad(LOSSES[name](sigma, backend="torch"), shape, other)
        assert bool(torch.isfinite(value)) and bool(torch.isfinite(grad).all())
        # the triangle (0, 0, 1) has no area: the value is that of the mesh without it
        if shape.triangles is not None:
            without = sks.PolyData(points, triangles=mesh.triangles)
            assert_close(value, LOSSES[name](sigma)(without, other), rtol=1e-12)


# ----------------------------------------------------------------------- KeOps
@requires_keops
@pytest.mark.parametrize("name", list(LOSSES))
def test_keops_matches_torch_float64(name):
    """Value and gradient w.r.t. shape_a's points (shape_b fixed, as in a registration)."""
    shape_a, shape_b = pair("mesh")
    keops = value_and_grad(LOSSES[name](SIGMA["mesh"], backend="keops"), shape_a, shape_b)
    dense = value_and_grad(LOSSES[name](SIGMA["mesh"], backend="torch"), shape_a, shape_b)
    # float64 sums of the same terms in another order: round-off (<= 3e-15 seen)
    assert_relative_close(keops[0], dense[0], 1e-10, name="value")
    assert_relative_close(keops[1], dense[1], 1e-10, name="gradient")


@requires_keops
def test_keops_matches_torch_float32_value():
    shape_a, shape_b = (s.to(dtype=torch.float32) for s in pair("mesh"))
    with torch.no_grad():
        keops = CurrentsLoss(SIGMA["mesh"], backend="keops")(shape_a, shape_b)
        dense = CurrentsLoss(SIGMA["mesh"], backend="torch")(shape_a, shape_b)
    assert keops.dtype == torch.float32
    # float32 sums of ~3e5 terms each, then |S|^2 - 2<S,T> + |T|^2 (STYLE: rtol 1e-4 for float32 reductions)
    assert_relative_close(keops, dense, 1e-4)


@requires_keops
def test_keops_is_differentiable_once():
    """Documented: the KeOps path gives first-order gradients only (second order: backend='torch')."""
    shape_a, shape_b = tiny_mesh(0), tiny_mesh(1)
    points = shape_a.points.clone().requires_grad_(True)
    value = CurrentsLoss(1.0, backend="keops")(shape_a.with_points(points), shape_b)
    with pytest.raises(RuntimeError, match="differentiable once.*backend='torch'"):
        torch.autograd.grad(value, points, create_graph=True)


@pytest.mark.parametrize("name", list(LOSSES))
def test_torch_path_is_twice_differentiable(name):
    shape_a, shape_b = tiny_mesh(0), tiny_mesh(1)
    loss = LOSSES[name](1.0, backend="torch")
    points = shape_a.points.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda x: loss(shape_a.with_points(x), shape_b), (points,))


def test_gaussian_pairing_self_pairing_equals_pairing_with_a_copy():
    generator = torch.Generator().manual_seed(0)
    x, a = torch.randn(7, 3, dtype=F64, generator=generator), torch.randn(7, 2, dtype=F64, generator=generator)
    assert_close(gaussian_pairing(x, a), gaussian_pairing(x, a, x.clone(), a.clone()), rtol=1e-14)
    with pytest.raises(ValueError, match="both y and b"):
        gaussian_pairing(x, a, y=x)
    with pytest.raises(ValueError, match="channels"):
        gaussian_pairing(x, a, x, a[:, :1])


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("loss", [CurrentsLoss(1.0), VarifoldLoss(1.0)], ids=["currents", "varifold"])
def test_errors_name_the_problem(loss):
    curve = tiny_curve()
    cloud = sks.PolyData(curve.points)
    with pytest.raises(ValueError, match="point cloud.*triangles.*edges"):
        loss(cloud, curve)
    with pytest.raises(ValueError, match="shape_b is a point cloud"):
        loss(curve, cloud)
    flat_mesh = sks.PolyData(tiny_mesh().points[:, :2], triangles=tiny_mesh().triangles)
    with pytest.raises(ValueError, match="2D triangle mesh"):
        loss(flat_mesh, flat_mesh)
    curve_3d = sks.PolyData(tiny_mesh().points, edges=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="mesh and shape_b a curve"):
        loss(tiny_mesh(), curve_3d)
    with pytest.raises(ValueError, match="dimension"):
        loss(curve, curve_3d)
    with pytest.raises(TypeError, match="PolyData"):
        loss(curve.points, curve)
    with pytest.raises(ValueError, match="dtype"):
        loss(curve, curve.to(dtype=torch.float32))


@pytest.mark.parametrize("cls", [CurrentsLoss, VarifoldLoss])
@pytest.mark.parametrize(
    "sigma, error",
    [(0.0, ValueError), (-1.0, ValueError), (math.inf, ValueError), (math.nan, ValueError), ([], ValueError),
     ([1.0, -2.0], ValueError), ("1.0", TypeError), (True, TypeError), (None, TypeError), ([1.0, "a"], TypeError)],
)
def test_bad_sigma(cls, sigma, error):
    curve = tiny_curve()
    with pytest.raises(error, match="sigma"):
        cls(sigma)(curve, curve)


def test_bad_varifold_parameters():
    curve = tiny_curve()
    with pytest.raises(ValueError, match="orientation"):
        VarifoldLoss(1.0, orientation="both")(curve, curve)
    with pytest.raises(ValueError, match="sigma_normal"):
        VarifoldLoss(1.0, sigma_normal=0.0)(curve, curve)
    with pytest.raises(TypeError, match="sigma_normal"):
        VarifoldLoss(1.0, sigma_normal="wide")(curve, curve)
    with pytest.raises(ValueError, match="backend"):
        VarifoldLoss(1.0, backend="gpu")(curve, curve)


def test_parameters_are_stored_and_losses_combine():
    loss = VarifoldLoss(2.0, orientation="oriented", sigma_normal=0.3)
    assert repr(loss) == "VarifoldLoss(sigma=2.0, orientation='oriented', sigma_normal=0.3, backend='auto')"
    assert repr(CurrentsLoss([1.0, 3.0])) == "CurrentsLoss(sigma=[1.0, 3.0], backend='auto')"
    VarifoldLoss(-1.0)  # no validation in __init__ (scikit-learn convention): errors come at call time
    combined = CurrentsLoss(1.0) + 0.5 * VarifoldLoss(1.0)
    assert isinstance(combined, Loss)
    a, b = tiny_curve(0), tiny_curve(1)
    assert_close(combined(a, b), CurrentsLoss(1.0)(a, b) + 0.5 * VarifoldLoss(1.0)(a, b), rtol=1e-14)
