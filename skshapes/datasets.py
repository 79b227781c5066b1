"""Loaders for the shape data bundled with the project.

Two datasets and one generator, returned as :class:`sklearn.utils.Bunch`
objects like scikit-learn's loaders:

- :func:`load_skulls`: five 2D hominid skull outlines and a template curve.
- :func:`load_faces`: 45 simulated 3D faces in dense correspondence with a
  face template, their metadata and five landmarks on the template.
- :func:`make_dysmorphic_faces`: a case-control population of faces built
  from :func:`load_faces`, with a known localised deformation (midface
  retrusion, hypertelorism or micrognathia) in the cases and its ground truth.

Where the data live
-------------------
1. ``$SKSHAPES_DATA`` when that environment variable is set (and then only
   there);
2. else ``../shared/data`` beside the checkout: next to the repository root
   (the parent of the ``skshapes`` package directory), or next to the current
   working directory.

The files are described in ``../shared/data/README.md``. Loaded data are
cached per process (parsing 46 OBJ files takes a few seconds); every call
returns fresh copies, so callers may modify what they get.
"""

# TODO: when no local copy is found, download the files with pooch from the
# sources named in ../shared/data/README.md, with pinned SHA-256 hashes.

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import Bunch

from .shapes import PolyData, decimate, read, replay_decimation

__all__ = [
    "get_data_dir",
    "load_faces",
    "load_skulls",
    "make_dysmorphic_faces",
    "SKULL_NAMES",
    "N_FACES",
    "DYSMORPHIC_REGIONS",
]

#: Order of the hominid skulls in :func:`load_skulls` (oldest to most recent).
SKULL_NAMES = ("australopithecus", "habilis", "erectus", "neandertalis", "sapiens")
#: Number of simulated faces in :func:`load_faces`.
N_FACES = 45
_N_TEMPLATE_POINTS = 7160
_MIN_RESOLUTION = 100

_ENV_VAR = "SKSHAPES_DATA"
_README = "../shared/data/README.md"


# ---------------------------------------------------------------- data dir
def _candidate_dirs() -> list[Path]:
    """Places searched for the data, in order of preference."""
    env = os.environ.get(_ENV_VAR)
    if env:
        return [Path(env).expanduser()]
    repo_root = Path(__file__).resolve().parent.parent
    candidates = [repo_root.parent / "shared" / "data", Path.cwd().resolve().parent / "shared" / "data"]
    unique = []
    for candidate in candidates:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def get_data_dir(subdir: str | None = None) -> Path:
    """Directory holding the bundled shape data.

    Parameters
    ----------
    subdir : str, optional
        A dataset folder (``"skulls"``, ``"faces"``) that must exist inside
        the data directory.

    Returns
    -------
    pathlib.Path
        ``$SKSHAPES_DATA`` if that variable is set, else the first existing
        ``../shared/data`` beside the checkout or the working directory.

    Raises
    ------
    FileNotFoundError
        If no searched place holds the data (with ``subdir`` inside it); the
        message names every place searched and the data README.
    """
    candidates = _candidate_dirs()
    for candidate in candidates:
        if candidate.is_dir() and (subdir is None or (candidate / subdir).is_dir()):
            return candidate
    what = f"the {subdir!r} dataset" if subdir else "the skshapes data directory"
    if os.environ.get(_ENV_VAR):
        where = f"${_ENV_VAR}={candidates[0]} (set in the environment)"
    else:
        where = f"${_ENV_VAR} (not set), " + " or ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"could not find {what}: looked in {where}. Set {_ENV_VAR} to the folder that holds "
        f"'skulls/' and 'faces/', or put the data in ../shared/data beside the checkout; "
        f"the files and their sources are listed in {_README}."
    )


def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"missing data file {path}; the expected files are listed in {_README}")
    return path


# ------------------------------------------------------------------ skulls
@functools.lru_cache(maxsize=4)
def _parse_skulls(root: str):
    folder = Path(root) / "skulls"
    template = read(_require(folder / "template.vtk"))
    shapes = tuple(read(_require(folder / f"skull_{name}.vtk")) for name in SKULL_NAMES)
    return template, shapes


