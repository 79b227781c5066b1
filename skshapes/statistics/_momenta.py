"""Shared helpers of the tangent-space statistics: momentum validation and the kernel metric."""

from __future__ import annotations

import numpy as np
import torch

from ..deformations import LDDMM
from ..reductions import choose_backend, scales
from ..reductions import kernel_matrix as dense_kernel
from ..shapes import PolyData

_FLOAT_DTYPES = (torch.float32, torch.float64)


def to_tensor(value, name: str) -> torch.Tensor:
    """A numpy array, tensor or nested sequence as a floating tensor (detached; never the caller's storage).

    Integer and boolean inputs become float64; float32 and float64 tensors keep their dtype
    and device. The result may share memory with a tensor input only when it is not modified
    afterwards by the callers of this module (they never modify it in place).

    Raises
    ------
    TypeError
        If ``value`` is not numeric (strings, objects, complex numbers).
    ValueError
        If it holds NaN or inf.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}") from error
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise TypeError(f"{name} must hold numbers, got dtype {array.dtype} ({type(value).__name__})")
        tensor = torch.from_numpy(np.array(array))  # a copy: torch cannot take read-only arrays
    if tensor.is_complex():
        raise TypeError(f"{name} must be real, got dtype {tensor.dtype}")
    if tensor.dtype not in _FLOAT_DTYPES:
        tensor = tensor.to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    return tensor


def check_lddmm(model, name: str = "model") -> LDDMM:
    """Raise ``TypeError`` unless ``model`` is an :class:`~skshapes.LDDMM` (the kernel metric needs one)."""
    if not isinstance(model, LDDMM):
        raise TypeError(
            f"{name} must be an LDDMM model (its kernel defines the metric on momenta), got {type(model).__name__}"
        )
    return model


def check_polydata(shape, name: str) -> PolyData:
    """Raise ``TypeError`` unless ``shape`` is a :class:`~skshapes.PolyData`."""
    if not isinstance(shape, PolyData):
        raise TypeError(f"{name} must be a PolyData, got {type(shape).__name__}")
    return shape


def check_momentum_shape(tensor: torch.Tensor, expected: tuple, name: str, leading: str = "") -> None:
    """Raise ``ValueError`` unless ``tensor.shape`` is ``expected`` (``leading`` names extra leading axes)."""
    if tuple(tensor.shape) != tuple(expected):
        layout = f"({leading}C, D)" if leading else "(C, D)"
        raise ValueError(
            f"{name} must have shape {layout} = {tuple(expected)} (one momentum vector per control point), "
            f"got {tuple(tensor.shape)}"
        )


def kernel_metric(model: LDDMM, q: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""The kernel metric applied to momenta: :math:`K(q, q)\, b`, shape of ``b``.

    ``b`` is (C, D) or (C, ...) (several momenta side by side); the product is that of the
    model's kernel (width(s) ``sigma``, ``kernel``, ``backend``), the Gram matrix of the
    Hamiltonian :math:`\frac12 p^\top K(q, q) p` for both normalisations of :class:`LDDMM`.
    On KeOps, the columns go D at a time: one compiled formula (the one shooting uses)
    instead of one per number of columns.
    """
    flat = b.reshape(b.shape[0], -1)
    width = q.shape[1]
    if flat.shape[1] > width and choose_backend(model.backend, q.shape[0], q.shape[0]) == "keops":
        products = [model._kernel(q, q, chunk.contiguous()) for chunk in flat.split(width, dim=1)]
        return torch.cat(products, dim=1).reshape(b.shape)
    return model._kernel(q, q, flat.contiguous()).reshape(b.shape)


def kernel_matrix(model: LDDMM, q: torch.Tensor) -> torch.Tensor:
    """The dense (C, C) matrix :math:`K(q, q)` of the model's kernel (a sum over the widths ``sigma``).

    Always dense torch (the callers factorise it), with the formula of
    :func:`skshapes.reductions.kernel_product`.
    """
    return sum(dense_kernel(q / s, q / s, model.kernel) for s in scales(model.sigma))


def like_input(result: torch.Tensor, reference):
    """``result`` with the kind (tensor or numpy), dtype and device of ``reference``.

    Tensors keep their floating dtype (other dtypes give float64); numpy arrays and sequences
    give float64 numpy arrays unless they were float32.
    """
    if isinstance(reference, torch.Tensor):
        dtype = reference.dtype if reference.dtype in _FLOAT_DTYPES else torch.float64
        return result.detach().to(device=reference.device, dtype=dtype)
    dtype = np.float32 if getattr(reference, "dtype", None) == np.float32 else np.float64
    return result.detach().cpu().numpy().astype(dtype, copy=False)
