"""The ``skshapes`` command.

::

    skshapes demo --out DIR
    skshapes register SOURCE TARGET -o OUT.vtk \\
        [--model rigid|similarity|affine|lddmm] [--loss sinkhorn|nearest|varifold|currents] \\
        [--sigma S] [--blur B] [--loss-sigma W] [--n-iter N] [--regularization-weight R]

``register`` models: ``rigid`` (rotation + translation), ``similarity``
(+ isotropic scale), ``affine`` (any linear map + translation), ``lddmm``
(diffeomorphism, kernel width ``--sigma``). The rigid, similarity and
affine registrations start from matching centroids (area-, length- or
count-weighted, as the shapes' point weights; see ``Registration``), which
keeps a large offset between the shapes from trapping the optimiser in a
wrong rotation.
Losses: ``sinkhorn`` (optimal transport, ``--blur``), ``nearest``
(nearest-neighbour / chamfer), ``varifold`` and ``currents`` (kernel width
``--loss-sigma``; they need triangle meshes or curves, not point clouds).
Length-like options default to a fraction of the diagonal of the shapes'
bounding box; an option that does not apply to the chosen model or loss is
an error.

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
_MODELS = ("rigid", "similarity", "affine", "lddmm")
_LOSSES = ("sinkhorn", "nearest", "varifold", "currents")
_KERNEL_LOSSES = ("varifold", "currents")
# defaults relative to the size of the data (diagonal of the bounding box of source and target)
_SIGMA_FRACTION = 0.1
_BLUR_FRACTION = 0.005
_LOSS_SIGMA_FRACTION = 0.05
_REGULARIZATION_WEIGHT = 1e-3


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
        help="run the main job on the bundled data: a craniofacial case-control study, then registrations",
        description="Run a simulated craniofacial dysmorphology study on the bundled faces (registration to the "
        "template, Procrustes, PCA shape space, cross-validated classifier, vertex-wise permutation GLM with "
        "covariates), then register the skull template onto five hominid skulls (LDDMM) and the face template "
        "onto a posed face (rigid); write DIR/report.html with its figures and the CSV files behind them.",
    )
    demo.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (created if needed)")
    demo.add_argument("--no-skulls", action="store_true", help="skip the skull registrations")
    demo.add_argument("--no-face", action="store_true", help="skip the face registration")
    demo.add_argument("--no-dysmorphology", action="store_true", help="skip the case-control study")
    demo.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                      help="faces registered in parallel by the case-control study (processes; default: one)")
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
    register.add_argument("--model", choices=_MODELS, default="lddmm",
                          help="deformation model: rigid (rotation + translation), similarity (+ scale), affine "
                          "(any linear map + translation), lddmm (smooth diffeomorphism); the first three start "
                          "from matching centroids (default: lddmm)")
    register.add_argument("--loss", choices=_LOSSES, default="sinkhorn",
                          help="data term: sinkhorn (optimal transport), nearest (nearest neighbours), varifold, "
                          "currents (these two need meshes or curves, and currents a consistent orientation) "
                          "(default: sinkhorn)")
    register.add_argument("--sigma", type=_positive_float, default=None, metavar="S",
                          help="LDDMM kernel width, in the units of the shapes "
                          f"(default: {_SIGMA_FRACTION:g} x the diagonal of their bounding box)")
    register.add_argument("--blur", type=_positive_float, default=None, metavar="B",
                          help="Sinkhorn blur, in the units of the shapes "
                          f"(default: {_BLUR_FRACTION:g} x the diagonal of their bounding box)")
    register.add_argument("--loss-sigma", type=_positive_float, default=None, metavar="W",
                          help="kernel width of the varifold or currents loss, in the units of the shapes: "
                          "details below it are blurred out "
                          f"(default: {_LOSS_SIGMA_FRACTION:g} x the diagonal of their bounding box)")
    register.add_argument("--n-iter", type=_positive_int, default=50, metavar="N",
                          help="optimiser iterations (default: 50)")
    register.add_argument("--regularization-weight", type=_non_negative_float, default=None, metavar="R",
                          help=f"weight of the LDDMM deformation cost (default: {_REGULARIZATION_WEIGHT:g})")
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


def _check_options(args) -> None:
    """Reject the options that do not apply to the chosen model and loss (rather than ignore them)."""
    inapplicable = [
        ("--sigma", args.sigma, args.model != "lddmm", "--model lddmm"),
        ("--regularization-weight", args.regularization_weight, args.model != "lddmm", "--model lddmm"),
        ("--blur", args.blur, args.loss != "sinkhorn", "--loss sinkhorn"),
        ("--loss-sigma", args.loss_sigma, args.loss not in _KERNEL_LOSSES, "--loss varifold or currents"),
    ]
    for option, value, unused, applies in inapplicable:
        if value is not None and unused:
            raise CLIError(f"{option} applies to {applies} only (got --model {args.model} --loss {args.loss})")


def _check_cells(loss: str, shapes) -> None:
    """Varifolds and currents need cells: two 3D triangle meshes or two curves."""
    for name, path, shape in shapes:
        if shape.kind == "cloud":
            raise CLIError(f"--loss {loss} needs triangle meshes or curves, but {name} ({path.name}) is a point "
                           "cloud (no triangles or edges): use --loss sinkhorn or nearest")
        if shape.kind == "mesh" and shape.dim == 2:
            raise CLIError(f"--loss {loss} needs 3D triangle meshes or curves, but {name} ({path.name}) is a 2D "
                           "triangle mesh: use its boundary curve, or --loss sinkhorn or nearest")
    (name_a, path_a, a), (name_b, path_b, b) = shapes
    if a.kind != b.kind:
        raise CLIError(f"--loss {loss} compares shapes of one kind, but {name_a} ({path_a.name}) is a {a.kind} "
                       f"and {name_b} ({path_b.name}) a {b.kind}")


def _model(args, diagonal):
    """The deformation model, its description and the regularization weight."""
    from .deformations import LDDMM, AffineDeformation, RigidMotion, Similarity

    if args.model == "lddmm":
        sigma = args.sigma if args.sigma is not None else _SIGMA_FRACTION * diagonal
        weight = args.regularization_weight if args.regularization_weight is not None else _REGULARIZATION_WEIGHT
        return LDDMM(sigma=sigma), f"LDDMM (sigma={sigma:.3g})", weight
    models = {
        "rigid": (RigidMotion, "rigid motion"),
        "similarity": (Similarity, "similarity"),
        "affine": (AffineDeformation, "affine map"),
    }
    model, text = models[args.model]
    return model(), text, 0.0


def _loss(args, diagonal):
    """The data term and its description."""
    from .losses import CurrentsLoss, NearestNeighborsLoss, SinkhornLoss, VarifoldLoss

    if args.loss == "sinkhorn":
        blur = args.blur if args.blur is not None else _BLUR_FRACTION * diagonal
        return SinkhornLoss(blur=blur), f"Sinkhorn loss (blur={blur:.3g})"
    if args.loss == "nearest":
        return NearestNeighborsLoss(), "nearest-neighbours loss"
    sigma = args.loss_sigma if args.loss_sigma is not None else _LOSS_SIGMA_FRACTION * diagonal
    loss = VarifoldLoss if args.loss == "varifold" else CurrentsLoss
    return loss(sigma=sigma), f"{args.loss} loss (sigma={sigma:.3g})"


def _register(args) -> str:
    import torch

    from .registration import Registration
    from .shapes import read

    _check_options(args)
    if args.output.suffix.lower() not in _WRITABLE:
        raise CLIError(f"cannot write {args.output}: the output must end in one of {', '.join(_WRITABLE)}")
    for name, path in (("SOURCE", args.source), ("TARGET", args.target)):
        if not path.is_file():
            raise CLIError(f"{name} file not found: {path}")
    with _quiet_readers():
        source, target = read(args.source), read(args.target)
    if source.dim != target.dim:
        raise CLIError(f"SOURCE is {source.dim}D but TARGET is {target.dim}D: they must have the same dimension")
    if args.loss in _KERNEL_LOSSES:
        _check_cells(args.loss, [("SOURCE", args.source, source), ("TARGET", args.target, target)])
    diagonal = _diagonal(source, target)
    model, model_text, weight = _model(args, diagonal)
    loss, loss_text = _loss(args, diagonal)

    from .demo import _torch_threads

    started = time.perf_counter()
    reg = Registration(model, loss, regularization_weight=weight, n_iter=args.n_iter, verbose=args.verbose)
    with _torch_threads(args.threads):
        with torch.no_grad():
            initial = float(loss(source, target))
        reg.fit(source, target)
    seconds = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    reg.morphed_shape_.save(args.output)
    final = reg.loss_history_["data"][-1]
    ratio = f" ({100 * final / initial:.1f} % of initial)" if initial > 0 else ""
    return (
        f"registered {args.source.name} ({source.n_points} points) onto {args.target.name} "
        f"({target.n_points} points) with {model_text} + {loss_text}: data term {initial:.4g} -> {final:.4g}"
        f"{ratio} in {reg.n_iter_} iterations, {seconds:.1f} s; wrote {args.output}"
    )


def _demo(args) -> str:
    from .demo import run_demo

    if args.no_skulls and args.no_face and args.no_dysmorphology:
        raise CLIError("nothing to do: --no-skulls, --no-face and --no-dysmorphology leave no stage")
    result = run_demo(args.out, skulls=not args.no_skulls, face=not args.no_face,
                      dysmorphology=not args.no_dysmorphology, verbose=args.verbose, n_threads=args.threads,
                      n_jobs=args.jobs)
    study = "" if result.dysmorphology is None else "case-control study and "
    return (
        f"demo: {study}{len(result.results)} registrations in {result.seconds:.0f} s; wrote "
        f"{len(result.figures)} figures and {result.report_path} (open it in a browser)"
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
