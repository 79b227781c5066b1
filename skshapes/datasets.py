"""Loaders for the shape data bundled with the project.

Two datasets, returned as :class:`sklearn.utils.Bunch` objects like
scikit-learn's loaders:

- :func:`load_skulls`: five 2D hominid skull outlines and a template curve.
- :func:`load_faces`: 45 simulated 3D faces in dense correspondence with a
  face template, their metadata and five landmarks on the template.

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

__all__ = ["get_data_dir", "load_faces", "load_skulls", "SKULL_NAMES", "N_FACES"]

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
            Five 2D polylines (206 points, 200 segments each), in the order
            australopithecus, habilis, erectus, neandertalis, sapiens
            (:data:`SKULL_NAMES`). Coordinates in arbitrary units; the
            outlines span about 200 units.
        names : list of str
            The five species names, in the order of ``shapes``.
        template : PolyData
            A 2D polyline (150 points) shaped like an ellipse, used as the
            initial template in atlas estimation and registration demos.
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
            "Outlines of five hominid skulls (2D polylines, 206 points) and an elliptic template. "
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
