"""Reductions over point pairs: the only package that talks to KeOps.

Every function takes ``backend="auto" | "keops" | "torch"``; see
:func:`choose_backend` for the threshold that ``"auto"`` uses.
"""

from .backend import KEOPS_MIN_PAIRS, check_pair, choose_backend, keops_available, resolve_device
from .kernels import kernel_matrix, kernel_product, scales
from .knn import knn
from .pairing import gaussian_pairing

__all__ = [
    "KEOPS_MIN_PAIRS",
    "check_pair",
    "choose_backend",
    "gaussian_pairing",
    "kernel_matrix",
    "kernel_product",
    "keops_available",
    "knn",
    "resolve_device",
    "scales",
]
