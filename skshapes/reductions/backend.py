"""Backend choice for the reductions over point pairs: dense torch, KeOps or a KD-tree, per operation.

Every reduction of this package takes ``backend="auto" | "torch" | "keops"``
(:func:`~skshapes.reductions.knn` also ``"kdtree"``, ``SinkhornLoss`` also
``"multiscale"``). ``"auto"`` is resolved by :func:`choose_backend` from the
table :data:`THRESHOLDS`: for a device type and an operation, an ordered
list of :class:`Rule` s, the first that applies wins. A rule applies when
its backend works here (KeOps imports and compiles; the KD-tree needs CPU
tensors in at most 3 dimensions; GeomLoss's multiscale Sinkhorn needs KeOps
and at most 3 dimensions) and the problem is large enough: at least
``min_pairs`` point pairs N x M and at least ``min_queries`` query points N.

CPU thresholds, measured with ``benchmarks/bench_backends.py`` (section
"Backend thresholds" of ``benchmarks/RESULTS.md``: AMD EPYC, 2 cores shared
with other jobs, one torch/OpenMP thread, float32, 3D, value + gradient,
KeOps formulas compiled beforehand, median of 3 interleaved rounds;
2026-11-22, load average 0.9-2.0). Crossovers move by up to 2x with the load
of the machine (e.g. the first-order kernel's: N = 270 at load 3.6, 640 at
load 1.8), so the thresholds are round numbers near them:

- ``"kernel"``, the default (the way LDDMM uses kernel products: the
  gradient of the Hamiltonian with ``create_graph=True``, then a backward
  pass through it): KeOps from 8e6 pairs (N = M = 2,830). Measured, dense /
  KeOps: N = 1,000: 105 / 205 ms; 2,000: 0.77 / 0.88 s; 3,000: 1.70 / 1.67 s;
  5,000: 5.2 / 4.7 s (KeOps's second derivatives compile extra formulas
  and make extra passes); the crossover is N = 2,000-3,000. Since then
  LDDMM's dense path computes Hamilton's equations in closed form
  (:func:`~skshapes.reductions.kernels.hamiltonian_equations_dense`).
  Re-measured that way (2026-11-23): dense / KeOps N = 1,000: 97 / 263 ms;
  2,000: 0.33 / 0.65 s; 3,000: 0.79 / 1.43 s; 5,000: 3.4 / 4.1 s; 10,000:
  KeOps 16.9 s (a second run: 3,000: 1.38 / 2.29 s; 5,000: 2.84 / 4.41 s);
  crossover between 5,000 and 10,000. That choice is the operation
  ``"hamiltonian"``: KeOps from 1.6e7 pairs (N = 4,000), below the speed
  crossover because the dense path keeps (C, C) matrices at every step for
  the backward pass: a 5-step shooting + backward peaks at +0.77 GB for
  2,000 control points and +2.3 GB for 4,000. ``"kernel"`` keeps 8e6 for
  ``kernel_product``, which LDDMM also uses to move the vertices carried by
  its control points. (The other
  reductions name their own operation: the varifold and currents pairings
  ``"varifold"``, ``batched_knn`` ``"knn"``, the quasi-geodesic filters
  ``"kernel-first-order"``.)
- ``"kernel-first-order"`` (``kernel_product`` then one backward pass):
  KeOps from 5e5 pairs. Measured: N = 300: 1.6 / 2.8 ms; 1,000: 32 / 24 ms;
  3,000: 0.55 / 0.21 s; 10,000: 6.6 / 2.4 s; crossover N = 640 (4e5 pairs).
- ``"knn"`` (k = 16): the KD-tree (``scipy.spatial.cKDTree``) from 120
  query points in 1D-3D on the CPU, whatever the number of pairs; else
  KeOps from 1e5 pairs, else dense torch. Measured, N = M, dense / KeOps /
  KD-tree: N = 100: 0.51 / 0.66 / 0.52 ms; 300: 1.7 / 1.3 / 1.1 ms; 1,000:
  17 / 5.2 / 3.6 ms; 10,000: 2.3 s / 175 ms / 36 ms; 100,000: - / 16 s /
  0.47 s. Against M = 100,000 points the tree's construction
  (O(M log M)) dominates for few queries: KeOps 1.0 / 5.0 / 17 / 43 ms for
  N = 1 / 30 / 100 / 300 queries, the KD-tree 22 / 22 / 22 / 25 ms;
  crossovers at N = 104 (N = M) and 145 (M = 100,000), hence
  ``min_queries=120``.
- ``"sinkhorn"`` (``SinkhornLoss`` value + gradient, two Gaussian clouds,
  blur 0.05, scaling 0.8): dense torch below 2.5e7 pairs (N = M = 5,000),
  then GeomLoss's multiscale backend in 1D-3D (``SinkhornLoss`` uses it
  for ``p=2`` only) and its online KeOps backend otherwise. Measured, dense
  / online / multiscale: N = 1,000: 0.14 / 1.5 / 0.60 s; 2,000: 0.84 /
  5.5 / 2.4 s; 5,000: 11 / 35 / 14 s; 10,000: multiscale 55 s, while the
  dense path holds 3.6 GB there (``benchmarks/bench_scaling.py``; 0.9 GB at
  5,000). The speed crossover dense -> multiscale is between 5,000 and
  10,000 points on these clouds and near 2,000 on uniform clouds at blur
  0.01 (Scaling section): the threshold caps the dense path's memory.
- ``"varifold"`` (``VarifoldLoss`` value + gradient, two spheres of N
  triangles): KeOps from 1e5 cell pairs. Measured: N = 96: 1.6 / 2.2 ms;
  286: 7.8 / 6.6 ms; 966: 82 / 49 ms; 3,040: 1.59 / 0.45 s; crossover near
  N = 200 (4e4-6e4 pairs in two runs).

CUDA thresholds are *not* measured (no GPU on the benchmark machine): KeOps
from 1e8 pairs (10k x 10k points), after ``../shared/PEERS.md`` (KeOps's
own benchmarks on an RTX 2080 Ti: a Gaussian kernel product takes 0.7 ms
at 10k x 10k points, about what a dense GPU product takes, and dense torch
runs out of memory from 100k points); for the Sinkhorn loss, GeomLoss's own
``"auto"`` (dense up to 5,000^2 pairs, multiscale above 10,000^2 in 1D-3D,
online between). No KD-tree on CUDA.

:data:`KEOPS_MIN_PAIRS` is the CPU ``"kernel"`` threshold, kept for the
callers that name no operation (``choose_backend(backend, n, m)``).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import torch


class Rule(NamedTuple):
    """A line of :data:`THRESHOLDS`: ``backend`` from ``min_pairs`` pairs N x M and ``min_queries`` query points N."""

    backend: str
    min_pairs: int = 0
    min_queries: int = 0


#: Operations that :func:`choose_backend` knows, and the backends each can run on.
OPERATION_BACKENDS = {
    "kernel": ("keops", "torch"),
    "hamiltonian": ("keops", "torch"),
    "kernel-first-order": ("keops", "torch"),
    "knn": ("keops", "torch", "kdtree"),
    "sinkhorn": ("keops", "torch", "multiscale"),
    "varifold": ("keops", "torch"),
}

#: Per device type ("cpu", "cuda") and operation, the rules of ``backend="auto"``, tried in order
#: (the first that applies wins; the last always applies). See the module docstring for the
#: measurements behind each number.
THRESHOLDS = {
    "cpu": {
        "kernel": (Rule("keops", min_pairs=8_000_000), Rule("torch")),
        "hamiltonian": (Rule("keops", min_pairs=16_000_000), Rule("torch")),
        "kernel-first-order": (Rule("keops", min_pairs=500_000), Rule("torch")),
        "knn": (Rule("kdtree", min_queries=120), Rule("keops", min_pairs=100_000), Rule("torch")),
        "sinkhorn": (
            Rule("multiscale", min_pairs=25_000_000),
            Rule("keops", min_pairs=25_000_000),
            Rule("torch"),
        ),
        "varifold": (Rule("keops", min_pairs=100_000), Rule("torch")),
    },
    # Not measured: from KeOps's GPU benchmarks quoted in ../shared/PEERS.md (see the module docstring).
    "cuda": {
        "kernel": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
        "hamiltonian": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
        "kernel-first-order": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
        "knn": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
        # GeomLoss's own "auto": tensorized up to 5000^2 pairs, multiscale above 10000^2 in 1D-3D, online between.
        "sinkhorn": (
            Rule("multiscale", min_pairs=100_000_000),
            Rule("keops", min_pairs=25_000_000),
            Rule("torch"),
        ),
        "varifold": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
    },
}

#: Smallest number of point pairs N * M for which ``backend="auto"`` picks KeOps for a kernel
#: product on the CPU (the threshold of ``choose_backend(backend, n, m)`` without an operation).
KEOPS_MIN_PAIRS = THRESHOLDS["cpu"]["kernel"][0].min_pairs

#: Backends of the kernel-type reductions (what LDDMM, the losses and the layers accept).
BACKENDS = ("auto", "keops", "torch")

#: Largest dimension for the backends that partition space, the KD-tree and GeomLoss's
#: multiscale clustering (their cost grows as 2**D).
MAX_SPATIAL_DIM = 3


@functools.lru_cache(maxsize=None)
def keops_available() -> bool:
    """Whether pykeops imports and compiles a formula on this machine (checked once, then cached)."""
    try:
        from pykeops.torch import LazyTensor

        x = torch.zeros(2, 1, 1)
        (LazyTensor(x) - LazyTensor(x.transpose(0, 1))).sum(dim=1)
        return True
    except Exception as error:  # import errors, missing compiler, CUDA mismatch...
        warnings.warn(f"pykeops is unavailable ({error}); falling back to dense torch reductions", stacklevel=2)
        return False


def choose_backend(backend: str, n: int, m: int, operation: str = "kernel", *, device=None, dim=None) -> str:
    """Resolve ``backend`` for an N x M reduction of kind ``operation``.

    Parameters
    ----------
    backend : str
        ``"auto"``, or one of ``OPERATION_BACKENDS[operation]``.
    n, m : int
        Number of query (row) points N and of reference (column) points M.
    operation : {"kernel", "kernel-first-order", "knn", "sinkhorn", "varifold"}
        Which thresholds of :data:`THRESHOLDS` apply (default ``"kernel"``,
        the behaviour of ``choose_backend(backend, n, m)``).
    device : torch.device or str, optional
        Device of the points (default: the CPU). CUDA has its own
        thresholds; the KD-tree runs on the CPU only; KeOps (and the
        multiscale Sinkhorn, which runs on KeOps) on CPU and CUDA.
    dim : int, optional
        Dimension D of the points, when known: the KD-tree and the
        multiscale Sinkhorn need D <= 3 (:data:`MAX_SPATIAL_DIM`).

    Returns
    -------
    str
        ``"torch"``, ``"keops"``, ``"kdtree"`` (operation ``"knn"``) or
        ``"multiscale"`` (operation ``"sinkhorn"``).

    Raises
    ------
    ValueError
        If ``operation`` is unknown, ``backend`` is not ``"auto"`` nor one of
        the backends of the operation (e.g. ``"kdtree"`` for a kernel
        product), ``"kdtree"`` is asked for points in more than 3
        dimensions or off the CPU, or ``"multiscale"`` in more than 3
        dimensions.
    ImportError
        If ``backend="keops"`` or ``"multiscale"`` is asked for and pykeops
        does not work here.
    """
    if operation not in OPERATION_BACKENDS:
        raise ValueError(f"operation must be one of {tuple(OPERATION_BACKENDS)}, got {operation!r}")
    allowed = ("auto", *OPERATION_BACKENDS[operation])
    if backend not in allowed:
        raise ValueError(f"backend must be one of {allowed} for operation {operation!r}, got {backend!r}")
    device_type = torch.device("cpu" if device is None else device).type
    if backend == "kdtree":
        if dim is not None and not 1 <= int(dim) <= MAX_SPATIAL_DIM:
            raise ValueError(
                f"backend='kdtree' needs points in 1 to {MAX_SPATIAL_DIM} dimensions, got D = {dim}; "
                "use 'keops' or 'torch'"
            )
        if device_type != "cpu":
            raise ValueError(f"backend='kdtree' runs on the CPU only, the points are on {device}")
        return "kdtree"
    if backend == "multiscale" and dim is not None and not 1 <= int(dim) <= MAX_SPATIAL_DIM:
        raise ValueError(f"backend='multiscale' clusters points in 1 to 3 dimensions, got D = {dim}; use 'keops'")
    if backend in ("keops", "multiscale"):
        if not keops_available():
            raise ImportError(f"backend={backend!r} needs a working pykeops (pip install pykeops, and a C++ compiler)")
        return backend
    if backend == "torch":
        return "torch"
    return auto_backend(operation, n, m, device_type, dim)


def auto_backend(operation: str, n: int, m: int, device_type: str = "cpu", dim=None, exclude=()) -> str:
    """The first rule of ``THRESHOLDS[device_type][operation]`` that applies, skipping the backends in ``exclude``.

    Used by :func:`choose_backend` for ``"auto"`` (no exclusion), by
    :func:`skshapes.reductions.knn` to fall back from the KD-tree (points
    that are not finite) and by ``SinkhornLoss`` to skip the multiscale
    backend for ``p=1``. CUDA has its own table; any other device type
    uses the CPU table. ``"torch"`` when no rule applies.
    """
    for rule in THRESHOLDS["cuda" if device_type == "cuda" else "cpu"][operation]:
        if (
            rule.backend not in exclude
            and n * m >= rule.min_pairs
            and n >= rule.min_queries
            and _runs_here(rule.backend, device_type, dim)
        ):
            return rule.backend
    return "torch"


def _runs_here(backend: str, device_type: str, dim) -> bool:
    if backend == "kdtree":
        return device_type == "cpu" and (dim is None or 1 <= int(dim) <= MAX_SPATIAL_DIM)
    if backend == "multiscale":
        low_dimensional = dim is None or 1 <= int(dim) <= MAX_SPATIAL_DIM
        return device_type in ("cpu", "cuda") and low_dimensional and keops_available()
    if backend == "keops":
        return device_type in ("cpu", "cuda") and keops_available()
    return True


def check_pair(x: torch.Tensor, y: torch.Tensor, names=("x", "y")) -> None:
    """Check that two point arrays are (N, D) and (M, D) on one device with one dtype.

    Raises
    ------
    ValueError
        If shapes, devices or dtypes do not match.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must be (N, D) and (M, D), got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.device != y.device:
        raise ValueError(f"{names[0]} and {names[1]} are on different devices ({x.device} vs {y.device})")
    if x.dtype != y.dtype:
        raise ValueError(f"{names[0]} and {names[1]} differ in dtype ({x.dtype} vs {y.dtype})")


def resolve_device(device) -> torch.device:
    """``"auto"`` gives CUDA when available, else the CPU; anything else goes to :class:`torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
