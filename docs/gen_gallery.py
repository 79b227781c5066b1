"""Render the pictures of the documentation: the examples' figures and the executed tutorials.

::

    .venv/bin/python docs/gen_gallery.py                    # both (about 8 minutes on 2 busy cores)
    .venv/bin/python docs/gen_gallery.py --examples         # the examples only, in their fast mode
    .venv/bin/python docs/gen_gallery.py --tutorials        # the tutorials only
    .venv/bin/python docs/gen_gallery.py --examples --full  # the examples' full mode (slower, finer pictures)
    .venv/bin/python docs/gen_gallery.py --only plot_rigid 02_average_skull

The results go to ``docs/_cache/`` (ignored by git): ``gallery/<example>.png``
and ``tutorials/<tutorial>.ipynb`` (executed, with its figures). The next
``mkdocs build`` shows them (``docs/_hooks/hooks.py``); without them the site
builds all the same, without pictures. Each example runs in its own process;
a failing one is reported and the others go on (exit status 1 at the end).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "docs" / "_cache"


def render_examples(names=None, full=False) -> list[str]:
    """Run ``examples/plot_*.py`` (fast mode unless ``full``) into ``docs/_cache/gallery``; return the failures."""
    out = CACHE / "gallery"
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    failures = []
    for script in sorted((ROOT / "examples").glob("plot_*.py")):
        if names and script.stem not in names:
            continue
        start = time.perf_counter()
        command = [sys.executable, str(script), "--out", str(out)] + ([] if full else ["--fast"])
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        print(f"{script.stem:<32} {time.perf_counter() - start:6.1f} s  {status}", flush=True)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            failures.append(script.stem)
    return failures


def render_tutorials(names=None, timeout=600) -> list[str]:
    """Execute ``tutorials/*.py`` as notebooks into ``docs/_cache/tutorials``; return the failures."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    out = CACHE / "tutorials"
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for script in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        if names and script.stem not in names:
            continue
        start = time.perf_counter()
        notebook = jupytext.read(script)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(out)}})
        client.execute()
        errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
        nbformat.write(notebook, out / f"{script.stem}.ipynb")
        status = "ok" if not errors else f"FAILED ({errors[0].ename}: {errors[0].evalue})"
        print(f"{script.stem:<32} {time.perf_counter() - start:6.1f} s  {status}", flush=True)
        if errors:
            failures.append(script.stem)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", action="store_true", help="render the examples (default: both)")
    parser.add_argument("--tutorials", action="store_true", help="execute the tutorials (default: both)")
    parser.add_argument("--full", action="store_true", help="the examples' full mode instead of --fast")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these examples or tutorials (file stems)")
    args = parser.parse_args(argv)
    both = not (args.examples or args.tutorials)
    failures = []
    if args.examples or both:
        failures += render_examples(args.only, full=args.full)
    if args.tutorials or both:
        failures += render_tutorials(args.only)
    print(f"pictures in {CACHE}" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
