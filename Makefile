# The two commands of the README. Each creates .venv if missing and installs what it needs.
# torch is pinned to 2.13.0: on the project's machines a CPU build of it lies in /opt/wheels
# (an unpinned torch would pull a multi-GB CUDA build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
DEMO_OUT ?= demo_out

.PHONY: demo test docs bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(FIND_LINKS) torch==2.13.0
	$(PY) -m pip install --quiet $(FIND_LINKS) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skshapes demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

# The documentation site in site/ (open site/index.html), with the examples' pictures and the executed tutorials.
docs: $(STAMP)
	$(PY) docs/gen_gallery.py
	$(VENV)/bin/mkdocs build --strict

# The peers of benchmarks/ (not dependencies of the package): MeshMonk and nilearn in .venv; skshapes 0.3 shares
# our import name, so bench_lddmm.py installs it in its own virtualenv. Results: benchmarks/RESULTS.md.
bench: $(STAMP)
	$(PY) -m pip install --quiet meshmonk==0.3.0 nilearn==0.14.1
	$(PY) benchmarks/bench_sinkhorn.py
	$(PY) benchmarks/bench_glm.py
	$(PY) benchmarks/bench_nn.py
	$(PY) benchmarks/bench_correspondence.py
	$(PY) benchmarks/bench_lddmm.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache site docs/_cache
