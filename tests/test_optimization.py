"""The shared optimisation loop: L-BFGS reuses the evaluation its line search ended on, and still converges."""

from __future__ import annotations

import torch

from skshapes.optimization import make_optimizer, minimize


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
