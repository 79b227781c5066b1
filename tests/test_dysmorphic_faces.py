"""Tests of the synthetic case-control face population (skshapes.datasets.make_dysmorphic_faces).

Tolerances: shapes are float32 (like load_faces) with coordinates of about 100 mm, so identities
between float32 outputs computed in float64 hold to ~1e-5 mm; we use 1e-4 mm. Statistical checks
use sample sizes whose sampling error is written next to each bound.
"""

import numpy as np
import pytest
import torch

from skshapes.datasets import DYSMORPHIC_REGIONS, N_FACES, load_faces, make_dysmorphic_faces
from conftest import assert_close

RESOLUTION = 1000
REGIONS = ("midface", "hypertelorism", "micrognathia")
ATOL_MM = 1e-4


def points(shapes):
    return torch.stack([shape.points for shape in shapes]).double()


@pytest.fixture(scope="module")
def population():
    return make_dysmorphic_faces(n_subjects=30, effect_mm=2.0, region="midface", noise_mm=0.3, random_state=0)


@pytest.fixture(scope="module")
def large_null():
    # 45 real faces + 500 sampled, no effect, no pose
    return make_dysmorphic_faces(n_subjects=545, effect_mm=0.0, pose=False, random_state=1)


@pytest.fixture(scope="module")
def real_faces():
    return make_dysmorphic_faces(n_subjects=N_FACES, effect_mm=0.0, pose=False, random_state=2)