def load_skulls() -> Bunch:
    """Load the 2D outlines of five hominid skulls and a template curve.

    Returns
    -------
    Bunch
        shapes : list of PolyData
            Five 2D polylines (178 to 206 points, in several pieces: the
            cranium, orbit and jaw outlines), in the order
            australopithecus, habilis, erectus, neandertalis, sapiens
            (:data:`SKULL_NAMES`). Coordinates in arbitrary units; the
            outlines span about 200 units.
        names : list of str
            The five species names, in the order of ``shapes``.
        template : PolyData
            A schematic skull (150 points, 144 segments: a circle for the
            cranium, a smaller one for the orbit, lines for the face and
            jaw), used as the initial template in atlas estimation and
            registration demos.
        DESCR : str
            A short description with the data source.

    Raises
    ------
    FileNotFoundError
        If the data directory cannot be found (see :func:`get_data_dir`).

    Notes
    -----
    Source: scikit-shapes (``examples/test_data/skulls``, MIT licence); the
    outlines were first published with Deformetrica's examples.
    """
    template, shapes = _parse_skulls(str(get_data_dir("skulls")))
    return Bunch(
        shapes=[shape.copy() for shape in shapes],
        names=list(SKULL_NAMES),
        template=template.copy(),
        DESCR=(
            "Outlines of five hominid skulls (2D polylines, 178 to 206 points) and a schematic template. "
            "Source: scikit-shapes examples/test_data/skulls (MIT); first published with Deformetrica."
        ),
    )


# ------------------------------------------------------------------- faces
@functools.lru_cache(maxsize=2)
def _parse_faces(root: str):
    import pandas

    folder = Path(root) / "faces"
    template = read(_require(folder / "Template.obj"))
    landmarks = np.loadtxt(_require(folder / "TemplateLandmarks.csv"), delimiter=",", ndmin=2)
    names = tuple(f"SIMPOP_{i:02d}" for i in range(1, N_FACES + 1))
    faces = tuple(read(_require(folder / "simpop" / f"{name}.obj")) for name in names)
    metadata = pandas.read_csv(_require(folder / "simpop" / "metadata.csv"))
    landmarks = torch.as_tensor(landmarks, dtype=template.dtype)
    # each landmark on its nearest template vertex, so that it follows decimation
    indices = torch.cdist(landmarks, template.points).argmin(dim=1)
    template = PolyData(template.points, triangles=template.triangles, landmarks=indices)
    faces = tuple(PolyData(f.points, triangles=template.triangles, landmarks=indices) for f in faces)
    return template, faces, names, landmarks, metadata


@functools.lru_cache(maxsize=4)
def _decimated_faces(root: str, resolution: int):
    template, faces, _, _, _ = _parse_faces(root)
    small_template, collapses = decimate(template, resolution)
    small_faces = tuple(replay_decimation(face, collapses) for face in faces)
    return small_template, small_faces, collapses


def _check_resolution(resolution):
    if isinstance(resolution, str):
        if resolution != "full":
            raise ValueError(f"resolution must be 'full' or a number of vertices, got {resolution!r}")
        return None
    if isinstance(resolution, (bool, np.bool_)) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(
            f"resolution must be 'full' or an int number of vertices, got {type(resolution).__name__} {resolution!r}"
        )
    resolution = int(resolution)
    if not _MIN_RESOLUTION <= resolution <= _N_TEMPLATE_POINTS:
        raise ValueError(
            f"resolution must be in [{_MIN_RESOLUTION}, {_N_TEMPLATE_POINTS}] vertices (or 'full'), got {resolution}"
        )
    return None if resolution == _N_TEMPLATE_POINTS else resolution


