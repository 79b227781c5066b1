"""The :class:`Registration` estimator: fit a deformation of a source shape onto a target shape."""

from __future__ import annotations

import numbers
import time

import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .optimization import OPTIMIZERS, carry_curvature, make_optimizer, minimize
from .reductions import resolve_device
from .shapes import check_same_space, decimate
from .shapes.validation import check_points



# auto_wrap_output_keys=None: our outputs are shapes, not arrays, so sklearn's set_output wrapping
# (which also forces a positional X on transform) does not apply.
class Registration(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Registration of a source shape onto a target shape, as a scikit-learn estimator.

    Minimises ``loss(model.morph(source, parameter).shape, target) +
    regularization_weight * regularization(parameter)`` over the model's
    parameter (a rotation and translation, LDDMM momenta...), starting from
    ``model.initial_parameter(source, target)``: the identity, except for
    rigid, similarity and affine models, which start from the translation
    that matches the centroids of source and target (weighted by
    ``point_weights``).

    Parameters
    ----------
    model : DeformationModel, default=None
        The deformation model (:class:`~skshapes.RigidMotion`,
        :class:`~skshapes.LDDMM`...). ``None`` means ``RigidMotion()``.
    loss : Loss, default=None
        The data-attachment term (:class:`~skshapes.SinkhornLoss`...), a
        function of the morphed source and the target. ``None`` means
        ``SinkhornLoss()``.
    regularization_weight : float, default=1.0
        Weight of the deformation cost (for LDDMM, the Hamiltonian at time 0).
    n_iter : int or list of int, default=200
        Maximum number of optimiser iterations (L-BFGS iterations, each with
        a strong-Wolfe line search, or Adam steps), at each level of a
        coarse-to-fine pyramid; a list gives one budget per level, coarse
        to fine.
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
        ``torch.optim.LBFGS`` with ``line_search_fn="strong_wolfe"``, or
        ``torch.optim.Adam``.
    learning_rate : float, default=None
        Step size: 1.0 for L-BFGS (the line search adapts it), 0.01 for Adam
        when ``None``.
    tol : float, default=1e-7
        Stop when an iteration decreases the total loss by less than
        ``tol`` times its value.
    multiscale : None, int or list of (int or float), default=None
        Coarse-to-fine registration. ``None`` (or 1): a single level. An int
        ``L``: ``L`` levels, each with 4 times fewer source points than the
        next (twice coarser for a surface), the last at full resolution. A
        list: the sizes of the coarse levels in increasing order, as numbers
        of source points or fractions of them (e.g. ``[500, 2000]`` or
        ``[0.1, 0.3]``); the full resolution is added as the last level.
        Source and target are decimated to the same fraction of their points
        (:func:`skshapes.shapes.decimate`: quadric edge collapse for meshes,
        farthest-point sampling for clouds; curves are not supported). The
        parameter fitted at one level starts the next, carried by the
        model's ``transfer_parameter`` (the translation is re-centred for
        linear models; LDDMM momenta on fixed control points carry over
        unchanged, and with ``control_points=None`` they are split onto the
        finer vertices). The loss and its widths (``blur``, ``sigma``) are
        the same at every level. When the parameter keeps its shape from one
        level to the next (control points fixed on the full-resolution
        source, linear models), L-BFGS also keeps its curvature memory
        (:func:`skshapes.optimization.carry_curvature`). On the 7k-vertex face
        template, the coarse levels cost a fraction of one full-resolution
        iteration, so a few full-resolution iterations finish the fit (see
        ``benchmarks/RESULTS.md``).
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where to compute: ``"auto"`` uses CUDA when available. Results come
        back on the device of the shapes passed in.
    verbose : bool, default=False
        Show a tqdm progress bar with the current loss.
    random_state : int, RandomState instance or None, default=None
        Seeds any random choice of the fit (through ``check_random_state``).

    Attributes
    ----------
    parameter_ : torch.Tensor
        The fitted parameter (shape ``model.parameter_shape(source)``), detached.
    morphed_shape_ : PolyData
        The deformed source, on the device of the source passed to ``fit``.
    loss_ : float
        Final total loss, evaluated at ``parameter_`` after the optimisation.
    data_loss_ : float
        Final data-attachment term.
    regularization_ : float
        Final deformation cost (unweighted).
    loss_history_ : dict of list of float
        ``"total"``, ``"data"`` and ``"regularization"`` at the start of each
        iteration of the last level, then at the end: ``n_iter_ + 1`` values
        each.
    n_iter_ : int
        Number of iterations run at the last (full-resolution) level.
    levels_ : list of dict
        One entry per level, coarse to fine: ``n_source_points``,
        ``n_target_points``, ``n_iter``, ``loss`` (final total loss of the
        level), ``seconds`` (wall time) and ``loss_history`` (as
        ``loss_history_``). ``loss_history_`` is that of the last level.
    source_ : PolyData
        The source shape on the compute device (the deformation is defined
        relative to it, e.g. the control points and the centroid).

    Raises
    ------
    TypeError, ValueError
        From :meth:`fit`: shapes that are not :class:`~skshapes.PolyData`,
        that differ in dimension, device or dtype, or invalid parameters;
        checked before any computation.

    Examples
    --------
    >>> import skshapes as sks
    >>> from skshapes.datasets import load_skulls
    >>> skulls = load_skulls()
    >>> reg = sks.Registration(sks.LDDMM(sigma=20.0), sks.SinkhornLoss(blur=1.0),
    ...                        regularization_weight=0.01, n_iter=50)
    >>> morphed = reg.fit(skulls.template, skulls.shapes[0]).transform()
    """

    def __init__(
        self,
        model=None,
        loss=None,
        regularization_weight=1.0,
        n_iter=200,
        optimizer="lbfgs",
        learning_rate=None,
        tol=1e-7,
        multiscale=None,
        device="auto",
        verbose=False,
        random_state=None,
    ):
        self.model = model
        self.loss = loss
        self.regularization_weight = regularization_weight
        self.n_iter = n_iter
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.tol = tol
        self.multiscale = multiscale
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, source, target):
        """Fit the deformation of ``source`` onto ``target``.

        Parameters
        ----------
        source, target : PolyData
            Shapes of the same dimension, on the same device, same dtype.

        Returns
        -------
        self : Registration
        """
        check_same_space(source, target)
        self._check_params()
        model, loss = self._model(), self._loss()
        self.random_state_ = check_random_state(self.random_state)
        device = resolve_device(self.device)
        self.source_ = source.to(device)
        target = target.to(device)

        levels = _pyramid(self.source_, target, self.multiscale)
        n_iters = self._n_iters(len(levels))
        # Choices made on the full-resolution source (e.g. LDDMM control points given as a number) hold at every level.
        level_model = model.frozen_for(self.source_)
        self.levels_, parameter, previous, optimizer = [], None, None, None
        for index, (level_source, level_target) in enumerate(levels):
            start = time.perf_counter()
            if previous is None:
                parameter = level_model.initial_parameter(level_source, level_target)
            else:
                parameter = level_model.transfer_parameter(parameter, previous, level_source)
            desc = "registration" if len(levels) == 1 else f"registration, level {index + 1}/{len(levels)}"
            parameter, history, n_done, optimizer = self._optimize(
                level_model, loss, level_source, level_target, parameter, n_iters[index], desc, optimizer
            )
            self.levels_.append({
                "n_source_points": level_source.n_points, "n_target_points": level_target.n_points,
                "n_iter": n_done, "loss": history["total"][-1], "seconds": time.perf_counter() - start,
                "loss_history": history,
            })
            previous = level_source

        self.n_iter_ = n_done
        self.parameter_ = parameter
        self.loss_, self.data_loss_, self.regularization_ = (history[k][-1] for k in history)
        self.loss_history_ = history
        with torch.no_grad():
            morphed = level_model.morph(self.source_, self.parameter_).shape
        self.morphed_shape_ = morphed.copy().to(source.device)
        return self

    def _optimize(self, model, loss, source, target, parameter, n_iter, desc, previous_optimizer=None):
        """Minimise the objective from ``parameter``; returns the detached optimum, the history, the iterations, the optimizer.

        ``previous_optimizer`` (the coarser level's) lends L-BFGS its curvature memory when the parameter keeps its shape.
        """
        parameter = parameter.detach().clone().requires_grad_(True)
        optimizer = make_optimizer([parameter], self.optimizer, self.learning_rate)
        if previous_optimizer is not None:
            carry_curvature(optimizer, previous_optimizer)
        history, n_done = minimize(
            [parameter], lambda: objective(model, loss, self.regularization_weight, source, target, parameter),
            optimizer, n_iter, self.tol, verbose=self.verbose, desc=desc,
        )
        return parameter.detach(), history, n_done, optimizer

    def _set_fitted(self, source, target, parameter, device):
        """Set the learned attributes for a parameter fitted elsewhere (an atlas), without optimising."""
        self._check_params()
        model, loss = self._model(), self._loss()
        self.random_state_ = check_random_state(self.random_state)
        self.source_, self.parameter_ = source, parameter.detach()
        with torch.no_grad():
            values = [float(v) for v in objective(model, loss, self.regularization_weight, source, target, parameter)]
            self.morphed_shape_ = model.morph(source, self.parameter_).shape.copy().to(device)
        self.loss_, self.data_loss_, self.regularization_ = values
        self.loss_history_ = {key: [value] for key, value in zip(("total", "data", "regularization"), values)}
        self.n_iter_, self.levels_ = 0, []
        return self

    # ------------------------------------------------------------ transform
    def transform(self, shape=None):
        """Deform a shape with the fitted deformation.

        Parameters
        ----------
        shape : PolyData, optional
            Any shape in the source's space (another mesh of the same subject,
            landmarks...). Default: the fitted source, i.e. ``morphed_shape_``.

        Returns
        -------
        PolyData
            On the device of ``shape``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        """
        check_is_fitted(self)
        if shape is None:
            return self.morphed_shape_.copy()
        check_same_space(shape, self.source_.to(shape.device), ("shape", "source"))
        moved = self.transform_points(shape.points.detach())
        return shape.with_points(moved.to(shape.device)).copy()

    def transform_points(self, points):
        """Move arbitrary points (grids, landmarks) with the fitted deformation.

        Parameters
        ----------
        points : array-like, shape (P, D)

        Returns
        -------
        torch.Tensor, shape (P, D), on the device and in the dtype of the source.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If called before :meth:`fit`.
        ValueError
            If the points are not (P, D) with the source's dimension D, or not finite.
        """
        check_is_fitted(self)
        points = check_points(points).to(device=self.source_.device, dtype=self.source_.dtype)
        if points.shape[1] != self.source_.dim:
            raise ValueError(f"points must be {self.source_.dim}D like the source, got {points.shape[1]}D")
        with torch.no_grad():
            return self._model().transform_points(points, self.source_, self.parameter_).detach()

    def fit_transform(self, source, target):
        """Fit, then return the morphed source."""
        return self.fit(source, target).transform()

    # -------------------------------------------------------------- helpers
    def _model(self):
        from .deformations import RigidMotion

        return RigidMotion() if self.model is None else self.model

    def _loss(self):
        from .losses import SinkhornLoss

        return SinkhornLoss() if self.loss is None else self.loss

    def _n_iters(self, n_levels):
        """The iteration budget of each level."""
        if _is_int(self.n_iter):
            return [int(self.n_iter)] * n_levels
        if len(self.n_iter) != n_levels:
            raise ValueError(f"n_iter has {len(self.n_iter)} entries for a pyramid of {n_levels} levels")
        return [int(n) for n in self.n_iter]

    def _check_params(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        n_iters = [self.n_iter] if _is_int(self.n_iter) else self.n_iter
        if not isinstance(n_iters, (list, tuple)) or not n_iters or not all(_is_int(n) and n >= 1 for n in n_iters):
            raise ValueError(f"n_iter must be a positive integer or a list of them (one per level), got {self.n_iter!r}")
        if not (float(self.regularization_weight) >= 0):
            raise ValueError(f"regularization_weight must be >= 0, got {self.regularization_weight!r}")
        _check_multiscale(self.multiscale)
        if self.model is not None and not hasattr(self.model, "morph"):
            raise TypeError(f"model must be a skshapes deformation model, got {type(self.model).__name__}")
        if self.loss is not None and not callable(self.loss):
            raise TypeError(f"loss must be a skshapes loss, got {type(self.loss).__name__}")


def objective(model, loss, regularization_weight, source, target, parameter):
    """``(total, data, regularization)`` of deforming ``source`` by ``parameter`` onto ``target``.

    ``total = loss(model.morph(source, parameter).shape, target) + regularization_weight * regularization``,
    differentiable w.r.t. ``parameter`` and ``source.points``.
    """
    result = model.morph(source, parameter)
    data = loss(result.shape, target)
    return data + regularization_weight * result.regularization, data, result.regularization


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_multiscale(multiscale):
    """Check the type and range of ``multiscale`` (the sizes are checked against the shape in :func:`_pyramid`)."""
    if multiscale is None:
        return
    if _is_int(multiscale):
        if multiscale < 1:
            raise ValueError(f"multiscale must be a number of levels >= 1, got {multiscale}")
        return
    if not isinstance(multiscale, (list, tuple)) or not multiscale:
        raise TypeError(
            f"multiscale must be None, a number of levels or a list of sizes, got {type(multiscale).__name__}"
        )
    for size in multiscale:
        valid = (_is_int(size) and size >= 1) or (isinstance(size, float) and 0 < size < 1)
        if not valid:
            raise ValueError(f"multiscale sizes must be point counts >= 1 or fractions in (0, 1), got {size!r}")


def _pyramid(source, target, multiscale):
    """``[(source_k, target_k)]`` from coarse to fine, ending with the full-resolution pair.

    Each level decimates both shapes (:func:`skshapes.shapes.decimate`) to
    the same fraction of their points.
    """
    if multiscale is None or multiscale == 1:
        return [(source, target)]
    n = source.n_points
    if _is_int(multiscale):  # each level has 4 times the points of the previous one: twice the resolution of a surface
        sizes = [n // 4**k for k in range(multiscale - 1, 0, -1)]
    else:
        sizes = [round(size * n) if isinstance(size, float) else size for size in multiscale]
    if any(size < 3 for size in sizes) or any(a >= b for a, b in zip(sizes, sizes[1:] + [n])):
        raise ValueError(
            f"multiscale={multiscale!r} gives the level sizes {sizes} for a source of {n} points; "
            "they must increase, from at least 3 points to fewer than the source's"
        )
    levels = []
    for size in sizes:
        target_size = min(target.n_points, max(3, round(size * target.n_points / n)))
        levels.append((decimate(source, size)[0], decimate(target, target_size)[0]))
    return levels + [(source, target)]
