"""Geometric deep learning layers (skshapes.nn): references, symmetries, batching, KeOps against torch.

KeOps compiles every distinct formula once (5-25 s each, then cached), so the
KeOps path is tested on one configuration per reduction, in float64: the
kNN graph with k + 1 = 5 searched neighbours, and QuasiGeodesicConv with
C = 4 input channels and H = 8 hidden ones (3 formulas per reduction).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close, assert_relative_close
from hypothesis import given
from hypothesis import strategies as st

from skshapes.nn import KNNConv, QuasiGeodesicConv, knn_graph
from skshapes.reductions import keops_available

needs_keops = pytest.mark.skipif(not keops_available(), reason="pykeops does not compile here")
BACKENDS = ["torch", pytest.param("keops", marks=needs_keops)]
SIZES = (9, 1, 3, 0, 14)  # one cloud with a single point, one smaller than k + 1, one empty batch index
K = 4  # knn_graph tests search k + 1 = 5 points (loop=False); KNNConv uses k = 5 with loop=True
CHANNELS, HIDDEN = 4, 8


def cloud_batch(sizes=SIZES, dtype=torch.float64, seed=0, channels=CHANNELS):
    """Random points, unit normals, features and the PyG batch vector of clouds of the given sizes."""
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    pos = torch.randn(n, 3, generator=g, dtype=dtype)
    normals = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=dtype), dim=1)
    x = torch.randn(n, channels, generator=g, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return x, pos, normals, batch


def brute_force_knn_graph(pos, k, batch, loop):
    """Edges (j, i) from explicit sorting of all the distances within each cloud, centre by centre."""
    sources, targets = [], []
    for i in range(pos.shape[0]):
        same = [j for j in range(pos.shape[0]) if batch[j] == batch[i] and (loop or j != i)]
        same.sort(key=lambda j: float(((pos[i] - pos[j]) ** 2).sum()))
        for j in same[:k]:
            sources.append(j)
            targets.append(i)
    return torch.tensor([sources, targets], dtype=torch.long).reshape(2, -1)


def shuffle_within_clouds(batch, seed=1):
    """A permutation of the points that keeps every cloud in place (so ``batch`` stays sorted)."""
    g = torch.Generator().manual_seed(seed)
    parts, start = [], 0
    for size in torch.bincount(batch).tolist():
        parts.append(start + torch.randperm(size, generator=g))
        start += size
    return torch.cat(parts)


def assert_gradients_close(grads, reference, rtol):
    """Relative error in norm, on the scale max(|reference|, 1): some gradients vanish exactly.

    (The output bias of the potential cancels in q_j - q_i, so its gradient is 0 up to round-off.)
    """
    for index, (g, r) in enumerate(zip(grads, reference)):
        error = float((g - r).norm() / max(float(r.norm()), 1.0))
        assert error <= rtol, f"gradient {index} ({tuple(g.shape)}): error {error:.3e} > {rtol:.1e}"


def random_rotation(dtype, seed=2):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


# ----------------------------------------------------------------------------------------- knn_graph


@pytest.mark.parametrize(
    "backend,loop", [("torch", False), ("torch", True), pytest.param("keops", False, marks=needs_keops)]
)
def test_knn_graph_matches_brute_force_and_stays_within_clouds(backend, loop):
    _, pos, _, batch = cloud_batch()
    edges = knn_graph(pos, K, batch=batch, loop=loop, backend=backend)
    assert edges.dtype == torch.long and edges.shape[0] == 2
    assert torch.equal(edges, brute_force_knn_graph(pos, K, batch, loop))
    assert torch.equal(batch[edges[0]], batch[edges[1]]), "an edge joins two clouds"
    # Small clouds: N_b - 1 (or N_b) edges per point instead of k.
    expected_degree = torch.clamp(torch.bincount(batch)[batch] - (0 if loop else 1), max=K)
    assert torch.equal(torch.bincount(edges[1], minlength=pos.shape[0]), expected_degree)


@given(
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=4),
    k=st.integers(1, 6),
    loop=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_knn_graph_random_batches_match_brute_force(sizes, k, loop, seed):
    _, pos, _, batch = cloud_batch(sizes=tuple(sizes), seed=seed)
    edges = knn_graph(pos, k, batch=batch, loop=loop, backend="torch")
    assert torch.equal(edges, brute_force_knn_graph(pos, k, batch, loop))


@needs_keops
def test_knn_graph_keops_single_cloud_agrees_with_torch():
    _, pos, _, _ = cloud_batch(sizes=(40,), dtype=torch.float64)
    # a single cloud goes through one range (the same compiled formula as batches)
    assert torch.equal(knn_graph(pos, K, backend="keops"), knn_graph(pos, K, backend="torch"))


def test_knn_graph_auto_backend_on_a_small_problem_is_the_dense_one():
    _, pos, _, batch = cloud_batch()
    assert torch.equal(knn_graph(pos, K, batch, backend="auto"), knn_graph(pos, K, batch, backend="torch"))


def test_knn_graph_duplicated_points_still_gives_k_edges_without_self_loops():
    pos = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0], [3, 0, 0], [7, 0, 0]])
    edges = knn_graph(pos, 2, backend="torch")
    assert torch.equal(torch.bincount(edges[1]), torch.full((5,), 2))
    assert not bool((edges[0] == edges[1]).any())


def test_knn_graph_docstring_example():
    edges = knn_graph(torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]]), k=1, batch=torch.tensor([0, 0, 0, 1, 1]))
    assert torch.equal(edges, torch.tensor([[1, 0, 1, 4, 3], [0, 1, 2, 3, 4]]))


@pytest.mark.parametrize(
    "arguments,error,match",
    [
        ({"pos": [[0.0, 1.0]]}, TypeError, "pos must be a torch.Tensor"),
        ({"pos": torch.zeros(4, 3, dtype=torch.long)}, TypeError, "floating point"),
        ({"pos": torch.zeros(4)}, ValueError, r"\(N, D\)"),
        ({"k": 0}, ValueError, "positive"),
        ({"k": 2.0}, TypeError, "integer"),
        ({"batch": torch.tensor([0.0, 0, 1, 1])}, TypeError, "integers"),
        ({"batch": torch.tensor([0, 1, 0, 1])}, ValueError, "sorted"),
        ({"batch": torch.tensor([0, 0, 1])}, ValueError, r"\(4,\)"),
        ({"batch": torch.tensor([-1, 0, 0, 0])}, ValueError, "non-negative"),
        ({"backend": "cuda"}, ValueError, "backend"),
    ],
)
def test_knn_graph_rejects_bad_arguments(arguments, error, match):
    kwargs = {"pos": torch.randn(4, 3), "k": 2, "batch": None, "backend": "torch", **arguments}
    with pytest.raises(error, match=match):
        knn_graph(**kwargs)


# ------------------------------------------------------------------------------------ layers, torch path


def make_layer(name, dtype=torch.float64, backend="torch", out_channels=3):
    torch.manual_seed(0)
    if name.startswith("knn"):
        layer = KNNConv(CHANNELS, out_channels, k=K + 1, aggr=name.split("-")[1], hidden_channels=6, backend=backend)
    else:
        layer = QuasiGeodesicConv(CHANNELS, out_channels, radius=1.5, hidden_channels=HIDDEN, backend=backend)
    return layer.to(dtype)


def call(layer, x, pos, normals, batch=None):
    return layer(x, pos, normals, batch) if isinstance(layer, QuasiGeodesicConv) else layer(x, pos, batch)


LAYERS = ["knn-max", "knn-mean", "knn-sum", "quasi-geodesic"]


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_output_shape_dtype_device(name, dtype):
    x, pos, normals, batch = cloud_batch(dtype=dtype)
    out = call(make_layer(name, dtype, out_channels=5), x, pos, normals, batch)
    assert out.shape == (pos.shape[0], 5) and out.dtype == dtype and out.device == pos.device
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("name", LAYERS)
def test_layer_is_permutation_equivariant_within_clouds(name):
    x, pos, normals, batch = cloud_batch()
    layer = make_layer(name)
    perm = shuffle_within_clouds(batch)
    out = call(layer, x, pos, normals, batch)
    shuffled = call(layer, x[perm], pos[perm], normals[perm], batch)
    assert_close(shuffled, out[perm], rtol=1e-10, atol=1e-12, name="f(P x)")


@pytest.mark.parametrize("name", LAYERS)
def test_batch_of_clouds_equals_clouds_alone(name):
    x, pos, normals, batch = cloud_batch()
    layer = make_layer(name)
    out = call(layer, x, pos, normals, batch)
    for b in torch.unique(batch):
        mask = batch == b
        alone = call(layer, x[mask], pos[mask], normals[mask])
        assert_close(out[mask], alone, rtol=1e-10, atol=1e-12, name=f"cloud {int(b)}")


@pytest.mark.parametrize("name", LAYERS)
def test_layer_is_translation_invariant(name):
    x, pos, normals, batch = cloud_batch()
    layer = make_layer(name)
    shift = torch.tensor([3.0, -1.0, 0.5], dtype=pos.dtype)
    shifted = call(layer, x, pos + shift, normals, batch)
    assert_close(shifted, call(layer, x, pos, normals, batch), rtol=1e-9, atol=1e-11)


def test_quasi_geodesic_conv_is_rotation_invariant_and_frames_rotate():
    x, pos, normals, batch = cloud_batch()
    layer = make_layer("quasi-geodesic")
    rotation = random_rotation(pos.dtype)
    out = layer(x, pos, normals, batch)
    rotated = layer(x, pos @ rotation.T, normals @ rotation.T, batch)
    assert_close(rotated, out, rtol=1e-9, atol=1e-11, name="f(R p, R n)")
    with torch.no_grad():
        frames = layer.frames(x, pos, normals, batch)
        assert_close(layer.frames(x, pos @ rotation.T, normals @ rotation.T, batch), frames @ rotation.T, atol=1e-10)
    # (u, v, n) are the rows of a rotation, except where the tangent gradient of the potential vanishes (u
    # shrinks to 0): a lone point has no neighbour in its window; others have few at this radius.
    alone = torch.bincount(batch)[batch] == 1
    assert bool((frames[alone, :2] == 0).all())
    oriented = frames[:, 0].norm(dim=1) > 1 - 1e-6
    assert int(oriented.sum()) >= 0.8 * int((~alone).sum())
    frames = frames[oriented]
    assert_close(frames @ frames.transpose(1, 2), torch.eye(3, dtype=pos.dtype).expand_as(frames), atol=1e-6)
    assert_close(torch.det(frames), torch.ones(frames.shape[0], dtype=pos.dtype), atol=1e-6)


def naive_quasi_geodesic_conv(layer, x, pos, normals, batch):
    """The layer's formula written pair by pair with loops, from the paper's definitions (small inputs)."""
    sigma, n = layer.radius, pos.shape[0]
    normals = normals / normals.norm(dim=1, keepdim=True)

    def window(i, j):
        distance = (pos[i] - pos[j]).norm() * (2 - normals[i] @ normals[j])
        return torch.exp(-(distance**2) / (2 * sigma**2))

    potential = layer.potential(x)[:, 0]
    outputs = []
    for i in range(n):
        same = [j for j in range(n) if batch[j] == batch[i]]
        gradient = sum(window(i, j) * (potential[j] - potential[i]) * (pos[j] - pos[i]) / sigma for j in same)
        tangent = gradient - (gradient @ normals[i]) * normals[i]
        u = tangent / torch.sqrt(tangent @ tangent + 1e-12)
        v = torch.linalg.cross(normals[i], u)
        total = 0
        for j in same:
            local = torch.stack([u @ (pos[j] - pos[i]), v @ (pos[j] - pos[i]), normals[i] @ (pos[j] - pos[i])]) / sigma
            filters = layer.filter_output(torch.relu(layer.filter_hidden(local)))
            total = total + window(i, j) * filters * x[j]
        outputs.append(layer.linear(total))
    return torch.stack(outputs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quasi_geodesic_conv_matches_pairwise_definition(backend):
    x, pos, normals, batch = cloud_batch(sizes=(6, 1, 5))
    layer = make_layer("quasi-geodesic", backend=backend)
    inputs = [t.clone().requires_grad_(True) for t in (x, pos, normals)]
    out = layer(*inputs, batch)
    expected = naive_quasi_geodesic_conv(layer, *inputs, batch)
    assert_close(out, expected, rtol=1e-10, atol=1e-12, name="QuasiGeodesicConv")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=out.dtype)
    parameters = list(layer.parameters())
    grads = torch.autograd.grad((out * weights).sum(), inputs + parameters)
    reference = torch.autograd.grad((expected * weights).sum(), inputs + parameters)
    assert_gradients_close(grads, reference, 1e-10)


def naive_knn_conv(layer, x, pos, batch):
    """max/mean/sum over the brute-force neighbours of the MLP of [x_j, p_j - p_i], centre by centre."""
    source, target = brute_force_knn_graph(pos.detach(), layer.k, batch, layer.loop)
    reduce = {"max": lambda m: m.max(0).values, "mean": lambda m: m.mean(0), "sum": lambda m: m.sum(0)}[layer.aggr]
    rows = []
    for i in range(pos.shape[0]):
        j = source[target == i]
        rows.append(reduce(layer.mlp(torch.cat([x[j], pos[j] - pos[i]], dim=1))))
    return torch.stack(rows)


@pytest.mark.parametrize("name", ["knn-max", "knn-mean", "knn-sum"])
def test_knn_conv_matches_reference(name):
    x, pos, normals, batch = cloud_batch()
    layer = make_layer(name)
    assert_close(layer(x, pos, batch), naive_knn_conv(layer, x, pos, batch), rtol=1e-12, atol=1e-14)


def test_knn_conv_without_features_and_isolated_points():
    _, pos, _, batch = cloud_batch()
    layer = KNNConv(0, 2, k=3, loop=False, backend="torch").double()
    out = layer(None, pos, batch)
    isolated = torch.bincount(batch)[batch] == 1
    assert out.shape == (pos.shape[0], 2) and bool((out[isolated] == 0).all())


# --------------------------------------------------------------------------------- gradients, backends


@pytest.mark.parametrize("name", ["knn-max", "knn-mean"])
def test_knn_conv_gradcheck(name):
    x, pos, _, batch = cloud_batch(sizes=(7, 5))
    layer = make_layer(name, out_channels=2)
    inputs = (x.requires_grad_(True), pos.requires_grad_(True))
    assert torch.autograd.gradcheck(lambda x, p: layer(x, p, batch), inputs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quasi_geodesic_conv_gradcheck(backend):
    x, pos, normals, batch = cloud_batch(sizes=(5, 4))
    layer = make_layer("quasi-geodesic", backend=backend, out_channels=2)
    inputs = tuple(t.requires_grad_(True) for t in (x, pos, normals))
    assert torch.autograd.gradcheck(lambda *a: layer(*a, batch), inputs)


@needs_keops
@pytest.mark.parametrize("batched", [False, True])
def test_quasi_geodesic_conv_keops_agrees_with_torch(batched):
    """Values and gradients w.r.t. inputs and parameters, float64, to 1e-10 relative (round-off)."""
    x, pos, normals, batch = cloud_batch(sizes=(30, 2, 25) if batched else (60,), seed=3)
    batch = batch if batched else None
    results = []
    for backend in ("keops", "torch"):
        layer = make_layer("quasi-geodesic", backend=backend)
        inputs = [t.clone().requires_grad_(True) for t in (x, pos, normals)]
        out = layer(*inputs, batch)
        weights = torch.cos(torch.arange(out.numel(), dtype=out.dtype)).reshape(out.shape)
        results.append((out, torch.autograd.grad((out * weights).sum(), inputs + list(layer.parameters()))))
    (out_keops, grads_keops), (out_torch, grads_torch) = results
    assert_relative_close(out_keops, out_torch, 1e-10, name="output")
    assert_gradients_close(grads_keops, grads_torch, 1e-10)


@needs_keops
def test_knn_conv_keops_agrees_with_torch():
    x, pos, _, batch = cloud_batch()
    outputs = [make_layer("knn-max", backend=backend)(x, pos, batch) for backend in ("keops", "torch")]
    assert_close(outputs[0], outputs[1], rtol=1e-12, atol=1e-14)


@needs_keops
def test_quasi_geodesic_conv_keops_refuses_second_order():
    x, pos, normals, _ = cloud_batch(sizes=(8,))
    pos.requires_grad_(True)
    out = make_layer("quasi-geodesic", backend="keops")(x, pos, normals)
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(out.sum(), pos, create_graph=True)


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_degenerate_geometry_keeps_gradients_finite():
    """Coincident points and a constant potential (zero tangent gradient): finite gradients."""
    pos = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
    normals = torch.tensor([[0.0, 0, 1]] * 6, dtype=torch.float64)
    x = torch.ones(6, CHANNELS, dtype=torch.float64)
    with torch.autograd.detect_anomaly():
        for layer in (make_layer("quasi-geodesic"), make_layer("knn-max")):
            (grad,) = torch.autograd.grad(call(layer, x, pos, normals).sum(), pos)
            assert bool(torch.isfinite(grad).all())


# ------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "factory,error,match",
    [
        (lambda: KNNConv(3, 4, aggr="min"), ValueError, "aggr"),
        (lambda: KNNConv(3, 0), ValueError, "out_channels"),
        (lambda: KNNConv(3, 4, k=2.5), TypeError, "k must be an integer"),
        (lambda: QuasiGeodesicConv(3, 4, radius=0.0), ValueError, "radius"),
        (lambda: QuasiGeodesicConv(3, 4, radius=math.inf), ValueError, "radius"),
        (lambda: QuasiGeodesicConv(3, 4, radius=1.0, hidden_channels=0), ValueError, "hidden_channels"),
    ],
)
def test_layers_reject_bad_construction(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_layers_reject_bad_inputs():
    x, pos, normals, batch = cloud_batch(dtype=torch.float32)
    knn, qg = make_layer("knn-max", torch.float32), make_layer("quasi-geodesic", torch.float32)
    with pytest.raises(ValueError, match="x must be"):
        knn(x[:, :2], pos, batch)
    with pytest.raises(ValueError, match=r"pos must be \(N, 3\)"):
        knn(x, pos[:, :2], batch)
    with pytest.raises(ValueError, match="dtype"):
        knn(x.double(), pos, batch)
    with pytest.raises(ValueError, match="normals must both be"):
        qg(x, pos, normals[:, :2], batch)
    with pytest.raises(ValueError, match="sorted"):
        qg(x, pos, normals, batch.flip(0))
    with pytest.raises(TypeError, match="normals must be a torch.Tensor"):
        qg(x, pos, normals.tolist(), batch)
