"""Generalised Procrustes analysis of landmark configurations, as a scikit-learn transformer."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ..shapes.validation import as_tensor


# auto_wrap_output_keys=None: the output is a 3-D array of configurations, which
# scikit-learn's set_output (pandas/polars 2-D containers) cannot wrap.
class GeneralizedProcrustes(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    r"""Generalised Procrustes analysis (GPA) of landmark configurations.

    Each configuration :math:`X_i` (``n_landmarks`` points in D dimensions)
    is centred, (optionally) scaled and rotated onto a common mean shape
    :math:`\mu`. The landmark :math:`x` of configuration :math:`i` goes to

    .. math:: x' = s_i\, R_i\, (x - c_i),

    with :math:`c_i` its centroid, :math:`R_i` a rotation (orthogonal,
    :math:`\det R_i = +1`: **reflections are never used**) and :math:`s_i > 0`
    a scale (1 when ``scaling=False``).

    With ``scaling=True``, the fit minimises the sum of squared full
    Procrustes distances to a mean of unit centroid size,

    .. math::

        \min_{\|\mu\|_F = 1}\ \sum_i \min_{s_i, R_i}
            \big\| s_i\, (X_i - 1 c_i^\top) R_i^\top - \mu \big\|_F^2
        = \sum_i d_F^2(X_i, \mu),

    whose minimiser is the full Procrustes mean (Dryden & Mardia 2016,
    §6.3). It alternates (Gower 1975; Dryden & Mardia 2016, §7.3) two
    steps, each of which lowers the objective: every configuration is fitted
    to the current mean by ordinary Procrustes analysis (translation,
    rotation by SVD with the determinant correction, scale), then the mean
    is re-estimated as the average of the fits, normalised to unit centroid
    size (for a fixed norm of :math:`\mu`, the average is the best mean).
    The first configuration, centred and scaled, is the starting mean, so
    :attr:`mean_shape_` keeps roughly its orientation. The fitted
    configurations (the "full Procrustes fits") have centroid size
    :math:`\cos\rho_i \le 1`, with :math:`\rho_i` the Procrustes angle to the
    mean.

    With ``scaling=False``, only translations and rotations are fitted,
    minimising :math:`\sum_i \| (X_i - 1 c_i^\top) R_i^\top - \mu \|_F^2`;
    the mean is the plain average of the rotated configurations, in the
    units of the data (sizes are preserved).

    The loop stops when the mean moves by less than ``tol`` times its
    centroid size in one iteration. A final pass fits every configuration to
    the final mean, so that :attr:`rotations_`, :attr:`scales_` and
    :attr:`translations_` are the Procrustes fits to :attr:`mean_shape_`
    and ``fit_transform(X)`` equals ``fit(X).transform(X)``.

    Parameters
    ----------
    scaling : bool, default=True
        Fit a scale per configuration (full Procrustes: shape analysis);
        ``False`` keeps the sizes (partial alignment: size-and-shape analysis).
    n_iter : int, default=100
        Maximum number of alternations (fit to the mean, update the mean).
        A :class:`~sklearn.exceptions.ConvergenceWarning` is issued when it
        is reached before convergence.
    tol : float, default=1e-8
        Stop when an iteration moves the mean by less than ``tol`` times its
        centroid size (Frobenius norm of the change). Raised to ``8 * eps``
        of the data's dtype (about 1e-6 in float32), below which rounding
        errors move the mean.

    Attributes
    ----------
    mean_shape_ : numpy.ndarray or torch.Tensor, shape (n_landmarks, D)
        The mean configuration, centred at the origin; of unit centroid
        size (Frobenius norm) when ``scaling=True``, in the units of the data
        otherwise.
    rotations_ : numpy.ndarray or torch.Tensor, shape (n_samples, D, D)
        Rotation of each training configuration, acting on column vectors
        (``x' = R x``); orthogonal with determinant +1.
    scales_ : numpy.ndarray or torch.Tensor, shape (n_samples,)
        Scale of each training configuration (1/units), all 1 when
        ``scaling=False``.
    translations_ : numpy.ndarray or torch.Tensor, shape (n_samples, D)
        Centroid of each training configuration, subtracted before scaling
        and rotating (units of the data).
    procrustes_distances_ : numpy.ndarray or torch.Tensor, shape (n_samples,)
        Frobenius norm of the residual between each fitted configuration and
        :attr:`mean_shape_`: the full Procrustes distance :math:`\sin\rho_i`
        when ``scaling=True``, in the units of the data otherwise.
    n_iter_ : int
        Number of iterations run.

    The learned arrays are numpy arrays when ``fit`` was given a numpy
    array (or any array-like), torch tensors (same dtype and device) when it
    was given a tensor.

    Raises
    ------
    TypeError
        From :meth:`fit`: parameters of the wrong type, or non-numeric data.
    ValueError
        From :meth:`fit` and :meth:`transform`: data that is not
        (n_samples, n_landmarks, D) with D in {2, 3}, holds NaN or inf, has
        fewer than 2 landmarks, fewer than 2 configurations (``fit``), a
        configuration whose landmarks all coincide (``scaling=True``), a
        landmark count or dimension differing from the fitted one
        (``transform``); or parameters out of range.

    See Also
    --------
    scipy.spatial.procrustes : ordinary Procrustes analysis of two
        configurations (which allows reflections).

    References
    ----------
    J. C. Gower, "Generalized Procrustes analysis", Psychometrika 40(1),
    33-51, 1975.

    I. L. Dryden, K. V. Mardia, *Statistical Shape Analysis, with
    Applications in R*, 2nd ed., Wiley, 2016 (chapters 6 and 7).

    P. H. Schönemann, "A generalized solution of the orthogonal Procrustes
    problem", Psychometrika 31(1), 1-10, 1966; S. Umeyama, "Least-squares
    estimation of transformation parameters between two point patterns",
    IEEE TPAMI 13(4), 376-380, 1991 (the determinant correction).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.transform import Rotation
    >>> from skshapes.statistics.procrustes import GeneralizedProcrustes
    >>> base = np.random.default_rng(0).normal(size=(5, 3))
    >>> rotations = Rotation.random(4, random_state=0).as_matrix()
    >>> X = np.stack([2.0 * base @ r.T + 1.0 for r in rotations])
    >>> gpa = GeneralizedProcrustes().fit(X)
    >>> aligned = gpa.transform(X)
    >>> bool(np.abs(aligned - gpa.mean_shape_).max() < 1e-10)
    True
    """

    def __init__(self, scaling=True, n_iter=100, tol=1e-8):
        self.scaling = scaling
        self.n_iter = n_iter
        self.tol = tol

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None):
        """Estimate the mean shape and the alignment of each configuration.

        Parameters
        ----------
        X : array-like or torch.Tensor, shape (n_samples, n_landmarks, D)
            Landmark configurations, D in {2, 3}, landmark k of every
            configuration corresponding; n_samples >= 2. float32 and float64
            are kept; integers become float64. Not modified.
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : GeneralizedProcrustes
        """
        self._check_params()
        X, is_torch = _check_configurations(X, "X", min_samples=2)
        translations = X.mean(dim=1)
        centred = X - translations[:, None, :]
        sizes = _centroid_sizes(centred, "X") if self.scaling else torch.ones_like(translations[:, 0])
        unit = centred / sizes[:, None, None]

        mean = unit[0]
        tol = max(float(self.tol), 8 * torch.finfo(X.dtype).eps)
        converged = False
        for n_done in range(1, self.n_iter + 1):
            rotations, scales = _fit_to_mean(unit, mean, self.scaling)
            new_mean = _mean_shape(_apply(unit, rotations, scales), self.scaling)
            shift = float(torch.linalg.norm(new_mean - mean)) / max(float(torch.linalg.norm(mean)), 1e-300)
            mean = new_mean
            if shift <= tol:
                converged = True
                break
        if not converged:
            warnings.warn(
                f"GeneralizedProcrustes did not converge in n_iter={self.n_iter} iterations "
                f"(last relative change of the mean {shift:.2e} > tol={tol:.1e}); increase n_iter",
                ConvergenceWarning,
                stacklevel=2,
            )

        rotations, scales = _fit_to_mean(unit, mean, self.scaling)
        residuals = _apply(unit, rotations, scales) - mean
        out = _output(is_torch)
        self.mean_shape_ = out(mean)
        self.rotations_ = out(rotations)
        self.scales_ = out(scales / sizes)
        self.translations_ = out(translations)
        self.procrustes_distances_ = out(torch.linalg.norm(residuals, dim=(1, 2)))
        self.n_iter_ = n_done
        return self

    def fit_transform(self, X, y=None):
        """Fit, then return the training configurations aligned to :attr:`mean_shape_`.

        Parameters
        ----------
        X : array-like or torch.Tensor, shape (n_samples, n_landmarks, D)
            As in :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        numpy.ndarray or torch.Tensor, shape (n_samples, n_landmarks, D)
            ``scales_[i] * (X[i] - translations_[i]) @ rotations_[i].T``:
            the Procrustes fits, of the type of ``X`` (as in :meth:`transform`).
        """
        self.fit(X)
        X, is_torch = _check_configurations(X, "X", min_samples=2)
        rotations, scales, translations = (
            torch.as_tensor(a).to(dtype=X.dtype, device=X.device)
            for a in (self.rotations_, self.scales_, self.translations_)
        )
        return _output(is_torch)(_apply(X - translations[:, None, :], rotations, scales))

    # ------------------------------------------------------------ transform
    def transform(self, X):
        """Align configurations to :attr:`mean_shape_` by ordinary Procrustes analysis.

        Each configuration is centred, rotated (det +1) and, with
        ``scaling=True``, scaled to best fit the mean shape in the
        least-squares sense.

        Parameters
        ----------
        X : array-like or torch.Tensor, shape (n_samples, n_landmarks, D)
            Configurations with the landmark count and dimension of the
            training data. Not modified.

        Returns
        -------
        numpy.ndarray or torch.Tensor, shape (n_samples, n_landmarks, D)
            The aligned configurations: a tensor of the dtype and device of
            ``X`` when ``X`` is a tensor, a numpy array otherwise.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator is not fitted.
        ValueError
            If ``X`` is invalid (see the class) or its landmark count or
            dimension differs from :attr:`mean_shape_`.
        """
        check_is_fitted(self)
        X, is_torch = _check_configurations(X, "X", min_samples=1)
        mean = torch.as_tensor(self.mean_shape_).to(dtype=X.dtype, device=X.device)
        if X.shape[1:] != mean.shape:
            raise ValueError(
                f"X has {X.shape[1]} landmarks in {X.shape[2]}D but the fitted mean shape has "
                f"{mean.shape[0]} landmarks in {mean.shape[1]}D"
            )
        centred = X - X.mean(dim=1, keepdim=True)
        if self.scaling:
            _centroid_sizes(centred, "X")
        rotations, scales = _fit_to_mean(centred, mean, self.scaling)
        return _output(is_torch)(_apply(centred, rotations, scales))

    # ------------------------------------------------------------ helpers
    def _check_params(self):
        if not isinstance(self.scaling, (bool, np.bool_)):
            raise TypeError(f"scaling must be a bool, got {type(self.scaling).__name__}")
        if not isinstance(self.n_iter, numbers.Integral) or isinstance(self.n_iter, bool):
            raise TypeError(f"n_iter must be an int, got {type(self.n_iter).__name__}")
        if self.n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        if not isinstance(self.tol, numbers.Real) or isinstance(self.tol, bool):
            raise TypeError(f"tol must be a real number, got {type(self.tol).__name__}")
        if not 0 <= self.tol < np.inf:
            raise ValueError(f"tol must be a finite number >= 0, got {self.tol!r}")


def orthogonal_procrustes_rotation(source: torch.Tensor, target: torch.Tensor):
    r"""Rotations (det +1) and scales best fitting centred ``source`` onto ``target``, batched.

    Solves :math:`\min_{R \in SO(D)} \|S R^\top - T\|_F` by the SVD of
    :math:`S^\top T = U \Sigma V^\top`: :math:`R = V \operatorname{diag}(1,
    \dots, 1, d)\, U^\top` with :math:`d = \det(V U^\top) = \pm 1`, which
    flips the weakest singular direction instead of reflecting
    (Umeyama 1991). The best scale of :math:`S R^\top` is then
    :math:`\operatorname{tr}(\Sigma \operatorname{diag}(1, \dots, d)) / \|S\|_F^2`.

    Parameters
    ----------
    source : torch.Tensor, shape (n, L, D)
        Centred configurations.
    target : torch.Tensor, shape (L, D) or (n, L, D)
        Centred target configuration(s).

    Returns
    -------
    rotations : torch.Tensor, shape (n, D, D)
        Acting on column vectors: the fit of ``source[i]`` is
        ``source[i] @ rotations[i].T``.
    scales : torch.Tensor, shape (n,)
        Best scale of each rotated source (>= 0; ``inf`` or ``nan`` for a
        source of zero size).

    References
    ----------
    S. Umeyama, "Least-squares estimation of transformation parameters
    between two point patterns", IEEE TPAMI 13(4), 376-380, 1991.
    """
    u, sigma, vh = torch.linalg.svd(source.transpose(-1, -2) @ target)
    v = vh.transpose(-1, -2)
    signs = torch.ones_like(sigma)
    signs[:, -1] = torch.sign(torch.linalg.det(v @ u.transpose(-1, -2)))
    signs[signs == 0] = 1.0
    rotations = (v * signs[:, None, :]) @ u.transpose(-1, -2)
    scales = (sigma * signs).sum(dim=1) / (source**2).sum(dim=(1, 2))
    return rotations, scales


def _fit_to_mean(configurations, mean, scaling: bool):
    """Rotations and scales (ones unless ``scaling``) fitting centred configurations to ``mean``."""
    rotations, scales = orthogonal_procrustes_rotation(configurations, mean)
    return rotations, scales if scaling else torch.ones_like(scales)


def _apply(configurations, rotations, scales):
    """``scales[i] * configurations[i] @ rotations[i].T``."""
    return scales[:, None, None] * configurations @ rotations.transpose(-1, -2)


def _mean_shape(fits, scaling: bool):
    """Average of the fitted configurations, at unit centroid size when ``scaling``."""
    mean = fits.mean(dim=0)
    if not scaling:
        return mean
    size = torch.linalg.norm(mean)
    if not bool(size > 0):
        raise ValueError("the mean configuration collapsed to a point: the configurations cancel out")
    return mean / size


def _centroid_sizes(centred, name: str) -> torch.Tensor:
    """Centroid size (Frobenius norm) of each centred configuration, all positive.

    Raises
    ------
    ValueError
        If a configuration has all its landmarks at one point.
    """
    sizes = torch.linalg.norm(centred, dim=(1, 2))
    degenerate = torch.nonzero(sizes <= 0).flatten()
    if degenerate.numel():
        raise ValueError(
            f"{name}[{int(degenerate[0])}] has zero centroid size (all its landmarks coincide): "
            "it cannot be scaled (use scaling=False)"
        )
    return sizes


def _check_configurations(X, name: str, min_samples: int):
    """Copy ``X`` into a float tensor of shape (n_samples, n_landmarks, D) and check it.

    Returns
    -------
    tensor : torch.Tensor
        float32 or float64 (integers become float64), on the device of ``X``.
    is_torch : bool
        Whether ``X`` was a tensor (outputs follow its type).

    Raises
    ------
    TypeError
        If ``X`` is not numeric, or is complex or boolean.
    ValueError
        If it is not 3-D, D is not 2 or 3, it has fewer than ``min_samples``
        configurations or fewer than 2 landmarks, or holds NaN or inf.
    """
    is_torch = isinstance(X, torch.Tensor)
    tensor = as_tensor(X, name).detach()
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    elif tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float32)
    if tensor.ndim != 3:
        raise ValueError(f"{name} must have shape (n_samples, n_landmarks, D), got shape {tuple(tensor.shape)}")
    n_samples, n_landmarks, dim = tensor.shape
    if dim not in (2, 3):
        raise ValueError(f"{name} must hold 2D or 3D landmarks (last axis of size 2 or 3), got {dim}")
    if n_samples < min_samples:
        raise ValueError(f"{name} must hold at least {min_samples} configuration(s), got {n_samples}")
    if n_landmarks < 2:
        raise ValueError(f"{name} must have at least 2 landmarks per configuration, got {n_landmarks}")
    if not bool(torch.isfinite(tensor).all()):
        bad = torch.nonzero(~torch.isfinite(tensor).reshape(n_samples, -1).all(dim=1)).flatten()
        raise ValueError(f"{name} contains NaN or inf values (configurations {bad.tolist()[:10]})")
    return tensor, is_torch


def _output(is_torch: bool):
    """Converter of results to the type of the input: tensors as they are, else numpy arrays."""
    if is_torch:
        return lambda tensor: tensor
    return lambda tensor: tensor.detach().cpu().numpy()
