"""Tests of the bundled-data loaders (skshapes.datasets)."""

import numpy as np
import pytest
import torch

import skshapes as sks
from skshapes.datasets import N_FACES, SKULL_NAMES, get_data_dir, load_faces, load_skulls
from skshapes.shapes import replay_decimation

RESOLUTION = 1000


@pytest.fixture(scope="module")
def faces():
    return load_faces()


@pytest.fixture(scope="module")
def small_faces():
    return load_faces(resolution=RESOLUTION)


# ------------------------------------------------------------------ skulls
def test_skulls_counts_and_order():
    skulls = load_skulls()
    assert skulls.names == list(SKULL_NAMES)
    assert skulls.names == ["australopithecus", "habilis", "erectus", "neandertalis", "sapiens"]
    assert len(skulls.shapes) == 5
    for shape in skulls.shapes + [skulls.template]:
        assert isinstance(shape, sks.PolyData)
        assert shape.dim == 2 and shape.kind == "curve"
    # the outlines span about 200 units
    extent = torch.cat([s.points for s in skulls.shapes]).aminmax(dim=0)
    assert 150 < float((extent.max - extent.min).max()) < 300


def test_skulls_match_files():
    skulls = load_skulls()
    folder = get_data_dir("skulls") / "skulls"
    for name, shape in zip(skulls.names, skulls.shapes):
        expected = sks.read(folder / f"skull_{name}.vtk")
        torch.testing.assert_close(shape.points, expected.points, rtol=0, atol=0)
        assert torch.equal(shape.edges, expected.edges)


def test_loaders_return_copies():
    first = load_skulls()
    first.shapes[0].points.add_(1000.0)
    first.names.append("oops")
    second = load_skulls()
    assert float(second.shapes[0].points.abs().max()) < 500
    assert len(second.names) == 5


# ------------------------------------------------------------------- faces
def test_faces_counts(faces):
    assert len(faces.shapes) == N_FACES == 45
    assert faces.names == [f"SIMPOP_{i:02d}" for i in range(1, 46)]
    assert faces.template.n_points == 7160
    assert faces.template.n_triangles == 14050
    for face in faces.shapes:
        assert face.n_points == 7160 and face.dim == 3
        assert torch.equal(face.triangles, faces.template.triangles)
    assert faces.collapses is None


def test_faces_metadata(faces):
    metadata = faces.metadata
    assert list(metadata.columns) == ["ID", "Age", "Sex", "BMI"]
    assert len(metadata) == 45
    assert list(metadata["ID"]) == faces.names
    assert set(metadata["Sex"].unique()) <= {1, 2}
    assert metadata["Age"].between(0, 120).all()
    assert metadata["BMI"].between(10, 60).all()


def test_faces_landmarks(faces):
    assert faces.landmarks.shape == (5, 3)
    assert faces.landmarks.dtype == faces.template.dtype
    np.testing.assert_allclose(faces.landmarks[0].numpy(), [-15.647, 37.001, 14.34], rtol=1e-5)
    # template landmarks: the nearest vertex to each landmark
    assert faces.template.landmarks.shape == (5,)
    distances = torch.cdist(faces.landmarks, faces.template.points)
    assert torch.equal(faces.template.landmarks, distances.argmin(dim=1))
    assert float(torch.linalg.norm(faces.template.landmark_points - faces.landmarks, dim=1).max()) < 2.0  # mm


def _mapping(full_shape, collapses):
    """Index of the decimated vertex that each full-resolution vertex collapses into (N,).

    Obtained by replaying the collapses on a mesh whose landmarks are all its
    vertices: replay_decimation maps every landmark to its new vertex.
    """
    labelled = sks.PolyData(
        full_shape.points, triangles=full_shape.triangles, landmarks=torch.arange(full_shape.n_points)
    )
    return replay_decimation(labelled, collapses).landmarks


def test_decimated_faces_share_connectivity(small_faces):
    template = small_faces.template
    assert abs(template.n_points - RESOLUTION) <= 0.05 * RESOLUTION
    assert small_faces.collapses is not None and small_faces.collapses.shape[1] == 2
    for face in small_faces.shapes:
        assert face.n_points == template.n_points
        assert torch.equal(face.triangles, template.triangles)
    # landmarks follow the decimation and stay near their coordinates (mm)
    assert small_faces.template.landmarks.shape == (5,)
    assert float(torch.linalg.norm(template.landmark_points - small_faces.landmarks, dim=1).max()) < 5.0


