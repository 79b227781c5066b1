"""Choice between KeOps symbolic reductions and dense torch, behind one ``backend`` switch.

``backend="auto"`` uses KeOps when pykeops is importable and compiles, and the
problem has at least :data:`KEOPS_MIN_PAIRS` point pairs (N x M); below that,
dense torch is faster (no compilation, no launch overhead) and its N x M
matrices are small (4e6 pairs = 16 MB in float32). The threshold comes from
the timings in ``../shared/PEERS.md`` on the 2-core CI machine: a Gaussian
kernel product takes 19 ms with KeOps against 36 ms dense at 2k x 2k, and
0.5 s against 1.1 s at 10k x 10k; below ~1k x 1k the dense product wins.
"""

from __future__ import annotations

import functools
import warnings

import torch

#: Smallest number of point pairs N * M for which ``backend="auto"`` picks KeOps.
KEOPS_MIN_PAIRS = 4_000_000

BACKENDS = ("auto", "keops", "torch")


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


def choose_backend(backend: str, n: int, m: int) -> str:
    """Resolve ``backend`` to ``"keops"`` or ``"torch"`` for an N x M reduction.

    Raises
    ------
    ValueError
        If ``backend`` is not one of ``"auto"``, ``"keops"``, ``"torch"``.
    ImportError
        If ``backend="keops"`` is asked for and pykeops does not work here.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "keops":
        if not keops_available():
            raise ImportError("backend='keops' needs a working pykeops (pip install pykeops, and a C++ compiler)")
        return "keops"
    return "keops" if n * m >= KEOPS_MIN_PAIRS and keops_available() else "torch"


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