def load_faces(resolution="full") -> Bunch:
    """Load 45 simulated faces in dense correspondence with a face template.

    Parameters
    ----------
    resolution : "full" or int, default "full"
        ``"full"``: the original meshes (7,160 vertices, 14,050 triangles).
        An int in [100, 7160]: the template is decimated to about that many
        vertices by quadric edge collapse (:func:`skshapes.shapes.decimate`)
        and the *same* edge collapses are replayed on every face
        (:func:`skshapes.shapes.replay_decimation`), so that vertex i of one
        decimated face still corresponds to vertex i of every other one (each
        face's vertices are placed on that face's own surface).

    Returns
    -------
    Bunch
        shapes : list of PolyData
            45 triangle meshes (``SIMPOP_01`` ... ``SIMPOP_45``) sharing the
            template's triangles: vertex i corresponds across faces.
            Coordinates in millimetres. The faces are not pose-aligned.
            Each face carries the template's landmark indices.
        names : list of str
            ``"SIMPOP_01"`` ... ``"SIMPOP_45"``.
        template : PolyData
            The face template (7,160 vertices at full resolution), in mm, with
            ``landmarks`` set to the indices of the template vertices nearest
            to the five landmarks (they follow decimation).
        landmarks : torch.Tensor, shape (5, 3)
            The landmark coordinates of ``TemplateLandmarks.csv`` (mm), on the
            full-resolution template.
        metadata : pandas.DataFrame
            One row per face, in the order of ``shapes``: ``ID``, ``Age``
            (years), ``Sex`` (coded 1 or 2 as in the source), ``BMI`` (kg/m²).
        collapses : numpy.ndarray of int, shape (C, 2), or None
            The edge collapses applied (``None`` at full resolution): replay
            them with :func:`~skshapes.shapes.replay_decimation` on any mesh
            in correspondence with the template.
        DESCR : str
            A short description with the data source.

    Raises
    ------
    ValueError
        If ``resolution`` is neither ``"full"`` nor an int in [100, 7160].
    FileNotFoundError
        If the data directory cannot be found (see :func:`get_data_dir`).

    Notes
    -----
    Source: the MeshMonk project (TheWebMonks/meshmonk on GitHub, Apache-2.0
    licence; see ``faces/LICENSE`` and ``faces/NOTICE``). The metadata were
    converted from the source's ``SimulatedMetadata.xlsx``.
    ``Template_10K.obj`` and ``Template_1K.obj`` are independent resamplings
    of the template, not in correspondence with it, and are not loaded here.
    """
    n_points = _check_resolution(resolution)
    root = str(get_data_dir("faces"))
    template, faces, names, landmarks, metadata = _parse_faces(root)
    collapses = None
    if n_points is not None:
        template, faces, collapses = _decimated_faces(root, n_points)
        collapses = collapses.copy()
    return Bunch(
        shapes=[face.copy() for face in faces],
        names=list(names),
        template=template.copy(),
        landmarks=landmarks.clone(),
        metadata=metadata.copy(),
        collapses=collapses,
        DESCR=(
            "45 simulated faces (SIMPOP_01..45, mm) in dense correspondence with a template "
            "(7,160 vertices, 14,050 triangles), five template landmarks and metadata (Age, Sex, BMI). "
            "Source: MeshMonk (TheWebMonks/meshmonk, Apache-2.0)."
        ),
    )


# ------------------------------------------------------- dysmorphic faces
#: Regions accepted by :func:`make_dysmorphic_faces` (``"none"``: no deformation).
DYSMORPHIC_REGIONS = ("midface", "hypertelorism", "micrognathia", "none")
_COVARIATES = ("Age", "Sex", "BMI")
_CONTINUOUS_COVARIATES = ("Age", "BMI")
_MAX_ROTATION_DEG = 20.0
_MAX_TRANSLATION_MM = 10.0
_MASK_LEVEL = 0.1  # region_mask: vertices where the profile reaches 10 % of its peak
_BOOTSTRAP_BANDWIDTH = 0.5  # smoothed bootstrap of Age and BMI, in standard deviations