# ----------------------------------------------------------------- the field
@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("effect_mm", [2.0, 0.7])
def test_displacement_peak_and_support(region, effect_mm):
    data = make_dysmorphic_faces(n_subjects=4, effect_mm=effect_mm, region=region, random_state=0)
    template, field = data.template, data.displacement
    assert field.shape == (template.n_points, 3) and field.dtype == template.dtype
    norms = field.double().norm(dim=1)
    assert abs(float(norms.max()) - effect_mm) < 1e-6
    assert_close(data.region_weights.double(), norms / effect_mm, atol=1e-6, name="region_weights")
    # the mask: where the displacement reaches 10 % of its peak; below 10 % outside it
    assert torch.equal(data.region_mask, data.region_weights >= 0.1)
    assert float(norms[~data.region_mask].max()) < 0.1 * effect_mm
    # localised: exactly zero on most of the face, and the region is a minority of it
    assert 0.03 < float(data.region_mask.double().mean()) < 0.3
    assert float((norms == 0).double().mean()) > 0.6
    # smooth: Lipschitz along mesh edges, |d_i - d_j| <= 0.2 * effect_mm per mm
    tri = template.triangles
    edges = torch.cat([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    p = template.points.double()
    slopes = (field.double()[edges[:, 0]] - field.double()[edges[:, 1]]).norm(dim=1) / (
        p[edges[:, 0]] - p[edges[:, 1]]
    ).norm(dim=1)
    assert float(slopes.max()) < 0.2 * effect_mm


def test_region_anatomy():
    # landmarks on the template: inner eye corners, nose tip, mouth corners (x lateral, y up, z anterior)
    fields = {region: make_dysmorphic_faces(n_subjects=4, region=region, random_state=0) for region in REGIONS}
    template = fields["midface"].template
    p = template.points.double()
    eye_a, eye_b, nose, mouth_a, mouth_b = template.landmark_points.double()
    nose_index = int(template.landmarks[2])

    midface = fields["midface"]
    moved = midface.displacement.double().norm(dim=1) > 0
    assert bool(midface.region_mask[nose_index])  # the nose tip is retruded
    d = midface.displacement.double()[moved]
    assert bool((d[:, 2] < 0).all())  # backwards
    directions = d / d.norm(dim=1, keepdim=True)
    assert_close(directions, directions[:1].expand_as(directions), atol=1e-6, name="one direction")
    mask = midface.region_mask
    assert float(p[mask, 1].max()) < float(eye_a[1])  # below the eyes
    assert float(p[mask, 1].min()) > float(mouth_a[1])  # above the mouth corners

    hyper = fields["hypertelorism"]
    d, mask = hyper.displacement.double(), hyper.region_mask
    moved = d.norm(dim=1) > 0
    assert not bool(hyper.region_mask[nose_index])
    assert bool((torch.sign(d[moved, 0]) == torch.sign(p[moved, 0])).all())  # away from the midline
    assert float(d[moved, 0].abs().min()) > 0.99 * float(d[moved].norm(dim=1).min())  # lateral
    assert float(p[moved, 0].abs().min()) > 5.0  # neither bump reaches the midline
    for side in (-1, 1):  # one eye region on each side, around the eye corner's height
        inside = mask & (torch.sign(p[:, 0]) == side)
        assert int(inside.sum()) > 10
        assert abs(float(p[inside, 1].mean()) - float(eye_a[1] + eye_b[1]) / 2) < 8.0
    # peak on each side: the inter-eye distance grows by 2 * effect_mm
    for side in (-1, 1):
        assert abs(float(d[torch.sign(p[:, 0]) == side].norm(dim=1).max()) - 2.0) < 1e-6

    micro = fields["micrognathia"]
    d, mask = micro.displacement.double(), micro.region_mask
    moved = d.norm(dim=1) > 0
    assert bool((d[moved, 2] < 0).all())
    assert float(p[mask, 1].max()) < float(mouth_a[1] + mouth_b[1]) / 2 - 5.0  # below the mouth
    assert abs(float(p[mask, 0].mean())) < 3.0  # on the midline
    # the three masks are disjoint
    assert not bool((fields["midface"].region_mask & mask).any())
    assert not bool((fields["hypertelorism"].region_mask & mask).any())


def test_region_none_and_zero_effect():
    none = make_dysmorphic_faces(n_subjects=6, region="none", random_state=0)
    assert float(none.displacement.abs().max()) == 0.0 and not bool(none.region_mask.any())
    zero = make_dysmorphic_faces(n_subjects=6, effect_mm=0.0, random_state=0)
    assert float(zero.displacement.abs().max()) == 0.0
    reference = make_dysmorphic_faces(n_subjects=6, effect_mm=2.0, random_state=0)
    assert torch.equal(zero.region_mask, reference.region_mask)  # the region does not depend on the effect
    assert "none" in DYSMORPHIC_REGIONS


def test_full_resolution_same_region():
    full = make_dysmorphic_faces(n_subjects=2, resolution="full", random_state=0)
    small = make_dysmorphic_faces(n_subjects=2, resolution=RESOLUTION, random_state=0)
    assert full.template.n_points == 7160 and full.displacement.shape == (7160, 3)
    assert abs(float(full.displacement.norm(dim=1).max()) - 2.0) < 1e-6
    # the same region (a function of position on the face): equal area fractions
    fraction = {
        name: float(data.template.point_weights[data.region_mask].sum() / data.template.point_weights.sum())
        for name, data in (("full", full), ("small", small))
    }
    assert abs(fraction["full"] - fraction["small"]) < 0.02


# ------------------------------------------------------------ the population
def test_population_structure(population):
    n = 30
    assert len(population.shapes) == len(population.shapes_unposed) == len(population.shapes_undeformed) == n
    template = population.template
    for shapes in (population.shapes, population.shapes_unposed, population.shapes_undeformed):
        for shape in shapes:
            assert shape.n_points == template.n_points and shape.dtype == template.dtype
            assert torch.equal(shape.triangles, template.triangles)
            assert torch.equal(shape.landmarks, template.landmarks)
    assert population.labels.shape == (n,) and set(np.unique(population.labels)) == {0, 1}
    assert int(population.labels.sum()) == 15
    assert list(population.covariates.columns) == ["Age", "Sex", "BMI"] and len(population.covariates) == n
    assert not population.sampled.any()
    assert len(set(population.names)) == n and all(name.startswith("SIMPOP_") for name in population.names)
    assert population.region == "midface" and population.effect_mm == 2.0
    assert isinstance(population.DESCR, str)


def test_subset_keeps_real_covariates(population):
    metadata = load_faces(resolution=RESOLUTION).metadata.set_index("ID")
    expected = metadata.loc[population.names, ["Age", "Sex", "BMI"]].to_numpy(float)
    np.testing.assert_allclose(population.covariates.to_numpy(float), expected, rtol=0, atol=0)


def test_real_faces_rigidly_aligned_to_template():
    # noise-free real faces: rigid motions of load_faces' faces, brought onto the template
    data = make_dysmorphic_faces(n_subjects=5, effect_mm=0.0, pose=False, random_state=3)
    faces = load_faces(resolution=RESOLUTION)
    template = faces.template.points.double()
    for name, shape in zip(data.names, data.shapes_undeformed):
        original = faces.shapes[faces.names.index(name)].points.double()
        aligned = shape.points.double()
        sub = slice(None, None, 7)
        assert_close(torch.cdist(aligned[sub], aligned[sub]), torch.cdist(original[sub], original[sub]),
                     rtol=0, atol=ATOL_MM, name="distances")
        rms_aligned = float((aligned - template).norm(dim=1).pow(2).mean().sqrt())
        rms_original = float((original - template).norm(dim=1).pow(2).mean().sqrt())
        assert rms_aligned < 10.0 < rms_original


def test_truth_in_correspondence(population):
    # unposed = undeformed + label * displacement, vertex by vertex
    expected = points(population.shapes_undeformed) + torch.as_tensor(population.labels).double()[
        :, None, None
    ] * population.displacement.double()
    assert_close(points(population.shapes_unposed), expected, rtol=0, atol=ATOL_MM, name="unposed")
    controls = population.labels == 0
    assert_close(points(population.shapes_unposed)[controls], points(population.shapes_undeformed)[controls],
                 rtol=0, atol=0, name="controls untouched")


def test_poses_are_rigid(population):
    rotations, translations = population.poses.rotations.double(), population.poses.translations.double()
    n = len(population.shapes)
    assert rotations.shape == (n, 3, 3) and translations.shape == (n, 3)
    assert_close(rotations @ rotations.transpose(1, 2), torch.eye(3).expand(n, 3, 3), rtol=0, atol=1e-6,
                 name="orthogonal")
    assert_close(torch.linalg.det(rotations), torch.ones(n), rtol=0, atol=1e-6, name="det")
    angles = torch.rad2deg(torch.arccos(((rotations.diagonal(dim1=1, dim2=2).sum(1) - 1) / 2).clamp(-1, 1)))
    assert float(angles.max()) <= 20.0 + 1e-3 and float(angles.max()) > 1.0
    posed, unposed = points(population.shapes), points(population.shapes_unposed)
    assert_close(posed, unposed @ rotations.transpose(1, 2) + translations[:, None, :], rtol=0, atol=ATOL_MM,
                 name="pose formula")
    # rotation about the centroid, then a translation of at most 10 mm
    shifts = (posed.mean(dim=1) - unposed.mean(dim=1)).norm(dim=1)
    assert float(shifts.max()) <= 10.0 + ATOL_MM and float(shifts.max()) > 1.0
    sub = slice(None, None, 5)
    for i in range(n):
        assert_close(torch.cdist(posed[i, sub], posed[i, sub]), torch.cdist(unposed[i, sub], unposed[i, sub]),
                     rtol=0, atol=ATOL_MM, name=f"distances of subject {i}")


def test_no_pose():
    data = make_dysmorphic_faces(n_subjects=6, pose=False, random_state=0)
    assert_close(points(data.shapes), points(data.shapes_unposed), rtol=0, atol=0, name="shapes")
    assert torch.equal(data.poses.rotations, torch.eye(3).expand(6, 3, 3).to(data.poses.rotations.dtype))
    assert float(data.poses.translations.abs().max()) == 0.0


def test_reproducible_and_seed_dependent():
    kwargs = dict(n_subjects=50, noise_mm=0.2)
    first, second = make_dysmorphic_faces(**kwargs, random_state=5), make_dysmorphic_faces(**kwargs, random_state=5)
    other = make_dysmorphic_faces(**kwargs, random_state=6)
    assert torch.equal(points(first.shapes), points(second.shapes))
    assert np.array_equal(first.labels, second.labels) and first.names == second.names
    assert first.covariates.equals(second.covariates)
    assert not torch.equal(points(first.shapes), points(other.shapes))
    assert not np.array_equal(first.labels, other.labels)
    # the effect size does not change the subjects, labels, noise or poses
    bigger = make_dysmorphic_faces(**kwargs, effect_mm=5.0, region="micrognathia", random_state=5)
    assert np.array_equal(first.labels, bigger.labels)
    assert torch.equal(points(first.shapes_undeformed), points(bigger.shapes_undeformed))
    assert torch.equal(first.poses.rotations, bigger.poses.rotations)


def test_null_groups_coincide(large_null):
    # effect_mm = 0: labels independent of shape. Per-coordinate sd ~2.5 mm, groups of ~270:
    # the group-mean difference has sd ~0.2 mm per coordinate (RMS of its norm ~0.4 mm).
    faces, labels = points(large_null.shapes_unposed), torch.as_tensor(large_null.labels)
    difference = faces[labels == 1].mean(0) - faces[labels == 0].mean(0)
    rms = float(difference.norm(dim=1).pow(2).mean().sqrt())
    spread = float(faces.std(dim=0).norm(dim=1).pow(2).mean().sqrt())
    n_cases, n_controls = int((labels == 1).sum()), int((labels == 0).sum())
    expected = spread * (1 / n_cases + 1 / n_controls) ** 0.5
    assert rms < 2 * expected < 1.0
    # the same subjects with an effect: the group difference moves by the displacement exactly
    effect = make_dysmorphic_faces(n_subjects=545, effect_mm=2.0, pose=False, random_state=1)
    faces = points(effect.shapes_unposed)
    shifted = faces[labels == 1].mean(0) - faces[labels == 0].mean(0)
    assert_close(shifted - difference, effect.displacement.double(), rtol=0, atol=ATOL_MM, name="group shift")


def test_sampled_faces_match_the_real_ones(large_null, real_faces):
    data = large_null
    assert data.sampled.sum() == 500 and not data.sampled[:45].any()
    assert data.names[45] == "SAMPLED_0001" and len(set(data.names)) == 545
    assert data.covariates.shape == (545, 3) and set(data.covariates["Sex"].unique()) <= {1, 2}
    sampled_cov = data.covariates[data.sampled]
    real_cov = real_faces.covariates
    for column in ("Age", "BMI"):  # 500 draws: the mean is within 0.15 sd; the sd within 15 %
        assert abs(sampled_cov[column].mean() - real_cov[column].mean()) < 0.2 * real_cov[column].std()
        assert 0.8 < sampled_cov[column].std() / real_cov[column].std() < 1.25

    real = points(real_faces.shapes_unposed).reshape(N_FACES, -1)
    mean = real.mean(0)
    _, singular, components = torch.linalg.svd(real - mean, full_matrices=False)
    variances = singular[:5] ** 2 / (N_FACES - 1)
    sampled = points([s for s, f in zip(data.shapes_unposed, data.sampled) if f]).reshape(500, -1)
    scores = (sampled - mean) @ components[:5].T
    # the model's variances are unbiased estimates (ddof = 4 parameters), 7 % above the data's;
    # the sampling error of a variance from 500 draws is ~6 %
    ratios = scores.var(dim=0) / variances
    assert bool(((ratios > 0.8) & (ratios < 1.3)).all()), ratios

    # covariates relate to shape as in the real faces: same correlations with the first PC scores
    def correlations(cov, sc):
        joint = np.corrcoef(np.column_stack([cov.to_numpy(float), sc.numpy()]).T)
        return joint[:3, 3:]

    real_scores = (real - mean) @ components[:3].T
    observed = correlations(real_cov, real_scores)
    simulated = correlations(sampled_cov, scores[:, :3])
    assert np.abs(observed).max() > 0.4  # the real faces do depend on their covariates
    assert np.abs(simulated - observed).max() < 0.2


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        (dict(n_subjects=1), ValueError, "n_subjects"),
        (dict(n_subjects=10.0), TypeError, "n_subjects"),
        (dict(n_subjects=True), TypeError, "n_subjects"),
        (dict(effect_mm=-1.0), ValueError, "effect_mm"),
        (dict(effect_mm=float("nan")), ValueError, "effect_mm"),
        (dict(effect_mm=float("inf")), ValueError, "effect_mm"),
        (dict(effect_mm="2"), TypeError, "effect_mm"),
        (dict(region="nose"), ValueError, "region"),
        (dict(region=None), TypeError, "region"),
        (dict(syndrome_fraction=0.0), ValueError, "syndrome_fraction"),
        (dict(syndrome_fraction=1.0), ValueError, "syndrome_fraction"),
        (dict(syndrome_fraction=1.5), ValueError, "syndrome_fraction"),
        (dict(n_subjects=4, syndrome_fraction=0.1), ValueError, "syndrome_fraction"),
        (dict(noise_mm=-0.1), ValueError, "noise_mm"),
        (dict(resolution="half"), ValueError, "resolution"),
        (dict(resolution=50), ValueError, "resolution"),
        (dict(pose="yes"), TypeError, "pose"),
    ],
)
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        make_dysmorphic_faces(**kwargs)
