"""Craniofacial dysmorphology: where, and by how many millimetres, does a group of faces differ from controls?

:class:`DysmorphologyAnalysis` chains the steps of a dense-correspondence
morphometric study (Hammond et al. 2004; Claes et al. 2018; Hallgrímsson et
al. 2020) on a population of surface meshes:

1. rigid alignment of every shape to the template,
2. dense correspondence by registration of the template onto every shape,
3. generalized Procrustes analysis of the corresponded vertices,
4. displacement of every vertex along the mean shape's normals,
5. a PCA shape space,
6. a cross-validated classifier (syndrome vs control) with its ROC curve,
7. a vertex-wise permutation GLM with covariates (FWER-corrected).

:func:`evaluate_against_truth` compares the results with the ground truth of a
simulated population (:func:`~skshapes.datasets.make_dysmorphic_faces`).
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "REGISTRATION_PARAMETERS",
    "DysmorphologyAnalysis",
    "closest_points_on_mesh",
    "evaluate_against_truth",
    "rigid_part",
]


def closest_points_on_mesh(points, vertices, triangles, k=8):
    """The closest point of a triangle mesh to each query point.

    The search is restricted to the triangles around the ``k`` vertices
    nearest to each point (exact unless a closer triangle has none of its
    vertices among those ``k``, which needs very elongated triangles).

    Parameters
    ----------
    points : array-like, shape (P, 3)
    vertices : array-like, shape (N, 3)
    triangles : array-like of int, shape (T, 3)
    k : int, default 8
        Nearest vertices whose incident triangles are searched.

    Returns
    -------
    numpy.ndarray, shape (P, 3), float64
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    k = min(int(k), len(vertices))
    _, nearest = cKDTree(vertices).query(points, k=k)
    nearest = nearest.reshape(len(points), k)
    # incident[v] lists the triangles around vertex v, padded with -1
    flat = triangles.ravel()
    counts = np.bincount(flat, minlength=len(vertices))
    order = np.argsort(flat, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owners = flat[order]
    incident = -np.ones((len(vertices), max(int(counts.max()), 1)), dtype=np.int64)
    incident[owners, np.arange(len(flat)) - starts[owners]] = order // 3
    candidates = incident[nearest].reshape(len(points), -1)
    best = np.full(len(points), np.inf)
    out = points.copy()
    for column in candidates.T:
        valid = column >= 0
        if not valid.any():
            continue
        a, b, c = (vertices[triangles[np.where(valid, column, 0), i]] for i in range(3))
        q = _closest_on_triangles(points, a, b, c)
        distance = np.where(valid, ((q - points) ** 2).sum(axis=1), np.inf)
        better = distance < best
        best[better], out[better] = distance[better], q[better]
    return out


def _closest_on_triangles(p, a, b, c):
    """Closest point of triangle (a, b, c) to p, row-wise (Ericson, *Real-Time Collision Detection*, 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def ratio(num, den):
        return num / np.where(den == 0, 1e-300, den)

    total = va + vb + vc
    out = a + ab * ratio(vb, total)[:, None] + ac * ratio(vc, total)[:, None]  # inside the triangle
    # Voronoi regions of the edges and vertices; they are disjoint except on borders, where they agree
    regions = [
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b + (c - b) * ratio(d4 - d3, (d4 - d3) + (d5 - d6))[:, None]),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * ratio(d2, d2 - d6)[:, None]),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * ratio(d1, d1 - d3)[:, None]),
        ((d6 >= 0) & (d5 <= d6), c),
        ((d3 >= 0) & (d4 <= d3), b),
        ((d1 <= 0) & (d2 <= 0), a),
    ]
    for mask, value in regions:
        out[mask] = value[mask]
    return out


#: Settings of the alignment and dense-correspondence stages (units: mm), for faces of about 1,000 vertices.
#: Each subject costs about 3-6 s on one CPU core (see :class:`DysmorphologyAnalysis`).
REGISTRATION_PARAMETERS = {
    # (a) pose and size: similarity of the template onto the shape, both decimated to this many vertices
    "alignment_points": 200,
    "alignment_blur": 2.0,  # Sinkhorn blur (mm)
    "alignment_n_iter": 20,  # L-BFGS iterations
    # (b) LDDMM of the (scaled) template onto the aligned shape, both decimated to this many vertices
    "lddmm_points": 500,
    "sigma": (30.0, 15.0),  # sum of two Gaussian kernels (mm)
    "control_points": 60,
    "n_steps": 3,  # Euler steps of the geodesic shooting
    "blur": 1.5,  # Sinkhorn blur (mm)
    "scaling": 0.5,  # epsilon-scaling ratio of every Sinkhorn loss here
    "regularization_weight": 1e-2,
    "n_iter": 12,
    # then move every morphed template vertex to the closest point of the shape's surface
    "project": True,
}

CORRESPONDENCES = ("registration", "known")


def rigid_part(field, points, weights=None):
    r"""The infinitesimal rigid motion closest to a vector field, in the least-squares sense.

    Finds the translation :math:`\tau` and rotation vector :math:`\omega`
    minimising :math:`\sum_j w_j |f_j - \tau - \omega \times (x_j - \bar x)|^2`
    and returns that field. A Procrustes superimposition cannot tell a
    rigid motion of the whole shape from a shape change: of a group
    difference ``field``, only ``field - rigid_part(field, points)`` can be
    measured after generalized Procrustes analysis (to first order).

    Parameters
    ----------
    field : array-like, shape (N, 3)
    points : array-like, shape (N, 3)
        Where the field lives (the mean shape).
    weights : array-like, shape (N,), optional
        Per-point weights (default: equal, as in Procrustes analysis of vertices).

    Returns
    -------
    numpy.ndarray, shape (N, 3), float64
    """
    field = np.asarray(field, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    w = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    centred = points - (w[:, None] * points).sum(0) / w.sum()
    basis = [np.broadcast_to(e, points.shape) for e in np.eye(3)] + [np.cross(e, centred) for e in np.eye(3)]
    design = np.stack([b.ravel() for b in basis], axis=1)  # (3N, 6)
    sqrt_w = np.repeat(np.sqrt(w), 3)
    coefficients, *_ = np.linalg.lstsq(design * sqrt_w[:, None], field.ravel() * sqrt_w, rcond=None)
    return (design @ coefficients).reshape(field.shape)


def _kabsch(source, target):
    """Rotation R and translation t (float64) minimising |source @ R.T + t - target|."""
    cs, ct = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = (u @ np.diag([1.0, 1.0, d]) @ vt).T
    return rotation, ct - cs @ rotation.T


def _numpy(points):
    if isinstance(points, torch.Tensor):
        return points.detach().cpu().double().numpy()
    return np.asarray(points, dtype=np.float64)


def register_to_template(template, shape, parameters=None, small_templates=None):
    """Align ``shape`` rigidly to ``template``, then find the template's correspondences on it.

    Stages (settings in :data:`REGISTRATION_PARAMETERS`, overridden by
    ``parameters``):

    (a) *Pose and size*: :class:`~skshapes.Similarity` +
        :class:`~skshapes.SinkhornLoss` of the template onto the shape, both
        decimated to ``alignment_points`` vertices (starting from matched
        centroids). The inverse of its rigid part (rotation and translation)
        moves the shape into the template's frame, keeping its size in mm:
        the "aligned shape". Its scale is the shape's size relative to the
        template (faces differ by up to 20 %).
    (b) *Correspondence*: :class:`~skshapes.LDDMM` (``control_points``
        control points, a sum of Gaussian kernels of widths ``sigma``,
        ``n_steps`` Euler steps) + Sinkhorn (``blur``) of the template,
        scaled about its centroid by that scale, onto the aligned shape, both
        decimated to ``lddmm_points`` vertices; the fitted flow then moves
        every vertex of the full template. With ``project=True``, every
        morphed vertex is finally moved to the closest point of the aligned
        shape's surface (:func:`closest_points_on_mesh`), which removes the
        residual error along the normal that the Sinkhorn blur leaves.

    Parameters
    ----------
    template, shape : PolyData
        3D triangle meshes (any vertex counts; no correspondence needed).
    parameters : dict, optional
        Overrides of :data:`REGISTRATION_PARAMETERS`.
    small_templates : dict, optional
        Cache of the template's decimations (vertex count -> PolyData),
        filled as needed: pass the same dict for every shape.

    Returns
    -------
    Bunch
        correspondences : numpy.ndarray, shape (N_template, 3)
            The template's vertices placed on the aligned shape (template
            frame, mm, float64): vertex ``j`` is the shape's counterpart of
            the template's vertex ``j``.
        rotation, translation : numpy.ndarray, shapes (3, 3) and (3,)
            Stage (a): ``aligned = shape.points @ rotation.T + translation``.
        scale : float
            Stage (a): size of the shape relative to the template.
        seconds : dict
            Wall time of ``"alignment"`` (a) and ``"correspondence"`` (b).
        data_loss : float
            Final Sinkhorn loss of the LDDMM stage (mm^2).
        n_iter : int
            L-BFGS iterations of the LDDMM stage.

    Notes
    -----
    On faces of about 1,000 vertices (the simulated SIMPOP faces in random
    poses of up to 20 degrees and 10 mm), with the default settings: mean
    distance to the true correspondences 1.2-1.3 mm (95th percentile about
    3.3 mm; the similarity alone leaves 3.7 mm), about 3 s per face on one
    busy CPU core (0.5 s for stage a). Denser LDDMM problems help most:
    ``lddmm_points`` 300 gave 1.7 mm, 700 gave 1.05 mm for twice the time;
    more control points or iterations, or a smaller blur, did not.
    """
    from .deformations import LDDMM, Similarity
    from .losses import SinkhornLoss
    from .registration import Registration

    p = {**REGISTRATION_PARAMETERS, **(parameters or {})}
    cache = {} if small_templates is None else small_templates

    def small_template(n):
        if n not in cache:
            cache[n] = template.decimate(min(int(n), template.n_points))
        return cache[n]

    def small(mesh, n):
        return mesh.decimate(min(int(n), mesh.n_points))

    # (a) the pose: similarity of the decimated template onto the decimated shape; its rigid part, inverted,
    # moves the shape into the template's frame, and its scale is the shape's size relative to the template.
    start = time.perf_counter()
    similarity = Registration(
        Similarity(), SinkhornLoss(blur=p["alignment_blur"], scaling=p["scaling"]), regularization_weight=0.0,
        n_iter=p["alignment_n_iter"], tol=1e-5,
    ).fit(small_template(p["alignment_points"]), small(shape, p["alignment_points"]))
    template_points = _numpy(template.points)
    centre = template_points.mean(0)
    moved = _numpy(similarity.transform_points(template.points))
    rotation, scale = _umeyama(template_points - centre, moved - moved.mean(0))
    # moved = scale * (template - centre) @ rotation.T + moved.mean(0); invert the rigid part on the shape
    subject_rotation = rotation.T
    subject_translation = centre - moved.mean(0) @ rotation
    aligned_points = _numpy(shape.points) @ subject_rotation.T + subject_translation
    aligned = shape.with_points(torch.as_tensor(aligned_points, dtype=shape.dtype, device=shape.device)).copy()
    alignment_seconds = time.perf_counter() - start

    # (b) the template, scaled to the shape's size, registered onto the aligned shape by LDDMM
    start = time.perf_counter()

    def scaled(mesh):
        points = centre + scale * (_numpy(mesh.points) - centre)
        return mesh.with_points(torch.as_tensor(points, dtype=mesh.dtype, device=mesh.device)).copy()

    model = LDDMM(sigma=list(p["sigma"]), n_steps=p["n_steps"], integrator="euler",
                  control_points=p["control_points"])
    lddmm = Registration(
        model, SinkhornLoss(blur=p["blur"], scaling=p["scaling"]),
        regularization_weight=p["regularization_weight"], n_iter=p["n_iter"], tol=1e-6,
    ).fit(scaled(small_template(p["lddmm_points"])), small(aligned, p["lddmm_points"]))
    morphed = _numpy(lddmm.transform_points(scaled(template).points))
    if p["project"]:
        morphed = closest_points_on_mesh(morphed, aligned_points, aligned.triangles.cpu().numpy())
    return Bunch(
        correspondences=morphed,
        rotation=subject_rotation,
        translation=subject_translation,
        scale=scale,
        seconds={"alignment": alignment_seconds, "correspondence": time.perf_counter() - start},
        data_loss=float(lddmm.data_loss_),
        n_iter=int(lddmm.n_iter_),
    )


def _umeyama(source, target):
    """Rotation R (det +1) and scale s minimising |s * source @ R.T - target| for centred (N, 3) arrays."""
    u, sigma, vt = np.linalg.svd(source.T @ target)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    signs = np.array([1.0, 1.0, d])
    rotation = (u * signs) @ vt
    scale = float((sigma * signs).sum() / (source**2).sum())
    return rotation.T, scale


def _register_worker(template, shape, parameters, one_thread):
    if one_thread:
        torch.set_num_threads(1)
    return register_to_template(template, shape, parameters)


class DysmorphologyAnalysis(BaseEstimator):
    r"""Case-control analysis of face (or skull) surfaces: where, and by how many mm, do the groups differ?

    ``fit(shapes, labels, covariates)`` runs, for a population of 3D triangle
    meshes (controls labelled 0, syndrome 1):

    (a) **Alignment**: each shape is moved rigidly onto the template: the
        rotation and translation of a similarity registration
        (:class:`~skshapes.Similarity` + :class:`~skshapes.SinkhornLoss`,
        on copies decimated to 200 vertices), inverted. Only the pose is
        removed, so sizes stay in mm; the similarity's scale sizes the
        template for stage (b).
    (b) **Dense correspondence**: the template is registered onto each
        aligned shape (:class:`~skshapes.LDDMM` with 60 control points and a
        Sinkhorn loss on 500-vertex copies, then a projection onto the
        shape's surface; :func:`register_to_template`). Vertex ``j`` of the
        morphed template is subject ``i``'s point ``j``. When the true
        correspondences are known they serve only to measure this stage
        (``truth`` in :meth:`fit`). With ``correspondence="known"`` the
        shapes' own vertices are used instead (they must share the
        template's vertex order): a reference, and a fast path for testing
        the statistics.
    (c) **Generalized Procrustes analysis** of the corresponded vertices,
        without scaling (size-and-shape: differences stay in mm), expressed
        in the template's frame (the Procrustes mean is rigidly fitted to the
        template).
    (d) **Normal displacements**: for each subject and vertex, the
        displacement from the Procrustes mean along the mean shape's outward
        normal (mm; negative = inward, e.g. a retruded midface).
    (e) **Shape space**: PCA of the aligned coordinates (``n_components``).
    (f) **Classifier**: ``PCA -> StandardScaler -> LogisticRegression`` in a
        scikit-learn pipeline, cross-validated with ``StratifiedKFold``
        (``cross_val_predict`` probabilities, the PCA refitted in every fold
        so that held-out subjects never inform it), giving the ROC curve and
        its AUC.
    (g) **Vertex-wise GLM**: :class:`~skshapes.statistics.glm.PermutationGLM`
        (Freedman-Lane) of the normal displacements on the label, with the
        covariates (e.g. age, sex, BMI) as nuisance regressors; max-statistic
        FWER-corrected p-values.

    Parameters
    ----------
    template : PolyData, optional
        The reference mesh (3D, triangles). ``None``: the first shape.
    correspondence : {"registration", "known"}, default "registration"
        How vertices are matched across subjects, see (b).
    registration_parameters : dict, optional
        Overrides of :data:`REGISTRATION_PARAMETERS` (stages a and b).
    n_components : int, default 10
        Principal components of the shape space (and of the classifier).
    n_splits : int, default 5
        Folds of the stratified cross-validation of the classifier.
    C : float, default 1.0
        Inverse L2 regularization strength of the logistic regression.
    n_permutations : int, default 10000
        Permutations of the GLM.
    alpha : float, default 0.05
        FWER level of :attr:`significant_`.
    tfce : bool, default False
        Also run threshold-free cluster enhancement on the template's mesh
        (surface setting E = 1, H = 2); :attr:`significant_` then uses its
        FWER p-values (:attr:`p_fwer_tfce_`).
    random_state : int, RandomState or None, default None
        Seeds the cross-validation folds and the permutations.
    n_jobs : int or None, default None
        Subjects registered in parallel (:class:`joblib.Parallel`; ``None``:
        one at a time, in this process). Each worker uses one torch thread.
        Also passed to the GLM.
    verbose : bool, default False
        Progress bars (tqdm, on stderr): one over the subjects for stages (a)
        and (b), one over the statistics stages.

    Attributes
    ----------
    template_ : PolyData
        The template used.
    labels_ : numpy.ndarray of int, shape (n_subjects,)
    covariate_names_ : list of str
    correspondences_ : numpy.ndarray, shape (n_subjects, N, 3)
        Stage (b): each subject's points corresponding to the template's
        vertices, in the template's frame (after stage a).
    rotations_, translations_ : numpy.ndarray, shapes (n_subjects, 3, 3) and (n_subjects, 3)
        Stage (a): ``shapes[i].points @ rotations_[i].T + translations_[i]``
        is subject ``i`` in the template's frame (identity and zero with
        ``correspondence="known"``).
    scales_ : numpy.ndarray, shape (n_subjects,)
        Size of each subject relative to the template (stage a; NaN with
        ``correspondence="known"``).
    correspondence_error_ : numpy.ndarray, shape (n_subjects, N), or None
        Distance (mm) between each found correspondence and the true one, when
        ``truth`` was given to :meth:`fit` (a diagnostic only: the fit never
        uses it).
    aligned_ : numpy.ndarray, shape (n_subjects, N, 3)
        Stage (c): Procrustes-aligned coordinates (mm, template frame).
    mean_shape_ : PolyData
        The Procrustes mean (template's triangles).
    normals_ : numpy.ndarray, shape (N, 3)
        Unit outward normals of :attr:`mean_shape_`.
    normal_displacements_ : numpy.ndarray, shape (n_subjects, N)
        Stage (d), mm.
    pca_ : sklearn.decomposition.PCA
        Fitted on all subjects' aligned coordinates (flattened).
    scores_ : numpy.ndarray, shape (n_subjects, n_components)
        Principal component scores (mm).
    classifier_ : sklearn.pipeline.Pipeline
        The classifier refitted on all subjects (for :meth:`predict_proba`).
    probabilities_ : numpy.ndarray, shape (n_subjects,)
        Cross-validated probability of the syndrome for each subject.
    roc_curve_ : Bunch
        ``fpr``, ``tpr``, ``thresholds`` of the cross-validated probabilities.
    roc_auc_ : float
        Area under that ROC curve.
    glm_ : PermutationGLM
        The fitted vertex-wise model.
    t_, p_uncorrected_, p_fwer_, p_fdr_ : numpy.ndarray, shape (N,)
        Its t statistics (syndrome minus control) and p-values.
    p_fwer_tfce_ : numpy.ndarray, shape (N,), or None
        TFCE FWER p-values (``tfce=True``).
    significant_ : numpy.ndarray of bool, shape (N,)
        ``p_fwer_ < alpha`` (``p_fwer_tfce_`` with ``tfce=True``).
    mean_difference_mm_ : numpy.ndarray, shape (N,)
        Covariate-adjusted group difference (syndrome minus control) of the
        normal displacement at each vertex: the GLM's coefficient of the
        label, in mm (negative: the syndrome's surface lies inward).
    mean_control_, mean_syndrome_ : PolyData
        Mean aligned shapes of each group (raw means, not adjusted for the
        covariates).
    seconds_ : dict
        Wall time of each stage (``alignment`` and ``correspondence`` summed
        over subjects, then ``procrustes``, ``normal_displacements``,
        ``pca``, ``classifier``, ``glm``).

    Raises
    ------
    TypeError, ValueError
        From :meth:`fit`, on invalid shapes, labels, covariates or parameters.

    Notes
    -----
    *What the Procrustes step can see.* Each subject's pose is estimated from
    all its vertices, so a localised deformation shared by a group also moves
    the group's fitted poses a little (the "Pinocchio effect"): of a true
    group difference field :math:`D`, the analysis measures
    :math:`D - \rho(D)`, :math:`\rho(D)` its least-squares rigid part
    (:func:`rigid_part`), which spreads a small opposite difference over the
    rest of the face. On the simulated midface retrusion this is about 17 %
    of the peak; :func:`evaluate_against_truth` reports both references.

    *Cost* (faces of about 1,000 vertices, one torch thread on a busy 2-core
    machine): stages (a)-(b) take about 3 s per subject
    (:data:`REGISTRATION_PARAMETERS`; 0.7 s of it for stage a); the
    statistics about a second in all with max-t inference (10,000
    permutations of 60 subjects x 1,000 vertices), 25-30 s with TFCE (5,000
    permutations). Limit the BLAS threads too
    (``threadpoolctl.threadpool_limits(1)``) on a busy machine: OpenBLAS with
    2 threads made the classifier's cross-validation 40 times slower.

    Examples
    --------
    >>> from skshapes.datasets import make_dysmorphic_faces
    >>> from skshapes.dysmorphology import DysmorphologyAnalysis
    >>> data = make_dysmorphic_faces(n_subjects=40, effect_mm=4.0, random_state=0)
    >>> analysis = DysmorphologyAnalysis(template=data.template, correspondence="known", n_permutations=1000,
    ...                                  random_state=0)
    >>> analysis = analysis.fit(data.shapes, data.labels, data.covariates)
    >>> analysis.t_.shape == (data.template.n_points,)
    True
    """

    def __init__(
        self,
        template=None,
        correspondence="registration",
        registration_parameters=None,
        n_components=10,
        n_splits=5,
        C=1.0,
        n_permutations=10000,
        alpha=0.05,
        tfce=False,
        random_state=None,
        n_jobs=None,
        verbose=False,
    ):
        self.template = template
        self.correspondence = correspondence
        self.registration_parameters = registration_parameters
        self.n_components = n_components
        self.n_splits = n_splits
        self.C = C
        self.n_permutations = n_permutations
        self.alpha = alpha
        self.tfce = tfce
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, shapes, labels, covariates=None, truth=None):
        """Run stages (a) to (g) on a population.

        Parameters
        ----------
        shapes : list of PolyData
            3D triangle meshes, one per subject, in any pose (mm).
        labels : array-like of shape (n_subjects,)
            1 (or True) for the syndrome group, 0 (or False) for controls;
            both groups non-empty.
        covariates : pandas.DataFrame or array-like of shape (n_subjects, c), optional
            Nuisance regressors of the GLM (e.g. ``Age``, ``Sex``, ``BMI``);
            no intercept (it is always in the model).
        truth : list of array-like (N, 3) or PolyData, optional
            The true correspondences of each subject, in the frame of
            ``shapes[i]`` (for simulated data whose shapes share the
            template's vertex order: the shapes themselves). Only used to
            report :attr:`correspondence_error_`.

        Returns
        -------
        self : DysmorphologyAnalysis
        """
        from sklearn.utils import check_random_state
        from tqdm.auto import tqdm

        shapes, labels, covariates, names = self._check_inputs(shapes, labels, covariates)
        rng = check_random_state(self.random_state)
        cv_seed, glm_seed = (int(seed) for seed in rng.randint(np.iinfo(np.int32).max, size=2))
        template = shapes[0] if self.template is None else self.template
        _check_mesh(template, "template")
        n = len(shapes)
        self.template_ = template
        self.labels_ = labels
        self.covariate_names_ = names
        self.seconds_ = {}

        # (a), (b): alignment and correspondence
        if self.correspondence == "known":
            bad = [i for i, s in enumerate(shapes) if s.n_points != template.n_points]
            if bad:
                raise ValueError(
                    f"correspondence='known' needs shapes with the template's {template.n_points} vertices in its "
                    f"order; shapes[{bad[0]}] has {shapes[bad[0]].n_points}"
                )
            self.correspondences_ = np.stack([_numpy(s.points) for s in shapes])
            self.rotations_ = np.tile(np.eye(3), (n, 1, 1))
            self.translations_ = np.zeros((n, 3))
            self.scales_ = np.full(n, np.nan)
            self.seconds_.update(alignment=0.0, correspondence=0.0)
        else:
            results = self._register_all(template, shapes, tqdm)
            self.correspondences_ = np.stack([r.correspondences for r in results])
            self.rotations_ = np.stack([r.rotation for r in results])
            self.translations_ = np.stack([r.translation for r in results])
            self.scales_ = np.array([r.scale for r in results])
            self.seconds_["alignment"] = sum(r.seconds["alignment"] for r in results)
            self.seconds_["correspondence"] = sum(r.seconds["correspondence"] for r in results)
        self.correspondence_error_ = None
        if truth is not None:
            self.correspondence_error_ = self._correspondence_error(truth, shapes, template)

        with tqdm(total=5, desc="statistics", disable=not self.verbose) as bar:
            self._procrustes(template, bar)
            self._shape_space(bar)
            self._classifier(cv_seed, bar)
            self._glm(covariates, template, glm_seed, bar)
        return self

    # ----------------------------------------------------------- the stages
    def _register_all(self, template, shapes, tqdm):
        from joblib import Parallel, delayed

        parameters = dict(self.registration_parameters or {})
        unknown = sorted(set(parameters) - set(REGISTRATION_PARAMETERS))
        if unknown:
            raise ValueError(
                f"unknown registration_parameters {unknown}; choose among {sorted(REGISTRATION_PARAMETERS)}"
            )
        bar = tqdm(total=len(shapes), desc="alignment + correspondence", unit="subject", disable=not self.verbose)
        results = []
        try:
            if self.n_jobs in (None, 1):
                cache = {}
                for shape in shapes:
                    results.append(register_to_template(template, shape, parameters, small_templates=cache))
                    bar.update()
            else:
                jobs = (delayed(_register_worker)(template, shape, parameters, True) for shape in shapes)
                for result in Parallel(n_jobs=self.n_jobs, return_as="generator")(jobs):
                    results.append(result)
                    bar.update()
        finally:
            bar.close()
        return results

    def _correspondence_error(self, truth, shapes, template):
        if len(truth) != len(shapes):
            raise ValueError(f"truth must hold one entry per shape ({len(shapes)}), got {len(truth)}")
        errors = []
        for i, true in enumerate(truth):
            true = _numpy(true.points if hasattr(true, "points") else true)
            if true.shape != (template.n_points, 3):
                raise ValueError(f"truth[{i}] must have shape ({template.n_points}, 3), got {true.shape}")
            true = true @ self.rotations_[i].T + self.translations_[i]
            errors.append(np.linalg.norm(self.correspondences_[i] - true, axis=1))
        return np.stack(errors)

    def _procrustes(self, template, bar):
        from .shapes import PolyData
        from .statistics.procrustes import GeneralizedProcrustes

        start = time.perf_counter()
        bar.set_description("statistics: Procrustes")
        aligned = GeneralizedProcrustes(scaling=False).fit_transform(self.correspondences_)
        # express everything in the template's frame: rigid fit of the Procrustes mean onto the template
        rotation, translation = _kabsch(aligned.mean(0), _numpy(template.points))
        self.aligned_ = aligned @ rotation.T + translation
        mean = self.aligned_.mean(0)
        self.seconds_["procrustes"] = time.perf_counter() - start
        bar.update()

        start = time.perf_counter()
        bar.set_description("statistics: normal displacements")
        dtype = template.dtype

        def mesh(points):
            return PolyData(torch.as_tensor(points, dtype=dtype), triangles=template.triangles.cpu(),
                            landmarks=None if template.landmarks is None else template.landmarks.cpu())

        self.mean_shape_ = mesh(mean)
        self.normals_ = _numpy(PolyData(torch.as_tensor(mean), triangles=template.triangles.cpu()).normals)
        self.normal_displacements_ = np.einsum("nvd,vd->nv", self.aligned_ - mean, self.normals_)
        self.mean_control_ = mesh(self.aligned_[self.labels_ == 0].mean(0))
        self.mean_syndrome_ = mesh(self.aligned_[self.labels_ == 1].mean(0))
        self.seconds_["normal_displacements"] = time.perf_counter() - start
        bar.update()

    def _shape_space(self, bar):
        from sklearn.decomposition import PCA

        start = time.perf_counter()
        bar.set_description("statistics: PCA")
        flat = self.aligned_.reshape(len(self.aligned_), -1)
        self.pca_ = PCA(n_components=self._n_components(flat)).fit(flat)
        self.scores_ = self.pca_.transform(flat)
        self.seconds_["pca"] = time.perf_counter() - start
        bar.update()

    def _n_components(self, flat):
        limit = min(flat.shape[0] - max(1, -(-flat.shape[0] // self.n_splits)), flat.shape[1])
        if self.n_components > limit:
            raise ValueError(
                f"n_components={self.n_components} is more than the {limit} components a training fold of "
                f"{flat.shape[0]} subjects allows"
            )
        return self.n_components

    def _make_classifier(self, n_components):
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([
            ("pca", PCA(n_components=n_components)),
            ("scale", StandardScaler()),
            ("logistic", LogisticRegression(C=self.C, max_iter=1000)),
        ])

    def _classifier(self, seed, bar):
        from sklearn.metrics import roc_auc_score, roc_curve
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        start = time.perf_counter()
        bar.set_description("statistics: classifier")
        flat = self.aligned_.reshape(len(self.aligned_), -1)
        folds = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
        classifier = self._make_classifier(self.pca_.n_components_)
        self.probabilities_ = cross_val_predict(classifier, flat, self.labels_, cv=folds, method="predict_proba")[:, 1]
        fpr, tpr, thresholds = roc_curve(self.labels_, self.probabilities_)
        self.roc_curve_ = Bunch(fpr=fpr, tpr=tpr, thresholds=thresholds)
        self.roc_auc_ = float(roc_auc_score(self.labels_, self.probabilities_))
        self.classifier_ = classifier.fit(flat, self.labels_)
        self.seconds_["classifier"] = time.perf_counter() - start
        bar.update()

    def _glm(self, covariates, template, seed, bar):
        from .statistics.glm import PermutationGLM

        start = time.perf_counter()
        bar.set_description("statistics: permutation GLM")
        glm = PermutationGLM(n_permutations=self.n_permutations, tfce=bool(self.tfce), random_state=seed,
                             n_jobs=self.n_jobs)
        adjacency = template.triangles.cpu().numpy() if self.tfce else None
        glm.fit(self.normal_displacements_, self.labels_.astype(np.float64), contrast=[1.0], covariates=covariates,
                adjacency=adjacency)
        self.glm_ = glm
        self.t_ = glm.t_
        self.p_uncorrected_ = glm.p_uncorrected_
        self.p_fwer_ = glm.p_fwer_
        self.p_fdr_ = glm.p_fdr_
        self.p_fwer_tfce_ = glm.p_fwer_tfce_ if self.tfce else None
        self.significant_ = (self.p_fwer_tfce_ if self.tfce else self.p_fwer_) < self.alpha
        self.mean_difference_mm_ = np.asarray(glm.effect_, dtype=np.float64).reshape(-1)
        self.seconds_["glm"] = time.perf_counter() - start
        bar.update()
        bar.set_description("statistics")

    # -------------------------------------------------------- new subjects
    def transform(self, shapes):
        """Corresponded and aligned coordinates of new shapes (stages a-c), shape (n, N, 3).

        Each new shape is registered like the training shapes (or taken as is
        with ``correspondence="known"``), then rigidly fitted to
        :attr:`mean_shape_`.
        """
        check_is_fitted(self)
        shapes = _check_shapes(shapes, "shapes", min_count=1)
        out = []
        for shape in shapes:
            if self.correspondence == "known":
                points = _numpy(shape.points)
            else:
                points = register_to_template(self.template_, shape, self.registration_parameters).correspondences
            mean = _numpy(self.mean_shape_.points)
            rotation, translation = _kabsch(points, mean)
            out.append(points @ rotation.T + translation)
        return np.stack(out)

    def predict_proba(self, shapes):
        """Probability of the syndrome for new shapes (the classifier refitted on all subjects), shape (n,)."""
        aligned = self.transform(shapes)
        return self.classifier_.predict_proba(aligned.reshape(len(aligned), -1))[:, 1]

    # ---------------------------------------------------------- validation
    def _check_inputs(self, shapes, labels, covariates):
        if self.correspondence not in CORRESPONDENCES:
            raise ValueError(f"correspondence must be one of {CORRESPONDENCES}, got {self.correspondence!r}")
        for name in ("n_components", "n_splits", "n_permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < (2 if name == "n_splits" else 1):
                raise ValueError(f"{name} must be >= {2 if name == 'n_splits' else 1}, got {value}")
        if not 0 < float(self.alpha) < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        shapes = _check_shapes(shapes, "shapes", min_count=4)
        labels = np.asarray(labels)
        if labels.shape != (len(shapes),):
            raise ValueError(f"labels must have shape ({len(shapes)},), one per shape, got {labels.shape}")
        if labels.dtype == bool:
            labels = labels.astype(np.int64)
        if not np.isin(labels, (0, 1)).all():
            raise ValueError(f"labels must be 0 (control) or 1 (syndrome), got values {np.unique(labels)[:5].tolist()}")
        labels = labels.astype(np.int64)
        counts = np.bincount(labels, minlength=2)
        if counts.min() < self.n_splits:
            raise ValueError(
                f"each group needs at least n_splits={self.n_splits} subjects for the cross-validation, "
                f"got {counts[0]} controls and {counts[1]} syndrome subjects"
            )
        names = []
        if covariates is not None:
            if hasattr(covariates, "columns"):
                names = [str(c) for c in covariates.columns]
                covariates = covariates.to_numpy(dtype=np.float64)
            covariates = np.asarray(covariates, dtype=np.float64)
            if covariates.ndim == 1:
                covariates = covariates[:, None]
            if covariates.ndim != 2 or len(covariates) != len(shapes):
                raise ValueError(
                    f"covariates must have one row per shape ({len(shapes)}), got shape {covariates.shape}"
                )
            names = names or [f"covariate {k}" for k in range(covariates.shape[1])]
        return shapes, labels, covariates, names


def _check_mesh(shape, name):
    from .shapes import PolyData

    if not isinstance(shape, PolyData):
        raise TypeError(f"{name} must be a PolyData, got {type(shape).__name__}")
    if shape.dim != 3 or shape.triangles is None:
        raise ValueError(f"{name} must be a 3D triangle mesh")


def _check_shapes(shapes, name, min_count):
    from .shapes import PolyData

    if isinstance(shapes, PolyData):
        shapes = [shapes]
    shapes = list(shapes)
    if len(shapes) < min_count:
        raise ValueError(f"{name} must hold at least {min_count} shapes, got {len(shapes)}")
    for i, shape in enumerate(shapes):
        _check_mesh(shape, f"{name}[{i}]")
    return shapes


# A vertex belongs to the visible region when its visible normal displacement reaches 15 % of the peak: at
# 2 mm, 0.3 mm, a quarter of the natural standard deviation (~1.2 mm) in the midface.
VISIBLE_LEVEL = 0.15


def evaluate_against_truth(analysis, displacement, region_mask, effect_mm=None):
    r"""Compare a fitted :class:`DysmorphologyAnalysis` with a simulated ground truth.

    Parameters
    ----------
    analysis : DysmorphologyAnalysis
        Fitted on a population whose syndrome group was deformed by
        ``displacement`` (in the template's frame, as
        :func:`~skshapes.datasets.make_dysmorphic_faces` returns).
    displacement : array-like, shape (N, 3)
        The true displacement field on the template's vertices (mm).
    region_mask : array-like of bool, shape (N,)
        The true region.
    effect_mm : float, optional
        The simulated peak displacement (default: the largest norm of
        ``displacement``).

    Returns
    -------
    Bunch
        dice : float
            Dice overlap :math:`2|S \cap R| / (|S| + |R|)` of the significant
            vertices S and the true region R.
        n_significant, n_region, n_overlap : int
        visible_region : numpy.ndarray of bool, shape (N,)
            The vertices that the simulated change moves, once its rigid part
            is removed, by at least :data:`VISIBLE_LEVEL` times ``effect_mm``
            along the normal: the part of the region that a test on normal
            displacements after Procrustes superimposition can detect. The
            region R also holds vertices that move mostly along the surface
            (at 2 mm, a quarter of the midface region moves by less than
            0.3 mm along the normal).
        dice_visible : float
            Dice overlap of S and ``visible_region``.
        true_normal_mm : numpy.ndarray (N,)
            The true displacement along the mean shape's normals.
        visible_normal_mm : numpy.ndarray (N,)
            The same for the field minus its rigid part
            (:func:`rigid_part` at the mean shape): what a Procrustes analysis
            can measure.
        measured_effect_mm : float
            The peak amplitude of the true pattern that best fits the measured
            mean difference over the region, in the least-squares sense:
            ``effect_mm * sum(m * g) / sum(g * g)`` over R, with ``m``
            :attr:`~DysmorphologyAnalysis.mean_difference_mm_` and ``g``
            ``visible_normal_mm``. It equals ``effect_mm`` when the measured
            map is the visible truth.
        measured_effect_raw_mm : float
            The same against ``true_normal_mm`` (biased low by the
            Procrustes step: the rigid part is absorbed into the poses).
        peak_measured_mm, peak_true_mm : float
            The largest inward (or outward, following the truth's sign)
            measured and true normal displacement in the region.
        correspondence_error_mm : float or None
            Mean of :attr:`~DysmorphologyAnalysis.correspondence_error_`
            (``None`` when no truth was given to ``fit``).
        correspondence_error_p95_mm : float or None
            Its 95th percentile (over all vertices of all subjects).
    """
    check_is_fitted(analysis)
    displacement = _numpy(displacement)
    mask = np.asarray(region_mask.cpu() if isinstance(region_mask, torch.Tensor) else region_mask, dtype=bool)
    n_points = analysis.mean_shape_.n_points
    if displacement.shape != (n_points, 3) or mask.shape != (n_points,):
        raise ValueError(
            f"displacement and region_mask must have shapes ({n_points}, 3) and ({n_points},), got "
            f"{displacement.shape} and {mask.shape}"
        )
    if effect_mm is None:
        effect_mm = float(np.linalg.norm(displacement, axis=1).max())
    mean = _numpy(analysis.mean_shape_.points)
    normals = analysis.normals_
    true_normal = (displacement * normals).sum(1)
    visible = displacement - rigid_part(displacement, mean)
    visible_normal = (visible * normals).sum(1)
    measured = analysis.mean_difference_mm_
    significant = analysis.significant_

    def amplitude(reference):
        reference = reference[mask]
        denominator = float((reference**2).sum())
        if denominator == 0:
            return float("nan")
        return float(effect_mm * (measured[mask] * reference).sum() / denominator)

    overlap = int((significant & mask).sum())
    total = int(significant.sum() + mask.sum())
    visible_region = np.abs(visible_normal) >= VISIBLE_LEVEL * effect_mm
    visible_total = int(significant.sum() + visible_region.sum())
    sign = -1.0 if true_normal[mask].sum() < 0 else 1.0 if mask.any() else -1.0
    error = analysis.correspondence_error_
    return Bunch(
        dice=2 * overlap / total if total else 1.0,
        n_significant=int(significant.sum()),
        n_region=int(mask.sum()),
        n_overlap=overlap,
        visible_region=visible_region,
        dice_visible=2 * int((significant & visible_region).sum()) / visible_total if visible_total else 1.0,
        true_normal_mm=true_normal,
        visible_normal_mm=visible_normal,
        measured_effect_mm=amplitude(visible_normal),
        measured_effect_raw_mm=amplitude(true_normal),
        peak_measured_mm=float(sign * (sign * measured[mask]).max()) if mask.any() else float("nan"),
        peak_true_mm=float(sign * (sign * true_normal[mask]).max()) if mask.any() else float("nan"),
        correspondence_error_mm=None if error is None else float(error.mean()),
        correspondence_error_p95_mm=None if error is None else float(np.percentile(error, 95)),
    )
