"""The ``skshapes`` command.

::

    skshapes demo --out DIR
    skshapes register SOURCE TARGET --model rigid|lddmm --loss sinkhorn|nearest \\
        [--sigma S] [--blur B] [--n-iter N] [--regularization-weight W] -o OUT.vtk

Errors (missing or unreadable files, invalid values) are reported as one
line on stderr with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

_WRITABLE = (".vtk", ".vtp", ".ply", ".stl", ".obj")
_MODELS = ("rigid", "lddmm")
_LOSSES = ("sinkhorn", "nearest")
# defaults relative to the size of the data (diagonal of the bounding box of source and target)
_SIGMA_FRACTION = 0.1
_BLUR_FRACTION = 0.005


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative finite number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skshapes`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="skshapes",
        description="Shape analysis: registration of meshes, curves and point clouds.",
    )
    parser.add_argument("--version", action="version", version=f"skshapes {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="run the demo registrations on the bundled data (skulls, faces)",
        description="Register the skull template onto five hominid skulls (LDDMM) and the face template onto "
        "a posed face (rigid); write one PNG per registration and summary.csv.",
    )
    demo.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if needed)")
    demo.add_argument("--no-skulls", action="store_true", help="skip the skull registrations")
    demo.add_argument("--no-face", action="store_true", help="skip the face registration")
    demo.add_argument("--verbose", action="store_true", help="show each optimiser's progress bar")
    demo.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                      help="CPU threads for torch (default: 1, the fastest for these small problems, "
                      "above all on a busy machine)")

    register = commands.add_parser(
        "register",
        help="register SOURCE onto TARGET and write the registered source",
        description="Register SOURCE onto TARGET (any .vtk .vtp .ply .obj .stl file) and write the registered "
        "source, with SOURCE's connectivity, to OUT.",
    )
    register.add_argument("source", type=Path, metavar="SOURCE", help="the shape to deform")
    register.add_argument("target", type=Path, metavar="TARGET", help="the shape to reach")
    register.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                          help=f"output file ({', '.join(_WRITABLE)})")
    register.add_argument("--model", choices=_MODELS, default="lddmm", help="deformation model (default: lddmm)")
    register.add_argument("--loss", choices=_LOSSES, default="sinkhorn", help="data term (default: sinkhorn)")
    register.add_argument("--sigma", type=_positive_float, default=None,
                          help="LDDMM kernel width, in the units of the shapes "
                          f"(default: {_SIGMA_FRACTION:g} x the diagonal of their bounding box)")
    register.add_argument("--blur", type=_positive_float, default=None,
                          help="Sinkhorn blur, in the units of the shapes "
                          f"(default: {_BLUR_FRACTION:g} x the diagonal of their bounding box)")
    register.add_argument("--n-iter", type=_positive_int, default=50, help="optimiser iterations (default: 50)")
    register.add_argument("--regularization-weight", type=_non_negative_float, default=1e-3,
                          help="weight of the LDDMM deformation cost (default: 0.001)")
    register.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                          help="CPU threads for torch (default: torch's own choice; 1 is often fastest for "
                          "shapes of a few thousand points, above all on a busy machine)")
    register.add_argument("--verbose", action="store_true", help="show the optimiser's progress bar")
    return parser


def _diagonal(*shapes) -> float:
    import torch

    points = torch.cat([shape.points.detach() for shape in shapes])
    return float(torch.linalg.norm(points.max(dim=0).values - points.min(dim=0).values)) or 1.0


def _quiet_readers():
    """Silence VTK's and meshio's own messages (a failed read is reported as one line instead)."""
    import contextlib
    import io
    import logging

    try:
        from vtkmodules.vtkCommonCore import vtkLogger, vtkObject

        vtkObject.GlobalWarningDisplayOff()
        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    except Exception:  # pragma: no cover - VTK builds without these switches
        pass
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    stack.callback(logging.disable, previous)
    return stack


def _import_keops_quietly():
    """Import pykeops (through GeomLoss) now, so that its banner ("[KeOps] Warning : CUDA libraries
    not found...") does not land on stdout, which carries only the one-line summary."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        try:
            import geomloss  # noqa: F401  (imports pykeops when it is installed)
        except Exception:  # GeomLoss problems surface, with their message, when the loss is used
            pass


def _register(args) -> str:
    from .registration import Registration
    from .shapes import read

    if args.output.suffix.lower() not in _WRITABLE:
        raise CLIError(f"cannot write {args.output}: the output must end in one of {', '.join(_WRITABLE)}")
    for name, path in (("SOURCE", args.source), ("TARGET", args.target)):
        if not path.is_file():
            raise CLIError(f"{name} file not found: {path}")
    with _quiet_readers():
        source, target = read(args.source), read(args.target)
    if source.dim != target.dim:
        raise CLIError(f"SOURCE is {source.dim}D but TARGET is {target.dim}D: they must have the same dimension")
    diagonal = _diagonal(source, target)

    if args.model == "lddmm":
        from .deformations import LDDMM

        sigma = args.sigma if args.sigma is not None else _SIGMA_FRACTION * diagonal
        model, model_text = LDDMM(sigma=sigma), f"LDDMM (sigma={sigma:.3g})"
        weight = args.regularization_weight
    else:
        from .deformations import RigidMotion

        model, model_text, weight = RigidMotion(), "rigid motion", 0.0
    if args.loss == "sinkhorn":
        from .losses import SinkhornLoss

        blur = args.blur if args.blur is not None else _BLUR_FRACTION * diagonal
        loss, loss_text = SinkhornLoss(blur=blur), f"Sinkhorn loss (blur={blur:.3g})"
    else:
        from .losses import NearestNeighborsLoss

        loss, loss_text = NearestNeighborsLoss(), "nearest-neighbours loss"

    from .demo import _torch_threads

    start = time.perf_counter()
    reg = Registration(model, loss, regularization_weight=weight, n_iter=args.n_iter, verbose=args.verbose)
    with _torch_threads(args.threads):
        reg.fit(source, target)
    seconds = time.perf_counter() - start
    args.output.parent.mkdir(parents=True, exist_ok=True)
    reg.morphed_shape_.save(args.output)
    data = reg.loss_history_["data"]
    ratio = f" ({100 * data[-1] / data[0]:.1f} % of initial)" if data[0] > 0 else ""
    return (
        f"registered {args.source.name} ({source.n_points} points) onto {args.target.name} "
        f"({target.n_points} points) with {model_text} + {loss_text}: data term {data[0]:.4g} -> {data[-1]:.4g}"
        f"{ratio} in {reg.n_iter_} iterations, {seconds:.1f} s; wrote {args.output}"
    )


def _demo(args) -> str:
    from .demo import run_demo

    if args.no_skulls and args.no_face:
        raise CLIError("nothing to do: --no-skulls and --no-face leave no registration")
    result = run_demo(args.out, skulls=not args.no_skulls, face=not args.no_face, verbose=args.verbose,
                      n_threads=args.threads)
    return (
        f"demo: {len(result.results)} registrations in {result.seconds:.0f} s; wrote {len(result.figures)} "
        f"figures and {result.summary_path}"
    )


def main(argv=None) -> int:
    """Run the ``skshapes`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a user error (bad arguments, missing
        or unreadable files, invalid values), 130 if interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        _import_keops_quietly()
        summary = _register(args) if args.command == "register" else _demo(args)
    except KeyboardInterrupt:
        print("skshapes: interrupted", file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, ValueError, TypeError, NotImplementedError, OSError,
            FloatingPointError) as error:
        message = str(error) or type(error).__name__
        print(f"skshapes {args.command}: error: {message}", file=sys.stderr)
        return 2
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
