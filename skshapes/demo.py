"""The demo behind ``skshapes demo``: the craniofacial dysmorphology pipeline, then registrations.

The main job (section 1, :func:`run_dysmorphology`) is a case-control study
of a simulated syndrome, end to end, on bundled data:
:func:`~skshapes.datasets.make_dysmorphic_faces` draws 60 faces (30 with a
midface retrusion of known extent and depth, 30 controls, with their age, sex
and BMI) in random poses, and
:class:`~skshapes.dysmorphology.DysmorphologyAnalysis` aligns them, finds
dense correspondences by registering the face template onto each one,
superimposes them (Procrustes), measures each vertex's displacement along
the surface normal, classifies syndrome vs control (cross-validated ROC)
and tests every vertex with a permutation GLM adjusted for age, sex and BMI
(:data:`DYSMORPHOLOGY_PARAMETERS`). The results are compared with the
simulated truth (:func:`~skshapes.dysmorphology.evaluate_against_truth`),
and a detectability table repeats the statistics for several effect sizes.

Section 2 keeps the registration demos, each registration giving one figure
and one row of ``summary.csv``:

1. *Hominid skulls* (2D curves): the elliptic skull template is registered
   onto each of the five skulls with :class:`~skshapes.LDDMM` and a
   :class:`~skshapes.SinkhornLoss` (:data:`SKULL_PARAMETERS`).
2. *Posed face* (3D mesh): the face template, decimated to about 1,000
   vertices, is rigidly registered (:class:`~skshapes.RigidMotion` +
   :class:`~skshapes.SinkhornLoss`) onto a face of the population that was
   first aligned to the template and then moved by a known rotation and
   translation (:data:`FACE_PARAMETERS`); the figure reports the recovered
   angle.

:func:`run_demo` runs both and writes ``report.html`` with the figures (PNG)
and the CSV tables behind them (:data:`OUTPUT_FILES`). The parameters live in
module-level dicts used by both the demo and the test suite
(``tests/test_demo.py``), so that they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import html
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DYSMORPHOLOGY_PARAMETERS",
    "FACE_PARAMETERS",
    "OUTPUT_FILES",
    "SKULL_PARAMETERS",
    "SUMMARY_COLUMNS",
    "DemoResult",
    "face_registration",
    "posed_face",
    "register_face",
    "register_skulls",
    "run_demo",
    "run_dysmorphology",
    "skull_registration",
]

#: The simulated study of section 1 (units: mm). The effect is a midface retrusion of 6 mm at its
#: deepest point: against the natural variation of the faces (about 1.2 mm standard deviation along
#: the normal in the midface, after adjusting for age, sex and BMI), 30 + 30 subjects detect the
#: region reliably from about 5 mm (Dice >= 0.7 in the detectability table); 2 mm would need several
#: hundred subjects. ``sweep_effects_mm`` repeats the statistics at other depths (with the known
#: correspondence, to keep the demo fast).
DYSMORPHOLOGY_PARAMETERS = {
    "n_subjects": 60,
    "effect_mm": 6.0,
    "region": "midface",
    "resolution": 1000,  # vertices per face
    "random_state": 0,
    "correspondence": "registration",
    "n_components": 10,
    "n_permutations": 5000,
    "tfce": True,  # threshold-free cluster enhancement (surface setting E = 1, H = 2)
    "alpha": 0.05,
    "sweep_effects_mm": (0.0, 2.0, 4.0, 6.0),
    "sweep_n_permutations": 1000,
}

#: What :func:`run_demo` writes in its output folder (besides the registration figures).
OUTPUT_FILES = {
    "report": "report.html",
    "mean_faces": "dysmorphology_mean_faces.png",
    "difference_map": "dysmorphology_difference_mm.png",
    "t_map": "dysmorphology_t_map.png",
    "roc": "dysmorphology_roc.png",
    "vertices": "dysmorphology_vertices.csv",
    "subjects": "dysmorphology_subjects.csv",
    "roc_points": "dysmorphology_roc.csv",
    "detectability": "dysmorphology_detectability.csv",
    "numbers": "dysmorphology_summary.csv",
    "registrations": "summary.csv",
}

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
    """Run with ``n_threads`` CPU threads for torch and for the BLAS of numpy/scipy (``None``: unchanged).

    The settings are restored after. BLAS threads matter as much as torch's:
    on a busy 2-core machine, OpenBLAS with 2 threads made the classifier's
    cross-validation (PCA of 60 x 3,000 coordinates) 40 times slower.
    """
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------- dysmorphology
def _seconds_since(start):
    return time.perf_counter() - start


def _rotation_angle_degrees(rotation) -> float:
    cosine = (np.trace(rotation) - 1) / 2
    return math.degrees(math.acos(float(np.clip(cosine, -1.0, 1.0))))


def run_dysmorphology(out_dir, parameters=None, progress=True, n_jobs=None):
    """Section 1 of the demo: the simulated case-control study, its figures and CSV tables.

    Parameters
    ----------
    out_dir : str or path-like
        Output folder (created if needed).
    parameters : dict, optional
        Overrides of :data:`DYSMORPHOLOGY_PARAMETERS`.
    progress : bool, default True
        Progress bars (tqdm, on stderr): the subjects' registrations, the
        statistics stages, the detectability table.
    n_jobs : int or None
        Subjects registered in parallel (see
        :class:`~skshapes.dysmorphology.DysmorphologyAnalysis`).

    Returns
    -------
    Bunch
        data : the simulated population (:func:`~skshapes.datasets.make_dysmorphic_faces`);
        analysis : the fitted :class:`~skshapes.dysmorphology.DysmorphologyAnalysis`;
        evaluation : :func:`~skshapes.dysmorphology.evaluate_against_truth`;
        fwer_threshold : float, the |t| (or TFCE) value above which a vertex is FWER-significant;
        detectability : pandas.DataFrame, one row per effect of ``sweep_effects_mm``;
        numbers : pandas.DataFrame (``quantity``, ``value``, ``unit``), the report's table;
        figures, tables : dict of pathlib.Path (keys of :data:`OUTPUT_FILES`);
        seconds : dict, wall time of each stage.
    """
    import pandas
    from sklearn.utils import Bunch
    from tqdm.auto import tqdm

    from . import report
    from .datasets import make_dysmorphic_faces
    from .dysmorphology import DysmorphologyAnalysis, evaluate_against_truth

    p = {**DYSMORPHOLOGY_PARAMETERS, **(parameters or {})}
    unknown = sorted(set(p) - set(DYSMORPHOLOGY_PARAMETERS))
    if unknown:
        raise ValueError(f"unknown dysmorphology parameters {unknown}; choose among {sorted(DYSMORPHOLOGY_PARAMETERS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds = {}

    start = time.perf_counter()
    population = dict(n_subjects=p["n_subjects"], region=p["region"], resolution=p["resolution"],
                      random_state=p["random_state"])
    data = make_dysmorphic_faces(effect_mm=p["effect_mm"], **population)
    seconds["data"] = _seconds_since(start)

    def analysis_for(correspondence, n_permutations, verbose):
        return DysmorphologyAnalysis(
            template=data.template, correspondence=correspondence, n_components=p["n_components"],
            n_permutations=n_permutations, alpha=p["alpha"], tfce=p["tfce"], random_state=p["random_state"],
            n_jobs=n_jobs, verbose=verbose,
        )

    analysis = analysis_for(p["correspondence"], p["n_permutations"], progress)
    # The simulated shapes share the template's vertex order: their own vertices are the true
    # correspondences, used only to measure the registration's error.
    analysis.fit(data.shapes, data.labels, data.covariates, truth=[shape.points for shape in data.shapes])
    seconds.update({f"analysis: {k}": v for k, v in analysis.seconds_.items()})
    evaluation = evaluate_against_truth(analysis, data.displacement, data.region_mask, data.effect_mm)
    h0 = analysis.glm_.h0_max_tfce_ if p["tfce"] else analysis.glm_.h0_max_
    fwer_threshold = float(np.quantile(h0, 1 - p["alpha"]))

    # detectability: the same subjects, labels and poses with other depths of the deformation
    start = time.perf_counter()
    rows = []
    for effect in tqdm(p["sweep_effects_mm"], desc="detectability table", unit="effect", disable=not progress):
        sweep_data = make_dysmorphic_faces(effect_mm=float(effect), **population)
        fitted = analysis_for("known", p["sweep_n_permutations"], False)
        fitted.fit(sweep_data.shapes, sweep_data.labels, sweep_data.covariates)
        mask = sweep_data.region_mask
        if effect > 0:
            ev = evaluate_against_truth(fitted, sweep_data.displacement, mask, float(effect))
            dice, measured = ev.dice, ev.measured_effect_mm
        else:
            dice, measured = float("nan"), float("nan")
        rows.append({
            "effect_mm": float(effect), "correspondence": "known", "auc": fitted.roc_auc_,
            "n_significant": int(fitted.significant_.sum()), "dice": dice, "measured_effect_mm": measured,
        })
    detectability = pandas.DataFrame(rows)
    seconds["detectability table"] = _seconds_since(start)

    start = time.perf_counter()
    files = {key: out_dir / name for key, name in OUTPUT_FILES.items()}
    mask = data.region_mask.cpu().numpy()
    figures = {
        "mean_faces": report.figure_mean_faces(analysis, files["mean_faces"]),
        "difference_map": report.figure_difference_map(analysis, files["difference_map"], true_mask=mask),
        "t_map": report.figure_t_map(analysis, files["t_map"], true_mask=mask),
        "roc": report.figure_roc(analysis, files["roc"]),
    }
    seconds["figures"] = _seconds_since(start)

    tables = _dysmorphology_tables(data, analysis, evaluation, detectability, files)
    numbers = _dysmorphology_numbers(data, analysis, evaluation, fwer_threshold, p)
    return Bunch(data=data, analysis=analysis, evaluation=evaluation, fwer_threshold=fwer_threshold,
                 detectability=detectability, numbers=numbers, figures=figures, tables=tables, seconds=seconds,
                 parameters=p)


def _dysmorphology_tables(data, analysis, evaluation, detectability, files):
    """Write the CSV files behind the figures; return their paths."""
    import pandas

    mean = analysis.mean_shape_.points.detach().cpu().numpy().astype(float)
    vertices = pandas.DataFrame({
        "vertex": np.arange(len(mean)),
        "x_mm": mean[:, 0], "y_mm": mean[:, 1], "z_mm": mean[:, 2],
        "normal_x": analysis.normals_[:, 0], "normal_y": analysis.normals_[:, 1], "normal_z": analysis.normals_[:, 2],
        "mean_difference_mm": analysis.mean_difference_mm_,
        "t": analysis.t_,
        "p_uncorrected": analysis.p_uncorrected_,
        "p_fwer": analysis.p_fwer_,
        "p_fdr": analysis.p_fdr_,
    })
    if analysis.p_fwer_tfce_ is not None:
        vertices["tfce"] = analysis.glm_.tfce_
        vertices["p_fwer_tfce"] = analysis.p_fwer_tfce_
    vertices["significant"] = analysis.significant_.astype(int)
    vertices["true_region"] = data.region_mask.cpu().numpy().astype(int)
    vertices["true_normal_mm"] = evaluation.true_normal_mm
    vertices["true_visible_normal_mm"] = evaluation.visible_normal_mm
    vertices.to_csv(files["vertices"], index=False, float_format="%.6g")

    subjects = pandas.DataFrame({
        "subject": data.names,
        "group": np.where(analysis.labels_ == 1, "syndrome", "control"),
        "label": analysis.labels_,
    })
    for name in analysis.covariate_names_:
        subjects[name] = data.covariates[name].to_numpy()
    subjects["sampled_from_model"] = data.sampled.astype(int)
    subjects["size_relative_to_template"] = analysis.scales_
    subjects["pose_angle_degrees"] = [_rotation_angle_degrees(r) for r in analysis.rotations_]
    if analysis.correspondence_error_ is not None:
        subjects["correspondence_error_mm"] = analysis.correspondence_error_.mean(axis=1)
    subjects["cv_probability_syndrome"] = analysis.probabilities_
    for k in range(analysis.scores_.shape[1]):
        subjects[f"PC{k + 1}_mm"] = analysis.scores_[:, k]
    subjects.to_csv(files["subjects"], index=False, float_format="%.6g")

    roc = pandas.DataFrame({"false_positive_rate": analysis.roc_curve_.fpr,
                            "true_positive_rate": analysis.roc_curve_.tpr,
                            "threshold": analysis.roc_curve_.thresholds})
    roc.to_csv(files["roc_points"], index=False, float_format="%.6g")
    detectability.to_csv(files["detectability"], index=False, float_format="%.6g")
    return {key: files[key] for key in ("vertices", "subjects", "roc_points", "detectability")}


def _dysmorphology_numbers(data, analysis, evaluation, fwer_threshold, p):
    import pandas

    labels = analysis.labels_
    inference = "TFCE" if p["tfce"] else "max-t"
    rows = [
        ("subjects", len(labels), ""),
        ("controls", int((labels == 0).sum()), ""),
        ("syndrome subjects", int((labels == 1).sum()), ""),
        ("vertices per face", analysis.mean_shape_.n_points, ""),
        ("simulated region", p["region"], ""),
        ("simulated effect (peak displacement)", p["effect_mm"], "mm"),
        ("correspondence", p["correspondence"], ""),
        ("correspondence error vs truth, mean", evaluation.correspondence_error_mm, "mm"),
        ("correspondence error vs truth, 95th percentile", evaluation.correspondence_error_p95_mm, "mm"),
        ("cross-validated AUC", analysis.roc_auc_, ""),
        ("permutations", p["n_permutations"], ""),
        (f"FWER threshold |t| (max-t, alpha {p['alpha']:g})", float(np.quantile(analysis.glm_.h0_max_, 1 - p["alpha"])),
         ""),
        (f"FWER-significant vertices ({inference})", evaluation.n_significant, ""),
        ("FWER-significant vertices (max-t)", int((analysis.p_fwer_ < p["alpha"]).sum()), ""),
        ("true region vertices", evaluation.n_region, ""),
        ("significant vertices inside the true region", evaluation.n_overlap, ""),
        ("Dice overlap with the true region", evaluation.dice, ""),
        ("measured effect (fit of the visible true pattern)", evaluation.measured_effect_mm, "mm"),
        ("measured effect (fit of the full true pattern)", evaluation.measured_effect_raw_mm, "mm"),
        ("deepest measured difference in the region", evaluation.peak_measured_mm, "mm"),
        ("deepest true displacement along the normal", evaluation.peak_true_mm, "mm"),
    ]
    return pandas.DataFrame(rows, columns=["quantity", "value", "unit"])


# -------------------------------------------------------------------- demo
def run_demo(out_dir, skulls=True, face=True, dysmorphology=True, verbose=False, progress=True, n_threads=1,
             n_jobs=None, dysmorphology_parameters=None):
    """Run the demo and write ``report.html`` with its figures and CSV tables.

    Parameters
    ----------
    out_dir : str or path-like
        Output folder (created if needed).
    skulls : bool, default True
        Register the skull template onto the five hominid skulls.
    face : bool, default True
        Rigidly register the face template onto a posed face.
    dysmorphology : bool, default True
        Run the simulated case-control study (:func:`run_dysmorphology`).
    verbose : bool, default False
        Show each optimiser's progress bar too (skulls and face).
    progress : bool, default True
        Show progress bars (tqdm, on stderr), one per stage.
    n_threads : int or None, default 1
        CPU threads for torch during the demo (restored afterwards; ``None``
        keeps the current setting). The demo's problems are small (at most
        about 1,000 x 1,000 points, dense torch reductions), where one thread
        is about as fast as several, and far faster on a busy machine: on a
        2-core CPU shared with other jobs, two threads made one skull
        registration step 100 times slower through OpenMP contention.
    n_jobs : int or None, default None
        Faces registered in parallel by the dysmorphology study (joblib
        processes, one torch thread each).
    dysmorphology_parameters : dict, optional
        Overrides of :data:`DYSMORPHOLOGY_PARAMETERS`.

    Returns
    -------
    Bunch
        summary : pandas.DataFrame
            One row per registration (skulls, face), columns
            :data:`SUMMARY_COLUMNS` (``initial_loss``/``final_loss``: the
            Sinkhorn data term, in squared units of the shapes).
        results : list of DemoResult
        figures : list of pathlib.Path
            Every PNG written.
        summary_path : pathlib.Path
            ``out_dir / "summary.csv"``.
        dysmorphology : Bunch or None
            What :func:`run_dysmorphology` returns.
        report_path : pathlib.Path
            ``out_dir / "report.html"``.
        seconds : float
            Total wall time.
        stage_seconds : dict
            Wall time of each stage.
    """
    import pandas
    from sklearn.utils import Bunch
    from tqdm.auto import tqdm

    from .datasets import SKULL_NAMES

    start = time.perf_counter()
    load_at_start = _load_average()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage_seconds = {}
    outcome = None
    with _torch_threads(n_threads):
        if dysmorphology:
            stage_start = time.perf_counter()
            outcome = run_dysmorphology(out_dir, dysmorphology_parameters, progress=progress, n_jobs=n_jobs)
            stage_seconds.update({f"dysmorphology: {k}": v for k, v in outcome.seconds.items()})
            stage_seconds["dysmorphology (all)"] = _seconds_since(stage_start)

        tasks = [("skull", name) for name in SKULL_NAMES] if skulls else []
        tasks += [("face", None)] if face else []
        results = []
        stage_start = time.perf_counter()
        bar = tqdm(total=len(tasks), desc="registrations", unit="registration", disable=not progress or not tasks)
        try:
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
        stage_seconds["registrations (skulls, face)"] = _seconds_since(stage_start)
    summary = pandas.DataFrame([r.summary_row() for r in results], columns=list(SUMMARY_COLUMNS))
    summary_path = out_dir / OUTPUT_FILES["registrations"]
    summary.to_csv(summary_path, index=False, float_format="%.6g")

    total = _seconds_since(start)
    stage_seconds["total"] = total
    if outcome is not None:
        numbers = pandas.concat([outcome.numbers, pandas.DataFrame(
            [(f"time: {k}", round(v, 2), "s") for k, v in stage_seconds.items()], columns=["quantity", "value", "unit"]
        )], ignore_index=True)
        outcome.numbers = numbers
        numbers.to_csv(out_dir / OUTPUT_FILES["numbers"], index=False, float_format="%.6g")
        outcome.tables["numbers"] = out_dir / OUTPUT_FILES["numbers"]
    figures = ([] if outcome is None else list(outcome.figures.values())) + [r.figure for r in results]
    report_path = _write_report(out_dir, outcome, results, summary, stage_seconds,
                                machine={"threads": n_threads, "load at start": load_at_start})
    return Bunch(
        summary=summary,
        results=results,
        figures=figures,
        summary_path=summary_path,
        dysmorphology=outcome,
        report_path=report_path,
        seconds=_seconds_since(start),
        stage_seconds=stage_seconds,
    )


# ------------------------------------------------------------------ report
def _format(value, unit=""):
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "n/a"
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _mean_sd(values):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.1f} \u00b1 {values.std(ddof=1):.1f} ({values.min():.1f}\u2013{values.max():.1f})"


def _load_average() -> str:
    import os

    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def _write_report(out_dir, outcome, results, summary, stage_seconds, machine):
    """Write ``report.html`` (plain HTML, the PNGs and CSVs beside it); return its path."""
    import datetime
    import html as html_module
    import os

    from . import __version__
    from .report import figure_html, html_table, page

    parts = ["<h1>Craniofacial dysmorphology report</h1>",
             f"<p>skshapes {__version__}, {datetime.date.today().isoformat()}; total run time "
             f"{stage_seconds['total'] / 60:.1f} min. All lengths are in millimetres (mm). Every figure has its "
             "numbers in a CSV file in this folder.</p>"]
    if outcome is not None:
        parts.append(_dysmorphology_html(outcome, figure_html, html_table))
    if results:
        parts.append("<h2>2. Registrations of the bundled shapes</h2>")
        parts.append(
            "<p>The registration engine behind the correspondences above, on the other bundled data: the skull "
            "template deformed onto five hominid skulls (LDDMM, 2D outlines), and the face template rigidly "
            f"registered onto a face moved by a known rotation and translation. Numbers: <code>"
            f"{OUTPUT_FILES['registrations']}</code> (Sinkhorn loss before and after, iterations, seconds).</p>"
        )
        rows = [[r["shape"], r["points"], _format(r["initial_loss"]), _format(r["final_loss"]),
                 f"{100 * r['final_loss'] / r['initial_loss']:.1f} %", r["iterations"], _format(r["seconds"], "s")]
                for _, r in summary.iterrows()]
        parts.append(html_table(rows, ["target", "points", "initial loss", "final loss", "final / initial",
                                       "iterations", "time"]))
        for result in results:
            if result.kind == "face":
                e = result.extra
                caption = (f"Rigid registration of the face template onto {html_module.escape(result.name)}: applied "
                           f"rotation {e['known_angle']:.1f}\u00b0, recovered {e['recovered_angle']:.1f}\u00b0 "
                           f"(error {e['angle_error']:.2f}\u00b0).")
            else:
                caption = f"LDDMM registration of the skull template onto {html_module.escape(result.name)}."
            parts.append(figure_html(result.figure, caption))
    parts.append("<h2>Run times</h2>")
    parts.append(html_table([[k, _format(v, "s")] for k, v in stage_seconds.items()], ["stage", "wall time"]))
    threads = machine["threads"] if machine["threads"] is not None else torch.get_num_threads()
    parts.append(f"<p>{os.cpu_count()} CPU cores, torch {torch.__version__} with {threads} thread(s); load average "
                 f"(1, 5, 15 min) at the start: {machine['load at start']}, at the end: {_load_average()}.</p>")
    path = Path(out_dir) / OUTPUT_FILES["report"]
    path.write_text(page("skshapes: craniofacial dysmorphology report", "\n".join(parts)), encoding="utf-8")
    return path


def _dysmorphology_html(outcome, figure_html, html_table):
    data, analysis, ev, p = outcome.data, outcome.analysis, outcome.evaluation, outcome.parameters
    labels = analysis.labels_
    inference = ("threshold-free cluster enhancement (TFCE, surface setting)" if p["tfce"]
                 else "the maximum |t| over the face")
    numbers = {row.quantity: row for row in outcome.numbers.itertuples()}
    parts = ["<h2>1. Does a syndrome group differ from controls, where, and by how many mm?</h2>"]
    parts.append(
        f'<p class="key"><b>Answer.</b> The {int((labels == 1).sum())} syndrome faces differ from the '
        f"{int((labels == 0).sum())} controls in a region of <b>{ev.n_significant} vertices</b> "
        f"(family-wise error rate {p['alpha']:g}), where their surface lies up to "
        f"<b>{abs(ev.peak_measured_mm):.1f} mm</b> {'inward' if ev.peak_measured_mm < 0 else 'outward'}; "
        f"a classifier tells the groups apart with a cross-validated <b>AUC of {analysis.roc_auc_:.2f}</b>. "
        f"Compared with the simulated truth: Dice overlap <b>{ev.dice:.2f}</b>, measured effect "
        f"<b>{ev.measured_effect_mm:.2f} mm</b> for {p['effect_mm']:g} mm simulated.</p>"
    )
    parts.append(
        '<p class="note">The data are <b>simulated</b>: 45 faces simulated from real 3D scans (MeshMonk SIMPOP) '
        "and faces sampled from their statistical shape model, with their age, sex and BMI; half of the subjects "
        f"(chosen at random) received a <b>{html.escape(p['region'])} retrusion</b> of {p['effect_mm']:g} mm at "
        "its deepest point, fading smoothly to zero (the green outline below), and every face was put in a "
        "random position (up to 20\u00b0 and 10 mm). The analysis does not know which vertex corresponds to "
        "which: it finds correspondences by registering a template face onto every face.</p>"
    )
    # population
    parts.append("<h3>Population</h3>")
    rows = []
    for label, name in ((0, "controls"), (1, "syndrome")):
        sel = labels == label
        cov = data.covariates[sel]
        sex = cov["Sex"].value_counts()
        rows.append([name, int(sel.sum()), _mean_sd(cov["Age"]), f"{int(sex.get(1, 0))} / {int(sex.get(2, 0))}",
                     _mean_sd(cov["BMI"]), int(data.sampled[sel].sum())])
    parts.append(html_table(rows, ["group", "n", "age, years: mean \u00b1 SD (range)", "sex 1 / sex 2",
                                   "BMI, kg/m\u00b2: mean \u00b1 SD (range)", "faces sampled from the model"]))
    parts.append(f"<p>Per subject (covariates, size, pose, correspondence error, classifier probability, "
                 f"principal component scores): <code>{OUTPUT_FILES['subjects']}</code>.</p>")
    # method
    parts.append("<h3>Method</h3><ol>"
                 "<li>Each face is aligned to a template face (position and orientation; sizes are kept, in mm).</li>"
                 "<li>The template is deformed onto each face (LDDMM, a smooth invertible deformation), so that "
                 f"each of its {analysis.mean_shape_.n_points} points finds its counterpart on every face "
                 f"(mean error against the simulated truth: {ev.correspondence_error_mm:.2f} mm).</li>"
                 "<li>The corresponded faces are superimposed (generalized Procrustes analysis, without scaling) and "
                 "each point's displacement is measured along the surface normal of the average face.</li>"
                 "<li>A vertex-wise linear model (syndrome vs control, adjusted for "
                 f"{', '.join(analysis.covariate_names_)}) "
                 f"is tested by {p['n_permutations']} permutations (Freedman-Lane), with the family-wise error "
                 f"controlled by {inference}.</li>"
                 f"<li>A classifier ({analysis.pca_.n_components_} principal components of shape, logistic regression) "
                 f"is evaluated by {analysis.n_splits}-fold cross-validation.</li></ol>")
    # figures
    parts.append("<h3>The average faces</h3>")
    parts.append(figure_html(outcome.figures["mean_faces"],
                             "Mean face of each group after alignment, from the front and the side, and their "
                             "midline profiles (the vertices within 3 mm of the midline, seen from the side). The "
                             "syndrome's midface (nose, upper lip) lies behind the controls'."))
    parts.append("<h3>Where the faces differ, and by how much</h3>")
    parts.append(figure_html(outcome.figures["difference_map"],
                             "Mean difference, syndrome minus control, of each point's position along the surface "
                             "normal, adjusted for age, sex and BMI (mm; blue: inward). Black outline: the vertices "
                             "where the difference is significant (family-wise error rate "
                             f"{p['alpha']:g}); green: the simulated region. Per vertex: "
                             f"<code>{OUTPUT_FILES['vertices']}</code>."))
    parts.append(figure_html(outcome.figures["t_map"],
                             "The t statistic of the same difference (its size relative to the variation between "
                             "subjects). Values beyond the dotted lines of the colour bar exceed the largest |t| "
                             f"found anywhere on the face in {100 * (1 - p['alpha']):g} % of random relabellings"
                             + (" (the significance outline uses TFCE, which also rewards spatially extended "
                                "effects)." if p["tfce"] else ".")))
    parts.append("<h3>Can a new face be classified?</h3>")
    parts.append(figure_html(outcome.figures["roc"],
                             f"ROC curve of the classifier, from cross-validated probabilities (each face scored by a "
                             f"model that never saw it). Points: <code>{OUTPUT_FILES['roc_points']}</code>."))
    # numbers
    parts.append("<h3>Numbers</h3>")
    rows = [[q, _format(v, u)] for q, v, u in outcome.numbers[["quantity", "value", "unit"]].itertuples(index=False)
            if not str(q).startswith("time:")]
    parts.append(html_table(rows, ["quantity", "value"]))
    parts.append(
        "<p>The <i>measured effect</i> is the depth of the simulated pattern that best fits the measured mean "
        "difference over the true region (least squares). Procrustes superimposition cannot tell a movement of "
        "the whole face from a local change, so part of a local deformation is absorbed by each face's fitted "
        "position and a small opposite difference spreads over the rest of the face; the <i>visible</i> pattern "
        "is the simulated one minus that rigid part, which is what the method can measure. Table: "
        f"<code>{OUTPUT_FILES['numbers']}</code>.</p>"
    )
    parts.append("<h3>How large must an effect be to be found?</h3>")
    rows = [[_format(r.effect_mm, "mm"), _format(r.auc), r.n_significant, _format(r.dice),
             _format(r.measured_effect_mm, "mm")] for r in outcome.detectability.itertuples()]
    parts.append(html_table(rows, ["simulated effect", "AUC", "significant vertices", "Dice", "measured effect"],
                            align_right_from=0))
    parts.append(
        f"<p>The same {len(labels)} subjects with other depths of the simulated deformation (statistics only, "
        f"with the known correspondence and {p['sweep_n_permutations']} permutations). Against the natural "
        "variation of faces, a 2 mm midface change is hard to see in 30 + 30 subjects: its region needs "
        f"several hundred. Table: <code>{OUTPUT_FILES['detectability']}</code>.</p>"
    )
    return "\n".join(parts)
