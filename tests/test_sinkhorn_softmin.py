"""The dense Sinkhorn of ``SinkhornLoss`` (clamped soft-min, cached target term) and overflowing trial steps.

References: GeomLoss's stock ``SamplesLoss("sinkhorn", backend="tensorized")``
(values and gradients, float32 and float64, balanced and unbalanced, random
clouds and real shapes) and ``torch.logsumexp``. Then the optimiser on trial
points where the model overflows: a similarity fitted from the identity on a
real face, whose first L-BFGS line search tried a log-scale of about 400.

No KeOps formula is compiled here: every Sinkhorn runs on the dense torch path.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from conftest import assert_relative_close
from geomloss import SamplesLoss

import skshapes as sks
from skshapes.datasets import load_faces, load_skulls
from skshapes.losses import SinkhornLoss, sinkhorn
from skshapes.losses.sinkhorn import (
    DegenerateMeasureError,
    epsilon_schedule,
    sinkhorn_divergence_dense,
    softmin_dense,
)
from skshapes.optimization import make_optimizer, minimize

#: Relative tolerances against GeomLoss run in the same dtype. In float32 the gradients get a looser,
#: measured bound (see :func:`assert_matches_geomloss`): the clamped soft-min's softmax (exp / sum)
#: rounds differently from torch.logsumexp's backward, and the dual gradient sum_j pi_ij (x_i - y_j)
#: amplifies rounding by cancellation (GeomLoss's own float32 gradients are 2e-4 to 5e-4 off its
#: float64 ones for p = 1 on the clouds here).
TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-10}


def cloud(n, dim=3, dtype=torch.float64, seed=0, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, dtype=dtype, generator=generator) + shift


def random_weights(n, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed + 100)
    weights = torch.rand(n, dtype=dtype, generator=generator) + 0.1
    return weights / weights.sum()


def stock_geomloss(blur, reach, scaling, diameter, p=2):
    return SamplesLoss(
        "sinkhorn", p=p, blur=blur, reach=reach, scaling=scaling, diameter=diameter, debias=True, backend="tensorized"
    )


def gradients(value, *tensors):
    return torch.autograd.grad(value, tensors)


# ------------------------------------------------------------------------ soft-min
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmin_dense_matches_logsumexp_where_the_clamp_bites(dtype):
    x, y = cloud(40, dtype=dtype), cloud(50, dtype=dtype, seed=1)
    cost = sinkhorn.cost_matrix(x, y, 2).requires_grad_(True)
    h = (torch.log(random_weights(50, dtype=dtype)) + torch.randn(50, dtype=dtype)).requires_grad_(True)
    eps = 1e-3  # exponents down to about -1000: most entries are clamped
    z = h[None, :] - cost / eps
    assert float(((z - z.amax(dim=1, keepdim=True)) < sinkhorn.SOFTMIN_CLAMP).double().mean()) > 0.5
    ours = softmin_dense(eps, cost, h)
    reference = -eps * z.logsumexp(dim=1)
    assert_relative_close(ours, reference, TOLERANCES[dtype], name="soft-min")
    weights = torch.rand(40, dtype=dtype)
    for mine, theirs, name in zip(
        gradients((weights * ours).sum(), cost, h), gradients((weights * reference).sum(), cost, h), ("C", "h")
    ):
        assert_relative_close(mine, theirs, TOLERANCES[dtype], name=f"gradient w.r.t. {name}")


def test_epsilon_schedule_is_geomloss_schedule():
    from geomloss._legacy.sinkhorn_divergence import epsilon_schedule as geomloss_schedule

    for p, diameter, blur, scaling in [(2, 3.7, 0.05, 0.8), (1, 100.0, 1.0, 0.9), (2, 1.0, 1.0, 0.5)]:
        ours = epsilon_schedule(p, diameter, blur, scaling)
        assert ours == pytest.approx([float(e) for e in geomloss_schedule(p, diameter, blur, scaling)], rel=1e-15)


# ------------------------------------------------------- the loop against GeomLoss
def assert_matches_geomloss(ours, stock, dtype):
    """``ours(dtype)`` and ``stock(dtype)`` -> (value, [gradients]): ours agrees with GeomLoss.

    float64: values and gradients within 1e-10 (relative, in norm). float32: values within 1e-5,
    gradients no further from GeomLoss's float64 gradients than 1.5 times GeomLoss's own float32
    gradients are, plus 1e-6 (that is, as accurate as GeomLoss in float32); and within 1e-4 of them.
    """
    value, grads = ours(dtype)
    stock_value, stock_grads = stock(dtype)
    assert value.dtype == dtype
    assert_relative_close(value, stock_value, TOLERANCES[dtype], name="value")
    if dtype == torch.float64:
        for index, (mine, theirs) in enumerate(zip(grads, stock_grads)):
            assert_relative_close(mine, theirs, TOLERANCES[dtype], name=f"gradient {index}")
        return
    _, reference_grads = stock(torch.float64)
    for index, (mine, theirs, reference) in enumerate(zip(grads, stock_grads, reference_grads)):
        stock_error = float((theirs.double() - reference).norm() / reference.norm())
        assert_relative_close(mine.double(), reference, 1.5 * stock_error + 1e-6, name=f"gradient {index}")
        assert_relative_close(mine, theirs, 1e-4, name=f"gradient {index} vs float32 GeomLoss")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reach", [None, 0.3])
@pytest.mark.parametrize("p", [2, 1])
def test_dense_sinkhorn_matches_geomloss_tensorized(dtype, reach, p):
    """Value and gradients w.r.t. both clouds and both weight vectors, at a blur where the clamp is active."""
    blur, scaling = 0.03, 0.8
    data = (random_weights(60), cloud(60), random_weights(70, seed=1), cloud(70, seed=1, shift=0.3))
    diameter = sinkhorn._schedule_diameter(data[1], data[3], blur, scaling)

    def ours(dtype):
        inputs = [t.to(dtype).requires_grad_(True) for t in data]
        value = sinkhorn_divergence_dense(*inputs, p, epsilon_schedule(p, diameter, blur, scaling),
                                          None if reach is None else reach**p)
        return value, gradients(value, *inputs)

    def stock(dtype):
        inputs = [t.to(dtype).requires_grad_(True) for t in data]
        value = stock_geomloss(blur, reach, scaling, diameter, p)(*inputs)
        return value, gradients(value, *inputs)

    assert_matches_geomloss(ours, stock, dtype)


def _skull_pair():
    skulls = load_skulls()
    return skulls.template, skulls.shapes[3], 1.0, 0.9


def _face_pair():
    faces = load_faces(resolution=400)
    return faces.template, faces.shapes[0], 2.0, 0.8


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reach", [None, 5.0])
@pytest.mark.parametrize("pair", [_skull_pair, _face_pair], ids=["skull", "face"])
def test_sinkhorn_loss_matches_geomloss_on_real_shapes(pair, reach, dtype):
    """SinkhornLoss(backend="torch") against SamplesLoss on the same normalised weights, gradient through them."""
    source, target, blur, scaling = pair()
    diameter = sinkhorn._schedule_diameter(source.points, target.points, blur, scaling)

    def ours(dtype):
        loss = SinkhornLoss(blur=blur, reach=reach, scaling=scaling, backend="torch")
        points = source.points.to(dtype).requires_grad_(True)
        value = loss(source.with_points(points), target.to(dtype=dtype))
        return value, gradients(value, points)

    def stock(dtype):
        points = source.points.to(dtype).requires_grad_(True)
        moved, fixed = source.with_points(points), target.to(dtype=dtype)
        a = moved.point_weights / moved.point_weights.sum()
        b = fixed.point_weights / fixed.point_weights.sum()
        value = stock_geomloss(blur, reach, scaling, diameter)(a, points, b, fixed.points)
        (grad,) = gradients(value, points)
        if reach is not None:  # SinkhornLoss corrects GeomLoss 0.3.1's unbalanced gradient (see its compute)
            eps, rho = blur**2, reach**2
            grad = grad * (rho + eps) / (rho + eps / 2)
        return value, (grad,)

    assert_matches_geomloss(ours, stock, dtype)


# ------------------------------------------------------------ cached target term
def _count_self_transports(monkeypatch):
    calls = []
    original = sinkhorn.self_transport_potential

    def spy(a, x, *args, **kwargs):
        calls.append(x.shape[0])
        return original(a, x, *args, **kwargs)

    monkeypatch.setattr(sinkhorn, "self_transport_potential", spy)
    return calls


def test_target_term_is_cached_across_calls_with_the_same_value_and_gradient(monkeypatch):
    calls = _count_self_transports(monkeypatch)
    source, target = sks.PolyData(cloud(30)), sks.PolyData(cloud(40, seed=1, shift=0.2))
    loss = SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")
    results = []
    for _ in range(3):
        points = source.points.clone().requires_grad_(True)
        value = loss(source.with_points(points), target)
        results.append((value.detach(), torch.autograd.grad(value, points)[0]))
    assert sorted(calls) == [30, 30, 30, 40]  # the target's term (40 points) once, the source's every time
    fresh = SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")
    points = source.points.clone().requires_grad_(True)
    value = fresh(source.with_points(points), target)
    for cached_value, cached_grad in results[1:]:
        assert torch.equal(cached_value, value.detach())
        assert torch.equal(cached_grad, torch.autograd.grad(value, points, retain_graph=True)[0])


def test_target_term_is_recomputed_when_target_or_schedule_changes(monkeypatch):
    source, target = sks.PolyData(cloud(30)), sks.PolyData(cloud(40, seed=1, shift=0.2))
    moved_target = target.with_points(target.points + 1e-3)  # same sizes, new values
    far_source = source.with_points(source.points * 10)  # a larger diameter: a longer blur schedule
    references = [SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")(*pair)
                  for pair in ((source, moved_target), (far_source, moved_target))]
    calls = _count_self_transports(monkeypatch)
    loss = SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")
    loss(source, target)
    assert loss(source, moved_target) == references[0]
    assert loss(far_source, moved_target) == references[1]
    assert loss(far_source, moved_target) == references[1]
    assert calls.count(40) == 3  # the last call found the target's term in the cache


def test_several_targets_in_turn_are_each_computed_once(monkeypatch):
    """An atlas evaluates one loss against each subject in turn: every target's term is kept."""
    source = sks.PolyData(cloud(30))
    targets = [sks.PolyData(cloud(40 + i, seed=i + 1, shift=0.2)) for i in range(3)]
    references = [SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")(source, t) for t in targets]
    calls = _count_self_transports(monkeypatch)
    loss = SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")
    for _ in range(3):
        assert [loss(source, t) for t in targets] == references
    assert sorted(calls) == [30] * 9 + [40, 41, 42]
    for i in range(sinkhorn.TARGET_CACHE_SIZE):  # the oldest entries make way for new ones
        loss(source, sks.PolyData(cloud(10, seed=100 + i)))
    assert len(loss._target_cache) == sinkhorn.TARGET_CACHE_SIZE
    loss(source, targets[0])
    assert sorted(calls)[-4:] == [40, 40, 41, 42]


def test_target_that_requires_grad_is_not_cached_and_gets_its_gradient(monkeypatch):
    calls = _count_self_transports(monkeypatch)
    loss = SinkhornLoss(blur=0.05, scaling=0.8, backend="torch")
    x, y = cloud(30), cloud(40, seed=1, shift=0.2)
    a, b = torch.full((30,), 1 / 30, dtype=x.dtype), torch.full((40,), 1 / 40, dtype=x.dtype)
    for _ in range(2):
        target_points = y.clone().requires_grad_(True)
        value = loss(sks.PolyData(x), sks.PolyData(y).with_points(target_points))
        (grad,) = torch.autograd.grad(value, target_points)
    assert sorted(calls) == [30, 30, 40, 40]
    stock_y = y.clone().requires_grad_(True)
    stock = stock_geomloss(0.05, None, 0.8, sinkhorn._schedule_diameter(x, y, 0.05, 0.8))(a, x, b, stock_y)
    assert_relative_close(grad, torch.autograd.grad(stock, stock_y)[0], 1e-10, name="gradient w.r.t. the target")


def test_cache_is_not_pickled_nor_part_of_the_parameters():
    from sklearn.base import clone

    loss = SinkhornLoss(blur=0.05, backend="torch")
    loss(sks.PolyData(cloud(10)), sks.PolyData(cloud(12, seed=1)))
    assert "_target_cache" in loss.__dict__
    assert "_target_cache" not in pickle.loads(pickle.dumps(loss)).__dict__
    assert repr(loss) == "SinkhornLoss(blur=0.05, reach=None, scaling=0.9, p=2, backend='torch')"
    assert loss == SinkhornLoss(blur=0.05, backend="torch")
    assert "_target_cache" not in clone(sks.Registration(loss=loss)).loss.__dict__


# ---------------------------------------------------- trial points that overflow
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_sinkhorn_of_non_finite_points_is_nan_not_an_error(backend):
    """Only a deformation can produce such points (PolyData validates its input): NaN, like a torch function."""
    mesh = sks.PolyData(cloud(4, dtype=torch.float32), triangles=[[0, 1, 2], [0, 2, 3]])
    target = sks.PolyData(cloud(5, dtype=torch.float32, seed=1))
    for bad in (math.inf, math.nan, 1e30):  # 1e30: finite points whose areas overflow float32
        points = (mesh.points * bad).requires_grad_(True)
        value = SinkhornLoss(backend=backend)(mesh.with_points(points), target)
        assert math.isnan(float(value))
        value.backward()
        assert torch.isnan(points.grad).all()
        with torch.no_grad():
            assert math.isnan(float(SinkhornLoss(backend=backend)(target, mesh.with_points(points))))


def test_degenerate_input_still_raises_value_error():
    flat = sks.PolyData(torch.zeros(3, 3), triangles=[[0, 1, 2]])
    with pytest.raises(ValueError, match="total point weight") as error:
        SinkhornLoss()(flat, sks.PolyData(torch.rand(4, 3)))
    assert isinstance(error.value, DegenerateMeasureError)


def _quadratic_with_a_wall(limit, fail):
    """0.5 |x - 3|^2, but ``fail(x)`` (NaN or a degenerate shape) beyond |x| > limit."""
    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    evaluations = []

    def objective():
        evaluations.append(x.detach().clone())
        value = 0.5 * ((x - 3) ** 2).sum()
        if bool(x.detach().abs().max() > limit):
            value = fail(value)
        return value, value, torch.zeros((), dtype=torch.float64)

    return x, objective, evaluations


def _raise_degenerate(value):
    raise DegenerateMeasureError("shape_a has total point weight 0.0: cannot normalise it into a probability")


@pytest.mark.parametrize("fail", [lambda v: v * math.nan, lambda v: v * math.inf, _raise_degenerate],
                         ids=["nan", "inf", "degenerate"])
def test_lbfgs_rejects_trial_points_where_the_objective_fails(fail):
    """With a learning rate of 100, L-BFGS's first trial point is 100 * (3, 3) / 6 = (50, 50), beyond the wall."""
    x, objective, evaluations = _quadratic_with_a_wall(10.0, fail)
    optimizer = make_optimizer([x], learning_rate=100.0)
    history, _ = minimize([x], objective, optimizer, n_iter=20, tol=1e-12)
    assert any(float(e.abs().max()) > 10 for e in evaluations)  # the wall was hit...
    assert torch.allclose(x.detach(), torch.full((2,), 3.0, dtype=torch.float64), atol=1e-6)  # ...and left
    assert all(math.isfinite(v) for v in history["total"])


def test_degenerate_shape_at_the_starting_point_raises():
    x, objective, _ = _quadratic_with_a_wall(-1.0, _raise_degenerate)  # fails everywhere, the start included
    with pytest.raises(ValueError, match="total point weight"):
        minimize([x], objective, make_optimizer([x]), n_iter=5, tol=0.0)


class _IdentityStartSimilarity(sks.Similarity):
    """``Similarity`` started from the identity, as before linear models started from matched centroids."""

    def initial_parameter(self, shape, target=None):
        return super().initial_parameter(shape)


class _RecordingSinkhorn(SinkhornLoss):
    """Records each evaluation: its value, or "degenerate" when the morphed shape collapsed."""

    def compute(self, shape_a, shape_b):
        try:
            value = super().compute(shape_a, shape_b)
        except DegenerateMeasureError:
            self.record.append("degenerate")
            raise
        self.record.append(float(value.detach()))
        return value


@pytest.fixture(scope="module")
def faces():
    return load_faces()


def _posed_simpop_02(faces):
    """SIMPOP_02 in the pose that ``benchmarks/bench_correspondence.py`` gives it (seed 0, second draw)."""
    from scipy.spatial.transform import Rotation

    generator = np.random.default_rng(0)
    for _ in range(2):
        axis = generator.normal(size=3)
        angle = np.deg2rad(generator.uniform(0.0, 20.0))
        direction = generator.normal(size=3)
        shift = direction / np.linalg.norm(direction) * generator.uniform(0.0, 10.0)
    rotation = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()
    points = faces.shapes[1].points.double().numpy()
    centroid = points.mean(axis=0)
    posed = (points - centroid) @ rotation.T + centroid + shift
    return faces.shapes[1].with_points(torch.as_tensor(posed, dtype=faces.template.dtype))


def test_similarity_from_the_identity_on_a_face_survives_an_overflowing_line_search(faces):
    """The failure of issue 3: Similarity + SinkhornLoss from the identity, template -> posed SIMPOP_02.

    A line search of L-BFGS tried a log-scale of about 400 (e^400 overflows) and SinkhornLoss raised
    ValueError("shape_a has total point weight nan"). The step must be rejected and the fit go on.
    (Whether a trial step overflows depends on the last bits of the L-BFGS path: the next test makes
    it happen by construction.)
    """
    source, target = faces.template.decimate(400), _posed_simpop_02(faces).decimate(400)
    loss = _RecordingSinkhorn(blur=2.0, scaling=0.6)
    loss.record = []
    registration = sks.Registration(
        _IdentityStartSimilarity(), loss, regularization_weight=0.0, n_iter=30, tol=1e-5, device="cpu"
    ).fit(source, target)
    start, final = registration.loss_history_["total"][0], registration.loss_
    assert math.isfinite(final) and final < 0.01 * start, (start, final)
    assert 0.9 < float(sks.Similarity.scale(registration.parameter_)) < 1.2  # faces of similar sizes


def test_similarity_with_huge_steps_on_a_face_rejects_overflow_and_collapse(faces):
    """Deterministic version: a learning rate of 1e4 sends the first trial steps to scales e^(+-hundreds)."""
    source, target = faces.template.decimate(400), faces.shapes[1].decimate(400)
    loss = _RecordingSinkhorn(blur=2.0, scaling=0.6)
    loss.record = []
    registration = sks.Registration(
        sks.Similarity(), loss, regularization_weight=0.0, n_iter=10, tol=1e-5, learning_rate=1e4, device="cpu"
    ).fit(source, target)
    assert "degenerate" in loss.record  # a trial scale underflowed to 0 (zero area)
    assert any(v != "degenerate" and math.isnan(v) for v in loss.record)  # a trial scale overflowed
    start, final = registration.loss_history_["total"][0], registration.loss_
    assert math.isfinite(final) and final < 0.5 * start, (start, final)
