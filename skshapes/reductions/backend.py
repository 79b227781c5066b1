"""Backend choice for the reductions over point pairs: dense torch, KeOps or a KD-tree, per operation.

Every reduction of this package takes ``backend="auto" | "torch" | "keops"``
(and ``"kdtree"`` for k-nearest neighbours in 1D-3D on the CPU).
``"auto"`` is resolved by :func:`choose_backend` from the table
:data:`THRESHOLDS`: for a device type and an operation, an ordered list of
:class:`Rule` s, the first one that applies wins. A rule applies when its
backend works here (KeOps imports and compiles; a KD-tree needs CPU tensors
in at most 3 dimensions) and the problem is large enough: at least
``min_pairs`` point pairs N x M and at least ``min_queries`` query points N.

CPU thresholds, measured by ``benchmarks/bench_backends.py`` on the 2-core
machine of ``benchmarks/RESULTS.md`` (AMD EPYC, one torch/OpenMP thread,
float32, 3D, value + gradient, KeOps formulas compiled beforehand;
2026-11-22, load average 4-5 from other jobs, see the section "Backend
thresholds" there for the full tables):

- ``"kernel"`` (Gaussian kernel product, also LDDMM's Hamiltonian): KeOps
  from 1.0e6 pairs (N = M = 1,000). Measured: N = 300, dense 2.2 ms,
  KeOps 6.8 ms; N = 1,000, 33 ms and 23 ms; N = 3,000, 334 ms and 113 ms;
  N = 10,000, 3.8 s and 1.3 s. The dense matrix is 4 MB at the threshold.
- ``"knn"`` (k = 16): the KD-tree (``scipy.spatial.cKDTree``) from 100
  query points, whatever the number of pairs; below, KeOps from 1.0e5 pairs,
  else dense torch. Measured, N = M: N = 300, dense 2.9 ms, KeOps 1.9 ms,
  KD-tree 0.98 ms; N = 1,000, 70, 12 and 3.3 ms; N = 10,000, 5.8 s, 0.46 s
  and 0.10 s; N = 100,000, KeOps 39 s, KD-tree 1.4 s. With few queries
  against many points the tree's construction (O(M log M)) dominates:
  against M = 100,000 points, KeOps takes 0.6 / 1.9 / 5.1 ms for N = 1 / 10 /
  30 queries and the tree 78 / 78 / 79 ms; they meet between 100 and 300
  queries (36 ms against 82 ms at N = 100, 102 ms against 82 ms at N = 300)...
  hence ``min_queries``: below 100 queries the tree is never worth it.
- ``"sinkhorn"`` (``SinkhornLoss`` value + gradient, blur 0.05, scaling
  0.8): GeomLoss's online KeOps backend from 2.5e7 pairs (N = M = 5,000).
  Measured: N = 1,000, dense 0.64 s, online 1.4 s; N = 2,000, 4.6 s and 6.7
  s; N = 5,000, 36 s and 38 s. Below, the dense loop also holds four N x M
  cost matrices (400 MB at the threshold).
- ``"varifold"`` (``VarifoldLoss`` value + gradient on two spheres of N
  triangles): KeOps from 1.0e6 cell pairs. Measured: N = 320, dense 4.3 ms,
  KeOps 11 ms; N = 1,280, 67 ms and 48 ms; N = 5,120, 1.5 s and 0.6 s.

CUDA thresholds are *not* measured (no GPU on the benchmark machine): they
come from ``../shared/PEERS.md`` (KeOps's own benchmarks on an RTX 2080 Ti:
a Gaussian kernel product at 10k x 10k points takes 0.7 ms with KeOps,
about what a dense GPU product takes, and dense torch runs out of memory
from 100k points): KeOps from 1e8 pairs (10k x 10k), dense torch below.

:data:`KEOPS_MIN_PAIRS` is the CPU kernel threshold, kept for the callers
that do not name an operation (``choose_backend(backend, n, m)``).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import torch


class Rule(NamedTuple):
    """One line of :data:`THRESHOLDS`: ``backend`` for problems of at least ``min_pairs`` pairs and ``min_queries`` rows."""

    backend: str
    min_pairs: int = 0
    min_queries: int = 0


#: Operations that :func:`choose_backend` knows, and the backends each can run on.
OPERATION_BACKENDS = {
    "kernel": ("keops", "torch"),
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
        "kernel": (Rule("keops", min_pairs=4_000_000), Rule("torch")),
        "kernel-first-order": (Rule("keops", min_pairs=500_000), Rule("torch")),
        "knn": (Rule("kdtree", min_queries=120), Rule("keops", min_pairs=100_000), Rule("torch")),
        "sinkhorn": (
            Rule("multiscale", min_pairs=4_000_000),
            Rule("keops", min_pairs=25_000_000),
            Rule("torch"),
        ),
        "varifold": (Rule("keops", min_pairs=250_000), Rule("torch")),
    },
    # Not measured: from KeOps's GPU benchmarks quoted in ../shared/PEERS.md (see the module docstring).
    "cuda": {
        "kernel": (Rule("keops", min_pairs=100_000_000), Rule("torch")),
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

    Used by :func:`choose_backend` for ``"auto"`` (no exclusion), and by
    :func:`skshapes.reductions.knn` to fall back from the KD-tree (points
    that are not finite). CUDA has its own table; any other device type
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
        return device_type in ("cpu", "cuda") and (dim is None or 1 <= int(dim) <= MAX_SPATIAL_DIM) and keops_available()
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
