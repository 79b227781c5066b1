"""Griffe extension: rewrite the reStructuredText markup of every docstring into Markdown (see ``rst.py``).

Loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``) before the docstrings
are parsed, so that the numpydoc sections are parsed from the converted text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rst  # noqa: E402  (this folder is not a package)


class RestructuredTextToMarkdown(griffe.Extension):
    """Convert every docstring of a package once it is loaded (before its docstrings are parsed).

    Cross-references relative to the documented object (``:meth:`fit``` in a
    class, ``:func:`load_faces``` in a module) are resolved against its
    members, then those of its parents, so that they link to their entries.
    """

    def __init__(self, lazy_exports: dict | None = None) -> None:
        super().__init__()
        if lazy_exports is None:
            lazy_exports = _lazy_exports()
        rst.set_lazy_exports(lazy_exports)

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in [pkg, *_walk(pkg)]:
            if obj.docstring is not None:
                obj.docstring.value = rst.rst_to_markdown(obj.docstring.value, _resolver(obj))


def _walk(obj):
    """The objects defined in ``obj`` (not the names it imports), recursively."""
    for member in obj.members.values():
        if member.is_alias:
            continue
        yield member
        if member.is_module or member.is_class:
            yield from _walk(member)


def _resolver(obj):
    def resolve(target: str) -> str:
        if target.startswith("skshapes."):
            return rst.resolve(target)
        head = target.split(".")[0]
        scope = obj
        while scope is not None:
            member = scope.members.get(head)
            if member is not None:
                base = member.target_path if member.is_alias else member.path
                return ".".join([base, *target.split(".")[1:]])
            scope = scope.parent
        if head in rst.LAZY_EXPORTS:
            return rst.resolve(f"skshapes.{target}")
        return target

    return resolve


def _lazy_exports() -> dict:
    """``skshapes._LAZY``, read from the source (the package is not imported)."""
    import ast

    source = Path(__file__).resolve().parents[2] / "skshapes" / "__init__.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}
