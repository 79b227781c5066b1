"""Mass-univariate general linear model with permutation inference: Freedman-Lane, max-statistic FWER, FDR, TFCE."""

from __future__ import annotations

import numbers
import warnings

import joblib
import numpy as np
import torch
from scipy import sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..reductions.backend import resolve_device
from ..shapes.validation import as_tensor

METHODS = ("freedman-lane", "manly", "ter-braak")
TAILS = ("two-sided", "greater", "less")

#: Permutations are drawn in blocks of this many rows, block ``j`` from
#: ``numpy.random.default_rng([permutation_seed_, j])``: permutation ``b`` does not
#: depend on ``batch_size``, ``n_jobs`` or the device.
PERMUTATION_BLOCK = 256

#: ``batch_size="auto"``: bytes of working memory per batch of permutations
#: (about ``batch_size * n_features * (r + 6) * itemsize``, see the class docstring).
AUTO_BATCH_BYTES = {"cpu": 2**26, "cuda": 2**30}

#: TFCE works on chunks of maps holding at most this many (threshold, vertex) nodes plus edges.
TFCE_CHUNK = 2**22


class PermutationGLM(BaseEstimator):
    r"""Mass-univariate general linear model with permutation tests and family-wise error control.

    Each of the ``n_features`` columns of ``Y`` (a thickness or a
    displacement at each vertex, a momentum coordinate...) is regressed on
    the same design

    .. math:: Y_{\cdot v} = M \beta_v + \varepsilon_v, \qquad
              M = [\,X \;|\; \mathbf 1 \;|\; Z\,] \in \mathbb R^{n \times p},

    with ``X`` (n, k) the regressors of interest, an intercept (always in
    the model) and ``Z`` (n, c) nuisance covariates (age, sex, site...).
    The null hypothesis :math:`C \beta_v = 0` is tested at every feature
    for a contrast ``C`` over the columns of ``X`` (zero on the intercept
    and the covariates): a t statistic for one contrast row,

    .. math:: t_v = \frac{c \hat\beta_v}{\sqrt{\hat\sigma^2_v\, c (M^\top M)^{-1} c^\top}},
              \qquad \hat\sigma^2_v = \frac{\|Y_{\cdot v} - M \hat\beta_v\|^2}{n - p},

    or an F statistic for an (m, k) contrast of rank m,
    :math:`F_v = (C\hat\beta_v)^\top [C (M^\top M)^{-1} C^\top]^{-1} (C\hat\beta_v) / (m\, \hat\sigma^2_v)`.
    These are the ordinary least-squares statistics (as from
    ``statsmodels.OLS(...).t_test`` / ``f_test``); the p-values come from
    permutations of the subjects, not from the t or F distribution, so
    they stay exact under non-normal errors, and the maximum over features
    gives family-wise error control.

    **Permutation methods** (Winkler et al. 2014 [1]_, Table 2, who
    recommend Freedman-Lane). Let :math:`M_0` be the reduced model under
    :math:`H_0` (the span of :math:`M \gamma` with :math:`C\gamma = 0`: the
    intercept, the covariates and any column of ``X`` left out of the
    contrast), :math:`H_0, R_0` the projection on it and on its orthogonal
    complement, :math:`H, R` those of the full model and :math:`P` a random
    permutation of the subjects:

    - ``"freedman-lane"`` (Freedman & Lane 1983 [2]_): :math:`Y^* = P R_0 Y
      + H_0 Y`: the residuals of the reduced model are permuted, its fit is
      added back and the full model refitted. Exact when there are no
      nuisance variables, asymptotically exact otherwise, and the most
      robust in the simulations of [1]_, including with nuisance variables
      correlated with ``X``.
    - ``"manly"`` (Manly 1986): :math:`Y^* = P Y`. Exact without
      covariates; with covariates that affect ``Y`` its false-positive rate
      can be far off [1]_.
    - ``"ter-braak"`` (ter Braak 1992): :math:`Y^* = P R Y + H Y`, testing
      :math:`C \beta^* = C \hat\beta`: the residuals of the full model are
      permuted.

    The statistic of :math:`Y^*` depends only on the permuted residuals
    (adding anything of :math:`M_0` does not change :math:`C\hat\beta` nor
    the residuals), which is what the batched computation below uses.

    **Inference.** ``n_permutations`` random permutations :math:`P_1, \dots,
    P_N` (drawn with replacement, as in nilearn and PALM; the identity is
    the unpermuted data :math:`P_0`) give, for the statistic :math:`s`
    oriented by ``tail`` (:math:`|t|`, :math:`t`, :math:`-t`, or
    :math:`F`),

    .. math::

        p^{\mathrm{unc}}_v = \frac{1 + \#\{b \ge 1 : s^{(b)}_v \ge s_v\}}{N + 1}, \qquad
        p^{\mathrm{FWER}}_v = \frac{1 + \#\{b \ge 1 : \max_u s^{(b)}_u \ge s_v\}}{N + 1}

    (the identity counted as one of the :math:`N + 1` permutations, so no
    p-value is below :math:`1/(N+1)`: Phipson & Smyth 2010 [6]_). The
    second is the single-step max-statistic adjustment of Westfall & Young
    (1993) [4]_, which controls the family-wise error rate in the strong
    sense whatever the dependence between features. :attr:`p_fdr_` are
    Benjamini-Hochberg (1995) [5]_ adjusted :attr:`p_uncorrected_` (FDR
    control under independence or positive dependence).

    **Computation.** The design never changes: only the permuted residuals
    :math:`E^* = P E` do (:math:`E = R_0 Y`, :math:`Y - \bar Y` or :math:`R Y`
    by method). With an orthonormal basis :math:`[\mathbf 1/\sqrt n, G_0, W]`
    of the span of :math:`M` (:math:`G_0`: the rest of :math:`M_0`, :math:`W`:
    the tested part, :math:`w = a/\|a\|` for a t contrast, :math:`a^\top = c
    (M^\top M)^{-1}M^\top`), and since :math:`\mathbf 1^\top E^* = 0`,

    .. math:: t^* = \frac{w^\top E^*}{\sqrt{(\|E\|^2 - \|G^\top E^*\|^2)/(n-p)}},
              \qquad G = [G_0, W] \in \mathbb R^{n \times r},\ r = p - 1,

    (:math:`\|E^*\| = \|E\|` for every permutation; for F,
    :math:`\|W^\top E^*\|^2 / m` over the same variance). For a batch of B
    permutations, :math:`G^\top P_b E = (P_b^\top G)^\top E` is one matrix
    product of the gathered rows of :math:`G`, (B r, n) by (n, F), about
    :math:`2 B r n F` flops, on ``device``. Only the per-permutation maximum
    (:attr:`h0_max_`) and the per-feature exceedance counts are kept, so the
    memory is :math:`O(\text{batch\_size} \times F)`, independent of
    ``n_permutations``: no (n_permutations, n_features) array is ever
    formed. The observed statistics are computed apart, in float64, by a QR
    least-squares fit.

    **TFCE** (Smith & Nichols 2009 [7]_, with ``tfce=True`` and an
    ``adjacency`` passed to :meth:`fit`): features are the vertices of a
    graph (a mesh), and each statistic map is replaced by

    .. math:: \mathrm{TFCE}(v) = \sum_{j = 1}^{J} e(h_j, v)^{E}\, h_j^{H}\, \Delta h,
              \qquad h_j = j\, \Delta h \le s(v),\ \Delta h = \max_u |s(u)| / J,

    :math:`e(h, v)` the number of vertices of the connected component of
    :math:`\{u : s(u) \ge h\}` holding :math:`v`, :math:`J` =
    ``tfce_steps``, :math:`E` = ``tfce_extent``, :math:`H` =
    ``tfce_height`` (1 and 2 for surfaces; 0.5 and 2 for volumes). Both
    signs are enhanced separately for ``tail="two-sided"``. The maximum
    TFCE over the features of each permuted map gives
    :attr:`h0_max_tfce_` and :attr:`p_fwer_tfce_`. It costs one
    connected-component labelling of a graph with up to J copies of the
    mesh per permutation (:func:`tfce`), on the CPU: much more than the
    GLM itself (about 60 ms per permutation for a 10,000-vertex mesh, 100
    times the GLM's cost per permutation; see ``benchmarks/bench_glm.py``).

    Parameters
    ----------
    n_permutations : int, default=10000
        Number of random permutations N (>= 1). The smallest attainable
        p-value is 1/(N + 1); the Monte Carlo standard error of a p-value p
        is about :math:`\sqrt{p(1-p)/N}` (0.002 at p = 0.05, N = 10,000).
    method : {"freedman-lane", "manly", "ter-braak"}, default="freedman-lane"
        How ``Y`` is permuted (see above).
    tail : {"two-sided", "greater", "less"}, default="two-sided"
        Alternative hypothesis for a t contrast: :math:`C\beta \ne 0`,
        :math:`> 0` or :math:`< 0`. F contrasts take only ``"two-sided"``
        (large F is evidence against :math:`H_0` in every direction).
    tfce : bool, default=False
        Also compute threshold-free cluster enhancement and its FWER
        p-values; :meth:`fit` then needs ``adjacency``.
    tfce_extent : float, default=1.0
        TFCE extent exponent E (> 0).
    tfce_height : float, default=2.0
        TFCE height exponent H (> 0).
    tfce_steps : int, default=100
        Number J of thresholds, from :math:`\Delta h` to the maximum of each
        map (>= 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations (through ``check_random_state``, which draws
        :attr:`permutation_seed_`).
    n_jobs : int or None, default=None
        Number of :class:`joblib.Parallel` jobs sharing the permutations
        (``None``: one, in this process, torch using its own threads;
        threads are preferred, as torch releases the GIL, and
        ``joblib.parallel_config(backend=...)`` overrides). The results do not
        depend on it.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where the permutations are computed: ``"auto"`` uses CUDA when
        available. Results are numpy arrays in every case.
    dtype : {None, "float64", "float32"}, default=None
        Precision of the permutation computations. ``None``: float64 on the
        CPU, float32 on CUDA. The observed statistics, effects and betas are
        float64 in every case; float32 only affects the null distribution,
        by about 1e-6 relative (far below the Monte Carlo error of the
        p-values), and halves the time on the CPU.
    batch_size : int or "auto", default="auto"
        Number of permutations per matrix product. ``"auto"`` keeps the
        working memory, about ``batch_size * n_features * (r + 6) *
        itemsize`` bytes (r = p - 1, the number of design columns other
        than the intercept), near 64 MiB on the CPU and 1 GiB on CUDA.

    Attributes
    ----------
    statistic_ : numpy.ndarray of shape (n_features,), float64
        The observed t (t contrast) or F (F contrast) statistic.
    t_ : numpy.ndarray of shape (n_features,), float64
        The t statistics (t contrasts only; the same array as ``statistic_``).
    f_ : numpy.ndarray of shape (n_features,), float64
        The F statistics (F contrasts only).
    effect_ : numpy.ndarray of shape (n_features,) or (m, n_features), float64
        :math:`C \hat\beta`, in units of ``Y`` per unit of ``X``: with ``X`` a
        0/1 group indicator and ``contrast=[1]``, the difference of the
        group means adjusted for the covariates.
    beta_ : numpy.ndarray of shape (p, n_features), float64
        Least-squares coefficients, rows in the order of :attr:`design_`:
        the k columns of ``X``, the intercept, the c covariates.
    design_ : numpy.ndarray of shape (n_subjects, p), float64
        The design :math:`M = [X, 1, Z]`.
    contrast_ : numpy.ndarray of shape (m, p), float64
        The contrast padded with zeros on the intercept and covariates.
    dof_ : int
        Residual degrees of freedom n - p.
    p_uncorrected_ : numpy.ndarray of shape (n_features,), float64
        Per-feature permutation p-values (no multiplicity correction).
    p_fwer_ : numpy.ndarray of shape (n_features,), float64
        Max-statistic (Westfall-Young single-step) FWER-adjusted p-values.
    p_fdr_ : numpy.ndarray of shape (n_features,), float64
        Benjamini-Hochberg adjusted ``p_uncorrected_`` (as
        ``scipy.stats.false_discovery_control``).
    h0_max_ : numpy.ndarray of shape (n_permutations,), float64
        Maximum over the features of the oriented statistic (|t|, t, -t or F)
        of each random permutation, in the order drawn (not sorted).
    tfce_ : numpy.ndarray of shape (n_features,), float64
        TFCE of ``statistic_``, signed like it (``tfce=True`` only).
    h0_max_tfce_ : numpy.ndarray of shape (n_permutations,), float64
        Maximum oriented TFCE of each permuted map (``tfce=True`` only).
    p_fwer_tfce_ : numpy.ndarray of shape (n_features,), float64
        FWER-adjusted p-values of ``tfce_`` (``tfce=True`` only).
    permutation_seed_ : int
        Seed of the permutations (see :meth:`permutation_indices`).
    n_features_ : int
        Number of features seen in :meth:`fit`.
    n_subjects_ : int
        Number of subjects seen in :meth:`fit`.
    batch_size_ : int
        Batch size used.

    Raises
    ------
    TypeError
        From :meth:`fit`: parameters of the wrong type, non-numeric data.
    ValueError
        From :meth:`fit`: arrays of the wrong shape or with NaN/inf, a
        rank-deficient design (a constant, duplicated or collinear column), no
        residual degree of freedom, a zero or rank-deficient contrast, a
        one-sided tail with an F contrast, ``tfce=True`` without
        ``adjacency`` (or the converse), parameters out of range.

    Notes
    -----
    Features with no variance left once the intercept and covariates are
    regressed out (constant features) get statistic 0 and p-values 1, with a
    warning.

    Comparison with ``nilearn.mass_univariate.permuted_ols``: it implements
    the same Freedman-Lane test (by permuting the design rather than the
    residuals, which gives the same statistics), with ``n_perm`` random
    permutations and the same p-value formula, so its ``t`` equals
    :attr:`t_` and its ``h0_max_t`` has the distribution of
    :attr:`h0_max_` (``benchmarks/bench_glm.py``). Its TFCE follows
    fslmaths and omits the factor :math:`\Delta h`.

    References
    ----------
    .. [1] A. M. Winkler, G. R. Ridgway, M. A. Webster, S. M. Smith, T. E.
       Nichols, "Permutation inference for the general linear model",
       NeuroImage 92, 381-397, 2014.
    .. [2] D. Freedman, D. Lane, "A nonstochastic interpretation of reported
       significance levels", J. Business & Economic Statistics 1(4), 292-298,
       1983.
    .. [3] B. F. J. Manly, "Randomization and regression methods for testing
       for associations with geographical, environmental and biological
       distances between populations", Researches on Population Ecology 28,
       1986; C. J. F. ter Braak, "Permutation versus bootstrap significance
       tests in multiple regression and ANOVA", in *Bootstrapping and Related
       Techniques*, Springer, 1992.
    .. [4] P. H. Westfall, S. S. Young, *Resampling-Based Multiple Testing*,
       Wiley, 1993.
    .. [5] Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate",
       J. Royal Statistical Society B 57(1), 289-300, 1995.
    .. [6] B. Phipson, G. K. Smyth, "Permutation p-values should never be
       zero", Statistical Applications in Genetics and Molecular Biology
       9(1), 2010.
    .. [7] S. M. Smith, T. E. Nichols, "Threshold-free cluster enhancement:
       addressing problems of smoothing, threshold dependence and
       localisation in cluster inference", NeuroImage 44(1), 83-98, 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from skshapes.statistics.glm import PermutationGLM
    >>> rng = np.random.default_rng(0)
    >>> group = np.repeat([0.0, 1.0], 20)                      # 20 controls, 20 patients
    >>> age = rng.uniform(20, 80, 40)
    >>> Y = rng.normal(size=(40, 300)) + 0.02 * age[:, None]   # 300 vertices
    >>> Y[:, :10] += 2.5 * group[:, None]                      # an effect on the first 10
    >>> glm = PermutationGLM(n_permutations=999, random_state=0)
    >>> glm = glm.fit(Y, group, covariates=age)
    >>> glm.t_.shape, glm.h0_max_.shape
    ((300,), (999,))
    >>> bool((glm.p_fwer_[:10] < 0.05).all()), int((glm.p_fwer_[10:] < 0.05).sum())
    (True, 0)
    """

    def __init__(
        self,
        n_permutations=10000,
        method="freedman-lane",
        tail="two-sided",
        tfce=False,
        tfce_extent=1.0,
        tfce_height=2.0,
        tfce_steps=100,
        random_state=None,
        n_jobs=None,
        device="auto",
        dtype=None,
        batch_size="auto",
    ):
        self.n_permutations = n_permutations
        self.method = method
        self.tail = tail
        self.tfce = tfce
        self.tfce_extent = tfce_extent
        self.tfce_height = tfce_height
        self.tfce_steps = tfce_steps
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size

    # ------------------------------------------------------------------ fit
    def fit(self, Y, X, contrast=None, covariates=None, adjacency=None):
        """Fit the model at every feature and compute the permutation p-values.

        Parameters
        ----------
        Y : array-like or torch.Tensor, shape (n_subjects, n_features)
            The data, one row per subject. Not modified.
        X : array-like or torch.Tensor, shape (n_subjects, k) or (n_subjects,)
            Regressors of interest (a 1-D array is one regressor).
        contrast : array-like of shape (k,) or (m, k), default=None
            Combination of the columns of ``X`` to test. 1-D: a t test of
            :math:`c\\beta = 0`; 2-D: an F test of :math:`C\\beta = 0` (rank
            m, even for m = 1). ``None``: ``[1, 0, ..., 0]``, the first
            column of ``X``.
        covariates : array-like of shape (n_subjects, c) or (n_subjects,), default=None
            Nuisance regressors. Do not include an intercept: it is always
            added.
        adjacency : array-like or scipy.sparse matrix, default=None
            The graph of the features for TFCE (``tfce=True`` only):
            triangles (T, 3) or edges (E, 2) of vertex indices in
            ``[0, n_features)``, or a (n_features, n_features) sparse matrix
            whose nonzero off-diagonal entries are the edges.

        Returns
        -------
        self : PermutationGLM
            The fitted estimator.

        Raises
        ------
        TypeError
            If an input is not numeric or a parameter has the wrong type.
        ValueError
            See the class.
        """
        device, dtype = self._check_params()
        Y = _check_array(Y, "Y", ndims=(2,))
        n, n_features = Y.shape
        X = _check_array(X, "X", ndims=(1, 2), n_rows=n)
        covariates = (
            np.zeros((n, 0)) if covariates is None else _check_array(covariates, "covariates", ndims=(1, 2), n_rows=n)
        )
        if n_features < 1:
            raise ValueError("Y must have at least one feature (column), got 0")
        if X.shape[1] < 1:
            raise ValueError("X must have at least one column (the regressors of interest), got 0")
        k, c = X.shape[1], covariates.shape[1]
        C = _check_contrast(contrast, k)
        is_f = C.ndim == 2
        C = np.atleast_2d(C)
        m = C.shape[0]
        if is_f and self.tail != "two-sided":
            raise ValueError(
                f"tail={self.tail!r} needs a t contrast (1-D); an F contrast (2-D, here {m} x {k}) is "
                "one-sided by nature: use tail='two-sided'"
            )
        design = np.concatenate([X, np.ones((n, 1)), covariates], axis=1)
        p = design.shape[1]
        _check_design(design, k, c)
        dof = n - p
        if dof < 1:
            raise ValueError(
                f"no residual degree of freedom: {n} subjects for {p} design columns "
                f"({k} in X, the intercept, {c} covariates); the GLM needs n_subjects > p"
            )
        if self.tfce:
            if adjacency is None:
                raise ValueError("tfce=True needs the adjacency of the features (triangles, edges or a sparse matrix)")
            edges = check_adjacency(adjacency, n_features)
        elif adjacency is not None:
            raise ValueError("adjacency is only used by TFCE: pass tfce=True, or leave adjacency=None")

        # ---- observed statistics, float64, by QR least squares
        full_contrast = np.concatenate([C, np.zeros((m, p - k))], axis=1)
        q_full, r_full = np.linalg.qr(design)
        coefficients = q_full.T @ Y
        beta = np.linalg.solve(r_full, coefficients)
        residuals = Y - q_full @ coefficients
        rss = np.einsum("nf,nf->f", residuals, residuals)
        effect = full_contrast @ beta  # (m, F)
        V = np.linalg.solve(r_full.T, full_contrast.T).T  # C R^{-1}, so C (M'M)^{-1} C' = V V'
        covariance = V @ V.T

        # ---- bases: reduced model M0 = span(M N), N = null(C), and the tested part W
        _, _, vh = np.linalg.svd(full_contrast)
        reduced = design @ vh[m:].T  # (n, p - m), holds the intercept
        reduced = reduced - reduced.mean(axis=0)
        u, _, _ = np.linalg.svd(reduced, full_matrices=False)
        g0 = u[:, : p - m - 1]  # orthonormal, orthogonal to 1
        tested = q_full @ V.T  # (n, m) = M (M'M)^{-1} C'
        if is_f:
            w, _ = np.linalg.qr(tested)
        else:
            w = tested / np.linalg.norm(tested)
        G = np.concatenate([g0, w], axis=1)  # (n, p - 1)

        centred = Y - Y.mean(axis=0)
        nuisance_residuals = centred - g0 @ (g0.T @ centred)  # R0 Y
        if self.method == "freedman-lane":
            E = nuisance_residuals
        elif self.method == "manly":
            E = centred
        else:
            E = residuals
        # features with nothing left once the nuisance is regressed out
        eps = np.finfo(np.float64).eps
        scale = np.sqrt(n) * np.abs(Y).max(axis=0)
        valid = np.linalg.norm(nuisance_residuals, axis=0) > 1e3 * eps * scale
        if not valid.all():
            warnings.warn(
                f"{int((~valid).sum())} of {n_features} features have no variance left once the reduced model "
                "(intercept, covariates, columns of X outside the contrast) is regressed out: their statistic is "
                "set to 0 and their p-values to 1",
                UserWarning,
                stacklevel=2,
            )
        rss = np.maximum(rss, eps * np.einsum("nf,nf->f", centred, centred))
        sigma2 = np.where(valid, rss / dof, 1.0)
        if is_f:
            quadratic = np.einsum("mf,mf->f", effect, np.linalg.solve(covariance, effect))
            statistic = np.where(valid, quadratic / m / sigma2, 0.0)
        else:
            statistic = np.where(valid, effect[0] / np.sqrt(sigma2 * covariance[0, 0]), 0.0)
        observed = _orient(statistic, self.tail)
        tolerance = 100 * torch.finfo(dtype).eps
        threshold = observed - tolerance * np.abs(observed)
        tfce_config = None
        if self.tfce:
            tfce_config = (edges, float(self.tfce_extent), float(self.tfce_height), int(self.tfce_steps))
            tfce_map = _tfce_signed(statistic[None], *tfce_config, "greater" if is_f else self.tail)[0]
            tfce_observed = _orient(tfce_map, self.tail)

        # ---- permutations
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        r = G.shape[1]
        itemsize = torch.finfo(dtype).bits // 8
        if self.batch_size == "auto":
            budget = AUTO_BATCH_BYTES["cuda" if device.type == "cuda" else "cpu"]
            batch_size = int(np.clip(budget // ((r + 6) * n_features * itemsize), 1, self.n_permutations))
        else:
            batch_size = int(self.batch_size)
        n_jobs = 1 if self.n_jobs is None else joblib.effective_n_jobs(self.n_jobs)
        bounds = np.linspace(0, self.n_permutations, min(n_jobs, self.n_permutations) + 1).round().astype(int)
        job = joblib.delayed(_null_distribution)
        common = dict(
            E=E, G=G, n_tested=m, is_f=is_f, tail=self.tail, dof=dof, valid=valid, threshold=threshold,
            seed=seed, batch_size=batch_size, device=device, dtype=dtype, tfce_config=tfce_config,
        )
        tasks = [job(start=int(a), stop=int(b), **common) for a, b in zip(bounds[:-1], bounds[1:])]
        if len(tasks) == 1:
            results = [_null_distribution(start=0, stop=self.n_permutations, **common)]
        else:
            results = joblib.Parallel(n_jobs=self.n_jobs, prefer="threads")(tasks)
        counts = sum(result[0] for result in results)
        h0_max = np.concatenate([result[1] for result in results])

        n_perm = self.n_permutations
        self.statistic_ = statistic
        if is_f:
            self.f_ = statistic
        else:
            self.t_ = statistic
        self.effect_ = effect if is_f else effect[0]
        self.beta_ = beta
        self.design_ = design
        self.contrast_ = full_contrast
        self.dof_ = int(dof)
        self.p_uncorrected_ = np.where(valid, (1.0 + counts) / (n_perm + 1), 1.0)
        self.p_fwer_ = np.where(valid, _max_statistic_p(h0_max, threshold), 1.0)
        self.p_fdr_ = benjamini_hochberg(self.p_uncorrected_)
        self.h0_max_ = h0_max
        if self.tfce:
            h0_max_tfce = np.concatenate([result[2] for result in results])
            tfce_threshold = tfce_observed - tolerance * np.abs(tfce_observed)
            self.tfce_ = tfce_map
            self.h0_max_tfce_ = h0_max_tfce
            self.p_fwer_tfce_ = np.where(valid, _max_statistic_p(h0_max_tfce, tfce_threshold), 1.0)
        self.permutation_seed_ = seed
        self.n_features_ = n_features
        self.n_subjects_ = n
        self.batch_size_ = batch_size
        return self

    # ------------------------------------------------------------------ permutations
    def permutation_indices(self, start=0, stop=None):
        """The random permutations used by :meth:`fit`, regenerated from :attr:`permutation_seed_`.

        Row ``b`` is the permutation :math:`P_{start + b}`: the permuted
        residuals are ``E[perm[b]]`` (for Freedman-Lane, ``Y* =
        R0Y[perm[b]] + H0Y``, whose statistics make ``h0_max_[start + b]``).

        Parameters
        ----------
        start, stop : int, default=0 and None
            Range of permutations (``stop=None``: ``n_permutations``).

        Returns
        -------
        numpy.ndarray of shape (stop - start, n_subjects), int64

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If the range is not within ``[0, n_permutations]``.
        """
        check_is_fitted(self)
        stop = self.n_permutations if stop is None else stop
        if not 0 <= start <= stop <= self.n_permutations:
            raise ValueError(f"need 0 <= start <= stop <= n_permutations={self.n_permutations}, got {start}, {stop}")
        inverse = _PermutationStream(self.permutation_seed_, self.n_subjects_, start).take(stop - start)
        return np.argsort(inverse, axis=1)

    # ------------------------------------------------------------------ helpers
    def _check_params(self):
        """Check the parameters; return the torch device and dtype of the permutations."""
        for name in ("n_permutations", "tfce_steps"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.tail not in TAILS:
            raise ValueError(f"tail must be one of {TAILS}, got {self.tail!r}")
        if not isinstance(self.tfce, (bool, np.bool_)):
            raise TypeError(f"tfce must be a bool, got {type(self.tfce).__name__}")
        for name in ("tfce_extent", "tfce_height"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
            if not 0 < value < np.inf:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be a positive int or 'auto', got {self.batch_size!r}")
        else:
            if not isinstance(self.batch_size, numbers.Integral) or isinstance(self.batch_size, bool):
                raise TypeError(f"batch_size must be a positive int or 'auto', got {type(self.batch_size).__name__}")
            if self.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.n_jobs is not None and (not isinstance(self.n_jobs, numbers.Integral) or isinstance(self.n_jobs, bool)):
            raise TypeError(f"n_jobs must be an int or None, got {type(self.n_jobs).__name__}")
        try:
            device = resolve_device(self.device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device must be 'auto' or a torch device, got {self.device!r}") from error
        dtypes = {"float64": torch.float64, "float32": torch.float32, torch.float64: torch.float64,
                  torch.float32: torch.float32, np.float64: torch.float64, np.float32: torch.float32}
        if self.dtype is None:
            dtype = torch.float32 if device.type == "cuda" else torch.float64
        else:
            try:
                dtype = dtypes[self.dtype]
            except (KeyError, TypeError):
                raise ValueError(f"dtype must be None, 'float64' or 'float32', got {self.dtype!r}") from None
        return device, dtype


# ---------------------------------------------------------------------- permutation kernel
class _PermutationStream:
    """Inverse permutations :math:`\\sigma_b = P_b^{-1}` (rows to gather from G) from permutation ``start`` on.

    Block ``j`` of :data:`PERMUTATION_BLOCK` rows comes from
    ``numpy.random.default_rng([seed, j])``, so any permutation can be
    regenerated without drawing the ones before it.
    """

    def __init__(self, seed: int, n: int, start: int):
        self.seed, self.n, self.position = seed, n, start
        self._block, self._rows = -1, None

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            block, offset = divmod(self.position, PERMUTATION_BLOCK)
            if block != self._block:
                rng = np.random.default_rng([self.seed, block])
                self._rows = rng.permuted(np.tile(np.arange(self.n), (PERMUTATION_BLOCK, 1)), axis=1)
                self._block = block
            chunk = self._rows[offset : offset + count]
            parts.append(chunk)
            self.position += len(chunk)
            count -= len(chunk)
        return np.concatenate(parts) if parts else np.zeros((0, self.n), dtype=np.int64)


def _null_distribution(E, G, n_tested, is_f, tail, dof, valid, threshold, seed, start, stop, batch_size, device,
                       dtype, tfce_config):
    """Permutations ``start`` to ``stop``: per-feature exceedance counts, per-permutation maxima.

    Returns
    -------
    counts : numpy.ndarray of shape (F,), int64
        Number of permutations whose oriented statistic reaches ``threshold``.
    h0_max : numpy.ndarray of shape (stop - start,), float64
        Maximum oriented statistic of each permutation.
    h0_max_tfce : numpy.ndarray of shape (stop - start,), float64, or None
        Maximum oriented TFCE of each permutation (``tfce_config`` given).
    """
    E_t = torch.as_tensor(E, dtype=dtype, device=device)
    G_t = torch.as_tensor(G, dtype=dtype, device=device)
    sumsq = (E_t * E_t).sum(dim=0)
    valid_t = torch.as_tensor(valid, device=device)
    threshold_t = torch.as_tensor(threshold, dtype=dtype, device=device)
    counts = torch.zeros(E.shape[1], dtype=torch.int64, device=device)
    h0_max = np.empty(stop - start)
    h0_max_tfce = np.empty(stop - start) if tfce_config is not None else None
    stream = _PermutationStream(seed, E.shape[0], start)
    workspace = torch.empty(min(batch_size, stop - start) * G.shape[1], E.shape[1], dtype=dtype, device=device)
    all_valid = bool(valid.all())
    for a in range(start, stop, batch_size):
        b = min(a + batch_size, stop)
        sigma = torch.as_tensor(stream.take(b - a), device=device)
        statistic = permuted_statistics(
            E_t, G_t, sigma, n_tested, is_f, dof, sumsq, None if all_valid else valid_t, out=workspace
        )
        oriented = _orient(statistic, tail)
        counts += (oriented >= threshold_t).sum(dim=0)
        h0_max[a - start : b - start] = oriented.max(dim=1).values.double().cpu().numpy()
        if tfce_config is not None:
            edges, extent, height, steps = tfce_config
            maps = _tfce_signed(statistic.double().cpu().numpy(), edges, extent, height, steps,
                                "greater" if is_f else tail)
            h0_max_tfce[a - start : b - start] = _orient(maps, tail).max(axis=1)
    return counts.cpu().numpy(), h0_max, h0_max_tfce


def permuted_statistics(E, G, sigma, n_tested, is_f, dof, sumsq=None, valid=None, out=None):
    r"""t or F statistics of a batch of permutations, by one matrix product.

    Parameters
    ----------
    E : torch.Tensor, shape (n, F)
        Residuals to permute, with zero column sums.
    G : torch.Tensor, shape (n, r)
        Orthonormal basis of the design without the intercept: the reduced
        part first, then the ``n_tested`` tested directions.
    sigma : torch.Tensor, shape (B, n), int64
        Inverse permutations: row b holds :math:`P_b^{-1}`, so that the
        permuted residuals are ``E[argsort(sigma[b])]``.
    n_tested : int
        Number m of tested directions (1 for a t contrast).
    is_f : bool
        F statistics (else t).
    dof : int
        Residual degrees of freedom.
    sumsq : torch.Tensor, shape (F,), optional
        ``(E**2).sum(0)`` if already computed.
    valid : torch.Tensor, shape (F,), bool, optional
        Features whose statistic is computed (the others get 0).
    out : torch.Tensor, shape (at least B r, F), optional
        Workspace for the products :math:`G^\top P_b E`, reused from batch
        to batch (fresh allocations of this size cost page faults on the CPU).

    Returns
    -------
    torch.Tensor, shape (B, F)
        The statistics, dtype and device of ``E`` (never a view of ``out``).
    """
    n, n_features = E.shape
    r = G.shape[1]
    if sumsq is None:
        sumsq = (E * E).sum(dim=0)
    B = sigma.shape[0]
    gathered = G[sigma].transpose(1, 2).reshape(B * r, n)  # rows of P_b' G, stacked
    if out is None:
        projections = gathered @ E
    else:
        projections = torch.mm(gathered, E, out=out[: B * r])
    projections = projections.view(B, r, n_features)  # G' P_b E
    # ||G' P_b E||^2 column by column: no (B, r, F) temporary
    explained = projections[:, 0].square()
    for j in range(1, r):
        explained.addcmul_(projections[:, j], projections[:, j])
    # residual variance; floored at eps ||E||^2 (an exact fit) so that it never divides by zero
    floor = (sumsq * torch.finfo(E.dtype).eps).clamp_min_(torch.finfo(E.dtype).tiny * 2**24)
    variance = torch.maximum(torch.sub(sumsq, explained, out=explained), floor).div_(dof)
    if is_f:
        statistic = projections[:, r - n_tested].square()
        for j in range(r - n_tested + 1, r):
            statistic.addcmul_(projections[:, j], projections[:, j])
        statistic.div_(variance.mul_(n_tested))
    else:
        statistic = projections[:, r - 1].div(variance.sqrt_())
    if valid is not None and not bool(valid.all()):
        statistic = torch.where(valid, statistic, torch.zeros((), dtype=E.dtype, device=E.device))
    return statistic


def _orient(statistic, tail: str):
    """|s|, s or -s: large values are evidence against H0 (works on numpy arrays and tensors)."""
    if tail == "two-sided":
        return abs(statistic)
    return -statistic if tail == "less" else statistic


def _max_statistic_p(h0_max: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``(1 + #{b : h0_max[b] >= threshold_v}) / (N + 1)`` for every feature."""
    ordered = np.sort(h0_max)
    exceed = len(ordered) - np.searchsorted(ordered, threshold, side="left")
    return (1.0 + exceed) / (len(ordered) + 1)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up; as ``scipy.stats.false_discovery_control``).

    Parameters
    ----------
    p_values : array-like of shape (n,)
        p-values in [0, 1].

    Returns
    -------
    numpy.ndarray of shape (n,), float64
        :math:`\\min_{j \\ge i} \\min(1, p_{(j)} n / j)` at the position of
        :math:`p_{(i)}`: rejecting the features below q controls the FDR at q.

    References
    ----------
    Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate: a
    practical and powerful approach to multiple testing", J. Royal
    Statistical Society B 57(1), 289-300, 1995.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    order = np.argsort(p)
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


# ---------------------------------------------------------------------- TFCE
def check_adjacency(adjacency, n_vertices: int) -> np.ndarray:
    """Undirected edge list (E, 2), int64, each edge once with ``i < j``, from triangles, edges or a sparse matrix.

    Raises
    ------
    TypeError
        If ``adjacency`` is not numeric, or holds non-integer values.
    ValueError
        If it is not (T, 3), (E, 2) or (n_vertices, n_vertices), or an
        index is out of ``[0, n_vertices)``.
    """
    if sparse.issparse(adjacency):
        if adjacency.shape != (n_vertices, n_vertices):
            raise ValueError(
                f"a sparse adjacency must be ({n_vertices}, {n_vertices}) (one row per feature), "
                f"got {adjacency.shape}"
            )
        coo = sparse.coo_matrix(adjacency)
        edges = np.stack([coo.row, coo.col], axis=1)[coo.data != 0]
    else:
        array = as_tensor(adjacency, "adjacency").numpy()
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
                raise TypeError("adjacency must hold integer vertex indices, got non-integer floats")
        elif array.dtype.kind not in "iu":
            raise TypeError(f"adjacency must hold integer vertex indices, got dtype {array.dtype}")
        array = array.astype(np.int64)
        if array.ndim != 2 or array.shape[1] not in (2, 3):
            raise ValueError(
                f"adjacency must be triangles (T, 3), edges (E, 2) or a sparse (n_features, n_features) matrix, "
                f"got shape {array.shape}"
            )
        if array.size and (array.min() < 0 or array.max() >= n_vertices):
            raise ValueError(
                f"adjacency indices must be in [0, {n_vertices}) (one vertex per feature), "
                f"got values in [{array.min()}, {array.max()}]"
            )
        if array.shape[1] == 3:
            array = np.concatenate([array[:, [0, 1]], array[:, [1, 2]], array[:, [2, 0]]])
        edges = array
    edges = np.sort(edges, axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    return np.unique(edges, axis=0).astype(np.int64).reshape(-1, 2)


def tfce(statistic, adjacency, *, extent=1.0, height=2.0, n_steps=100, tail="two-sided"):
    r"""Threshold-free cluster enhancement of statistic maps on a graph (Smith & Nichols 2009).

    .. math:: \mathrm{TFCE}(v) = \sum_{j=1}^{J} [h_j \le s(v)]\; e(h_j, v)^{E}\, h_j^{H}\, \Delta h,
              \qquad h_j = j \Delta h, \quad \Delta h = \max_u |s(u)| / J,

    with :math:`e(h, v)` the number of vertices in the connected component
    of :math:`\{u : s(u) \ge h\}` that holds :math:`v` (the thresholds are
    ``numpy.linspace(0, max, J + 1)[1:]``). ``tail="two-sided"`` enhances
    the positive part and the negative part (of :math:`-s`) separately, with
    the same thresholds, and returns a map signed like ``s``; ``"greater"``
    only the positive part; ``"less"`` only the negative part (values <= 0).

    All the thresholds of all the maps are labelled at once: the vertices
    above threshold :math:`h_j` of map b form copy (b, j) of the graph, and
    one :func:`scipy.sparse.csgraph.connected_components` call labels the
    union of the copies (chunked at :data:`TFCE_CHUNK` nodes and edges).
    When the graph has more edges than vertices (a triangle mesh has about
    3 V), each map keeps only a maximum spanning forest for the edge weights
    :math:`\min(s(u), s(w))`, which connects the same vertices at every
    threshold (Kruskal). The cost is linear in the number of (threshold,
    vertex) pairs above threshold, at most 2 J V per map, plus one spanning
    forest per map.

    Parameters
    ----------
    statistic : array-like of shape (V,) or (B, V)
        One or B maps over the V vertices.
    adjacency : array-like or scipy.sparse matrix
        Triangles (T, 3), edges (E, 2) or a sparse (V, V) matrix (see
        :func:`check_adjacency`).
    extent : float, default=1.0
        Extent exponent E (1 for surfaces, 0.5 for volumes).
    height : float, default=2.0
        Height exponent H.
    n_steps : int, default=100
        Number J of thresholds.
    tail : {"two-sided", "greater", "less"}, default="two-sided"
        Which sign(s) to enhance.

    Returns
    -------
    numpy.ndarray of the shape of ``statistic``, float64

    Notes
    -----
    fslmaths and nilearn omit the factor :math:`\Delta h` (their values are
    ours divided by :math:`\Delta h`).

    References
    ----------
    S. M. Smith, T. E. Nichols, "Threshold-free cluster enhancement:
    addressing problems of smoothing, threshold dependence and localisation
    in cluster inference", NeuroImage 44(1), 83-98, 2009.
    """
    maps = np.asarray(statistic, dtype=np.float64)
    squeeze = maps.ndim == 1
    maps = np.atleast_2d(maps)
    if maps.ndim != 2:
        raise ValueError(f"statistic must have shape (V,) or (B, V), got shape {np.shape(statistic)}")
    if not np.all(np.isfinite(maps)):
        raise ValueError("statistic contains NaN or inf values")
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    for name, value in (("extent", extent), ("height", height)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < np.inf:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not isinstance(n_steps, numbers.Integral) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    out = _tfce_signed(maps, check_adjacency(adjacency, maps.shape[1]), extent, height, int(n_steps), tail)
    return out[0] if squeeze else out


def _tfce_signed(maps, edges, extent, height, n_steps, tail):
    """:func:`tfce` of (B, V) float64 maps on a checked edge list."""
    if tail == "two-sided":
        top = np.abs(maps).max(axis=1)
        parts = np.concatenate([np.maximum(maps, 0.0), np.maximum(-maps, 0.0)])
        enhanced = _tfce_positive(parts, np.concatenate([top, top]), edges, extent, height, n_steps)
        out = enhanced[: len(maps)] - enhanced[len(maps) :]
    elif tail == "greater":
        positive = np.maximum(maps, 0.0)
        out = _tfce_positive(positive, positive.max(axis=1), edges, extent, height, n_steps)
    else:
        negative = np.maximum(-maps, 0.0)
        out = -_tfce_positive(negative, negative.max(axis=1), edges, extent, height, n_steps)
    return out


def _tfce_positive(values, top, edges, extent, height, n_steps):
    """TFCE of nonnegative maps ``values`` (B, V) with thresholds ``linspace(0, top[b], J + 1)[1:]``."""
    n_maps, n_vertices = values.shape
    thresholds = np.linspace(0.0, top, n_steps + 1, axis=-1)[:, 1:]  # (B, J)
    levels = np.zeros(values.shape, dtype=np.int64)  # number of thresholds <= value
    for b in range(n_maps):
        if top[b] > 0:
            levels[b] = np.searchsorted(thresholds[b], values[b], side="right")
    edge_levels = np.minimum(levels[:, edges[:, 0]], levels[:, edges[:, 1]])  # (B, E)
    if len(edges) >= n_vertices:
        # Keep a maximum spanning forest of each map, for the edge weights edge_levels: at every
        # level j, the edges of level >= j of the forest connect the same vertices as all the edges
        # of level >= j (Kruskal), and a forest has fewer than V edges (a triangle mesh has ~3 V).
        forests = []
        for b in range(n_maps):
            weights = edge_levels[b].max(initial=0) + 1 - edge_levels[b]  # >= 1: no edge dropped as zero
            tree = minimum_spanning_tree(
                sparse.csr_matrix((weights, (edges[:, 0], edges[:, 1])), shape=(n_vertices, n_vertices))
            ).tocoo()
            forests.append(np.stack([tree.row, tree.col], axis=1))
        edges = np.stack(forests).astype(np.int64)  # (B, K, 2): K = V - #components, the same for every map
        edge_levels = np.minimum(
            np.take_along_axis(levels, edges[..., 0], 1), np.take_along_axis(levels, edges[..., 1], 1)
        )
    else:
        edges = np.broadcast_to(edges, (n_maps, *edges.shape))
    work = levels.sum(axis=1) + edge_levels.sum(axis=1)
    out = np.zeros(values.shape)
    start = 0
    while start < n_maps:  # chunks of maps with at most TFCE_CHUNK nodes and edges (at least one map)
        stop = start + max(1, int(np.searchsorted(np.cumsum(work[start:]), TFCE_CHUNK, side="right")))
        out[start:stop] = _tfce_chunk(
            levels[start:stop], edge_levels[start:stop], thresholds[start:stop], edges[start:stop], extent, height
        )
        start = stop
    return out


def _tfce_chunk(levels, edge_levels, thresholds, edges, extent, height):
    """Label every (map, threshold) copy of the graph at once and sum the TFCE contributions.

    ``edges`` (B, K, 2) are the edges of each map, ``edge_levels`` (B, K) the number of thresholds
    at which both of their ends are above threshold.
    """
    n_maps, n_vertices = levels.shape
    flat = levels.ravel()
    n_nodes = int(flat.sum())
    out = np.zeros(n_maps * n_vertices)
    if n_nodes == 0:
        return out.reshape(n_maps, n_vertices)
    offsets = np.cumsum(flat) - flat  # node (b, v, level j) is offsets[b V + v] + j - 1
    vertex = np.repeat(np.arange(n_maps * n_vertices), flat)
    e_flat = edge_levels.ravel()
    shift = (np.arange(n_maps) * n_vertices)[:, None]
    u = (edges[..., 0] + shift).ravel()
    w = (edges[..., 1] + shift).ravel()
    keep = e_flat > 0
    u, w, e_flat = u[keep], w[keep], e_flat[keep]
    n_links = int(e_flat.sum())
    edge_step = np.arange(n_links) - np.repeat(np.cumsum(e_flat) - e_flat, e_flat)
    source = np.repeat(offsets[u], e_flat) + edge_step
    target = np.repeat(offsets[w], e_flat) + edge_step
    graph = sparse.csr_matrix((np.ones(n_links, dtype=np.int8), (source, target)), shape=(n_nodes, n_nodes))
    n_components, labels = connected_components(graph, directed=False)
    # every node of a component shares its map and level: e^E h^H dh once per component
    first = np.zeros(n_components, dtype=np.int64)
    first[labels[::-1]] = np.arange(n_nodes)[::-1]  # one node of each component
    map_of_component = vertex[first] // n_vertices
    level_of_component = first - offsets[vertex[first]]  # j - 1
    step = thresholds[:, 1] - thresholds[:, 0] if thresholds.shape[1] > 1 else thresholds[:, 0]
    sizes = np.bincount(labels, minlength=n_components).astype(np.float64)
    heights = thresholds[map_of_component, level_of_component]
    value = (sizes if extent == 1 else sizes**extent) * (heights * heights if height == 2 else heights**height)
    value *= step[map_of_component]
    out += np.bincount(vertex, weights=value[labels], minlength=n_maps * n_vertices)
    return out.reshape(n_maps, n_vertices)


# ---------------------------------------------------------------------- validation
def _check_array(value, name: str, ndims, n_rows=None) -> np.ndarray:
    """A float64 copy of ``value``, 1-D promoted to one column, finite, with ``n_rows`` rows."""
    tensor = as_tensor(value, name)
    if tensor.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    array = tensor.detach().cpu().to(torch.float64).numpy()
    if array.ndim not in ndims:
        shapes = {1: "(n_subjects,)", 2: "(n_subjects, n_columns)"}
        if name == "Y":
            shapes[2] = "(n_subjects, n_features)"
        expected = " or ".join(shapes[d] for d in ndims)
        raise ValueError(f"{name} must have shape {expected}, got shape {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(f"{name} has {array.shape[0]} rows but Y has {n_rows} subjects: one row per subject")
    if not np.all(np.isfinite(array)):
        rows = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise ValueError(f"{name} contains NaN or inf values (rows {rows[:10].tolist()})")
    return array


def _check_contrast(contrast, k: int) -> np.ndarray:
    """The contrast as (k,) for a t test or (m, k) of rank m for an F test."""
    if contrast is None:
        return np.eye(1, k)[0]
    C = _check_array_any(contrast, "contrast")
    if C.ndim not in (1, 2) or C.shape[-1] != k:
        raise ValueError(
            f"contrast must have shape ({k},) or (m, {k}) (one weight per column of X), got shape {C.shape}"
        )
    if C.ndim == 2 and C.shape[0] == 0:
        raise ValueError("contrast has no rows")
    rank = np.linalg.matrix_rank(np.atleast_2d(C))
    if rank == 0:
        raise ValueError("contrast is all zeros: nothing to test")
    if C.ndim == 2 and rank < C.shape[0]:
        raise ValueError(
            f"contrast rows are linearly dependent (rank {rank} < {C.shape[0]} rows): "
            "remove the redundant rows of the F contrast"
        )
    return C


def _check_array_any(value, name: str) -> np.ndarray:
    tensor = as_tensor(value, name)
    if tensor.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    array = tensor.detach().cpu().to(torch.float64).numpy()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values")
    return array


def _check_design(design: np.ndarray, k: int, c: int) -> None:
    """Raise a ValueError naming the problem if ``[X, 1, covariates]`` is rank deficient."""
    names = [f"X[:, {j}]" for j in range(k)] + ["the intercept"] + [f"covariates[:, {j}]" for j in range(c)]
    centred = design - design.mean(axis=0)
    for j, name in enumerate(names):
        if name != "the intercept" and not np.any(np.abs(centred[:, j]) > 1e-12 * max(1.0, np.abs(design[:, j]).max())):
            raise ValueError(
                f"the design is rank deficient: {name} is constant, collinear with the intercept "
                "(which is always in the model)"
            )
    normalised = design / np.linalg.norm(design, axis=0)
    singular = np.linalg.svd(normalised, compute_uv=False)
    tol = singular[0] * max(design.shape) * np.finfo(np.float64).eps * 10
    rank = int((singular > tol).sum())
    if rank < design.shape[1]:
        raise ValueError(
            f"the design [X ({k} columns), intercept, covariates ({c} columns)] is rank deficient "
            f"(rank {rank} < {design.shape[1]} columns): a column is duplicated or a linear combination of others"
        )


__all__ = ["PermutationGLM", "benjamini_hochberg", "tfce"]
