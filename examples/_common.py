"""Plumbing shared by the gallery examples (not an example itself).

Every example runs as::

    python examples/plot_rigid.py [--out DIR] [--fast]

- it writes ``DIR/plot_rigid.png`` (default ``examples/_out/``, ignored by git);
- ``--fast``, or the environment variable ``SKSHAPES_EXAMPLES_FAST=1``, uses
  smaller shapes and fewer iterations: the test suite runs every example
  that way (``tests/test_examples.py``);
- figures are drawn without a screen (matplotlib's Agg backend, pyvista
  off-screen);
- torch uses one CPU thread: the shapes have a few hundred points, where one
  thread is as fast as several, and far faster on a busy machine.

Each example keeps the numbers it prints in a dict named ``results``, which
the tests read.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

#: Where the figures go by default.
DEFAULT_OUT = Path(__file__).resolve().parent / "_out"
#: Set to 1 for the fast mode.
FAST_ENV = "SKSHAPES_EXAMPLES_FAST"


@dataclass
class Example:
    """The settings of one run of an example.

    Attributes
    ----------
    name : str
        The script's name without ``.py`` (``"plot_rigid"``).
    out : pathlib.Path
        Output folder (created).
    fast : bool
        Whether to run the small, quick version.
    """

    name: str
    out: Path
    fast: bool

    @property
    def figure(self) -> Path:
        """The PNG this example writes: ``out / (name + ".png")``."""
        return self.out / f"{self.name}.png"

    def pick(self, full, fast):
        """``fast`` in the fast mode, else ``full`` (iteration counts, resolutions...)."""
        return fast if self.fast else full

    def wrote(self, path) -> None:
        """Say where the figure went."""
        print(f"wrote {path}")


def setup(script: str, description: str | None = None, argv: list[str] | None = None) -> Example:
    """Parse the command line, prepare the output folder and headless plotting.

    Parameters
    ----------
    script : str
        The example's ``__file__``.
    description : str, optional
        The example's docstring (its first line is shown by ``--help``).
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).
    """
    name = Path(script).stem
    summary = (description or name).strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=summary)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--fast", action="store_true",
                        help=f"smaller shapes and fewer iterations, for tests (also: {FAST_ENV}=1)")
    # parse_known_args: sphinx-gallery and notebooks may leave their own arguments in sys.argv
    args, _ = parser.parse_known_args(argv)
    fast = args.fast or os.environ.get(FAST_ENV, "") not in ("", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    _headless()
    return Example(name=name, out=args.out, fast=fast)


def _headless() -> None:
    """Agg backend for matplotlib, off-screen pyvista, one torch thread, quiet imports."""
    import matplotlib

    matplotlib.use("Agg")
    import pyvista

    pyvista.OFF_SCREEN = True
    try:  # without a display, VTK warns once that it falls back to off-screen rendering: harmless
        from vtkmodules.vtkCommonCore import vtkLogger

        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)
    except ImportError:  # pragma: no cover - VTK builds without the logger
        pass
    import torch

    torch.set_num_threads(1)
    # pykeops (imported by GeomLoss) prints a banner on stdout when it finds no GPU
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            import geomloss  # noqa: F401
        except ImportError:  # pragma: no cover - the Sinkhorn loss says what is missing when used
            pass


# ------------------------------------------------------------ references
def procrustes(source_points, target_points, scaling=False):
    """The closed-form best rigid (or similarity) map between corresponding points.

    Kabsch's algorithm, or Umeyama's with ``scaling=True``: the map
    :math:`x \\mapsto s R (x - c) + c + t` (the convention of
    :class:`skshapes.RigidMotion` and :class:`skshapes.Similarity`, with
    :math:`c` the centroid of ``source_points``) that minimises the mean
    squared distance to ``target_points``. The examples check their
    registrations against it.

    Parameters
    ----------
    source_points, target_points : torch.Tensor, shape (N, D)
        Point i of one corresponds to point i of the other.
    scaling : bool
        Also fit an isotropic scale :math:`s` (else :math:`s = 1`).

    Returns
    -------
    scale : float
    rotation : torch.Tensor, shape (D, D), float64
    translation : torch.Tensor, shape (D,), float64
    """
    import torch

    x, y = source_points.detach().double(), target_points.detach().double()
    cx, cy = x.mean(dim=0), y.mean(dim=0)
    u, singular, vt = torch.linalg.svd((y - cy).T @ (x - cx) / len(x))
    signs = torch.ones(x.shape[1], dtype=torch.float64)
    signs[-1] = torch.sign(torch.linalg.det(u @ vt))  # a rotation, not a reflection
    rotation = u @ torch.diag(signs) @ vt
    scale = float((singular * signs).sum() / ((x - cx) ** 2).sum(dim=1).mean()) if scaling else 1.0
    return scale, rotation, cy - cx


def rotation_angle_degrees(rotation) -> float:
    """The angle, in degrees, of a 2D or 3D rotation matrix."""
    import math

    import torch

    rotation = rotation.detach().double()
    if rotation.shape == (2, 2):
        return abs(math.degrees(math.atan2(float(rotation[1, 0]), float(rotation[0, 0]))))
    cosine = (torch.trace(rotation) - 1) / 2
    return math.degrees(math.acos(float(cosine.clamp(-1.0, 1.0))))
