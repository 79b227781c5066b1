"""Geodesic regression: the geodesic of shapes that best fits observations over time."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..optimization import make_optimizer, minimize
from ..reductions import resolve_device
from ..shapes import PolyData, check_same_space
from ._momenta import check_lddmm


class GeodesicRegression(BaseEstimator):
    r"""Fit a baseline shape and an initial momentum to shapes observed at times :math:`t_k` (e.g. ages).

    The model of the trajectory is the geodesic :math:`t \mapsto \varphi^{(t - t_0)\,p}(B)`:
    the baseline shape :math:`B` at time :math:`t_0`, deformed by shooting
    the momentum :math:`p` (per unit of time) for :math:`t - t_0` units of
    time. Shooting :math:`s\,p` over [0, 1] is the geodesic of :math:`p`
    stopped at time :math:`s` (the Hamiltonian flow is homogeneous), so every
    observation costs one shooting. The fit minimises

    .. math:: \frac1n \sum_k \mathrm{loss}\big(\varphi^{(t_k - t_0)\,p}(B), S_k\big)
              + \lambda\, H\big(q, \Delta\, p\big),

    over :math:`B` and :math:`p`, where :math:`\Delta = \max_k |t_k - t_0|`:
    the regularisation is the energy of the geodesic over the observed time
    span, so ``regularization_weight`` does not depend on the time unit.
    Internally the momentum is optimised per :math:`\Delta` (times rescaled
    to [-1, 1]) for conditioning. This is the geodesic regression of
    Fletcher (2013) in the LDDMM setting of Fishbaugh, Durrleman et al.
    (Deformetrica's "geodesic regression" model).

    Parameters
    ----------
    model : LDDMM
        The deformation model. Control points given as an int are chosen on
        the initial baseline and then fixed; with ``control_points=None``
        they are the baseline's points and move with it.
    loss : Loss, default=None
        Data-attachment term (``None``: :class:`~skshapes.SinkhornLoss`).
        :class:`~skshapes.L2Loss` for shapes in dense correspondence.
    regularization_weight : float, default=1.0
        Weight :math:`\lambda` of the energy.
    n_iter : int, default=100
        Maximum number of optimiser iterations.
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
    learning_rate : float, default=None
        See :class:`~skshapes.Registration`.
    tol : float, default=1e-7
        Relative-decrease stopping tolerance.
    t0 : float, default=None
        Time of the baseline; ``None``: the earliest observation time.
    baseline : PolyData, default=None
        Initial baseline; ``None``: the observation closest to ``t0``.
    optimize_baseline : bool, default=True
        ``False`` keeps the baseline fixed and fits only the momentum.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    verbose : bool, default=False

    Attributes
    ----------
    baseline_ : PolyData
        The fitted shape at ``t0_``.
    momentum_ : torch.Tensor, shape (C, D)
        Initial momentum per unit of time, at ``control_points_``.
    control_points_ : torch.Tensor, shape (C, D)
    model_ : LDDMM
        The model with its control points fixed (see ``model``).
    t0_ : float
    loss_, loss_history_, n_iter_
        As in :class:`~skshapes.Registration`.

    Raises
    ------
    TypeError, ValueError
        From :meth:`fit`: no model, shapes that are not PolyData or differ
        in dimension, dtype or device, times that are not finite or not one
        per shape, all times equal.

    References
    ----------
    .. [1] P. T. Fletcher, "Geodesic regression and the theory of least
       squares on Riemannian manifolds", Int. J. Comput. Vis. 105, 2013.
    .. [2] J. Fishbaugh, M. Prastawa, G. Gerig, S. Durrleman, "Geodesic
       regression of image and shape data for improved modeling of 4D
       trajectories", IEEE ISBI 2014.

    Examples
    --------
    >>> import torch, skshapes as sks
    >>> shape = sks.PolyData(torch.rand(30, 3))
    >>> model = sks.LDDMM(sigma=0.5, n_steps=3, control_points=10)
    >>> truth = 0.2 * torch.randn(model.parameter_shape(shape))
    >>> times = [0.0, 0.5, 1.0]
    >>> shapes = [sks.shoot(shape, t * truth, model) for t in times]
    >>> reg = sks.GeodesicRegression(model, sks.L2Loss(), regularization_weight=1e-4, n_iter=20)
    >>> len(reg.fit(shapes, times).predict([0.25, 2.0]))
    2
    """

    def __init__(
        self,
        model=None,
        loss=None,
        regularization_weight=1.0,
        n_iter=100,
        optimizer="lbfgs",
        learning_rate=None,
        tol=1e-7,
        t0=None,
        baseline=None,
        optimize_baseline=True,
        device="auto",
        verbose=False,
    ):
        self.model = model
        self.loss = loss
        self.regularization_weight = regularization_weight
        self.n_iter = n_iter
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.tol = tol
        self.t0 = t0
        self.baseline = baseline
        self.optimize_baseline = optimize_baseline
        self.device = device
        self.verbose = verbose

    def fit(self, shapes, times):
        """Fit the geodesic to ``shapes`` observed at ``times``.

        Parameters
        ----------
        shapes : sequence of PolyData
            The observations (any number of points each, unless the loss needs correspondence).
        times : array-like, shape (n_shapes,)
            Observation times, in any unit (years...).

        Returns
        -------
        self : GeodesicRegression
        """
        model = check_lddmm(self.model)
        shapes, times = self._check_inputs(shapes, times)
        self.t0_ = float(times.min()) if self.t0 is None else float(self.t0)
        span = float(np.abs(times - self.t0_).max())
        if span == 0:
            raise ValueError("all observation times equal t0: a trajectory needs at least two times")
        device = resolve_device(self.device)
        targets = [shape.to(device) for shape in shapes]
        start = self.baseline if self.baseline is not None else shapes[int(np.abs(times - self.t0_).argmin())]
        baseline = start.to(device)
        self.model_ = model.frozen_for(baseline)
        points = baseline.points.detach().clone().requires_grad_(bool(self.optimize_baseline))
        momentum = self.model_.initial_parameter(baseline).requires_grad_(True)  # per `span` units of time
        scaled_times = [(t - self.t0_) / span for t in times]
        loss, weight = self._loss(), float(self.regularization_weight)

        def objective():
            current = baseline.with_points(points)
            data = sum(
                loss(self.model_.morph(current, s * momentum).shape, target) for s, target in zip(scaled_times, targets)
            ) / len(targets)
            energy = self.model_.hamiltonian(self.model_.control_points_of(current), momentum)
            return data + weight * energy, data, energy

        parameters = [points, momentum] if self.optimize_baseline else [momentum]
        optimizer = make_optimizer(parameters, self.optimizer, self.learning_rate)
        history, self.n_iter_ = minimize(
            parameters, objective, optimizer, self.n_iter, self.tol, verbose=self.verbose, desc="geodesic regression"
        )
        self.baseline_ = baseline.with_points(points.detach()).copy().to(shapes[0].device)
        self.momentum_ = (momentum.detach() / span).to(shapes[0].device)
        self.control_points_ = self.model_.control_points_of(self.baseline_).detach()
        self.loss_history_, self.loss_ = history, history["total"][-1]
        return self

    def predict(self, times):
        """The shapes of the fitted geodesic at ``times``.

        Parameters
        ----------
        times : array-like, shape (n_times,)
            Any times, inside or outside the observed range (extrapolation
            follows the geodesic).

        Returns
        -------
        list of PolyData
            One shape per time, with the baseline's connectivity, on its device.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            If a time is not finite.
        """
        check_is_fitted(self)
        times = _check_times(times)
        with torch.no_grad():
            return [
                self.model_.morph(self.baseline_, (t - self.t0_) * self.momentum_).shape.copy() for t in times
            ]

    def _loss(self):
        from ..losses import SinkhornLoss

        return SinkhornLoss() if self.loss is None else self.loss

    def _check_inputs(self, shapes, times):
        if isinstance(shapes, PolyData) or not hasattr(shapes, "__len__"):
            raise TypeError("shapes must be a sequence of PolyData (one per observation)")
        shapes = list(shapes)
        times = _check_times(times)
        if len(shapes) != len(times):
            raise ValueError(f"got {len(shapes)} shapes but {len(times)} times")
        if len(shapes) < 2:
            raise ValueError("a geodesic regression needs at least two observations")
        for index, shape in enumerate(shapes[1:], start=1):
            check_same_space(shape, shapes[0], (f"shapes[{index}]", "shapes[0]"))
        if self.baseline is not None:
            check_same_space(self.baseline, shapes[0], ("baseline", "shapes[0]"))
        if not isinstance(self.n_iter, (int, np.integer)) or self.n_iter < 1:
            raise ValueError(f"n_iter must be a positive integer, got {self.n_iter!r}")
        return shapes, times


def _check_times(times) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"times must be a non-empty 1-D array, got shape {times.shape}")
    if not np.isfinite(times).all():
        raise ValueError("times contain NaN or infinite values")
    return times
