"""PointNet++-style point convolution over the k nearest neighbours."""

from __future__ import annotations

from numbers import Integral

import torch
from torch import nn

from ..reductions.batched import check_batch, check_points
from .knn_graph import knn_graph

AGGREGATIONS = {"max": "amax", "mean": "mean", "sum": "sum"}


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


class KNNConv(nn.Module):
    r"""Point convolution over the ``k`` nearest neighbours, PointNet++'s local "set abstraction" [1]_.

    .. math::

        x_i' = \mathop{\square}_{j \in \mathcal{N}_k(i)}
        h_\Theta\big([\,x_j,\; p_j - p_i\,]\big),

    where :math:`\mathcal{N}_k(i)` are the ``k`` nearest points of
    :math:`p_i` in its own cloud (:func:`~skshapes.nn.knn_graph`, the point
    itself included when ``loop=True``), :math:`h_\Theta` is the MLP
    ``Linear(C + D, hidden) - ReLU - Linear(hidden, out)`` of the neighbour's
    features and of its position relative to the centre, and
    :math:`\square` is the max, mean or sum over the neighbours. This is
    PyTorch Geometric's ``PointNetConv`` without ``global_nn``, on a kNN
    graph instead of a radius graph. The output is invariant to translations
    of ``pos`` and equivariant to permutations of the points.

    Parameters
    ----------
    in_channels : int
        Number C of input features per point; 0 for none (then ``x=None``
        and the messages see the relative positions only).
    out_channels : int
        Number of output features per point.
    k : int
        Number of neighbours (default 16). Points of a cloud with fewer
        points see the whole cloud (see :func:`~skshapes.nn.knn_graph`).
    aggr : {"max", "mean", "sum"}
        Aggregation over the neighbours (default "max", as in PointNet++).
        A point with no neighbour (a single-point cloud with ``loop=False``)
        gets zeros.
    hidden_channels : int, optional
        Width of the MLP's hidden layer; default ``out_channels``.
    dim : int
        Dimension D of the points (default 3).
    loop : bool
        Whether a point is one of its own neighbours (default True, as
        PointNet++'s ball query contains the centre).
    backend : {"auto", "keops", "torch"}
        Backend of the neighbour search, see :func:`~skshapes.nn.knn_graph`.
        The messages themselves are gathered and reduced with torch
        (memory O(N k (C + D + hidden + out))).

    Shapes
    ------
    - x: (N, C), or None when ``in_channels == 0``
    - pos: (N, D)
    - batch: (N,) int64, sorted, optional
    - output: (N, out_channels), dtype and device of ``pos``

    Raises
    ------
    TypeError, ValueError
        At construction, on a non-integer or non-positive size or an unknown
        ``aggr``; in :meth:`forward`, on inputs of the wrong type, shape,
        dtype or device.

    References
    ----------
    .. [1] C. R. Qi, L. Yi, H. Su, L. J. Guibas, "PointNet++: Deep
       hierarchical feature learning on point sets in a metric space",
       NeurIPS 2017.

    Examples
    --------
    >>> conv = KNNConv(4, 8, k=5)
    >>> pos, x = torch.randn(100, 3), torch.randn(100, 4)
    >>> conv(x, pos, batch=torch.repeat_interleave(torch.arange(2), 50)).shape
    torch.Size([100, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        k: int = 16,
        aggr: str = "max",
        hidden_channels: int | None = None,
        dim: int = 3,
        loop: bool = True,
        backend: str = "auto",
    ):
        super().__init__()
        _check_positive_int(in_channels, "in_channels", minimum=0)
        _check_positive_int(out_channels, "out_channels")
        _check_positive_int(k, "k")
        _check_positive_int(dim, "dim")
        if hidden_channels is not None:
            _check_positive_int(hidden_channels, "hidden_channels")
        if aggr not in AGGREGATIONS:
            raise ValueError(f"aggr must be one of {tuple(AGGREGATIONS)}, got {aggr!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.k = k
        self.aggr = aggr
        self.hidden_channels = hidden_channels
        self.dim = dim
        self.loop = loop
        self.backend = backend
        hidden = out_channels if hidden_channels is None else hidden_channels
        self.mlp = nn.Sequential(nn.Linear(in_channels + dim, hidden), nn.ReLU(), nn.Linear(hidden, out_channels))

    def forward(self, x, pos, batch=None) -> torch.Tensor:
        """Aggregate the messages of the ``k`` nearest neighbours; see the class docstring for shapes."""
        check_points(pos, "pos")
        n = pos.shape[0]
        if pos.shape[1] != self.dim:
            raise ValueError(f"pos must be (N, {self.dim}), got {tuple(pos.shape)}")
        if x is None:
            if self.in_channels:
                raise ValueError(f"x is None, but the layer expects {self.in_channels} input channels")
        else:
            check_points(x, "x")
            if x.shape != (n, self.in_channels):
                raise ValueError(f"x must be ({n}, {self.in_channels}), got {tuple(x.shape)}")
            if x.device != pos.device or x.dtype != pos.dtype:
                raise ValueError(
                    f"x and pos differ in device or dtype ({x.device}, {x.dtype} vs {pos.device}, {pos.dtype})"
                )
        batch = check_batch(batch, n, pos.device)
        source, target = knn_graph(pos, self.k, batch=batch, loop=self.loop, backend=self.backend)
        offsets = pos[source] - pos[target]
        messages = self.mlp(offsets if x is None else torch.cat([x[source], offsets], dim=1))
        index = target[:, None].expand_as(messages)
        out = messages.new_zeros(n, self.out_channels)
        return out.scatter_reduce(0, index, messages, reduce=AGGREGATIONS[self.aggr], include_self=False)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, k={self.k}, aggr={self.aggr!r}, loop={self.loop}"
