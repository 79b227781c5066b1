"""k-nearest neighbours on KeOps (``argKmin``) or dense torch (``topk``)."""

from __future__ import annotations

import torch

from .backend import check_pair, choose_backend

#: Rows per block on the dense path, so that it holds at most ~16M distances at once.
_DENSE_BLOCK_PAIRS = 16_000_000


def knn(x, y, k: int = 1, backend: str = "auto"):
    """The ``k`` nearest points of ``y`` for every point of ``x`` (Euclidean distance).

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
        Query points.
    y : torch.Tensor, shape (M, D)
        Reference points.
    k : int
        Number of neighbours, ``1 <= k <= M``.
    backend : {"auto", "keops", "torch"}
        See :func:`skshapes.reductions.choose_backend`.

    Returns
    -------
    distances : torch.Tensor, shape (N, k)
        Sorted increasing, dtype of ``x``. Differentiable w.r.t. ``x`` and ``y``
        (recomputed from the indices, so both backends give the same gradient).
    indices : torch.Tensor of int64, shape (N, k)
        Row indices into ``y``. Ties are broken arbitrarily.

    Raises
    ------
    ValueError
        On mismatched shapes, devices or dtypes, or k out of range.
    """
    check_pair(x, y)
    if not 1 <= int(k) <= y.shape[0]:
        raise ValueError(f"k must be in [1, {y.shape[0]}], got {k}")
    k = int(k)
    if choose_backend(backend, x.shape[0], y.shape[0]) == "keops":
        from pykeops.torch import LazyTensor

        squared = LazyTensor(x.detach()[:, None, :].contiguous()).sqdist(LazyTensor(y.detach()[None, :, :].contiguous()))
        indices = squared.argKmin(k, dim=1).long()
    else:
        indices = _dense_knn(x.detach(), y.detach(), k)
    distances = torch.linalg.norm(x[:, None, :] - y[indices], dim=-1)
    return distances, indices


def _dense_knn(x, y, k):
    block = max(1, _DENSE_BLOCK_PAIRS // y.shape[0])
    return torch.cat(
        [((xb[:, None, :] - y[None]) ** 2).sum(-1).topk(k, dim=1, largest=False).indices for xb in x.split(block)]
    )
