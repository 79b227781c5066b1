"""Principal component analysis of momenta in the tangent space at a template (kernel metric)."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._momenta import (
    check_lddmm,
    check_polydata,
    kernel_metric,
    like_input,
    to_tensor,
)


# auto_wrap_output_keys=None: the inputs are (n_samples, C, D) momenta, not 2-D arrays with
# feature names, so scikit-learn's set_output wrapping does not apply.
class TangentPCA(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    r"""Principal component analysis of momenta in the kernel (RKHS) metric at a template.

    Deformations of a template (e.g. the momenta of an atlas,
    :class:`~skshapes.Atlas` ``momenta_``) are represented by initial
    momenta :math:`p \in \mathbb R^{C \times D}` on the template's control
    points :math:`q` = ``model.control_points_of(template)``. Their natural
    inner product is that of the velocity fields they generate, the
    Riemannian metric at the template,

    .. math:: \langle p, p' \rangle_K = \sum_{d=1}^{D} p_{\cdot d}^\top K(q, q)\, p'_{\cdot d}
              = \sum_{i, j} K(q_i, q_j)\, p_i^\top p'_j,

    twice the bilinear form of the Hamiltonian :math:`H(q, p) = \frac12
    \langle p, p \rangle_K` (the same formula for both normalisations of
    :class:`~skshapes.LDDMM`, see :meth:`~skshapes.LDDMM.hamiltonian`; a
    sum-of-Gaussians ``sigma`` gives the sum of the kernels). The PCA
    finds the directions of largest variance in this metric: the
    components are momenta, orthonormal for :math:`\langle\cdot,\cdot\rangle_K`,
    and the scores are :math:`\langle p - \bar p, c_k \rangle_K`. This is
    the tangent PCA of Vaillant et al. [1]_, here on the momenta of control
    points [2]_.

    Parameters
    ----------
    n_components : int, float or None, default=None
        Number of components to keep. ``None``: all the components of
        nonzero variance (at most ``n_samples - 1``, the rank of the
        centred momenta); an int ``k``: the first ``k`` (1 <= k <= that
        rank); a float in (0, 1): the smallest number of components whose
        cumulative ``explained_variance_ratio_`` exceeds it (as in
        :class:`sklearn.decomposition.PCA`).
    model : LDDMM or None, default=None
        The deformation model whose kernel (``sigma``, ``kernel``,
        ``backend``) and control points define the metric. ``None``, with
        ``template=None``: the Euclidean metric :math:`\sum_{i} p_i^\top
        p'_i` on the flattened momenta, i.e. :class:`sklearn.decomposition.PCA`
        with components reshaped to (C, D). The Euclidean metric weighs
        every control point alike and ranks high-frequency momenta (which
        barely move the shape when the control points are dense compared
        with ``sigma``) as high as smooth ones: use the kernel metric for
        LDDMM momenta.
    template : PolyData or None, default=None
        The shape at which the momenta live (the atlas's ``template_``):
        the metric is :math:`K(q, q)` at its control points
        ``model.control_points_of(template)``, which must be those of the
        momenta. Given together with ``model``. (A model with
        ``control_points=n`` samples them on ``template``: for an atlas,
        pass the model frozen on its initial template, e.g. the ``model`` of
        its ``registrations_``, or ``control_points=atlas.control_points_``.)

    Attributes
    ----------
    components_ : numpy.ndarray of shape (n_components_, C, D), float64
        The principal directions, momenta on the control points, sorted by
        decreasing variance and orthonormal in the metric:
        :math:`\langle c_k, c_l \rangle_K = \delta_{kl}`. Signs are fixed so
        that the entry of largest absolute value of each component is
        positive.
    explained_variance_ : numpy.ndarray of shape (n_components_,), float64
        Variance of the data along each component (unbiased, divided by
        ``n_samples - 1``), in squared units of the metric (for LDDMM,
        :math:`2 H`, squared units of the points per squared unit time).
    explained_variance_ratio_ : numpy.ndarray of shape (n_components_,), float64
        ``explained_variance_`` divided by the total variance
        :math:`\frac{1}{n - 1}\sum_i \|p_i - \bar p\|_K^2`.
    singular_values_ : numpy.ndarray of shape (n_components_,), float64
        :math:`\sqrt{(n - 1)\,\lambda_k}`, the norms of the centred score
        vectors.
    mean_ : numpy.ndarray of shape (C, D), float64
        The mean momentum :math:`\bar p` (the linear mean in the tangent
        space, the same in every metric).
    n_components_ : int
        Number of components kept.
    n_samples_ : int
        Number of momenta seen in :meth:`fit`.
    control_points_ : numpy.ndarray of shape (C, D), float64, or None
        The control points :math:`q` at which the kernel metric was
        evaluated; ``None`` for the Euclidean metric.

    Notes
    -----
    **Computation.** Equivalent, in exact arithmetic, to whitening with a
    Cholesky factor :math:`K = L L^\top` (:math:`p \mapsto L^\top p`),
    running :class:`sklearn.decomposition.PCA` on the flattened whitened
    momenta and mapping the components back by :math:`L^{-\top}`. We work
    in the dual instead (the "snapshot" method): with :math:`X` the
    centred momenta, the Gram matrix :math:`G_{ij} = \langle X_i, X_j
    \rangle_K` (n x n) has eigenpairs :math:`(s_k^2, u_k)`, and the
    components are :math:`c_k = \sum_i u_{ik} X_i / s_k`, combinations of
    the data. This needs :math:`n` kernel products (KeOps when the
    model's backend chooses it) instead of a dense C x C matrix and its
    factorisation, and it is exact when :math:`K(q, q)` is singular or
    nearly so, which is common: Gaussian kernel matrices are ill-conditioned
    once ``sigma`` exceeds the control-point spacing (condition number 8e6
    for points one sigma apart on the skull outline, 2e9 at 0.75 sigma),
    and coincident control points (the bundled skull template has some)
    make them exactly singular, so a Cholesky factorisation would need a
    jitter that changes the metric, and :math:`L^{-\top}` would amplify
    rounding errors by up to :math:`\sqrt{\mathrm{cond}(K)}`. Cost:
    :math:`O(n^2 C D)` plus :math:`n D` kernel columns. Accuracy: the
    eigenvalues of :math:`G` are squared, so a component of variance
    :math:`\lambda_k` is accurate to about
    :math:`\varepsilon\,\lambda_1/\lambda_k` (float64,
    :math:`\varepsilon \approx 10^{-16}`). Components of variance below
    :math:`n\,\varepsilon\,\lambda_1` count as zero (not kept by
    ``n_components=None``). Computations run in float64 on the device of
    the template (of the momenta for the Euclidean metric).

    :meth:`transform` and :meth:`inverse_transform` return the kind
    (torch tensor or numpy array), dtype and device of their input.

    References
    ----------
    .. [1] M. Vaillant, M. I. Miller, L. Younes, A. Trouvé, "Statistics on
       diffeomorphisms via tangent space representations", NeuroImage 23,
       S161-S169, 2004.
    .. [2] S. Durrleman, M. Prastawa, N. Charon, J. R. Korenberg, S. Joshi,
       G. Gerig, A. Trouvé, "Morphometry of anatomical shape complexes with
       dense deformations and sparse parameters", NeuroImage 101, 2014.
    .. [3] L. Sirovich, "Turbulence and the dynamics of coherent structures,
       part I", Quarterly of Applied Mathematics 45(3), 1987 (the snapshot
       method).

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> from skshapes.statistics.tangent_pca import TangentPCA
    >>> from skshapes.statistics.shooting import shoot
    >>> template = sks.PolyData(torch.rand(30, 2, dtype=torch.float64))
    >>> model = sks.LDDMM(sigma=0.3, backend="torch")
    >>> momenta = torch.randn(10, 30, 2, dtype=torch.float64)
    >>> pca = TangentPCA(n_components=2, model=model, template=template).fit(momenta)
    >>> pca.components_.shape, pca.transform(momenta).shape
    ((2, 30, 2), torch.Size([10, 2]))
    >>> mode = pca.mean_ + 2 * pca.explained_variance_[0] ** 0.5 * pca.components_[0]
    >>> shoot(template, mode, model).points.shape  # the first mode at +2 SD
    torch.Size([30, 2])
    """

    def __init__(self, n_components=None, model=None, template=None):
        self.n_components = n_components
        self.model = model
        self.template = template

    # ---------------------------------------------------------------- fitting
    def fit(self, momenta, y=None):
        """Find the principal components of ``momenta`` in the metric at the template.

        Parameters
        ----------
        momenta : torch.Tensor or numpy.ndarray, shape (n_samples, C, D)
            Initial momenta at the template's control points (e.g. an
            atlas's ``momenta_``), ``n_samples >= 2``, any real dtype. Not
            modified.
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : TangentPCA
            The fitted estimator.

        Raises
        ------
        TypeError
            If ``momenta`` is not numeric, ``model`` is not an LDDMM, or
            ``template`` not a PolyData, or ``n_components`` has a bad type.
        ValueError
            If ``momenta`` is not (n_samples, C, D) with ``n_samples >= 2``
            and (C, D) = ``model.parameter_shape(template)``, holds NaN/inf
            or has zero variance; if only one of ``model`` and ``template``
            is given; if ``n_components`` is out of range.
        """
        data = to_tensor(momenta, "momenta")
        if data.ndim != 3:
            raise ValueError(
                f"momenta must have shape (n_samples, C, D) (one (C, D) momentum per sample), "
                f"got {tuple(data.shape)}"
            )
        n_samples = data.shape[0]
        if n_samples < 2:
            raise ValueError(f"TangentPCA needs at least 2 momenta, got n_samples={n_samples}")
        metric, control_points = self._metric(data.shape[1:])
        device = data.device if control_points is None else control_points.device
        data = data.to(device=device, dtype=torch.float64)

        mean = data.mean(dim=0)
        centred = data - mean
        metric_centred = metric(centred)  # K X_i, (n, C, D)
        gram = torch.einsum("icd,jcd->ij", centred, metric_centred)
        gram = (gram + gram.T) / 2
        total = float(torch.einsum("icd,icd->", centred, metric_centred))
        if not total > 0:
            raise ValueError("momenta have zero variance in the metric: all samples are equal (up to its kernel)")
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # decreasing
        tolerance = max(float(eigenvalues[0]), 0.0) * n_samples * torch.finfo(torch.float64).eps
        rank = int((eigenvalues > tolerance).sum())
        ratios = (eigenvalues[:rank] / total).clamp_min(0)
        k = self._number_of_components(rank, ratios.cpu().numpy(), n_samples, centred[0].numel())

        singular = eigenvalues[:k].sqrt()
        weights = eigenvectors[:, :k] / singular  # (n, k)
        components = torch.einsum("ik,icd->kcd", weights, centred)
        metric_components = torch.einsum("ik,icd->kcd", weights, metric_centred)  # K c_k, by linearity
        flat = components.reshape(k, -1)
        largest = flat.abs().argmax(dim=1)
        signs = torch.sign(flat[torch.arange(k, device=device), largest])
        signs[signs == 0] = 1
        components = components * signs[:, None, None]
        metric_components = metric_components * signs[:, None, None]

        self.components_ = components.cpu().numpy()
        self.explained_variance_ = (eigenvalues[:k] / (n_samples - 1)).cpu().numpy()
        self.explained_variance_ratio_ = ratios[:k].cpu().numpy()
        self.singular_values_ = singular.cpu().numpy()
        self.mean_ = mean.cpu().numpy()
        self.n_components_ = int(k)
        self.n_samples_ = int(n_samples)
        self.control_points_ = None if control_points is None else control_points.cpu().numpy()
        self._metric_components = metric_components.cpu().numpy()
        return self

    def _metric(self, momentum_shape):
        """The map X (n, C, D) -> K X, and the control points (float64) or None (Euclidean)."""
        if self.model is None and self.template is None:
            return (lambda x: x), None
        if self.model is None or self.template is None:
            missing = "template" if self.template is None else "model"
            raise ValueError(
                f"model and template must be given together (the kernel metric lives at the template's control "
                f"points); {missing} is None. Leave both None for the Euclidean metric"
            )
        model = check_lddmm(self.model)
        template = check_polydata(self.template, "template")
        expected = tuple(model.parameter_shape(template))
        if tuple(momentum_shape) != expected:
            raise ValueError(
                f"momenta must have shape (n_samples, C, D) with (C, D) = model.parameter_shape(template) = "
                f"{expected}, got (n_samples, {', '.join(str(n) for n in momentum_shape)})"
            )
        q = model.control_points_of(template).detach().to(torch.float64)

        def metric(x):
            n = x.shape[0]
            side_by_side = x.permute(1, 0, 2).reshape(q.shape[0], -1)  # (C, n D)
            return kernel_metric(model, q, side_by_side).reshape(q.shape[0], n, -1).permute(1, 0, 2)

        return metric, q

    def _number_of_components(self, rank, ratios, n_samples, n_features):
        value = self.n_components
        if value is None:
            return rank
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"n_components must be None, an int or a float in (0, 1), got {type(value).__name__}")
        if isinstance(value, numbers.Integral):
            if not 1 <= value <= rank:
                raise ValueError(
                    f"n_components={value} must be between 1 and the number of components of nonzero variance, "
                    f"{rank} here (at most min(n_samples - 1, C * D) = {min(n_samples - 1, n_features)})"
                )
            return int(value)
        if not 0 < value < 1:
            raise ValueError(f"a float n_components is a fraction of the variance in (0, 1), got {value}")
        return min(int(np.searchsorted(np.cumsum(ratios), value, side="right")) + 1, rank)

    # -------------------------------------------------------------- transforms
    def transform(self, momenta):
        r"""Scores of ``momenta``: :math:`\langle p - \bar p, c_k \rangle_K` for each component.

        Parameters
        ----------
        momenta : torch.Tensor or numpy.ndarray, shape (n_samples, C, D)
            Momenta at the same control points as in :meth:`fit`. Not modified.

        Returns
        -------
        scores : torch.Tensor or numpy.ndarray, shape (n_samples, n_components_)
            In the kind, dtype and device of ``momenta`` (float64 numpy for
            non-float input). On the training momenta their variances are
            ``explained_variance_``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        TypeError, ValueError
            If ``momenta`` is not numeric, not (n_samples, C, D) with the
            fitted (C, D), or holds NaN/inf.
        """
        check_is_fitted(self)
        data = to_tensor(momenta, "momenta")
        expected = self.mean_.shape
        if data.ndim != 3 or tuple(data.shape[1:]) != expected:
            raise ValueError(
                f"momenta must have shape (n_samples, C, D) = (n_samples, {expected[0]}, {expected[1]}), "
                f"got {tuple(data.shape)}"
            )
        centred = data.detach().cpu().to(torch.float64) - torch.from_numpy(self.mean_)
        scores = torch.einsum("ncd,kcd->nk", centred, torch.from_numpy(self._metric_components))
        return like_input(scores, momenta)

    def inverse_transform(self, scores):
        r"""Momenta with the given scores: :math:`\bar p + \sum_k s_k c_k`.

        Parameters
        ----------
        scores : torch.Tensor or numpy.ndarray, shape (n_samples, n_components_)
            Coordinates along the components (e.g. from :meth:`transform`,
            or :math:`\pm 2 \sqrt{\lambda_k}` along one axis for a mode at
            two standard deviations). Not modified.

        Returns
        -------
        momenta : torch.Tensor or numpy.ndarray, shape (n_samples, C, D)
            In the kind, dtype and device of ``scores``. When all the
            components are kept, ``inverse_transform(transform(m))`` is the
            projection of ``m - mean_`` on the span of the training
            momenta (in the metric), plus ``mean_``: ``m`` itself for a
            training momentum.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        TypeError, ValueError
            If ``scores`` is not numeric, not (n_samples, n_components_), or
            holds NaN/inf.
        """
        check_is_fitted(self)
        values = to_tensor(scores, "scores")
        if values.ndim != 2 or values.shape[1] != self.n_components_:
            raise ValueError(
                f"scores must have shape (n_samples, n_components_) = (n_samples, {self.n_components_}), "
                f"got {tuple(values.shape)}"
            )
        momenta = torch.from_numpy(self.mean_) + torch.einsum(
            "nk,kcd->ncd", values.detach().cpu().to(torch.float64), torch.from_numpy(self.components_)
        )
        return like_input(momenta, scores)
