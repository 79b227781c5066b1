"""Block-diagonal reductions over batches of point clouds (PyG batching convention).

A batch of point clouds is stored as one (N, D) array of concatenated points
and a sorted (N,) int64 vector ``batch`` that gives, for every point, the
index of its cloud (PyTorch Geometric's convention). A reduction over pairs
of points must only pair points of the same cloud: on KeOps this is the
block-diagonal ``ranges`` argument (:func:`block_diagonal_ranges`), which
skips the off-diagonal blocks entirely; on dense torch the clouds are
processed one after the other (:func:`segments`), in row blocks.
"""

from __future__ import annotations

import torch

from .backend import auto_backend, choose_backend

#: Pairs per block on the dense paths, so that one block holds at most ~16M distances at once.
DENSE_BLOCK_PAIRS = 16_000_000


def check_points(points, name: str = "pos") -> None:
    """Check that ``points`` is a floating-point torch tensor of shape (N, D).

    Raises
    ------
    TypeError
        If ``points`` is not a torch tensor, or not floating point.
    ValueError
        If it is not 2-D.
    """
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(points).__name__}")
    if not points.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {points.dtype}")
    if points.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {tuple(points.shape)}")


def check_batch(batch, n: int, device, name: str = "batch"):
    """Validate a PyG ``batch`` vector for ``n`` points; ``None`` stays ``None`` (a single cloud).

    Parameters
    ----------
    batch : torch.Tensor of int, shape (N,), or None
        Index of the cloud of every point, non-decreasing, non-negative.
    n : int
        Number of points N.
    device : torch.device
        Device of the points.

    Returns
    -------
    torch.Tensor of int64, shape (N,), or None

    Raises
    ------
    TypeError
        If ``batch`` is not a torch tensor of integers.
    ValueError
        If its shape is not (N,), it is on another device than the points,
        or it is negative or not sorted.
    """
    if batch is None:
        return None
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of int64 or None, got {type(batch).__name__}")
    if batch.is_floating_point() or batch.is_complex() or batch.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got {batch.dtype}")
    if batch.shape != (n,):
        raise ValueError(f"{name} must be ({n},), one cloud index per point, got shape {tuple(batch.shape)}")
    if batch.device != torch.device(device):
        raise ValueError(f"{name} is on {batch.device}, the points on {device}")
    batch = batch.long()
    if n and int(batch[0]) < 0:
        raise ValueError(f"{name} must be non-negative")
    if n > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(f"{name} must be sorted (points of one cloud stored contiguously, PyG convention)")
    return batch


