"""The shared optimisation loop: L-BFGS reuses the evaluation its line search ended on, converges, and carries its curvature between levels."""

from __future__ import annotations

import torch

from skshapes.optimization import carry_curvature, make_optimizer, minimize


def test_lbfgs_reuses_the_last_line_search_evaluation_and_finds_the_minimum():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    hessian, b = a @ a.T + torch.eye(6, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    calls = []

    def objective():
        calls.append(1)
        value = 0.5 * x @ hessian @ x - b @ x
        return value, value, torch.zeros(())

    optimizer = make_optimizer([x])
    history, n_done = minimize([x], objective, optimizer, n_iter=30, tol=1e-14)
    closures = optimizer.state[optimizer._params[0]]["func_evals"]
    assert torch.allclose(x.detach(), torch.linalg.solve(hessian, b), rtol=1e-8)
    # every iteration after the first starts where the previous line search ended: one evaluation saved each
    assert len(calls) - 1 == closures - (n_done - 1)  # (- 1: the final evaluation after the loop)
    assert len(history["total"]) == n_done + 1 and history["total"][-1] <= min(history["total"])


def _quadratic(hessian, b, x):
    def objective():
        value = 0.5 * x @ hessian @ x - b @ x
        return value, value, torch.zeros(())

    return objective


def test_carried_curvature_speeds_up_the_next_level_of_the_same_parameter():
    """Coarse to fine: a fine objective close to the coarse one is solved faster with the coarse L-BFGS memory."""
    g = torch.Generator().manual_seed(1)
    # An ill-conditioned quadratic (condition number 1e4): cold L-BFGS needs many iterations.
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    coarse = q @ torch.diag(torch.logspace(0, 4, 20, dtype=torch.float64)) @ q.T
    fine = coarse + 1e-2 * torch.diag(torch.rand(20, generator=g, dtype=torch.float64))  # a nearby objective
    b = torch.randn(20, generator=g, dtype=torch.float64)
    x = torch.zeros(20, dtype=torch.float64, requires_grad=True)
    first = make_optimizer([x])
    minimize([x], _quadratic(coarse, b, x), first, n_iter=25, tol=0)
    start = x.detach().clone()
    optimum = float(-0.5 * b @ torch.linalg.solve(fine, b))

    def gap_after(n_iter, carried):
        """The fine objective's excess over its minimum after ``n_iter`` iterations from the coarse optimum."""
        y = start.clone().requires_grad_(True)
        optimizer = make_optimizer([y])
        if carried:
            carry_curvature(optimizer, first)
        minimize([y], _quadratic(fine, b, y), optimizer, n_iter=n_iter, tol=0)
        return float(_quadratic(fine, b, y.detach())()[0]) - optimum

    initial = float(_quadratic(fine, b, start)()[0]) - optimum
    assert gap_after(3, carried=True) < 0.5 * gap_after(3, carried=False)  # measured 0.027 vs 0.087
    assert gap_after(3, carried=True) < 0.5 * initial
    # the carried run converges to the fine objective's minimum, not the coarse one's
    assert gap_after(80, carried=True) < 1e-8 * initial


def test_curvature_is_not_carried_across_shapes_or_to_adam():
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    hessian = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    first = make_optimizer([x])
    minimize([x], _quadratic(hessian, torch.ones(4, dtype=torch.float64), x), first, n_iter=5, tol=0)
    other = make_optimizer([torch.zeros(5, dtype=torch.float64, requires_grad=True)])
    carry_curvature(other, first)
    assert not other.state  # a different parameter shape: nothing carried
    adam = make_optimizer([x], "adam")
    carry_curvature(adam, first)
    assert not adam.state
    fresh = make_optimizer([x])
    carry_curvature(fresh, make_optimizer([x]))  # a previous optimizer that never ran: no memory to carry
    assert not fresh.state
