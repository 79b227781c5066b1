"""The documentation site builds with ``mkdocs build --strict`` and has its key pages.

The build runs as in a fresh clone: no pictures rendered by
``docs/gen_gallery.py`` (``$SKSHAPES_DOCS_CACHE`` points to an empty folder),
so the examples and the tutorials are never executed here. A second test
feeds the page generators of ``docs/_hooks/hooks.py`` a small cache (one
picture of an example, one executed tutorial) and checks that they show it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx", "jupytext")
MISSING = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name.split(".")[0]) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the docs need {', '.join(MISSING)}: pip install -e '.[dev]' (mkdocs and its plugins)"
)

#: Seconds the build may take (it takes about 10 s; a fresh clone in CI must stay well under 3 minutes).
BUILD_TIMEOUT = 300


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    empty_cache = tmp_path_factory.mktemp("empty_cache")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=tmp_path_factory.mktemp("cwd"),  # any working directory: every path is relative to mkdocs.yml
        env={**os.environ, "SKSHAPES_DOCS_CACHE": str(empty_cache), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True, text=True, timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    print(f"mkdocs build --strict: {time.perf_counter() - start:.1f} s")
    return out


def _page(site: Path, path: str) -> str:
    page = site / path
    assert page.is_file(), f"{path} is missing from the site"
    return page.read_text(encoding="utf-8")


def test_home_installation_and_user_guide(site):
    assert "computational anatomy" in _page(site, "index.html")
    assert "SKSHAPES_DATA" in _page(site, "installation/index.html")
    for page in ("registration", "losses", "coarse-to-fine", "atlas", "group-comparison", "deep-learning",
                 "parallel", "command-line"):
        assert "<h1" in _page(site, f"user-guide/{page}/index.html"), page


def test_api_reference_from_the_docstrings(site):
    registration = _page(site, "api/registration/index.html")
    assert 'id="skshapes.registration.Registration"' in registration
    assert "regularization_weight" in registration and "multiscale" in registration  # the numpydoc parameters
    statistics = _page(site, "api/statistics/index.html")
    for name in ("Atlas", "TangentPCA", "PermutationGLM", "GeneralizedProcrustes"):
        assert f'id="skshapes.statistics.{name}"' in statistics, name
    for page, name in [("losses", "SinkhornLoss"), ("deformations", "LDDMM"), ("reductions", "knn.knn"),
                       ("nn", "KNNConv"), ("nn", "knn_graph.knn_graph"), ("datasets", "load_faces"), ("viz", "plot")]:
        assert f'id="skshapes.{page}.{name}"' in _page(site, f"api/{page}/index.html"), (page, name)
    # the reStructuredText of the docstrings is converted: no raw roles or directives left
    for page in ("registration", "statistics", "deformations", "losses", "nn"):
        text = _page(site, f"api/{page}/index.html")
        assert ":class:`" not in text and ".. math::" not in text and ":math:`" not in text, page
        assert 'class="arithmatex"' in text or page == "registration", page  # math goes to MathJax
    # the table of top-level names links each one to its entry
    index = _page(site, "api/index.html")
    assert 'href="registration/#skshapes.registration.Registration"' in index
    assert 'href="deformations/#skshapes.deformations.LDDMM"' in index


def test_gallery_tutorials_and_benchmarks(site):
    gallery = _page(site, "gallery/index.html")
    for script in sorted((ROOT / "examples").glob("plot_*.py")):
        assert f"examples/{script.name}" in gallery, script.name
    assert "docs/gen_gallery.py" in gallery  # no pictures in a fresh clone: the page says how to add them
    tutorials = _page(site, "tutorials/index.html")
    for script in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        page = _page(site, f"tutorials/{script.stem}/index.html")
        assert "DATA LOCATION" in page and 'class="highlight"' in page, script.name  # text and code cells
        assert (site / "tutorials" / script.name).read_text(encoding="utf-8") == script.read_text(encoding="utf-8")
        assert f"{script.stem}/" in tutorials, script.name
    assert "Benchmark results" in _page(site, "benchmarks/index.html")  # benchmarks/RESULTS.md, included


def test_every_tutorial_is_in_the_navigation():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for script in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        assert f"tutorials/{script.stem}.md" in config, script.name


def test_pages_show_rendered_pictures_and_outputs(tmp_path, monkeypatch):
    """With a cache from docs/gen_gallery.py, the gallery shows the pictures and the tutorials their outputs."""
    import base64

    import jupytext
    import nbformat

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    (tmp_path / "gallery").mkdir()
    (tmp_path / "gallery" / "plot_rigid.png").write_bytes(png)
    (tmp_path / "tutorials").mkdir()
    notebook = jupytext.read(ROOT / "tutorials" / "01_first_registration.py")
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hello from the kernel\n"),
        nbformat.v4.new_output("stream", name="stderr", text="a warning nobody needs to read\n"),
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode()}),
    ]
    nbformat.write(notebook, tmp_path / "tutorials" / "01_first_registration.ipynb")

    spec = importlib.util.spec_from_file_location("docs_hooks_under_test", ROOT / "docs" / "_hooks" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    monkeypatch.setattr(hooks, "CACHE", tmp_path)
    hooks.rst.set_lazy_exports(hooks._lazy_exports())
    files = {}

    def add(src_uri, content=None, path=None):
        files[src_uri] = content if content is not None else Path(path).read_bytes()

    hooks._gallery(add)
    hooks._tutorials(add)
    assert files["gallery/img/plot_rigid.png"] == png
    assert "![" in files["gallery/index.md"] and "(img/plot_rigid.png)" in files["gallery/index.md"]
    assert "docs/gen_gallery.py" not in files["gallery/index.md"]  # pictures present: no note
    page = files["tutorials/01_first_registration.md"]
    assert "hello from the kernel" in page and "a warning nobody needs to read" not in page
    assert "(01_first_registration_files/figure_1.png)" in page
    assert files["tutorials/01_first_registration_files/figure_1.png"] == png


def test_rst_to_markdown():
    """The conversion of the docstrings' reStructuredText (roles, math, literals, citations, links)."""
    spec = importlib.util.spec_from_file_location("docs_rst_under_test", ROOT / "docs" / "_hooks" / "rst.py")
    rst = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rst)
    rst.set_lazy_exports({"LDDMM": "skshapes.deformations"})
    text = (
        "Fit :class:`~skshapes.LDDMM` with :math:`z_{ij} = [a,\n"
        "    b]` and ``D*D`` [1]_, see `Dask <https://www.dask.org>`_::\n"
        "\n"
        "    x : int\n"
        "        .. math:: a = b,\n"
        "                  c = d\n"
        "\n"
        ".. [1] A. Author, \"Title\",\n"
        "   Journal.\n"
    )
    markdown = rst.rst_to_markdown(text)
    assert '<autoref identifier="skshapes.deformations.LDDMM" optional><code>LDDMM</code></autoref>' in markdown
    assert r"\(z_{ij} = [a, b]\)" in markdown and "`D*D`" in markdown
    assert "&#91;1&#93;, see [Dask](https://www.dask.org):" in markdown
    assert "        \\[\n        a = b,\n        c = d\n        \\]" in markdown  # display math keeps its indentation
    assert '&#91;1&#93; A. Author, "Title", Journal.' in markdown
    assert rst.example_page("Title\n=====\n\nBody ``x``.") == ("Title", "Body `x`.")