def _anatomical_frame(template: PolyData, landmarks: np.ndarray):
    """Axes, midline and sizes of the face, from the full template and its five landmarks (mm).

    The landmarks of ``TemplateLandmarks.csv`` are, in order: the inner eye
    corner (endocanthion) at -x, the one at +x, the nose tip (pronasale), the
    mouth corner (cheilion) at -x and the one at +x. On the template (mirror
    symmetric about x = 0), +x is lateral, +y up and +z anterior (out of the
    face); the axes are rebuilt from the geometry rather than assumed:
    anterior is the area-weighted mean normal of the template, lateral the
    sum of the eye-corner and mouth-corner vectors (orthogonalised), up
    completes a right-handed frame. The midline point is the template's
    area-weighted centroid (on its mirror plane); the hand-placed landmarks
    are 2 mm off that plane, so they set heights and sizes only.

    Returns
    -------
    Bunch
        lateral, up, anterior : (3,) orthonormal axes, ``lateral x up = anterior``.
        midline : (3,) a point of the mid-sagittal plane.
        eyes, nose, mouth : (3,) eye-corner midpoint, nose tip, mouth-corner midpoint.
        intercanthal : float, distance between the inner eye corners (36 mm).
        eye_mouth : float, height of the eye corners above the mouth corners (59 mm).
    """
    points = template.points.detach().cpu().numpy().astype(np.float64)
    weights = template.point_weights.detach().cpu().numpy().astype(np.float64)
    anterior = template.triangle_area_vectors.detach().cpu().numpy().astype(np.float64).sum(axis=0)
    anterior /= np.linalg.norm(anterior)
    eye_a, eye_b, nose, mouth_a, mouth_b = landmarks
    eyes, mouth = (eye_a + eye_b) / 2, (mouth_a + mouth_b) / 2
    lateral = (eye_b - eye_a) + (mouth_b - mouth_a)
    lateral -= (lateral @ anterior) * anterior
    lateral /= np.linalg.norm(lateral)
    up = np.cross(anterior, lateral)
    if (eyes - mouth) @ up <= 0 or (nose - eyes) @ anterior <= 0:  # pragma: no cover - bundled data
        raise ValueError("unexpected template landmarks: eyes not above the mouth or nose not in front of the eyes")
    return Bunch(
        lateral=lateral,
        up=up,
        anterior=anterior,
        midline=weights @ points / weights.sum(),
        eyes=eyes,
        nose=nose,
        mouth=mouth,
        intercanthal=float(np.linalg.norm(eye_b - eye_a)),
        eye_mouth=float((eyes - mouth) @ up),
    )


def _region_bumps(region: str, frame) -> list:
    """The bumps of a region: (centre (3,), lateral and vertical semi-axes (mm), direction (3,)).

    Sizes are fractions of the intercanthal distance ``d`` (36 mm on the
    template) and of the eye-to-mouth height ``h`` (59 mm).
    """
    d, h = frame.intercanthal, frame.eye_mouth

    def on_midline(reference, below):
        # the midline point at the height of ``reference`` minus ``below`` (mm)
        return frame.midline + ((reference - frame.midline) @ frame.up - below) * frame.up

    if region == "midface":
        # nose, upper lip and paranasal cheeks around the nasal base (0.2 h below the nose tip),
        # pushed backwards
        return [(on_midline(frame.nose, 0.2 * h), 1.2 * d, 0.5 * h, -frame.anterior)]
    if region == "hypertelorism":
        # each eye, centred 0.9 d from the midline at the height of the eye corners (0.4 d
        # lateral to the inner corner), moved away from the midline
        eyes = on_midline(frame.eyes, 0.0)
        return [(eyes + side * 0.9 * d * frame.lateral, 0.6 * d, 0.3 * h, side * frame.lateral) for side in (-1, 1)]
    if region == "micrognathia":
        # the chin, 0.55 h below the mouth corners, pushed backwards
        return [(on_midline(frame.mouth, 0.55 * h), 1.0 * d, 0.45 * h, -frame.anterior)]
    return []


def _dysmorphic_field(points: np.ndarray, frame, region: str):
    """Unit-peak displacement profile of ``region`` on the vertices ``points`` (N, 3).

    Returns
    -------
    field : numpy.ndarray, shape (N, 3)
        The displacement for ``effect_mm = 1``.
    weights : numpy.ndarray, shape (N,)
        Its magnitude, in [0, 1], exactly 1 at the peak vertex of each bump.
    """
    field = np.zeros_like(points)
    weights = np.zeros(len(points))
    for centre, a, b, direction in _region_bumps(region, frame):
        offset = points - centre
        r2 = ((offset @ frame.lateral) / a) ** 2 + ((offset @ frame.up) / b) ** 2
        # smooth (C^2) compactly supported bump: exactly zero for r >= 1
        bump = np.clip(1.0 - r2, 0.0, None) ** 3
        bump = bump / bump.max()
        field += bump[:, None] * direction
        weights = np.maximum(weights, bump)
    return field, weights


