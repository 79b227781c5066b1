"""mkdocs hooks: the pages generated from the repository at build time.

- ``gallery/index.md``: one section per ``examples/plot_*.py``, from its docstring,
  with its picture when ``docs/gen_gallery.py`` has rendered it into
  ``docs/_cache/gallery/`` (the build never runs an example: a fresh clone
  builds in seconds, and the page then says how to add the pictures), and
  its source, folded.
- ``tutorials/index.md`` and ``tutorials/<name>.md``: each ``tutorials/*.py``
  (jupytext percent scripts) as a page, markdown cells as text and code cells
  as code; with the outputs (figures, tables, printed text) of an executed
  copy of the notebook when ``docs/gen_gallery.py --tutorials`` left one in
  ``docs/_cache/tutorials/``. The script itself is offered for download.
- ``api/index.md``: the table of the names exported by ``skshapes``, from its
  ``_LAZY`` dict, each linked to its entry in the API reference.
"""

from __future__ import annotations

import ast
import base64
import html
import os
import sys
from pathlib import Path

from mkdocs.structure.files import File

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rst  # noqa: E402  (this folder is not a package)

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
#: Pictures and executed notebooks from docs/gen_gallery.py; $SKSHAPES_DOCS_CACHE overrides (the tests use it).
CACHE = Path(os.environ.get("SKSHAPES_DOCS_CACHE", DOCS / "_cache"))
EXAMPLES = ROOT / "examples"
TUTORIALS = ROOT / "tutorials"

#: Order of the gallery: models, then losses, then population analyses; examples not listed come last.
GALLERY_ORDER = (
    "plot_rigid", "plot_similarity", "plot_affine", "plot_lddmm",
    "plot_loss_sinkhorn", "plot_loss_nearest_neighbors", "plot_loss_l2", "plot_loss_landmarks",
    "plot_loss_varifold", "plot_loss_currents",
    "plot_atlas_tangent_pca", "plot_atlas_dask", "plot_nn_dysmorphic",
)

#: Where each module's page is in the API reference (for the table of top-level names).
API_PAGES = {
    "skshapes.shapes": "api/shapes.md",
    "skshapes.losses": "api/losses.md",
    "skshapes.deformations": "api/deformations.md",
    "skshapes.registration": "api/registration.md",
    "skshapes.statistics": "api/statistics.md",
    "skshapes.viz": "api/viz.md",
}


def _lazy_exports() -> dict:
    source = ROOT / "skshapes" / "__init__.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no _LAZY dict in {source}")


def on_config(config):
    rst.set_lazy_exports(_lazy_exports())
    # griffe loads extension files relative to the working directory: make ours relative to mkdocs.yml
    root = Path(config.config_file_path).resolve().parent
    mkdocstrings = config.plugins.get("mkdocstrings")
    if mkdocstrings is not None:
        options = mkdocstrings.config.get("handlers", {}).get("python", {}).get("options", {})
        options["extensions"] = [
            str(root / ext) if isinstance(ext, str) and ext.endswith(".py") and (root / ext).is_file() else ext
            for ext in options.get("extensions", [])
        ]
    return config


def on_files(files, config):
    def add(src_uri, content=None, path=None):
        if content is not None:
            files.append(File.generated(config, src_uri, content=content))
        else:
            files.append(File.generated(config, src_uri, abs_src_path=str(path)))

    _gallery(add)
    _tutorials(add)
    add("api/index.md", _api_index())
    return files


# ------------------------------------------------------------------ gallery
def _gallery(add) -> None:
    scripts = sorted(EXAMPLES.glob("plot_*.py"),
                     key=lambda s: (GALLERY_ORDER.index(s.stem) if s.stem in GALLERY_ORDER else len(GALLERY_ORDER),
                                    s.stem))
    images = CACHE / "gallery"
    have_images = any((images / f"{s.stem}.png").is_file() for s in scripts)
    parts = [
        "# Examples gallery",
        "",
        "One short script per deformation model, per data term and per population analysis, on the bundled "
        "data (2D hominid skull outlines, 3D faces in millimetres). Each one writes a picture; where a known "
        "answer exists, it prints the value it recovers next to the true one. Run one from the repository "
        "root:",
        "",
        "```bash",
        ".venv/bin/python examples/plot_rigid.py              # writes examples/_out/plot_rigid.png",
        ".venv/bin/python examples/plot_rigid.py --fast --out DIR   # smaller shapes, fewer iterations",
        "```",
        "",
    ]
    if not have_images:
        parts += [
            '!!! note "Pictures"',
            "    This build has no pictures of the examples: render them with "
            "`.venv/bin/python docs/gen_gallery.py` (all the examples in their fast mode, a few minutes), "
            "then build again.",
            "",
        ]
    parts += [f"- [{_title(s)}](#{s.stem.replace('_', '-')})" for s in scripts] + [""]
    for script in scripts:
        title, body = rst.example_page(ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or script.stem)
        parts += [f"## {title} {{#{script.stem.replace('_', '-')}}}", "", f"`examples/{script.name}`", ""]
        image = images / f"{script.stem}.png"
        if image.is_file():
            add(f"gallery/img/{script.stem}.png", path=image)
            parts += [f"![{html.escape(title)}](img/{script.stem}.png)", ""]
        parts += [body, "", f'??? example "Source: {script.name}"', "", "    ```python"]
        parts += [f"    {line}" if line else "" for line in script.read_text(encoding="utf-8").splitlines()]
        parts += ["    ```", ""]
    add("gallery/index.md", "\n".join(parts))


