"""Reductions over point pairs: the only package that talks to KeOps.

Every function takes ``backend="auto" | "keops" | "torch"`` (:func:`knn` also
``"kdtree"``); see :func:`choose_backend` and :data:`THRESHOLDS` for the
measured, per-operation thresholds that ``"auto"`` uses.
"""

from .backend import (
    KEOPS_MIN_PAIRS,
    OPERATION_BACKENDS,
    THRESHOLDS,
    Rule,
    auto_backend,
    check_pair,
    choose_backend,
    keops_available,
    resolve_device,
)
from .batched import batched_knn, block_diagonal_ranges
from .kernels import kernel_matrix, kernel_product, scales
from .knn import knn
from .pairing import gaussian_pairing
from .quasi_geodesic import quasi_geodesic_filter, quasi_geodesic_gradient

__all__ = [
    "KEOPS_MIN_PAIRS",
    "OPERATION_BACKENDS",
    "THRESHOLDS",
    "Rule",
    "auto_backend",
    "batched_knn",
    "block_diagonal_ranges",
    "check_pair",
    "choose_backend",
    "gaussian_pairing",
    "keops_available",
    "kernel_matrix",
    "kernel_product",
    "knn",
    "quasi_geodesic_filter",
    "quasi_geodesic_gradient",
    "resolve_device",
    "scales",
]
