"""Geometric deep learning on point clouds and surfaces (PyTorch Geometric conventions).

Points of a batch of clouds are concatenated into one (N, D) tensor, with a
sorted (N,) int64 vector ``batch`` giving the cloud of every point; layers
take ``forward(x, pos, ..., batch=None)`` and never mix two clouds. Pair
reductions run on KeOps (block-diagonal ``ranges``) or dense torch, through
:mod:`skshapes.reductions`; torch_geometric is not needed.

- :func:`knn_graph`: k-nearest-neighbour graph as an ``edge_index``.
- :class:`KNNConv`: PointNet++-style point convolution over the k nearest
  neighbours (Qi et al., 2017).
- :class:`QuasiGeodesicConv`: dMaSIF's quasi-geodesic convolution on oriented
  point clouds (Sverrisson et al., 2021).
"""

from .knn_conv import KNNConv
from .knn_graph import knn_graph
from .quasi_geodesic_conv import QuasiGeodesicConv

__all__ = ["KNNConv", "QuasiGeodesicConv", "knn_graph"]