def _title(script: Path) -> str:
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or script.stem
    return rst.example_page(docstring)[0]


# ---------------------------------------------------------------- tutorials
def _tutorials(add) -> None:
    import jupytext

    scripts = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
    index = [
        "# Tutorials",
        "",
        "Step-by-step notebooks for clinicians and researchers: every step explained in plain language, every "
        "figure shown, nothing to change but the data folder. Each runs in about a minute on a laptop, "
        "without a graphics card.",
        "",
        "Run one as a notebook (the `.py` files are [jupytext](https://jupytext.readthedocs.io) notebooks):",
        "",
        "```bash",
        "cd tutorials",
        "../.venv/bin/jupytext --to ipynb 01_first_registration.py   # or open the .py in Jupyter / VS Code",
        "../.venv/bin/python 01_first_registration.py                 # or as a plain script",
        "```",
        "",
    ]
    for script in scripts:
        notebook = jupytext.read(script)
        executed = CACHE / "tutorials" / f"{script.stem}.ipynb"
        if executed.is_file():
            import nbformat

            notebook = nbformat.read(executed, as_version=4)
        title = notebook.cells[0].source.splitlines()[0].lstrip("# ").strip()
        index.append(f"- [{title}]({script.stem}.md)")
        add(f"tutorials/{script.stem}.py", script.read_text(encoding="utf-8"))
        add(f"tutorials/{script.stem}.md", _notebook_page(notebook, script, executed.is_file(), add))
    add("tutorials/index.md", "\n".join(index) + "\n")


def _notebook_page(notebook, script: Path, executed: bool, add) -> str:
    parts = []
    n_images = 0
    for k, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts += [cell.source, ""]
            if k == 0:
                parts += [f"[:material-download: Download the notebook script `{script.name}`]({script.name})"
                          + ("" if executed else " (this page shows the code; run it to see the figures)"), ""]
            continue
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        parts += ["```python", cell.source, "```", ""]
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream" and output.get("name") == "stdout":  # not stderr: library warnings, VTK's logs
                parts += ["```text", output.get("text", "").rstrip("\n"), "```", ""]
            elif kind in ("display_data", "execute_result"):
                data = output.get("data", {})
                if "image/png" in data:
                    n_images += 1
                    name = f"{script.stem}_files/figure_{n_images}.png"
                    add(f"tutorials/{name}", content=base64.b64decode(data["image/png"]))
                    parts += [f"![figure {n_images}]({name})", ""]
                elif "text/html" in data:
                    parts += ['<div class="notebook-output" markdown="0">', data["text/html"], "</div>", ""]
                elif "text/plain" in data:
                    parts += ["```text", data["text/plain"], "```", ""]
            elif kind == "error":
                parts += ["```text", f"{output.get('ename')}: {output.get('evalue')}", "```", ""]
    return "\n".join(parts)


# -------------------------------------------------------------- API index
def _api_index() -> str:
    lazy = _lazy_exports()
    rows = []
    for name in sorted(lazy, key=str.lower):
        module = lazy[name]
        page = API_PAGES.get(module)
        link = f"[`{name}`][{module}.{name}]" if page else f"`{name}`"
        rows.append(f"| {link} | `{module}` |")
    return "\n".join([
        "# API reference",
        "",
        "`import skshapes as sks` gives these names directly (`sks.Registration`, `sks.LDDMM`...); each is "
        "documented in the page of the module that defines it. The subpackages (`sks.reductions`, `sks.nn`, "
        "`sks.datasets`, `sks.viz`...) are imported on first use.",
        "",
        "| name | defined in |",
        "|---|---|",
        *rows,
        "",
        "Modules: [shapes](shapes.md) · [registration](registration.md) · [deformations](deformations.md) · "
        "[losses](losses.md) · [reductions](reductions.md) · [statistics](statistics.md) · [nn](nn.md) · "
        "[datasets](datasets.md) · [viz](viz.md) · [features](features.md) · [optimization](optimization.md) · "
        "[command line](cli.md)",
        "",
    ])
