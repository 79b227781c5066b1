"""Turn the reStructuredText markup of skshapes' docstrings into the Markdown that mkdocs renders.

The docstrings follow numpydoc, written for Sphinx: roles (``:class:`~skshapes.LDDMM```,
``:math:`x```), double-backquote literals, ``.. math::`` blocks, citations
(``[1]_``, ``.. [1]``) and hyperlinks (```Dask <https://www.dask.org>`_``).
:func:`rst_to_markdown` rewrites them:

- a role naming an object becomes an *optional* cross-reference of mkdocs-autorefs
  (a link when the object has an API entry, plain code otherwise: never a
  broken link); names exported lazily by ``skshapes`` (``skshapes.LDDMM``) are
  resolved to the module that documents them (``skshapes.deformations.LDDMM``);
- math becomes ``\\( ... \\)`` and ``\\[ ... \\]`` for pymdownx.arithmatex (MathJax);
- the rest becomes its Markdown equivalent.

Used by the griffe extension (:mod:`griffe_rst`, on every docstring of the API
reference) and by the mkdocs hooks (:mod:`hooks`, on the examples' docstrings).
"""

from __future__ import annotations

import html
import re

#: Names exported by ``skshapes`` (lazily) -> the module that defines them; filled by :func:`set_lazy_exports`.
LAZY_EXPORTS: dict[str, str] = {}

_ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|mod|obj|exc|math|ref|term):`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", flags=re.DOTALL)
_LINK = re.compile(r"`([^`<>]+?)\s*<([^`<>]+)>`__?")
_CITATION = re.compile(r"\[(\d+)\]_")
_REFERENCE = re.compile(r"^(\s*)\.\. \[(\d+)\]\s*(.*)$")
_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def set_lazy_exports(mapping: dict[str, str]) -> None:
    """Record the lazily exported names of ``skshapes`` (its ``_LAZY`` dict)."""
    LAZY_EXPORTS.clear()
    LAZY_EXPORTS.update(mapping)


def resolve(path: str) -> str:
    """``skshapes.LDDMM.hamiltonian`` -> ``skshapes.deformations.LDDMM.hamiltonian`` (the documented path)."""
    parts = path.split(".")
    if len(parts) >= 2 and parts[0] == "skshapes" and parts[1] in LAZY_EXPORTS:
        return ".".join([LAZY_EXPORTS[parts[1]], *parts[1:]])
    return path


def _role(match: re.Match, resolver=None) -> str:
    kind, text = match.group(1), _one_line(match.group(2))
    if kind == "math":
        return rf"\({text}\)"
    title, _, target = text.partition(" <")
    if target:  # :class:`title <target>`
        target = target.rstrip(">")
    else:
        target = title
        if title.startswith("~"):
            target, title = title[1:], title[1:].rsplit(".", 1)[-1]
    target = target.lstrip("~.")
    if kind in ("func", "meth") and not title.endswith(")"):
        title += "()"
    identifier = resolver(target) if resolver is not None else resolve(target)
    return f'<autoref identifier="{html.escape(identifier)}" optional><code>{html.escape(title)}</code></autoref>'



def _inline(text: str, resolver=None) -> str:
    """Roles, literals, hyperlinks and citations of a text of one or several lines (a role may span lines).

    ``resolver(name)`` gives the full identifier of a role's target (default: :func:`resolve`).
    """
    # converted pieces are kept aside as placeholders, so that nothing inside them is touched again
    kept: list[str] = []

    def keep(piece: str) -> str:
        kept.append(piece)
        return f"\x00{len(kept) - 1}\x00"

    def role(match: re.Match) -> str:
        return keep(_role(match, resolver))

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(lambda m: keep(_code_span(_one_line(m.group(1)))), text)
    text = _LINK.sub(lambda m: keep(f"[{_one_line(m.group(1))}]({m.group(2).strip()})"), text)
    text = _CITATION.sub(r"&#91;\1&#93;", text)  # [1] as entities: never read as a Markdown link
    lines = []
    for line in text.split("\n"):
        if line.strip() == "::" or line.rstrip().endswith(" ::"):  # "Example ::": the marker goes
            line = line.rstrip()[:-2].rstrip()
        elif line.rstrip().endswith("::"):  # "runs as::" + an indented literal block: "runs as:"
            line = line.rstrip()[:-1]
        lines.append(line)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], "\n".join(lines))


def _code_span(text: str) -> str:
    """A Markdown code span (its content is never read as Markdown, unlike that of a <code> tag)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _one_line(text: str) -> str:
    """A piece of inline markup that spanned lines, on one line (its line breaks become spaces)."""
    return re.sub(r"\s*\n\s*", " ", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rst_to_markdown(text: str, resolver=None) -> str:
    """The Markdown equivalent of a numpydoc docstring written in reStructuredText.

    ``resolver(name)`` gives the full identifier of a cross-reference's target, e.g. for names relative to
    the documented object (``:meth:`fit```); default: :func:`resolve`.
    """
    lines = text.splitlines()
    out: list[str] = []
    maths: list[str] = []  # display math, kept away from the inline conversion
    i = 0
    while i < len(lines):
        line = lines[i]
        math = _MATH_DIRECTIVE.match(line)
        if math:
            indent, first = math.group(1), math.group(2)
            body = [first] if first.strip() else []
            i += 1
            # the block: following lines indented more than the directive, or blank
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
                body.append(lines[i])
                i += 1
            # the placeholder carries the indentation of the first line, the block that of the others
            maths.append("\n".join(["\\[", *(indent + b.strip() for b in body if b.strip()), f"{indent}\\]"]))
            out += ["", f"{indent}\x01{len(maths) - 1}\x01", ""]
            continue
        reference = _REFERENCE.match(line)
        if reference:  # ".. [1] A. Author, ..." and its indented continuation lines
            indent, number, first = reference.groups()
            body = [first]
            i += 1
            while i < len(lines) and lines[i].strip() and _indent(lines[i]) > len(indent):
                body.append(lines[i].strip())
                i += 1
            out += [f"{indent}&#91;{number}&#93; " + " ".join(body), ""]
            continue
        out.append(line)
        i += 1
    markdown = _inline("\n".join(out), resolver)
    return re.sub("\x01(\\d+)\x01", lambda m: maths[int(m.group(1))], markdown)


def example_page(docstring: str) -> tuple[str, str]:
    """An example's docstring (a title underlined with ``=`` then paragraphs) -> (title, Markdown body)."""
    lines = docstring.strip("\n").splitlines()
    if len(lines) >= 2 and set(lines[1].strip()) == {"="}:
        title, body = lines[0].strip(), "\n".join(lines[2:])
    else:
        title, body = lines[0].strip(), "\n".join(lines[1:])
    return _inline(title), rst_to_markdown(body).strip()
