"""Small helpers shared by every layer."""

from __future__ import annotations

import inspect


def params_repr(obj) -> str:
    """``ClassName(arg=value, ...)`` from the constructor arguments stored under their own names."""
    names = [p for p in inspect.signature(type(obj).__init__).parameters if p not in ("self", "args", "kwargs")]
    args = ", ".join(f"{name}={getattr(obj, name)!r}" for name in names if hasattr(obj, name))
    return f"{type(obj).__name__}({args})"
