"""The :class:`Registration` estimator: fit a deformation of a source shape onto a target shape."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .reductions import resolve_device
from .shapes import check_same_space
from .shapes.validation import check_points

OPTIMIZERS = ("lbfgs", "adam")


# auto_wrap_output_keys=None: our outputs are shapes, not arrays, so sklearn's set_output wrapping
# (which also forces a positional X on transform) does not apply.
class Registration(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Registration of a source shape onto a target shape, as a scikit-learn estimator.

    Minimises ``loss(model.morph(source, parameter).shape, target) +
    regularization_weight * regularization(parameter)`` over the model's
    parameter (a rotation and translation, LDDMM momenta...), starting from
    the identity.

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
    n_iter : int, default=200
        Maximum number of optimiser iterations (L-BFGS iterations, each with
        a strong-Wolfe line search, or Adam steps).
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
        ``torch.optim.LBFGS`` with ``line_search_fn="strong_wolfe"``, or
        ``torch.optim.Adam``.
    learning_rate : float, default=None
        Step size: 1.0 for L-BFGS (the line search adapts it), 0.01 for Adam
        when ``None``.
    tol : float, default=1e-7
        Stop when an iteration decreases the total loss by less than
        ``tol`` times its value.
    multiscale : None
        Coarse-to-fine pyramids are not available yet; must be ``None``.
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
        iteration, then at the end: ``n_iter_ + 1`` values each.
    n_iter_ : int
        Number of iterations run.
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

        parameter = model.initial_parameter(self.source_).requires_grad_(True)

        def objective():
            result = model.morph(self.source_, parameter)
            data = loss(result.shape, target)
            return data + self.regularization_weight * result.regularization, data, result.regularization

        history = {"total": [], "data": [], "regularization": []}
        best = (math.inf, parameter.detach().clone())
        step = self._optimizer_step(parameter, objective)
        progress = _progress(self.n_iter, self.verbose)
        n_done = 0
        for n_done in range(1, self.n_iter + 1):
            total, data, regularization = step()
            _append(history, total, data, regularization)
            if total < best[0]:
                best = (total, parameter.detach().clone())
            progress.set_postfix(loss=f"{total:.4g}", refresh=False)
            progress.update()
            if not math.isfinite(total) or _converged(history["total"], self.tol):
                break
        progress.close()

        with torch.no_grad():
            parameter.copy_(self._final_parameter(parameter, best, objective))
            final = objective()
        _append(history, *(float(v) for v in final))
        self.n_iter_ = n_done
        self.parameter_ = parameter.detach()
        self.loss_, self.data_loss_, self.regularization_ = (history[k][-1] for k in history)
        self.loss_history_ = history
        self.morphed_shape_ = model.morph(self.source_, self.parameter_).shape.copy().to(source.device)
        return self

    def _final_parameter(self, parameter, best, objective):
        """The last iterate, or the best one seen if the optimiser ended on a non-finite loss."""
        if math.isfinite(float(objective()[0])):
            return parameter
        if not math.isfinite(best[0]):
            raise FloatingPointError("the registration diverged: the loss is NaN or infinite from the start")
        warnings.warn("the optimiser reached a non-finite loss; keeping the best iterate", RuntimeWarning, 2)
        return best[1]

    def _optimizer_step(self, parameter, objective):
        """A function that runs one optimiser iteration and returns the loss terms at its start."""
        if self.optimizer == "adam":
            optimizer = torch.optim.Adam([parameter], lr=self.learning_rate or 0.01)
        else:
            # One L-BFGS iteration per step(): torch keeps the curvature history
            # in the optimiser state between calls, so this is plain L-BFGS with
            # a progress bar and our own stopping rule.
            optimizer = torch.optim.LBFGS(
                [parameter], lr=self.learning_rate or 1.0, max_iter=1, max_eval=25,
                line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
            )

        def step():
            values = []

            def closure():
                optimizer.zero_grad()
                total, data, regularization = objective()
                total.backward()
                values.append((total.item(), data.item(), float(regularization.detach())))
                return total

            optimizer.step(closure)
            return values[0]  # the first evaluation is at the iterate the step started from

        return step

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

    def _check_params(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, (int, np.integer)) or self.n_iter < 1:
            raise ValueError(f"n_iter must be a positive integer, got {self.n_iter!r}")
        if not (float(self.regularization_weight) >= 0):
            raise ValueError(f"regularization_weight must be >= 0, got {self.regularization_weight!r}")
        if self.multiscale is not None:
            raise NotImplementedError("coarse-to-fine registration (multiscale=...) is not available yet")
        if self.model is not None and not hasattr(self.model, "morph"):
            raise TypeError(f"model must be a skshapes deformation model, got {type(self.model).__name__}")
        if self.loss is not None and not callable(self.loss):
            raise TypeError(f"loss must be a skshapes loss, got {type(self.loss).__name__}")


def _append(history, total, data, regularization):
    for key, value in zip(history, (total, data, regularization)):
        history[key].append(float(value))


def _converged(totals, tol) -> bool:
    if len(totals) < 2:
        return False
    previous, current = totals[-2], totals[-1]
    return abs(previous - current) <= tol * max(abs(previous), np.finfo(float).tiny)


def _progress(total, verbose):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="registration", disable=not verbose)

