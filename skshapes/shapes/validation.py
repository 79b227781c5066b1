"""Small validators that turn user input into tensors or raise a clear error.

Each ``check_*`` function takes the value and the name of the argument it came
from, so that the message names the field (PyVista's ``_validation`` style).
Types that are wrong raise :class:`TypeError`; values and shapes that are
wrong raise :class:`ValueError`. Inputs are always copied: the caller's
arrays are never modified.
"""

from __future__ import annotations

import numpy as np
import torch

_FLOAT_DTYPES = (torch.float32, torch.float64)


def as_tensor(value, name: str) -> torch.Tensor:
    """Copy a numpy array, a tensor or a nested sequence into a new tensor.

    Raises
    ------
    TypeError
        If ``value`` cannot be read as a numeric array.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone() if not value.requires_grad else value.clone()
    try:
        array = np.array(value)  # np.array copies, so later edits never reach the caller
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be an array-like of numbers, got {type(value).__name__}") from error
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold numbers, got dtype {array.dtype}")
    return torch.from_numpy(array)


def check_points(points, name: str = "points") -> torch.Tensor:
    """Validate a point array of shape (N, D), D in {2, 3}, finite, non-empty.

    float32 is the default: integer coordinates and nested Python sequences
    of floats become float32 (as with :func:`torch.tensor`); float64 arrays
    and tensors are kept as they are (float64 is opt-in).

    Raises
    ------
    TypeError
        If ``points`` is not numeric.
    ValueError
        If it is empty, not (N, 2) or (N, 3), or holds NaN or inf.
    """
    tensor = as_tensor(points, name)
    if tensor.dtype == torch.float64 and not isinstance(points, (np.ndarray, torch.Tensor)):
        tensor = tensor.to(torch.float32)  # a list of Python floats carries no dtype: the default applies
    if tensor.dtype not in _FLOAT_DTYPES:
        if tensor.is_complex():
            raise TypeError(f"{name} must be real, got dtype {tensor.dtype}")
        tensor = tensor.to(torch.float32)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty: a shape needs at least one point")
    if tensor.shape[1] not in (2, 3):
        raise ValueError(f"{name} must be 2D or 3D (shape (N, 2) or (N, 3)), got dimension {tensor.shape[1]}")
    if not torch.isfinite(tensor).all():
        n_bad = int((~torch.isfinite(tensor)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or inf values ({n_bad} points affected)")
    return tensor


def check_cells(cells, n_points: int, n_vertices: int, name: str, device=None) -> torch.Tensor | None:
    """Validate a connectivity array of shape (C, n_vertices) of int64 vertex indices.

    ``None`` and empty arrays give ``None`` (no cells of that kind).

    Raises
    ------
    TypeError
        If the array is not numeric.
    ValueError
        If it holds non-integer values (float arrays are refused even when
        integral, as they usually mean a mix-up of points and cells), has the
        wrong shape, or an index outside ``[0, n_points)``.
    """
    if cells is None:
        return None
    tensor = as_tensor(cells, name)
    if tensor.numel() == 0:
        return None
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer vertex indices, got dtype {tensor.dtype}")
    if tensor.ndim != 2 or tensor.shape[1] != n_vertices:
        raise ValueError(f"{name} must have shape (C, {n_vertices}), got shape {tuple(tensor.shape)}")
    tensor = tensor.to(torch.int64)
    low, high = int(tensor.min()), int(tensor.max())
    if low < 0 or high >= n_points:
        raise ValueError(f"{name} has vertex indices out of range: found [{low}, {high}] for {n_points} points")
    return tensor.to(device) if device is not None else tensor


def check_landmarks(landmarks, n_points: int, device=None) -> torch.Tensor | None:
    """Validate landmark vertex indices, shape (L,), each in ``[0, n_points)``.

    Raises
    ------
    ValueError
        If the indices are not integers, not one-dimensional, or out of range.
    """
    if landmarks is None:
        return None
    tensor = as_tensor(landmarks, "landmarks")
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"landmarks must be integer vertex indices, got dtype {tensor.dtype}")
    if tensor.ndim != 1:
        raise ValueError(f"landmarks must have shape (L,), got shape {tuple(tensor.shape)}")
    tensor = tensor.to(torch.int64)
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= n_points):
        raise ValueError(f"landmarks has vertex indices out of range for {n_points} points")
    return tensor.to(device) if device is not None else tensor


def check_point_data(point_data, n_points: int, device=None) -> dict:
    """Validate a dict of per-point arrays, each with first dimension N.

    Raises
    ------
    TypeError
        If ``point_data`` is not a mapping or a value is not numeric.
    ValueError
        If an array does not have N rows.
    """
    if point_data is None:
        return {}
    if not hasattr(point_data, "items"):
        raise TypeError(f"point_data must be a dict of arrays, got {type(point_data).__name__}")
    checked = {}
    for key, value in point_data.items():
        tensor = as_tensor(value, f"point_data[{key!r}]")
        if tensor.ndim == 0 or tensor.shape[0] != n_points:
            raise ValueError(
                f"point_data[{key!r}] must have {n_points} rows (one per point), got shape {tuple(tensor.shape)}"
            )
        checked[str(key)] = tensor.to(device) if device is not None else tensor
    return checked


def check_same_space(a, b, names=("source", "target")) -> None:
    """Check that two shapes live in the same dimension, on the same device, with the same dtype.

    Raises
    ------
    TypeError
        If either is not a :class:`~skshapes.PolyData`.
    ValueError
        If dimensions, devices or dtypes differ.
    """
    from .polydata import PolyData

    for shape, name in zip((a, b), names):
        if not isinstance(shape, PolyData):
            raise TypeError(f"{name} must be a skshapes.PolyData, got {type(shape).__name__}")
    if a.dim != b.dim:
        raise ValueError(f"{names[0]} and {names[1]} differ in dimension: {a.dim}D vs {b.dim}D")
    if a.device != b.device:
        raise ValueError(
            f"{names[0]} and {names[1]} are on different devices ({a.device} vs {b.device}); move one with .to(device)"
        )
    if a.dtype != b.dtype:
        raise ValueError(f"{names[0]} and {names[1]} differ in dtype ({a.dtype} vs {b.dtype})")