@functools.lru_cache(maxsize=2)
def _face_model(root: str, n_points):
    """The 45 faces rigidly aligned to the template, and a linear shape model with covariates.

    The faces are aligned to each other by generalised Procrustes analysis
    without scaling, then all together onto the template (rotation and
    translation of their mean), so that they live in the template's frame.
    The model regresses the flattened aligned faces on the covariates
    (ordinary least squares with an intercept) and keeps the principal
    components of the residuals.
    """
    from .statistics.procrustes import GeneralizedProcrustes, orthogonal_procrustes_rotation

    template, faces, names, landmarks, metadata = _parse_faces(root)
    frame = _anatomical_frame(template, landmarks.detach().cpu().numpy().astype(np.float64))
    if n_points is not None:
        template, faces, _ = _decimated_faces(root, n_points)
    X = np.stack([face.points.detach().cpu().numpy() for face in faces]).astype(np.float64)
    aligned = GeneralizedProcrustes(scaling=False).fit_transform(X)
    target = template.points.detach().cpu().numpy().astype(np.float64)
    target_centre = target.mean(axis=0)
    mean = aligned.mean(axis=0)
    rotation, _ = orthogonal_procrustes_rotation(
        torch.as_tensor(mean[None] - mean.mean(axis=0)), torch.as_tensor(target - target_centre)
    )
    rotation = rotation[0].numpy()
    aligned = (aligned - mean.mean(axis=0)) @ rotation.T + target_centre

    covariates = metadata[list(_COVARIATES)].to_numpy(dtype=np.float64)
    flat = aligned.reshape(len(aligned), -1)
    design = np.column_stack([np.ones(len(covariates)), covariates - covariates.mean(axis=0)])
    coefficients, *_ = np.linalg.lstsq(design, flat, rcond=None)
    residuals = flat - design @ coefficients
    _, singular, components = np.linalg.svd(residuals, full_matrices=False)
    dof = len(flat) - design.shape[1]
    variances = singular**2 / dof
    keep = singular > singular[0] * 1e-10
    return Bunch(
        aligned=aligned,
        names=names,
        covariates=covariates,
        coefficients=coefficients,
        components=components[keep],
        variances=variances[keep],
        template=template,
        frame=frame,
    )


def _sample_covariates(covariates: np.ndarray, n: int, rng) -> np.ndarray:
    """Smoothed bootstrap of the covariate rows, keeping means and variances.

    Rows (Age, Sex, BMI) are drawn with replacement, so that the joint
    distribution (Age and BMI by Sex...) is kept; Age and BMI are then
    jittered by Gaussian noise of ``0.5`` standard deviation and shrunk back
    towards the mean so that their variance is unchanged (Silverman 1986,
    §6.4.1). Sex stays one of the observed codes.
    """
    rows = rng.randint(len(covariates), size=n)
    sampled = covariates[rows].copy()
    for name in _CONTINUOUS_COVARIATES:
        j = _COVARIATES.index(name)
        mean, std = covariates[:, j].mean(), covariates[:, j].std(ddof=1)
        noise = rng.standard_normal(n) * _BOOTSTRAP_BANDWIDTH * std
        sampled[:, j] = mean + (sampled[:, j] - mean + noise) / np.sqrt(1 + _BOOTSTRAP_BANDWIDTH**2)
    return sampled