def segments(batch, n: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` row ranges of the non-empty clouds of a sorted ``batch`` (one range if ``None``)."""
    if batch is None:
        return [(0, n)] if n else []
    ends = torch.cumsum(torch.bincount(batch), 0).tolist()
    starts = [0] + ends[:-1]
    return [(s, e) for s, e in zip(starts, ends) if e > s]


def pairs_within(batch, n: int) -> int:
    """Number of point pairs N_b^2 summed over the clouds: the size of the block-diagonal reduction."""
    if batch is None:
        return n * n
    return int((torch.bincount(batch) ** 2).sum())


def block_diagonal_ranges(batch, n: int, device=None):
    """KeOps ``ranges`` that restrict a symmetric N x N reduction to pairs of points of one cloud.

    Parameters
    ----------
    batch : torch.Tensor of int64, shape (N,), sorted, or None
    n : int
        Number of points N.
    device : torch.device, optional
        Device of the points, for ``batch=None``.

    Returns
    -------
    tuple of six torch.Tensor of int32, on the device of ``batch``
        ``(ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i)``
        as documented in :func:`pykeops.torch.cluster.from_matrix`, with the
        clouds as clusters and a diagonal ``keep`` matrix. Empty clouds are
        left out. A single cloud (``batch=None``) gets one range too rather
        than no ``ranges`` argument: KeOps compiles a formula once with
        ``ranges`` and once without, so always passing them halves the
        compilations.

    References
    ----------
    KeOps block-sparse reductions, https://www.kernel-operations.io/keops/python/sparsity.html
    """
    device = batch.device if batch is not None else device
    ranges = torch.tensor(segments(batch, n), dtype=torch.int32, device=device).reshape(-1, 2)
    slices = torch.arange(1, ranges.shape[0] + 1, dtype=torch.int32, device=device)
    return ranges, slices, ranges, ranges, slices, ranges


def batched_knn(points, k: int, batch=None, backend: str = "auto"):
    """The ``k`` nearest points of every point within its own cloud, itself included.

    Parameters
    ----------
    points : torch.Tensor, shape (N, D)
        Points of all the clouds, concatenated (float32 or float64). Not differentiated.
    k : int
        Number of neighbours, ``k >= 1``.
    batch : torch.Tensor of int64, shape (N,), sorted, optional
        Cloud of every point, already validated by :func:`check_batch`;
        ``None`` for a single cloud.
    backend : {"auto", "keops", "torch"}
        ``"auto"``: the ``"knn"`` rules of :data:`skshapes.reductions.THRESHOLDS`
        but the KD-tree's, for a problem of ``sum_b N_b^2`` pairs. ``"keops"`` runs one ``argKmin`` over all the
        clouds with block-diagonal ``ranges``; ``"torch"`` computes the
        distances cloud by cloud, in row blocks of at most
        :data:`DENSE_BLOCK_PAIRS` pairs, and ``topk``.

    Returns
    -------
    indices : torch.Tensor of int64, shape (N, k)
        Row indices into ``points``, sorted by increasing distance (so a
        point comes first in its own list, unless another point coincides
        with it); ties are broken arbitrarily.
    valid : torch.Tensor of bool, shape (N, k)
        ``valid[i, r]`` is ``r < N_b``, the size of the cloud of point ``i``:
        a cloud with fewer than ``k`` points gives each of its points only
        ``N_b`` neighbours, and the entries past them are meaningless.

    Raises
    ------
    ValueError
        If ``k < 1``.
    """
    if int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    n = points.shape[0]
    k = int(k)
    sizes = torch.full((n,), n, device=points.device) if batch is None else torch.bincount(batch)[batch]
    valid = torch.arange(k, device=points.device)[None, :] < sizes[:, None]
    if n == 0:
        return torch.zeros(0, k, dtype=torch.long, device=points.device), valid
    points = points.detach()
    pairs = pairs_within(batch, n)
    if backend == "auto":  # the KNN rules of THRESHOLDS; no KD-tree here (one tree per cloud: not written yet)
        chosen = auto_backend("knn", pairs, 1, points.device.type, points.shape[1], exclude=("kdtree",))
    else:
        chosen = choose_backend(backend, pairs, 1)  # "keops" or "torch", anything else raises
    if chosen == "keops":
        from pykeops.torch import LazyTensor

        # argKmin needs k <= N; entries past a small cloud's size are filled by KeOps, and masked by ``valid``.
        kk = min(k, n)
        squared = LazyTensor(points[:, None, :].contiguous()).sqdist(LazyTensor(points[None, :, :].contiguous()))
        found = squared.argKmin(kk, dim=1, ranges=block_diagonal_ranges(batch, n, points.device)).long()
        indices = torch.zeros(n, k, dtype=torch.long, device=points.device)
        indices[:, :kk] = found
    else:
        indices = torch.zeros(n, k, dtype=torch.long, device=points.device)
        for start, end in segments(batch, n):
            cloud = points[start:end]
            kk = min(k, end - start)
            block = max(1, DENSE_BLOCK_PAIRS // (end - start))
            for first in range(0, end - start, block):
                rows = cloud[first : first + block]
                squared = ((rows[:, None, :] - cloud[None, :, :]) ** 2).sum(-1)
                indices[start + first : start + first + rows.shape[0], :kk] = (
                    squared.topk(kk, dim=1, largest=False).indices + start
                )
    return indices.masked_fill_(~valid, 0), valid
