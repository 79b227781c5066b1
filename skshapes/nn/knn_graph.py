"""k-nearest-neighbour graph of a batch of point clouds, in PyTorch Geometric's ``edge_index`` format."""

from __future__ import annotations

from numbers import Integral

import torch

from ..reductions.batched import batched_knn, check_batch, check_points


def knn_graph(pos, k: int, batch=None, loop: bool = False, backend: str = "auto") -> torch.Tensor:
    r"""Edges from each point's ``k`` nearest neighbours (within its own cloud) to the point.

    Parameters
    ----------
    pos : torch.Tensor, shape (N, D)
        Points of all the clouds, concatenated; float32 or float64, any device.
        Not differentiated (the graph is a set of indices).
    k : int
        Number of neighbours of each point, ``k >= 1``.
    batch : torch.Tensor of int64, shape (N,), optional
        Index of the cloud of every point, sorted (PyG convention: the
        points of a cloud are contiguous). ``None``: a single cloud.
    loop : bool
        Whether a point counts as its own neighbour (a self-loop edge
        ``(i, i)`` among its ``k``). With ``loop=False``, the ``k + 1``
        nearest points are searched and the point itself is left out.
    backend : {"auto", "keops", "torch"}
        ``"keops"``: one ``argKmin`` reduction over all the clouds with
        block-diagonal ``ranges``, so that the pairs of points of different
        clouds are never computed, memory O(N k). ``"torch"``: the distances
        of one cloud at a time, in row blocks of at most 16M pairs, then
        ``topk``. ``"auto"`` picks KeOps when pykeops works and the clouds
        have at least :data:`skshapes.reductions.KEOPS_MIN_PAIRS` pairs in
        all (``sum_b N_b^2``), see :func:`skshapes.reductions.choose_backend`.

    Returns
    -------
    edge_index : torch.Tensor of int64, shape (2, E)
        PyG's "source to target" convention: ``edge_index[0]`` holds the
        neighbours ``j`` (sources of the messages), ``edge_index[1]`` the
        centres ``i`` (targets), so that ``(j, i)`` is an edge when ``j`` is
        one of the ``k`` nearest neighbours of ``i``. Edges are sorted by
        centre, then by increasing distance; ties are broken arbitrarily.
        Never joins points of two clouds. On the device of ``pos``.

        A cloud of ``N_b`` points with ``N_b < k + 1`` (``loop=False``) or
        ``N_b < k`` (``loop=True``) is not an error: each of its points gets
        all the other points of its cloud (and itself if ``loop``), i.e.
        ``N_b - 1`` (or ``N_b``) edges instead of ``k``, as in
        ``torch_cluster.knn_graph``. Then ``E < k N``.

    Raises
    ------
    TypeError
        If ``pos`` is not a floating-point tensor, ``k`` not an integer, or
        ``batch`` not an integer tensor.
    ValueError
        If ``pos`` is not (N, D), ``k < 1``, or ``batch`` is not a sorted,
        non-negative (N,) vector on the device of ``pos``.
    ImportError
        If ``backend="keops"`` and pykeops does not work here.

    Examples
    --------
    >>> pos = torch.tensor([[0.0], [1.0], [3.0], [10.0], [11.0]])
    >>> knn_graph(pos, k=1, batch=torch.tensor([0, 0, 0, 1, 1]))
    tensor([[1, 0, 1, 4, 3],
            [0, 1, 2, 3, 4]])
    """
    check_points(pos, "pos")
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    batch = check_batch(batch, pos.shape[0], pos.device)
    searched = int(k) + (0 if loop else 1)
    indices, valid = batched_knn(pos, searched, batch, backend)
    centres = torch.arange(pos.shape[0], device=pos.device)[:, None].expand_as(indices)
    if not loop:
        # Drop the point itself wherever it is in its list (duplicated points
        # can put it second), then keep the first k of the others.
        valid = valid & (indices != centres)
        valid = valid & (valid.cumsum(dim=1) <= k)
    return torch.stack([indices[valid], centres[valid]])