def _random_poses(n: int, rng):
    """Rotations by at most 20 degrees about uniform random axes, translations in a 10 mm ball."""
    axes = rng.standard_normal((n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.deg2rad(rng.uniform(0.0, _MAX_ROTATION_DEG, size=n))
    directions = rng.standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    shifts = directions * (_MAX_TRANSLATION_MM * rng.uniform(0.0, 1.0, size=n) ** (1 / 3))[:, None]
    cross = np.zeros((n, 3, 3))
    cross[:, 0, 1], cross[:, 0, 2], cross[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
    cross -= cross.transpose(0, 2, 1)
    # Rodrigues' formula
    rotations = (
        np.eye(3)
        + np.sin(angles)[:, None, None] * cross
        + (1 - np.cos(angles))[:, None, None] * (cross @ cross)
    )
    return rotations, shifts


def _check_real(value, name: str, low=None, high=None, open_interval=False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if open_interval and not low < value < high:
        raise ValueError(f"{name} must be in the open interval ({low}, {high}), got {value!r}")
    if not open_interval and low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return value


def make_dysmorphic_faces(
    n_subjects=60,
    effect_mm=2.0,
    region="midface",
    syndrome_fraction=0.5,
    resolution=1000,
    pose=True,
    noise_mm=0.0,
    random_state=None,
) -> Bunch:
    """A case-control population of faces with a known localised deformation.

    A benchmark for localised shape-difference testing (per-vertex GLMs,
    FWER control, Dice overlap with the truth): the "syndrome" subjects get
    a smooth displacement field of known support and amplitude, the controls
    do not, and every subject is then moved by a random rigid pose.

    Parameters
    ----------
    n_subjects : int, default 60
        Population size, >= 2.

        - ``n_subjects <= 45``: a random subset (without replacement) of the
          45 simulated faces of :func:`load_faces`, with their covariates.
        - ``n_subjects > 45``: the 45 faces plus ``n_subjects - 45`` faces
          sampled from a linear shape model of them: covariates (Age, Sex,
          BMI) are drawn by a smoothed bootstrap of the observed rows (Age
          and BMI jittered with a variance-preserving shrinkage), and the
          shape is the regression prediction for those covariates plus a
          Gaussian residual with the principal variances of the observed
          residuals. So covariates relate to shape as in the real faces (by
          the least-squares fit), and the sampled faces have the covariance
          of the real ones.
    effect_mm : float, default 2.0
        Peak displacement of the syndrome (mm), >= 0. ``0`` gives two groups
        with the same distribution (a null population).
    region : {"midface", "hypertelorism", "micrognathia", "none"}, default "midface"
        Where the syndrome deforms the face (axes from the template
        landmarks: lateral from one inner eye corner to the other, up from
        the mouth corners to the eye corners, anterior out of the face; ``d``
        the intercanthal distance, ``h`` the eye-to-mouth height, 36 and
        59 mm on the template). Each bump has the profile
        :math:`(1 - r^2)^3_+`, where :math:`r` is the elliptic distance to
        its centre in the frontal (lateral, up) plane; it is smooth and
        *exactly zero* for :math:`r \\ge 1`:

        - ``"midface"`` (midface retrusion / hypoplasia): nose, upper lip
          and paranasal cheeks (maxilla), centred on the midline 0.2 h
          below the nose tip (nasal base), semi-axes 1.2 d (lateral) by
          0.5 h (vertical), displaced backwards (-anterior).
        - ``"hypertelorism"``: two bumps, one per eye, centred 0.4 d
          lateral to each inner eye corner, semi-axes 0.6 d by 0.3 h,
          each displaced laterally away from the midline by ``effect_mm``
          (the distance between the eyes grows by ``2 * effect_mm``); the
          bumps reach neither the midline nor each other.
        - ``"micrognathia"`` (retruded chin): centred on the midline 0.55 h
          below the mouth corners, semi-axes d by 0.45 h, displaced
          backwards.
        - ``"none"``: no deformation (an empty region).
    syndrome_fraction : float, default 0.5
        Fraction of syndrome subjects (label 1), in (0, 1): exactly
        ``round(syndrome_fraction * n_subjects)`` subjects, chosen at random
        independently of shape and covariates; both groups must be
        non-empty.
    resolution : "full" or int, default 1000
        As in :func:`load_faces`: about that many vertices (1,009 for 1000),
        in correspondence with the template.
    pose : bool, default True
        Move each subject by a random rigid motion: a rotation by an angle
        uniform in [0, 20] degrees about a uniformly random axis through the
        subject's centroid, then a translation uniform in the 10 mm ball.
        ``False``: ``shapes`` are the unposed shapes.
    noise_mm : float, default 0.0
        Standard deviation (mm) of independent Gaussian noise added to every
        coordinate of every vertex (measurement noise), >= 0.
    random_state : int, numpy.random.RandomState or None, default None
        Seed (through :func:`sklearn.utils.check_random_state`). The subset
        or sampled faces, the labels, the noise and the poses are drawn
        from independent streams, so that changing ``effect_mm`` or
        ``region`` keeps the same subjects, labels, noise and poses.

    Returns
    -------
    Bunch
        shapes : list of PolyData
            The ``n_subjects`` faces, posed (mm), sharing the template's
            triangles and landmark indices (vertex i <-> vertex i).
        shapes_unposed : list of PolyData
            The same faces before the pose, in the template's frame (each
            real face is rigidly aligned to the template by Procrustes
            analysis): ``shapes_undeformed[i] + labels[i] * displacement``.
        shapes_undeformed : list of PolyData
            The faces in the template's frame before the syndrome (noise
            included).
        labels : numpy.ndarray of int, shape (n_subjects,)
            1 for syndrome subjects, 0 for controls.
        covariates : pandas.DataFrame
            ``Age`` (years), ``Sex`` (1 or 2), ``BMI`` (kg/m²), one row per
            subject.
        names : list of str
            ``"SIMPOP_07"`` for a real face, ``"SAMPLED_0001"``... for a
            sampled one.
        sampled : numpy.ndarray of bool, shape (n_subjects,)
            Whether each face was sampled from the shape model.
        template : PolyData
            The template at ``resolution``, on which ``displacement`` lives.
        displacement : torch.Tensor, shape (N, 3)
            The ground-truth field (mm) on the template's vertices, in the
            template's frame: syndrome subject i has vertex j moved by
            ``displacement[j]`` (the same vector field for every subject,
            not transported by each face's own normals) before its pose.
            Its largest norm is ``effect_mm`` (reached at one vertex per
            bump).
        region_weights : torch.Tensor, shape (N,)
            ``|displacement| / effect_mm`` in [0, 1] (defined also for
            ``effect_mm = 0``).
        region_mask : torch.Tensor of bool, shape (N,)
            The true region: ``region_weights >= 0.1``, i.e. where the
            displacement reaches 10 % of its peak (the vertices below 10 %
            move by less than ``0.1 * effect_mm``; beyond the bump's
            support they do not move at all). Empty for ``"none"``.
        poses : Bunch
            ``rotations`` (n, 3, 3) and ``translations`` (n, 3), tensors,
            such that ``shapes[i].points = shapes_unposed[i].points @
            rotations[i].T + translations[i]`` (identity and zeros when
            ``pose=False``).
        region, effect_mm : the arguments.
        DESCR : str
            A short description.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``n_subjects < 2``, ``effect_mm`` or ``noise_mm`` is negative or
        not finite, ``region`` is unknown, ``syndrome_fraction`` is not in
        (0, 1) or leaves a group empty, or ``resolution`` is invalid (see
        :func:`load_faces`). The message names the argument.
    FileNotFoundError
        If the data directory cannot be found (see :func:`get_data_dir`).

    Notes
    -----
    Order of operations per subject: real or sampled face in the template's
    frame, plus noise, plus ``labels[i] * displacement``, then the pose.
    Shapes are float32 like :func:`load_faces`; the model and the poses are
    computed in float64.

    Examples
    --------
    >>> from skshapes.datasets import make_dysmorphic_faces
    >>> data = make_dysmorphic_faces(n_subjects=20, region="hypertelorism", random_state=0)
    >>> len(data.shapes), int(data.labels.sum()), round(float(data.displacement.norm(dim=1).max()), 6)
    (20, 10, 2.0)
    """
    import pandas
    from sklearn.utils import check_random_state

    if isinstance(n_subjects, (bool, np.bool_)) or not isinstance(n_subjects, (int, np.integer)):
        raise TypeError(f"n_subjects must be an int, got {type(n_subjects).__name__}")
    n_subjects = int(n_subjects)
    if n_subjects < 2:
        raise ValueError(f"n_subjects must be >= 2, got {n_subjects}")
    effect_mm = _check_real(effect_mm, "effect_mm", low=0.0)
    noise_mm = _check_real(noise_mm, "noise_mm", low=0.0)
    fraction = _check_real(syndrome_fraction, "syndrome_fraction", 0.0, 1.0, open_interval=True)
    if not isinstance(region, str):
        raise TypeError(f"region must be a str, got {type(region).__name__}")
    if region not in DYSMORPHIC_REGIONS:
        raise ValueError(f"region must be one of {DYSMORPHIC_REGIONS}, got {region!r}")
    if not isinstance(pose, (bool, np.bool_)):
        raise TypeError(f"pose must be a bool, got {type(pose).__name__}")
    n_syndrome = int(round(fraction * n_subjects))
    if not 1 <= n_syndrome <= n_subjects - 1:
        raise ValueError(
            f"syndrome_fraction={fraction} gives {n_syndrome} syndrome subjects out of n_subjects={n_subjects}: "
            "both groups must be non-empty"
        )
    n_points = _check_resolution(resolution)
    rng = check_random_state(random_state)
    seeds = rng.randint(np.iinfo(np.int32).max, size=4)
    rng_faces, rng_labels, rng_noise, rng_poses = (np.random.RandomState(seed) for seed in seeds)

    model = _face_model(str(get_data_dir("faces")), n_points)
    template = model.template
    n_real = min(n_subjects, N_FACES)
    real = np.sort(rng_faces.choice(N_FACES, size=n_real, replace=False))
    bases = [model.aligned[real]]
    covariates = [model.covariates[real]]
    names = [model.names[i] for i in real]
    n_sampled = n_subjects - n_real
    if n_sampled:
        sampled_covariates = _sample_covariates(model.covariates, n_sampled, rng_faces)
        design = np.column_stack([np.ones(n_sampled), sampled_covariates - model.covariates.mean(axis=0)])
        scores = rng_faces.standard_normal((n_sampled, len(model.variances))) * np.sqrt(model.variances)
        flat = design @ model.coefficients + scores @ model.components
        bases.append(flat.reshape(n_sampled, -1, 3))
        covariates.append(sampled_covariates)
        names += [f"SAMPLED_{i:04d}" for i in range(1, n_sampled + 1)]
    bases = np.concatenate(bases)
    covariates = np.concatenate(covariates)

    labels = np.zeros(n_subjects, dtype=np.int64)
    labels[rng_labels.choice(n_subjects, size=n_syndrome, replace=False)] = 1
    if noise_mm > 0:
        bases = bases + noise_mm * rng_noise.standard_normal(bases.shape)

    template_points = template.points.detach().cpu().numpy().astype(np.float64)
    unit_field, weights = _dysmorphic_field(template_points, model.frame, region)
    field = effect_mm * unit_field
    unposed = bases + labels[:, None, None] * field

    if pose:
        rotations, shifts = _random_poses(n_subjects, rng_poses)
        centroids = unposed.mean(axis=1)
        translations = centroids - np.einsum("nij,nj->ni", rotations, centroids) + shifts
    else:
        rotations, translations = np.tile(np.eye(3), (n_subjects, 1, 1)), np.zeros((n_subjects, 3))
    posed = unposed @ rotations.transpose(0, 2, 1) + translations[:, None, :]

    dtype = template.dtype

    def meshes(points):
        return [
            PolyData(torch.as_tensor(p, dtype=dtype), triangles=template.triangles, landmarks=template.landmarks)
            for p in points
        ]

    covariates = pandas.DataFrame(covariates, columns=list(_COVARIATES))
    covariates["Sex"] = covariates["Sex"].round().astype(np.int64)
    return Bunch(
        shapes=meshes(posed),
        shapes_unposed=meshes(unposed),
        shapes_undeformed=meshes(bases),
        labels=labels,
        covariates=covariates,
        names=names,
        sampled=np.arange(n_subjects) >= n_real,
        template=template.copy(),
        displacement=torch.as_tensor(field, dtype=dtype),
        region_weights=torch.as_tensor(weights, dtype=dtype),
        region_mask=torch.as_tensor(weights >= _MASK_LEVEL),
        poses=Bunch(
            rotations=torch.as_tensor(rotations, dtype=dtype),
            translations=torch.as_tensor(translations, dtype=dtype),
        ),
        region=region,
        effect_mm=effect_mm,
        DESCR=(
            f"{n_subjects} faces ({n_real} simulated MeshMonk faces, {n_sampled} sampled from their linear shape "
            f"model), {n_syndrome} with a '{region}' deformation of peak {effect_mm:g} mm applied in the template "
            f"frame{', then random rigid poses (<= 20 deg, <= 10 mm)' if pose else ''}; noise {noise_mm:g} mm."
        ),
    )
