"""Deterministic atlas: the Fréchet mean of a population of shapes in the LDDMM metric."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import torch
from sklearn.base import BaseEstimator

from ..optimization import make_optimizer, minimize
from ..reductions import resolve_device
from ..registration import Registration, objective
from ..shapes import PolyData, check_same_space

CHECKPOINT_NAME = "atlas_checkpoint.pt"


class Atlas(BaseEstimator):
    r"""Deterministic atlas estimation: a template and one geodesic from it to each subject.

    Minimises, jointly over the template points :math:`T` and one initial
    momentum :math:`p_i` per subject,

    .. math:: \frac1n \sum_{i=1}^n \Big[\mathrm{loss}\big(\varphi^{p_i}(T), S_i\big)
              + \lambda\, H(q, p_i)\Big],

    where :math:`\varphi^{p_i}` is the LDDMM geodesic shot from the control
    points :math:`q` with momentum :math:`p_i` and :math:`H` its Hamiltonian
    (the squared kernel norm): the template is a Fréchet mean of the subjects
    in the metric of the deformations, the "deterministic atlas" of
    Deformetrica [1]_ [2]_. The terms are averaged (not summed) so that
    ``regularization_weight`` means the same as in :class:`~skshapes.Registration`.

    Each evaluation of the objective computes every subject's term and its
    gradients independently, through :class:`joblib.Parallel`: ``n_jobs``
    runs them on local processes, and under
    ``joblib.parallel_config(backend="dask")`` on a Dask cluster. The sum
    is taken in subject order, so the result does not depend on ``n_jobs``
    or the backend beyond floating-point reproducibility of each term.

    Parameters
    ----------
    model : LDDMM, default=None
        The deformation model (``None``: ``LDDMM(sigma=...)`` cannot be
        guessed, so a model is required for fitting). Control points given
        as an int are chosen once on the initial template and stay fixed;
        ``control_points=None`` puts them on the template's points, which
        then move with the template.
    loss : Loss, default=None
        Data-attachment term between a deformed template and a subject
        (``None``: :class:`~skshapes.SinkhornLoss` with default settings).
    regularization_weight : float, default=1.0
        Weight :math:`\lambda` of the Hamiltonian.
    n_iter : int, default=100
        Maximum number of optimiser iterations over (template, momenta).
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
        See :class:`~skshapes.Registration`.
    learning_rate : float, default=None
        See :class:`~skshapes.Registration`.
    tol : float, default=1e-7
        Stop when an iteration decreases the objective by less than ``tol``
        times its value.
    template : PolyData, default=None
        Initial template; ``None`` starts from the first subject.
    optimize_template : bool, default=True
        ``False`` keeps the template fixed and only fits the momenta (a
        batch of registrations from a given template).
    n_jobs : int, default=None
        Number of joblib workers for the per-subject terms (``None``: 1,
        unless set by :func:`joblib.parallel_config`; -1: all cores).
    checkpoint_dir : str or path-like, default=None
        Where to write ``atlas_checkpoint.pt`` every ``checkpoint_every``
        iterations (template, momenta, optimiser state and history; written
        atomically). If the file exists when :meth:`fit` starts, the fit
        resumes from it, so a crashed fit loses at most ``checkpoint_every``
        iterations and the resumed fit ends exactly where an uninterrupted
        one would. Delete the file to start afresh.
    checkpoint_every : int, default=10
        Iterations between checkpoints.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where to compute (``"auto"``: CUDA when available). With CUDA, keep
        ``n_jobs`` at 1.
    verbose : bool, default=False
        Show a progress bar with the objective.

    Attributes
    ----------
    template_ : PolyData
        The estimated template (N, D), on the device of the first subject.
    momenta_ : torch.Tensor, shape (n_subjects, C, D)
        Initial momenta of the geodesics from the template to each subject.
    control_points_ : torch.Tensor, shape (C, D)
        Control points of the template.
    model_ : DeformationModel
        The model the momenta belong to: ``model`` with its control points
        fixed on the initial template (when given as a number). Pass it,
        with ``template_``, to :class:`TangentPCA` and :func:`shoot`.
    registrations_ : list of Registration
        One fitted :class:`~skshapes.Registration` per subject (template →
        subject, with ``parameter_ = momenta_[i]``), for ``transform``.
    data_losses_ : torch.Tensor, shape (n_subjects,)
        Final data-attachment term of each subject.
    loss_ : float
        Final objective.
    loss_history_ : dict of list of float
        ``"total"``, ``"data"`` and ``"regularization"`` (means over the
        subjects) at the start of each iteration, then at the end.
    n_iter_ : int
        Iterations run in total (including those before a resumed checkpoint).

    Raises
    ------
    TypeError, ValueError
        From :meth:`fit`: fewer than one shape, shapes that are not
        PolyData or differ in dimension, dtype or device, or a checkpoint
        that does not belong to this problem.

    References
    ----------
    .. [1] S. Durrleman, M. Prastawa, N. Charon, J. R. Korenberg, S. Joshi,
       G. Gerig, A. Trouvé, "Morphometry of anatomical shape complexes with
       dense deformations and sparse parameters", NeuroImage 101, 2014.
    .. [2] A. Bône, M. Louis, B. Martin, S. Durrleman, "Deformetrica 4: an
       open-source software for statistical shape analysis", ShapeMI 2018.

    Examples
    --------
    >>> import skshapes as sks
    >>> from skshapes.datasets import load_skulls
    >>> skulls = load_skulls()
    >>> atlas = sks.Atlas(sks.LDDMM(sigma=20.0, n_steps=5), sks.SinkhornLoss(blur=1.0),
    ...                   regularization_weight=1e-3, n_iter=20, template=skulls.template)
    >>> atlas.fit(skulls.shapes).momenta_.shape[0]
    5
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
        template=None,
        optimize_template=True,
        n_jobs=None,
        checkpoint_dir=None,
        checkpoint_every=10,
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
        self.template = template
        self.optimize_template = optimize_template
        self.n_jobs = n_jobs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.verbose = verbose

    def fit(self, shapes, y=None):
        """Estimate the template and the momenta of ``shapes``.

        Parameters
        ----------
        shapes : sequence of PolyData
            The subjects, same dimension, dtype and device (any number of points each).
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : Atlas
        """
        shapes, template = self._check_inputs(shapes)
        device = resolve_device(self.device)
        subjects = [shape.to(device) for shape in shapes]
        template = template.to(device)
        model = self.model.frozen_for(template)
        points = template.points.detach().clone().requires_grad_(bool(self.optimize_template))
        momenta = torch.stack([model.initial_parameter(template)] * len(subjects)).requires_grad_(True)
        parameters = [points, momenta] if self.optimize_template else [momenta]
        optimizer = make_optimizer(parameters, self.optimizer, self.learning_rate)
        history, n_before = self._resume(points, momenta, optimizer, len(subjects))

        def population_objective():
            return _PopulationObjective.apply(points, momenta, self._terms(model, template, subjects))

        def checkpoint(history):
            if len(history["total"]) % self.checkpoint_every == 0:
                self._write_checkpoint(points, momenta, optimizer, history)

        history, n_done = minimize(
            parameters, population_objective, optimizer, max(self.n_iter - n_before, 0), self.tol,
            verbose=self.verbose, desc="atlas", callback=checkpoint if self.checkpoint_dir else None,
            history=history,
        )
        self._set_results(model, template.with_points(points.detach()), momenta.detach(), subjects, shapes[0].device)
        self.loss_history_, self.n_iter_ = history, n_before + n_done
        self.loss_ = history["total"][-1]
        return self

    # ------------------------------------------------------------ objective
    def _terms(self, model, template, subjects):
        """A function of (points, momenta) giving each subject's terms and gradients, run through joblib."""
        loss = self._loss()

        def evaluate(points, momenta):
            tasks = (
                joblib.delayed(_subject_terms)(
                    model, loss, float(self.regularization_weight), template.with_points(points), momentum, subject,
                    bool(self.optimize_template),
                )
                for momentum, subject in zip(momenta, subjects)
            )
            return joblib.Parallel(n_jobs=self.n_jobs)(tasks)

        return evaluate

    def _set_results(self, model, template, momenta, subjects, device):
        loss = self._loss()
        self.template_ = template.copy().to(device)
        self.momenta_ = momenta.to(device)
        self.model_ = model
        self.control_points_ = model.control_points_of(template).detach().to(device)
        self.registrations_ = [
            Registration(model, loss, self.regularization_weight)._set_fitted(template, subject, momentum, device)
            for momentum, subject in zip(momenta, subjects)
        ]
        self.data_losses_ = torch.tensor([reg.data_loss_ for reg in self.registrations_])

    # ----------------------------------------------------------- checkpoints
    def _checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir) / CHECKPOINT_NAME

    def _write_checkpoint(self, points, momenta, optimizer, history):
        path = self._checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "points": points.detach().cpu(), "momenta": momenta.detach().cpu(),
            "optimizer": optimizer.state_dict(), "history": history,
        }
        partial = path.with_suffix(".tmp")
        torch.save(state, partial)
        os.replace(partial, path)  # atomic: a crash while writing leaves the previous checkpoint intact

    def _resume(self, points, momenta, optimizer, n_subjects):
        """Load the checkpoint into the variables and the optimiser; returns (history, iterations done)."""
        if self.checkpoint_dir is None or not self._checkpoint_path().exists():
            return None, 0
        state = torch.load(self._checkpoint_path(), map_location=points.device, weights_only=False)
        if state["points"].shape != points.shape or state["momenta"].shape != momenta.shape:
            raise ValueError(
                f"the checkpoint in {self.checkpoint_dir} is for a template of {tuple(state['points'].shape)} points "
                f"and momenta {tuple(state['momenta'].shape)}, not {tuple(points.shape)} and "
                f"{tuple(momenta.shape)} ({n_subjects} subjects); delete it to start afresh"
            )
        with torch.no_grad():
            points.copy_(state["points"])
            momenta.copy_(state["momenta"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        return history, len(history["total"])

    # ---------------------------------------------------------------- checks
    def _loss(self):
        from ..losses import SinkhornLoss

        return SinkhornLoss() if self.loss is None else self.loss

    def _check_inputs(self, shapes):
        if isinstance(shapes, PolyData) or not hasattr(shapes, "__len__"):
            raise TypeError("shapes must be a sequence of PolyData (one per subject)")
        shapes = list(shapes)
        if not shapes:
            raise ValueError("shapes is empty: an atlas needs at least one subject")
        if self.model is None or not hasattr(self.model, "frozen_for"):
            raise TypeError(f"model must be a skshapes deformation model such as LDDMM, got {self.model!r}")
        template = shapes[0] if self.template is None else self.template
        for index, shape in enumerate(shapes):
            check_same_space(shape, template, (f"shapes[{index}]", "template"))
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {self.checkpoint_every!r}")
        if not isinstance(self.n_iter, int) or self.n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer, got {self.n_iter!r}")
        return shapes, template


def _subject_terms(model, loss, regularization_weight, template, momentum, subject, template_gradient):
    """One subject's (total, data, regularization) and the gradients of total w.r.t. the template points and momentum.

    Runs in a joblib worker: takes and returns plain tensors (no autograd graph crosses processes).
    """
    with torch.enable_grad():  # called inside an autograd.Function's forward, where grad mode is off
        points = template.points.detach().clone().requires_grad_(template_gradient)
        momentum = momentum.detach().clone().requires_grad_(True)
        total, data, regularization = objective(
            model, loss, regularization_weight, template.with_points(points), subject, momentum
        )
        inputs = [points, momentum] if template_gradient else [momentum]
        gradients = torch.autograd.grad(total, inputs)
    grad_points = gradients[0] if template_gradient else None
    return total.detach(), data.detach(), regularization.detach(), grad_points, gradients[-1]


class _PopulationObjective(torch.autograd.Function):
    """The mean of the subjects' terms, with gradients computed by the workers (no graph kept here)."""

    @staticmethod
    def forward(ctx, points, momenta, evaluate):
        results = evaluate(points.detach(), momenta.detach())
        n = len(results)
        total, data, regularization = (torch.stack([r[k] for r in results]).sum() / n for k in range(3))
        grad_points = sum(r[3] for r in results) / n if results[0][3] is not None else torch.zeros_like(points)
        ctx.save_for_backward(grad_points, torch.stack([r[4] for r in results]) / n)
        ctx.mark_non_differentiable(data, regularization)
        return total, data, regularization

    @staticmethod
    def backward(ctx, grad_total, grad_data, grad_regularization):
        grad_points, grad_momenta = ctx.saved_tensors
        return grad_total * grad_points, grad_total * grad_momenta, None
