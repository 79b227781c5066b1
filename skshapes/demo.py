"""The demo pipeline behind ``skshapes demo``: registrations on the bundled data.

Two experiments, each registration giving one figure and one row of
``summary.csv``:

1. *Hominid skulls* (2D curves): the elliptic skull template is registered
   onto each of the five skulls with :class:`~skshapes.LDDMM` and a
   :class:`~skshapes.SinkhornLoss` (:data:`SKULL_PARAMETERS`).
2. *Posed face* (3D mesh): the face template, decimated to about 1,000
   vertices, is rigidly registered (:class:`~skshapes.RigidMotion` +
   :class:`~skshapes.SinkhornLoss`) onto a face of the population that was
   first aligned to the template and then moved by a known rotation and
   translation (:data:`FACE_PARAMETERS`); the figure reports the recovered
   angle.

The parameters live in module-level dicts used by both the demo and the test
suite (``tests/test_demo.py``), so that they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "FACE_PARAMETERS",
    "SKULL_PARAMETERS",
    "SUMMARY_COLUMNS",
    "DemoResult",
    "face_registration",
    "posed_face",
    "register_face",
    "register_skulls",
    "run_demo",
    "skull_registration",
]

#: LDDMM + Sinkhorn settings for the skulls (the outlines span about 200 units).
#: Measured on a 2-core CPU: the final Sinkhorn loss is 0.8-1.7 % of the
#: initial one for every skull, about 4 s per skull.
SKULL_PARAMETERS = {
    "sigma": 20.0,  # LDDMM kernel width: about a tenth of the skull's length
    "n_steps": 5,  # RK4 steps of the geodesic shooting
    "blur": 1.0,  # Sinkhorn blur: details below 1 unit are ignored
    "scaling": 0.8,  # epsilon-scaling ratio of the Sinkhorn loop
    "regularization_weight": 1e-3,
    "n_iter": 30,  # L-BFGS iterations
}

#: Rigid registration of the face template onto a posed face (units: mm).
FACE_PARAMETERS = {
    "resolution": 1000,  # vertices of the decimated template and face
    "subject": 0,  # index of the face in load_faces() (SIMPOP_01)
    "angle_degrees": 40.0,  # known rotation applied to the face...
    "axis": (0.3, 1.0, 0.2),  # ...about this axis (through the face's centroid)
    "translation_mm": (25.0, -15.0, 10.0),  # ...then this translation
    "blur": 3.0,  # Sinkhorn blur (mm)
    "scaling": 0.6,
    "n_iter": 25,
}

#: Columns of ``summary.csv``: the target shape, its number of points, the
#: data (Sinkhorn) term before and after registration, the optimiser
#: iterations and the wall time of the fit.
SUMMARY_COLUMNS = ("shape", "points", "initial_loss", "final_loss", "iterations", "seconds")


@dataclass
class DemoResult:
    """One registration of the demo.

    Attributes
    ----------
    name : str
        The target's name (a species, or ``"SIMPOP_01 (posed)"``).
    kind : str
        ``"skull"`` or ``"face"``.
    registration : Registration
        The fitted estimator.
    source, target : PolyData
        The shapes passed to ``fit``.
    seconds : float
        Wall time of ``fit``.
    figure : pathlib.Path or None
        The PNG written by :func:`run_demo`.
    extra : dict
        Experiment-specific results (the known and recovered angle for the face).
    """

    name: str
    kind: str
    registration: object
    source: object
    target: object
    seconds: float
    figure: Path | None = None
    extra: dict | None = None

    @property
    def initial_loss(self) -> float:
        """Data term at the identity (before registration)."""
        return float(self.registration.loss_history_["data"][0])

    @property
    def final_loss(self) -> float:
        """Data term at the fitted parameter."""
        return float(self.registration.loss_history_["data"][-1])

    def summary_row(self) -> dict:
        return {
            "shape": self.name,
            "points": int(self.target.n_points),
            "initial_loss": self.initial_loss,
            "final_loss": self.final_loss,
            "iterations": int(self.registration.n_iter_),
            "seconds": round(self.seconds, 2),
        }


# ------------------------------------------------------------------ skulls
def skull_registration(parameters=None, verbose=False):
    """The :class:`~skshapes.Registration` used for the skulls.

    Parameters
    ----------
    parameters : dict, optional
        Overrides of :data:`SKULL_PARAMETERS`.
    verbose : bool
        Show the optimiser's progress bar.
    """
    from .deformations import LDDMM
    from .losses import SinkhornLoss
    from .registration import Registration

    p = {**SKULL_PARAMETERS, **(parameters or {})}
    return Registration(
        LDDMM(sigma=p["sigma"], n_steps=p["n_steps"]),
        SinkhornLoss(blur=p["blur"], scaling=p["scaling"]),
        regularization_weight=p["regularization_weight"],
        n_iter=p["n_iter"],
        verbose=verbose,
    )


def register_skulls(names=None, verbose=False, progress=None) -> list[DemoResult]:
    """Register the skull template onto each hominid skull.

    Parameters
    ----------
    names : list of str, optional
        Species to register (default: all five, in the order of
        :func:`~skshapes.datasets.load_skulls`).
    verbose : bool
        Show each optimiser's progress bar.
    progress : tqdm, optional
        A progress bar advanced after each registration.

    Returns
    -------
    list of DemoResult
    """
    from .datasets import load_skulls

    skulls = load_skulls()
    wanted = skulls.names if names is None else list(names)
    unknown = sorted(set(wanted) - set(skulls.names))
    if unknown:
        raise ValueError(f"unknown skull names {unknown}; choose among {skulls.names}")
    results = []
    for name, shape in zip(skulls.names, skulls.shapes):
        if name not in wanted:
            continue
        if progress is not None:
            progress.set_description(f"skull {name}")
        reg = skull_registration(verbose=verbose)
        start = time.perf_counter()
        reg.fit(skulls.template, shape)
        results.append(DemoResult(name, "skull", reg, skulls.template, shape, time.perf_counter() - start))
        if progress is not None:
            progress.update()
    return results


# -------------------------------------------------------------------- face
def _rotation(axis, angle_degrees) -> torch.Tensor:
    """Rotation matrix (3, 3), float64, about ``axis`` (Rodrigues' formula)."""
    axis = torch.as_tensor(axis, dtype=torch.float64)
    axis = axis / torch.linalg.norm(axis)
    angle = math.radians(angle_degrees)
    x, y, z = axis.tolist()
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _procrustes(points, reference) -> torch.Tensor:
    """``points`` rigidly aligned onto ``reference`` (same vertex order), float64."""
    a, b = reference.double(), points.double()
    ca, cb = a.mean(dim=0), b.mean(dim=0)
    u, _, vt = torch.linalg.svd((b - cb).T @ (a - ca))
    d = torch.sign(torch.linalg.det(u @ vt))
    rotation = u @ torch.diag(torch.tensor([1.0, 1.0, float(d)], dtype=torch.float64)) @ vt
    return (b - cb) @ rotation + ca


def posed_face(parameters=None):
    """The template and a posed face for the rigid demo.

    The face ``subject`` of :func:`~skshapes.datasets.load_faces` (at
    ``resolution``) is aligned to the template by Procrustes on its known
    correspondences, then rotated by ``angle_degrees`` about ``axis``
    (through the template's centroid) and translated by ``translation_mm``.
    So the rigid motion that registers the template onto it is known.

    Returns
    -------
    template : PolyData
    target : PolyData
    name : str
    rotation : torch.Tensor, shape (3, 3), float64
    translation : torch.Tensor, shape (3,), float64
    """
    from .datasets import load_faces

    p = {**FACE_PARAMETERS, **(parameters or {})}
    faces = load_faces(resolution=p["resolution"])
    template, face = faces.template, faces.shapes[p["subject"]]
    centre = template.points.double().mean(dim=0)
    rotation = _rotation(p["axis"], p["angle_degrees"])
    translation = torch.as_tensor(p["translation_mm"], dtype=torch.float64)
    aligned = _procrustes(face.points, template.points)
    posed = (aligned - centre) @ rotation.T + centre + translation
    target = face.with_points(posed.to(face.dtype)).copy()
    return template, target, faces.names[p["subject"]], rotation, translation


def face_registration(parameters=None, verbose=False):
    """The rigid :class:`~skshapes.Registration` used for the face."""
    from .deformations import RigidMotion
    from .losses import SinkhornLoss
    from .registration import Registration

    p = {**FACE_PARAMETERS, **(parameters or {})}
    return Registration(
        RigidMotion(), SinkhornLoss(blur=p["blur"], scaling=p["scaling"]), n_iter=p["n_iter"], verbose=verbose
    )


def _angle_degrees(rotation: torch.Tensor) -> float:
    cosine = (torch.trace(rotation.double()) - 1) / 2
    return math.degrees(math.acos(float(cosine.clamp(-1.0, 1.0))))


def register_face(verbose=False, progress=None) -> DemoResult:
    """Rigidly register the face template onto the posed face (see :func:`posed_face`)."""
    from .deformations import RigidMotion

    template, target, name, rotation, translation = posed_face()
    if progress is not None:
        progress.set_description(f"face {name} (rigid)")
    reg = face_registration(verbose=verbose)
    start = time.perf_counter()
    reg.fit(template, target)
    seconds = time.perf_counter() - start
    fitted = RigidMotion.rotation_matrix(reg.parameter_.detach().cpu(), 3).double()
    extra = {
        "known_angle": _angle_degrees(rotation),
        "recovered_angle": _angle_degrees(fitted),
        "angle_error": _angle_degrees(fitted @ rotation.T),
        "known_translation": translation.tolist(),
    }
    if progress is not None:
        progress.update()
    return DemoResult(f"{name} (posed)", "face", reg, template, target, seconds, extra=extra)


# -------------------------------------------------------------------- demo
def _figure(result: DemoResult, out_dir: Path) -> Path:
    from .viz import plot_registration

    if result.kind == "skull":
        path = out_dir / f"skull_{result.name}.png"
        title = f"LDDMM registration of the skull template onto {result.name}"
        return plot_registration(result.registration, result.target, screenshot=path, source=result.source,
                                 title=title, units="data units",
                                 labels=("template", result.name, "registered template"))
    e = result.extra
    path = out_dir / f"face_{result.name.split()[0]}_rigid.png"
    title = (
        f"Rigid registration of the face template onto {result.name}: applied rotation {e['known_angle']:.1f}°, "
        f"recovered {e['recovered_angle']:.1f}° (error {e['angle_error']:.2f}°)"
    )
    return plot_registration(result.registration, result.target, screenshot=path, source=result.source,
                             title=title, units="mm", camera_position="xy",
                             labels=("face template", f"{result.name.split()[0]}, posed", "registered template"))


@contextlib.contextmanager
def _torch_threads(n_threads):
    """Run with ``torch.set_num_threads(n_threads)`` (``None``: unchanged), restoring the setting after."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_demo(out_dir, skulls=True, face=True, verbose=False, progress=True, n_threads=1):
    """Run the demo registrations and write one PNG each and ``summary.csv``.

    Parameters
    ----------
    out_dir : str or path-like
        Output folder (created if needed).
    skulls : bool, default True
        Register the skull template onto the five hominid skulls.
    face : bool, default True
        Rigidly register the face template onto a posed face.
    verbose : bool, default False
        Show each optimiser's progress bar too.
    progress : bool, default True
        Show a progress bar over the registrations (tqdm, on stderr).
    n_threads : int or None, default 1
        CPU threads for torch during the demo (restored afterwards; ``None``
        keeps the current setting). The demo's problems are small (at most
        about 1,000 x 1,000 points, dense torch reductions), where one thread
        is about as fast as several, and far faster on a busy machine: on a
        2-core CPU shared with other jobs, two threads made one skull
        registration step 100 times slower through OpenMP contention.

    Returns
    -------
    Bunch
        summary : pandas.DataFrame
            One row per registration, columns :data:`SUMMARY_COLUMNS`
            (``initial_loss``/``final_loss``: the Sinkhorn data term, in
            squared units of the shapes).
        results : list of DemoResult
        figures : list of pathlib.Path
        summary_path : pathlib.Path
            ``out_dir / "summary.csv"``.
        seconds : float
            Total wall time.
    """
    import pandas
    from sklearn.utils import Bunch
    from tqdm.auto import tqdm

    from .datasets import SKULL_NAMES

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [("skull", name) for name in SKULL_NAMES] if skulls else []
    tasks += [("face", None)] if face else []
    bar = tqdm(total=len(tasks), desc="demo", unit="registration", disable=not progress)
    results = []
    try:
        with _torch_threads(n_threads):
            for kind, name in tasks:
                result = (register_skulls([name], verbose=verbose, progress=bar)[0] if kind == "skull"
                          else register_face(verbose=verbose, progress=bar))
                result.figure = _figure(result, out_dir)
                results.append(result)
                row = result.summary_row()
                bar.write(
                    f"{row['shape']:>18s}: {row['points']:5d} points, Sinkhorn loss {row['initial_loss']:.4g} -> "
                    f"{row['final_loss']:.4g} ({100 * row['final_loss'] / row['initial_loss']:.1f} % of initial), "
                    f"{row['iterations']} iterations, {row['seconds']:.1f} s -> {result.figure.name}"
                )
    finally:
        bar.close()
    summary = pandas.DataFrame([r.summary_row() for r in results], columns=list(SUMMARY_COLUMNS))
    summary_path = out_dir / "summary.csv"
    summary.to_csv(summary_path, index=False, float_format="%.6g")
    return Bunch(
        summary=summary,
        results=results,
        figures=[r.figure for r in results],
        summary_path=summary_path,
        seconds=time.perf_counter() - start,
    )