def test_decimated_faces_keep_correspondence(faces, small_faces):
    """Vertex j of every decimated face comes from the same cluster of full-resolution vertices.

    The collapses replayed on face k merge the same set C_j of original
    vertices into decimated vertex j, for every k; the new vertex is placed
    at the quadric-optimal position of face k's own surface. So

    1. replaying the collapses on full face k gives exactly decimated face k;
    2. decimated vertex j of face k lies at the cluster C_j of face k: it is
       closer to the centroid of C_j (on face k) than to the centroid of any
       other cluster, for nearly every j, and never farther than the
       cluster's own size;
    3. the displacement between two decimated faces at vertex j follows the
       displacement between the full faces over C_j (a shuffled vertex order
       would break this completely).
    """
    collapses = small_faces.collapses
    mapping = _mapping(faces.template, collapses)
    n_small = small_faces.template.n_points
    assert mapping.shape == (7160,)
    assert torch.equal(torch.unique(mapping), torch.arange(n_small))  # every decimated vertex has a cluster
    counts = torch.bincount(mapping, minlength=n_small).unsqueeze(1).to(faces.template.dtype)

    def centroids(points):
        return torch.zeros(n_small, 3, dtype=points.dtype).index_add(0, mapping, points) / counts

    subjects = [0, 17, 44]
    for k in subjects:
        full, small = faces.shapes[k], small_faces.shapes[k]
        # 1. the same collapses, replayed on this face
        torch.testing.assert_close(small.points, replay_decimation(full, collapses).points)
        # 2. each decimated vertex sits at its own cluster
        centre = centroids(full.points)
        to_own = torch.linalg.norm(small.points - centre, dim=1)
        radius = torch.zeros(n_small, dtype=full.dtype).scatter_reduce(
            0, mapping, torch.linalg.norm(full.points - centre[mapping], dim=1), reduce="amax"
        )
        assert bool((to_own <= 1.5 * radius + 1e-3).all()), float((to_own - 1.5 * radius).max())
        others = torch.cdist(small.points, centre)
        others.fill_diagonal_(float("inf"))
        closest_is_own = to_own < others.min(dim=1).values
        assert float(closest_is_own.double().mean()) > 0.97
    # 3. displacements between faces agree at low and full resolution
    a, b = subjects[0], subjects[1]
    small_motion = small_faces.shapes[b].points - small_faces.shapes[a].points
    full_motion = centroids(faces.shapes[b].points) - centroids(faces.shapes[a].points)
    error = torch.linalg.norm(small_motion - full_motion, dim=1)
    magnitude = torch.linalg.norm(full_motion, dim=1)
    assert float(error.median()) < 0.05 * float(magnitude.median())
    shuffled = small_motion[torch.randperm(n_small, generator=torch.Generator().manual_seed(0))]
    assert float(torch.linalg.norm(shuffled - full_motion, dim=1).median()) > 5 * float(error.median())


def test_full_resolution_number_is_full(faces):
    same = load_faces(resolution=7160)
    assert same.collapses is None
    torch.testing.assert_close(same.shapes[3].points, faces.shapes[3].points, rtol=0, atol=0)


@pytest.mark.parametrize("resolution", ["half", 0, 99, 7161, -5, 1.5, 1000.0, True, None, [1000]])
def test_bad_resolution_raises(resolution):
    with pytest.raises(ValueError, match="resolution"):
        load_faces(resolution=resolution)


def test_numpy_integer_resolution(small_faces):
    again = load_faces(resolution=np.int64(RESOLUTION))
    torch.testing.assert_close(again.template.points, small_faces.template.points)


# ----------------------------------------------------------- data folder
def test_missing_data_dir_names_places(monkeypatch, tmp_path):
    monkeypatch.setenv("SKSHAPES_DATA", str(tmp_path))
    for loader in (load_skulls, load_faces):
        with pytest.raises(FileNotFoundError) as info:
            loader()
        message = str(info.value)
        assert "SKSHAPES_DATA" in message
        assert str(tmp_path) in message
        assert "../shared/data" in message
        assert "README.md" in message


def test_default_places_named_when_nothing_found(monkeypatch, tmp_path):
    import skshapes.datasets as datasets

    missing = [tmp_path / "a" / "shared" / "data", tmp_path / "b" / "shared" / "data"]
    monkeypatch.delenv("SKSHAPES_DATA", raising=False)
    monkeypatch.setattr(datasets, "_candidate_dirs", lambda: missing)
    with pytest.raises(FileNotFoundError) as info:
        get_data_dir("skulls")
    message = str(info.value)
    assert all(str(path) in message for path in missing)
    assert "SKSHAPES_DATA" in message and "README.md" in message


def test_env_var_points_to_data(monkeypatch):
    real = get_data_dir()
    monkeypatch.setenv("SKSHAPES_DATA", str(real))
    assert get_data_dir("faces") == real
    assert len(load_skulls().shapes) == 5


def test_candidates_include_checkout_and_cwd(monkeypatch, tmp_path):
    import skshapes.datasets as datasets

    monkeypatch.delenv("SKSHAPES_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    candidates = datasets._candidate_dirs()
    repo_root = datasets.Path(datasets.__file__).resolve().parent.parent
    assert candidates[0] == repo_root.parent / "shared" / "data"
    assert tmp_path.resolve().parent / "shared" / "data" in candidates
