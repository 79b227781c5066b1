"""The optimisation loop shared by registration and population fits (atlas, geodesic regression).

L-BFGS with a strong-Wolfe line search (one iteration per step, so that the
stopping rule, the progress bar and checkpoints see every iteration) or Adam,
stopping on a relative decrease of the loss, keeping the best iterate if the
loss becomes non-finite.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

OPTIMIZERS = ("lbfgs", "adam")


def make_optimizer(parameters, optimizer="lbfgs", learning_rate=None):
    """A ``torch.optim`` optimiser over ``parameters`` (a list of leaf tensors that require grad).

    ``"lbfgs"``: one L-BFGS iteration per ``step`` (torch keeps the curvature
    history in the optimiser state between calls, so repeated steps are plain
    L-BFGS), at most 25 evaluations in the strong-Wolfe line search, learning
    rate 1 by default. ``"adam"``: learning rate 0.01 by default.
    """
    if optimizer == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate or 0.01)
    if optimizer != "lbfgs":
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    return torch.optim.LBFGS(
        parameters, lr=learning_rate or 1.0, max_iter=1, max_eval=25,
        line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
    )


def carry_curvature(optimizer, previous):
    """Start L-BFGS ``optimizer`` with the curvature memory of ``previous``, for the same parameter on a new objective.

    Coarse-to-fine registration re-optimises the same parameter (momenta on
    fixed control points, a linear map) on a finer sampling of the same
    shapes: the curvature pairs (s, y) learned on the coarse level are a good
    approximation of the fine level's inverse Hessian, and without them the
    first fine iterations are spent on a steepest-descent step and its line
    search, each at full cost (on the 7k-vertex face, warm-started levels
    reach a lower final loss in fewer seconds: ``benchmarks/RESULTS.md``).
    The last search direction is zeroed so that torch's L-BFGS does not
    build a curvature pair from two gradients of different objectives; its
    first step then runs the two-loop recursion on the carried memory with
    a unit step. Nothing is carried (and ``optimizer`` is left as it is)
    unless both are L-BFGS over parameters of the same shapes and
    ``previous`` has a curvature memory.

    Parameters
    ----------
    optimizer, previous : torch.optim.Optimizer
        From :func:`make_optimizer`; ``previous`` has run on the coarser level.

    References
    ----------
    Nocedal and Wright, *Numerical Optimization*, 2nd ed., Springer (2006),
    section 7.2 (L-BFGS: the memory of curvature pairs and the two-loop
    recursion).
    """
    if not (isinstance(optimizer, torch.optim.LBFGS) and isinstance(previous, torch.optim.LBFGS)):
        return
    old = previous.state[previous._params[0]]
    new_param = optimizer._params[0]
    shapes_match = [p.shape for p in optimizer._params] == [p.shape for p in previous._params]
    if not (shapes_match and old.get("old_dirs")):
        return
    state = optimizer.state[new_param]
    for key in ("old_dirs", "old_stps", "ro"):  # lists that L-BFGS appends to: copies, not the previous level's own
        state[key] = list(old[key])
    for key in ("H_diag", "prev_flat_grad", "n_iter", "func_evals"):
        state[key] = old[key]
    state["d"] = torch.zeros_like(old["d"])
    state["t"] = optimizer.param_groups[0]["lr"]
    state["prev_loss"] = old["prev_loss"]


def minimize(parameters, objective, optimizer, n_iter, tol, *, verbose=False, desc="", callback=None, history=None):
    """Minimise ``objective()`` over ``parameters`` in place.

    Parameters
    ----------
    parameters : list of torch.Tensor
        Leaf tensors with ``requires_grad=True``: the ones ``optimizer`` was built on.
    objective : callable
        ``objective() -> (total, data, regularization)``, 0-dim tensors;
        ``total`` is minimised, the other two are recorded.
    optimizer : torch.optim.Optimizer
        From :func:`make_optimizer` (possibly with a state loaded from a checkpoint).
    n_iter : int
        Maximum number of iterations.
    tol : float
        Stop when an iteration decreases ``total`` by less than ``tol`` times its value.
    verbose : bool
        Show a tqdm progress bar labelled ``desc``.
    callback : callable, optional
        ``callback(history)`` after each iteration (e.g. to write a checkpoint).
    history : dict of list of float, optional
        A history to continue (resumed fits); a new one otherwise.

    Returns
    -------
    history : dict of list of float
        ``"total"``, ``"data"``, ``"regularization"`` at the start of each
        iteration, then at the final iterate (one value more than iterations).
    n_done : int
        Iterations run in this call.

    Raises
    ------
    FloatingPointError
        If the loss is not finite from the start.
    """
    from tqdm.auto import tqdm

    history = {"total": [], "data": [], "regularization": []} if history is None else history
    step = _stepper(optimizer, objective)
    best = (math.inf, [p.detach().clone() for p in parameters])
    progress = tqdm(total=n_iter, desc=desc, disable=not verbose)
    n_done = 0
    for n_done in range(1, n_iter + 1):
        values = step()
        _append(history, *values)
        if values[0] < best[0]:
            best = (values[0], [p.detach().clone() for p in parameters])
        progress.set_postfix(loss=f"{values[0]:.4g}", refresh=False)
        progress.update()
        if callback is not None:
            callback(history)
        if not math.isfinite(values[0]) or _converged(history["total"], tol):
            break
    progress.close()
    with torch.no_grad():
        final = objective()
        if not math.isfinite(float(final[0])):
            _restore_best(parameters, best)
            final = objective()
        _append(history, *(float(v) for v in final))
    return history, n_done


def _stepper(optimizer, objective):
    """A function that runs one optimiser iteration and returns the loss terms at its start.

    Each L-BFGS step starts by evaluating the objective at the point where the
    previous line search ended, which that search has just evaluated: the
    last evaluation is cached (values, gradients and the parameters it was
    taken at) and reused when the parameters are unchanged, which halves the
    cost of an iteration whose line search accepts its first step.

    A trial point where the objective is not finite, or where the loss finds
    a degenerate shape (:class:`~skshapes.losses.sinkhorn.DegenerateMeasureError`:
    a similarity whose scale underflowed to 0), counts as a loss of +inf with
    NaN gradients. Torch's strong-Wolfe line search rejects it (any value
    above the start fails its sufficient-decrease test) and bisects back
    towards the start of the step (its cubic interpolation falls back to the
    midpoint when a slope is NaN); a NaN value would pass none of its tests
    and derail it. Such trial points come from steps that overflow, e.g. a
    first L-BFGS step of log-scale 400 on a face. A degenerate shape at the
    starting point is the input's fault: its error is raised.
    """
    from .losses.sinkhorn import DegenerateMeasureError

    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    cache = {}

    def evaluate():
        try:
            total, data, regularization = objective()
        except DegenerateMeasureError:
            if "at" not in cache:  # the first evaluation: at the starting point, not a trial point
                raise
            return reject(math.nan, math.nan)
        value = total.item()
        if not math.isfinite(value):
            return reject(float(data.detach()), float(regularization.detach()))
        total.backward()
        grads = [None if p.grad is None else p.grad.detach().clone() for p in parameters]
        remember(value, float(data.detach()), float(regularization.detach()), grads)
        return total.detach()

    def reject(data, regularization):
        grads = [torch.full_like(p, math.nan) for p in parameters]
        for parameter, grad in zip(parameters, grads):
            parameter.grad = grad.clone()
        remember(math.inf, data, regularization, grads)
        return torch.tensor(math.inf, dtype=parameters[0].dtype, device=parameters[0].device)

    def remember(value, data, regularization, grads):
        cache["at"] = [p.detach().clone() for p in parameters]
        cache["grads"] = grads
        cache["values"] = (value, data, regularization)

    def cached():
        if "at" not in cache or not all(torch.equal(p, a) for p, a in zip(parameters, cache["at"])):
            return None
        for parameter, grad in zip(parameters, cache["grads"]):
            parameter.grad = None if grad is None else grad.clone()
        return torch.tensor(cache["values"][0], dtype=parameters[0].dtype, device=parameters[0].device)

    def step():
        values = []

        def closure():
            optimizer.zero_grad()
            total = cached()
            if total is None:
                total = evaluate()
            values.append(cache["values"])
            return total

        optimizer.step(closure)
        return values[0]  # the first evaluation is at the iterate the step started from

    return step


def _restore_best(parameters, best):
    if not math.isfinite(best[0]):
        raise FloatingPointError("the optimisation diverged: the loss is NaN or infinite from the start")
    warnings.warn("the optimiser reached a non-finite loss; keeping the best iterate", RuntimeWarning, 3)
    for parameter, value in zip(parameters, best[1]):
        parameter.copy_(value)


def _append(history, total, data, regularization):
    for key, value in zip(("total", "data", "regularization"), (total, data, regularization)):
        history[key].append(float(value))


def _converged(totals, tol) -> bool:
    if len(totals) < 2:
        return False
    previous, current = totals[-2], totals[-1]
    return abs(previous - current) <= tol * max(abs(previous), np.finfo(float).tiny)
