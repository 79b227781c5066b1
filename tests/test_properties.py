"""Property-based tests of the losses and of registration, over random small meshes, curves and point clouds.

Properties (hypothesis, dense torch backend, float64 unless the test is about dtypes):

- every loss is >= 0 and is 0 on identical inputs, up to round-off;
- the Sinkhorn divergence, varifold and currents distances and the symmetric chamfer distance are symmetric;
- every loss is invariant to the order of the points and of the cells (with the connectivity relabelled);
- values and gradients stay finite on degenerate geometry (zero-area triangles, coincident and duplicated
  vertices, zero-length segments), under ``torch.autograd.detect_anomaly``;
- float32 in, float32 out (values and gradients); float64 is opt-in and kept;
- registering a shape onto itself (rigid, similarity, affine) returns the identity.

Tolerances. Varifold and currents are ``|S|^2 - 2<S, T> + |T|^2``: round-off is relative to the squared masses
``(sum |u_i|)^2 + (sum |v_j|)^2`` (the Gaussian and direction kernels are <= 1), not to the value, which may be
~0: we allow 1e-10 of that scale in float64. Chamfer, L2 and landmark losses are sums of squares: exact signs,
symmetry up to 1e-12 relative. Sinkhorn (an iterative solver) is compared at 1e-9 of the squared diameter,
far below its own accuracy (``blur``, see SinkhornLoss), which these identities do not depend on.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import skshapes as sks
from skshapes.losses import (
    CurrentsLoss,
    L2Loss,
    LandmarkLoss,
    NearestNeighborsLoss,
    SinkhornLoss,
    VarifoldLoss,
)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

PROPERTIES = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

KERNEL_LOSSES = {
    "varifold": VarifoldLoss(sigma=0.7, backend="torch"),
    "varifold_oriented": VarifoldLoss(sigma=[0.3, 1.0], orientation="oriented", backend="torch"),
    "currents": CurrentsLoss(sigma=0.7, backend="torch"),
}
MEASURE_LOSSES = {
    "chamfer": NearestNeighborsLoss(backend="torch"),
    "sinkhorn": SinkhornLoss(blur=0.1, backend="torch"),
    "sinkhorn_unbalanced": SinkhornLoss(blur=0.1, reach=0.5, backend="torch"),
}

coordinates = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, width=64)


# ------------------------------------------------------------------------------------------------ strategies
@st.composite
def clouds(draw, dim=None, min_points=1, max_points=12):
    dim = draw(st.sampled_from([2, 3])) if dim is None else dim
    n = draw(st.integers(min_points, max_points))
    return sks.PolyData(draw(arrays(np.float64, (n, dim), elements=coordinates)))


@st.composite
def meshes(draw, max_points=9, max_triangles=10):
    """Triangle soups on a few random vertices: degenerate and repeated triangles included."""
    n = draw(st.integers(3, max_points))
    points = draw(arrays(np.float64, (n, 3), elements=coordinates))
    n_triangles = draw(st.integers(1, max_triangles))
    triangles = draw(arrays(np.int64, (n_triangles, 3), elements=st.integers(0, n - 1)))
    return sks.PolyData(points, triangles=triangles)


@st.composite
def curves(draw, dim=None, max_points=10):
    dim = draw(st.sampled_from([2, 3])) if dim is None else dim
    n = draw(st.integers(2, max_points))
    points = draw(arrays(np.float64, (n, dim), elements=coordinates))
    n_edges = draw(st.integers(1, 2 * n))
    edges = draw(arrays(np.int64, (n_edges, 2), elements=st.integers(0, n - 1)))
    return sks.PolyData(points, edges=edges)


@st.composite
def pairs_of_kind(draw):
    """Two meshes, or two curves of one dimension: what varifold and currents compare."""
    if draw(st.booleans()):
        return draw(meshes()), draw(meshes())
    dim = draw(st.sampled_from([2, 3]))
    return draw(curves(dim=dim)), draw(curves(dim=dim))


@st.composite
def degenerate_meshes(draw):
    """Vertices drawn from a pool of 3 or 4 positions (coincident and duplicated vertices), cells at random."""
    pool = draw(arrays(np.float64, (draw(st.integers(3, 4)), 3), elements=coordinates))
    n = draw(st.integers(3, 8))
    points = pool[draw(arrays(np.int64, (n,), elements=st.integers(0, len(pool) - 1)))]
    triangles = draw(arrays(np.int64, (draw(st.integers(1, 8)), 3), elements=st.integers(0, n - 1)))
    edges = draw(arrays(np.int64, (draw(st.integers(1, 8)), 2), elements=st.integers(0, n - 1)))
    return (
        sks.PolyData(points, triangles=triangles, landmarks=[0, 1, 2]),
        sks.PolyData(points, edges=edges, landmarks=[0, 1, 2]),
        sks.PolyData(points, landmarks=[0, 1, 2]),
    )


def relabel(shape: sks.PolyData, point_order: torch.Tensor, cell_order: torch.Tensor | None = None) -> sks.PolyData:
    """The same shape with its vertices listed in ``point_order`` and its cells in ``cell_order``."""
    new_index = torch.empty_like(point_order)
    new_index[point_order] = torch.arange(len(point_order))
    cells = {}
    for name in ("triangles", "edges"):
        value = getattr(shape, name)
        if value is not None:
            order = cell_order if cell_order is not None and len(cell_order) == len(value) else torch.arange(len(value))
            cells[name] = new_index[value[order]]
    landmarks = None if shape.landmarks is None else new_index[shape.landmarks]
    return sks.PolyData(shape.points[point_order], landmarks=landmarks, **cells)


def permutations(n: int):
    return st.permutations(list(range(n))).map(torch.tensor)


def squared_mass(shape: sks.PolyData) -> float:
    """(sum of the cell measures)^2: bounds |S|^2 for the Gaussian currents and varifold norms."""
    if shape.triangles is not None:
        return float(shape.triangle_areas.sum()) ** 2
    return float(shape.edge_lengths.sum()) ** 2


def squared_diameter(*shapes) -> float:
    points = torch.cat([s.points for s in shapes])
    return float(((points.max(dim=0).values - points.min(dim=0).values) ** 2).sum())


def has_mass(shape: sks.PolyData) -> bool:
    return float(shape.point_weights.sum()) > 1e-6


# ------------------------------------------------------------------------------------------------ kernel losses
@pytest.mark.parametrize("name", KERNEL_LOSSES)
@PROPERTIES
@given(pair=pairs_of_kind())
def test_kernel_losses_are_nonnegative_symmetric_and_zero_on_identical_shapes(name, pair):
    loss, (a, b) = KERNEL_LOSSES[name], pair
    atol = 1e-10 * (squared_mass(a) + squared_mass(b) + 1e-300)
    ab, ba = float(loss(a, b)), float(loss(b, a))
    assert ab >= -atol, f"{name}(a, b) = {ab:.3e} < 0"
    assert abs(ab - ba) <= atol, f"{name}: {ab!r} vs {ba!r}"
    assert abs(float(loss(a, a))) <= 2e-10 * squared_mass(a) + 1e-300


@pytest.mark.parametrize("name", KERNEL_LOSSES)
@PROPERTIES
@given(pair=pairs_of_kind(), data=st.data())
def test_kernel_losses_ignore_the_order_of_points_and_cells(name, pair, data):
    loss, (a, b) = KERNEL_LOSSES[name], pair
    n_cells = a.n_triangles or a.n_edges
    shuffled = relabel(a, data.draw(permutations(a.n_points)), data.draw(permutations(n_cells)))
    atol = 1e-10 * (squared_mass(a) + squared_mass(b) + 1e-300)
    assert abs(float(loss(shuffled, b)) - float(loss(a, b))) <= atol


# ------------------------------------------------------------------------------------------------ measures
@pytest.mark.parametrize("name", MEASURE_LOSSES)
@settings(PROPERTIES, max_examples=25)
@given(a=clouds(dim=3) | meshes(), b=clouds(dim=3) | meshes())
def test_measure_losses_are_nonnegative_symmetric_and_zero_on_identical_shapes(name, a, b):
    assume(has_mass(a) and has_mass(b))
    loss = MEASURE_LOSSES[name]
    scale = squared_diameter(a, b)
    ab, ba = float(loss(a, b)), float(loss(b, a))
    assert ab >= -1e-9 * scale
    assert abs(ab - ba) <= 1e-12 * abs(ab) + 1e-9 * scale * (name != "chamfer")
    assert abs(float(loss(a, a))) <= 1e-9 * scale


@pytest.mark.parametrize("name", MEASURE_LOSSES)
@settings(PROPERTIES, max_examples=25)
@given(a=clouds(dim=2), b=clouds(dim=2), data=st.data())
def test_measure_losses_ignore_the_order_of_points(name, a, b, data):
    loss = MEASURE_LOSSES[name]
    shuffled = relabel(a, data.draw(permutations(a.n_points)))
    scale = squared_diameter(a, b)
    assert abs(float(loss(shuffled, b)) - float(loss(a, b))) <= 1e-9 * scale


@settings(PROPERTIES, max_examples=25)
@given(a=meshes(), data=st.data())
def test_chamfer_on_meshes_ignores_the_order_of_points_and_triangles(a, data):
    assume(has_mass(a))
    b = a.with_points(a.points + 0.1)
    loss = MEASURE_LOSSES["chamfer"]
    shuffled = relabel(a, data.draw(permutations(a.n_points)), data.draw(permutations(a.n_triangles)))
    assert abs(float(loss(shuffled, b)) - float(loss(a, b))) <= 1e-12 * float(loss(a, b)) + 1e-15


# ------------------------------------------------------------------------------------------------ correspondence
@PROPERTIES
@given(a=clouds(min_points=3), data=st.data())
def test_l2_and_landmark_losses_are_nonnegative_symmetric_and_follow_a_common_relabelling(a, data):
    b = sks.PolyData(data.draw(arrays(np.float64, (a.n_points, a.dim), elements=coordinates)))
    landmarks = data.draw(st.lists(st.integers(0, a.n_points - 1), min_size=1, max_size=4))
    a = sks.PolyData(a.points, landmarks=landmarks)
    b = sks.PolyData(b.points, landmarks=landmarks)
    for loss in (L2Loss(), LandmarkLoss()):
        ab = float(loss(a, b))
        assert ab >= 0 and float(loss(a, a)) == 0.0
        assert abs(ab - float(loss(b, a))) <= 1e-12 * ab
        order = data.draw(permutations(a.n_points))  # the same relabelling of both shapes changes nothing
        assert abs(float(loss(relabel(a, order), relabel(b, order))) - ab) <= 1e-12 * ab + 1e-300


# ------------------------------------------------------------------------------------------------ degenerate geometry
ALL_LOSSES = {**KERNEL_LOSSES, **MEASURE_LOSSES, "l2": L2Loss(), "landmarks": LandmarkLoss()}


def _finite_value_and_gradient(loss, shape, target):
    points = shape.points.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Anomaly Detection has been enabled"
        with torch.autograd.detect_anomaly():
            value = loss(shape.with_points(points), target)
            (gradient,) = torch.autograd.grad(value, points)
    assert bool(torch.isfinite(value)), f"value {value}"
    assert bool(torch.isfinite(gradient).all()), f"gradient {gradient}"
    assert value.dtype == gradient.dtype == shape.dtype


@pytest.mark.parametrize("name", ALL_LOSSES)
@settings(PROPERTIES, max_examples=20)
@given(shapes=degenerate_meshes(), shift=arrays(np.float64, (3,), elements=st.floats(-0.2, 0.2)))
def test_values_and_gradients_stay_finite_on_degenerate_geometry(name, shapes, shift):
    loss = ALL_LOSSES[name]
    for shape in shapes:
        if name in KERNEL_LOSSES and shape.kind == "cloud":
            continue
        if name in MEASURE_LOSSES and float(shape.point_weights.sum()) == 0:
            with pytest.raises(ValueError, match="total point weight"):  # a measure of mass 0: documented
                loss(shape, shape)
            continue
        for target in (shape, shape.with_points(shape.points + torch.from_numpy(shift))):
            if name in MEASURE_LOSSES and float(target.point_weights.sum()) == 0:
                # a sliver of area ~1e-17 can round to exactly 0 once shifted: a measure of mass 0, documented
                with pytest.raises(ValueError, match="total point weight"):
                    loss(shape, target)
                continue
            _finite_value_and_gradient(loss, shape, target)


# ------------------------------------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("name", ALL_LOSSES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_losses_keep_the_dtype_of_the_points(name, dtype):
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(8, 3, generator=generator, dtype=torch.float64)
    triangles = [[0, 1, 2], [1, 2, 3], [4, 5, 6], [5, 6, 7], [0, 4, 7]]
    shape = sks.PolyData(points.to(dtype), triangles=triangles, landmarks=[0, 3, 5])
    target = shape.with_points(shape.points + 0.1)
    loss = ALL_LOSSES[name]
    points = shape.points.clone().requires_grad_(True)
    value = loss(shape.with_points(points), target)
    (gradient,) = torch.autograd.grad(value, points)
    assert value.dtype == gradient.dtype == dtype and value.ndim == 0
    with pytest.raises(ValueError, match="dtype"):
        loss(shape, target.to(dtype=torch.float64 if dtype == torch.float32 else torch.float32))


def test_float32_is_the_default_and_float64_is_opt_in(tmp_path):
    assert sks.PolyData([[0, 0, 0], [1, 0, 0]]).dtype == torch.float32  # integers
    assert sks.PolyData([[0.5, 0, 0], [1, 0, 0]]).dtype == torch.float32  # Python floats, as torch.tensor does
    assert sks.PolyData(np.zeros((2, 3), dtype=np.float32)).dtype == torch.float32
    assert sks.PolyData(np.zeros((2, 3))).dtype == torch.float64  # float64 arrays are kept: opt-in
    shape = sks.PolyData(np.eye(3), triangles=[[0, 1, 2]])
    shape.save(tmp_path / "triangle.vtk")
    read = sks.read(tmp_path / "triangle.vtk")
    assert read.dtype == torch.float32 and read.to(dtype=torch.float64).dtype == torch.float64


# ------------------------------------------------------------------------------------------------ registration
MODELS = {"rigid": sks.RigidMotion(), "similarity": sks.Similarity(), "affine": sks.AffineDeformation()}


@pytest.mark.parametrize("model", MODELS)
@settings(PROPERTIES, max_examples=15)
@given(shape=clouds(min_points=3), loss=st.sampled_from([L2Loss(), NearestNeighborsLoss(backend="torch")]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_registering_a_shape_onto_itself_returns_the_identity(model, shape, loss, dtype):
    shape = shape.to(dtype=dtype)
    registration = sks.Registration(model=MODELS[model], loss=loss, regularization_weight=0.0, n_iter=10, device="cpu")
    registration.fit(shape, shape)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-10
    identity = torch.zeros_like(registration.parameter_)
    assert registration.parameter_.dtype == dtype
    assert float((registration.parameter_ - identity).abs().max()) <= tolerance
    assert float((registration.transform().points - shape.points).abs().max()) <= tolerance * 10


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("loss", [SinkhornLoss(blur=0.05, backend="torch"), VarifoldLoss(sigma=0.5, backend="torch")],
                         ids=["sinkhorn", "varifold"])
def test_registering_a_mesh_onto_itself_with_a_global_loss_returns_the_identity(model, loss):
    import pyvista

    shape = sks.PolyData.from_pyvista(pyvista.Sphere(theta_resolution=6, phi_resolution=6)).to(dtype=torch.float64)
    shape = shape.with_points(shape.points * torch.tensor([1.0, 0.7, 0.4], dtype=torch.float64))  # no symmetry
    registration = sks.Registration(model=MODELS[model], loss=loss, regularization_weight=0.0, n_iter=10, device="cpu")
    registration.fit(shape, shape)
    assert float(registration.parameter_.abs().max()) <= 1e-8
    assert float((registration.transform().points - shape.points).abs().max()) <= 1e-8
