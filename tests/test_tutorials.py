"""The tutorials (``tutorials/*.py``) run top to bottom as notebooks and show their figures.

Each tutorial is a jupytext "percent" script. It is converted to a notebook
(jupytext), executed by a Jupyter kernel of this Python (nbclient, ``python3``
kernel from the virtual environment) in a temporary folder, the way a reader
runs it, and then checked:

- no cell raised an error;
- every picture the tutorial saved is a real picture (not blank) and is
  displayed in the notebook as a PNG output;
- the numbers it reports support what its text says: a final cell added by
  the test prints the tutorial's ``summary`` dict as JSON.

The tutorials take 20 to 90 s each on two busy cores; each cell may take
:data:`CELL_TIMEOUT` seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

jupytext = pytest.importorskip("jupytext", reason="the tutorial tests need jupytext (pip install -e '.[dev]')")
nbclient = pytest.importorskip("nbclient", reason="the tutorial tests need nbclient (pip install -e '.[dev]')")
pytest.importorskip("ipykernel", reason="the tutorial tests need ipykernel (pip install -e '.[dev]')")
nbformat = pytest.importorskip("nbformat")

from test_examples import assert_real_picture  # noqa: E402  (tests/ is on sys.path under pytest)

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT = 600

#: Appended to every tutorial: its ``summary`` dict, as one JSON line tagged for the test to find.
SUMMARY_CELL = 'import json\nprint("SUMMARY=" + json.dumps(summary, default=float))'


def _first_registration(s):
    median = s["median_mm"]
    assert median["as acquired"] > 50.0, s  # the posed scan is far from the template
    assert median["after rigid registration"] < 6.0, s  # the pose is removed...
    assert median["template after LDDMM"] < 0.5 * median["template before LDDMM"], s  # ...then the anatomy
    assert median["template after LDDMM"] < 1.0, s
    assert s["vertex_error_after_mm"] < 0.5 * s["vertex_error_before_mm"], s  # the right places, not only the surface
    assert 30.0 < s["rotation_degrees"] < 60.0, s  # our 30 degrees plus the scan's own ~16


def _average_skull(s):
    assert s["atlas_data_term"] < s["initial_data_term"], s  # the atlas fits the skulls better than the schematic start
    ratios = np.asarray(s["explained_variance_ratio"])
    assert (ratios > 0).all() and ratios.sum() <= 1 + 1e-9 and (np.diff(ratios) <= 0).all(), s
    assert ratios[0] > 0.5, s  # one dominant mode on these five skulls
    assert s["mode_displacements"][0] > s["mode_displacements"][1] > 0.0, s
    scores = s["mode_1_scores"]  # mode 1 puts the two oldest species on one side, the two most recent on the other
    assert np.sign(scores["australopithecus"]) == np.sign(scores["habilis"]) != np.sign(scores["sapiens"]), s
    assert np.sign(scores["neandertalis"]) == np.sign(scores["sapiens"]), s


def _group_comparison(s):
    assert s["n_significant"] > 20, s  # the syndrome is found...
    assert s["false_positives"] <= 2, s  # ...where it is (FWER at 5 %: very few vertices outside the true region)
    assert s["dice"] > 0.4, s
    assert s["effect_min_mm"] < -1.0, s  # a retrusion: inwards, in millimetres
    assert s["null_n_significant"] <= 2, s  # and nothing is found without a syndrome


CHECKS = {
    "01_first_registration": _first_registration,
    "02_average_skull": _average_skull,
    "03_group_comparison": _group_comparison,
}


def test_every_tutorial_is_checked():
    assert sorted(CHECKS) == [script.stem for script in SCRIPTS]


def test_tutorials_are_percent_scripts_with_one_marked_data_location():
    """Jupytext percent format with a python3 kernel, markdown cells that explain, one marked line to edit."""
    for script in SCRIPTS:
        notebook = jupytext.read(script)
        assert notebook.metadata["kernelspec"]["name"] == "python3", script.name
        kinds = [cell.cell_type for cell in notebook.cells]
        assert kinds[0] == "markdown" and kinds.count("markdown") >= 8, (script.name, kinds)
        assert notebook.cells[0].source.startswith("# "), script.name  # a title
        text = script.read_text(encoding="utf-8")
        assert text.count("## ✏️ DATA LOCATION") == 1 and text.count("DATA_DIR = None  # ✏️") == 1, script.name


def _execute(script: Path, workdir: Path):
    notebook = jupytext.read(script)
    notebook.cells.append(nbformat.v4.new_code_cell(SUMMARY_CELL))
    client = nbclient.NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    nbformat.write(notebook, workdir / f"{script.stem}.ipynb")  # kept for a failing test's inspection
    return notebook


def _errors(notebook):
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found.append(f"cell {index}: {output.ename}: {output.evalue}")
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_tutorial_runs_as_a_notebook(script, tmp_path):
    notebook = _execute(script, tmp_path)
    assert not _errors(notebook), "\n".join(_errors(notebook))
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    summary_lines = [line for line in printed.splitlines() if line.startswith("SUMMARY=")]
    assert len(summary_lines) == 1, printed[-2000:]
    summary = json.loads(summary_lines[0][len("SUMMARY="):])

    # every saved figure is a real picture, shown in the notebook
    figures = [tmp_path / name for name in summary["figures"]]
    assert len(figures) >= 3, summary["figures"]
    for figure in figures:
        assert_real_picture(figure)
    shown = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(shown) >= len(figures), f"{len(shown)} pictures displayed, {len(figures)} saved"

    CHECKS[script.stem](summary)


def test_kernel_is_this_python(tmp_path):
    """The notebooks run in the kernel of this environment (with skshapes), not in another Python on the PATH."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, skshapes\nprint(sys.prefix)")])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert notebook.cells[0].outputs[0]["text"].strip() == sys.prefix
