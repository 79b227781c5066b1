"""Value + gradient of the debiased Sinkhorn divergence: skshapes vs GeomLoss vs POT.

Run as a script (not a test)::

    .venv/bin/python benchmarks/bench_sinkhorn.py            # 1k and 5k points
    .venv/bin/python benchmarks/bench_sinkhorn.py --sizes 1000 --repeats 2

Problem: two Gaussian clouds (standard deviation 1) in 3D whose centres are one
unit apart, N points each, float32, uniform weights. Settings: p = 2 (cost
|x - y|^2 / 2), blur = 0.05 (eps = blur^2), scaling = 0.8, debiased.

- ``skshapes``: ``SinkhornLoss(blur=0.05, scaling=0.8)`` with ``backend="auto"``
  (the backend it resolves to is printed), value + gradient w.r.t. x.
- ``GeomLoss``: ``SamplesLoss("sinkhorn", p=2, blur=0.05, scaling=0.8)`` called
  directly, ``"tensorized"``, ``"online"`` and ``"multiscale"`` backends (the
  last with GeomLoss's default clustering), value + gradient. "Same backend"
  compares ours with the GeomLoss backend ours resolved to.
- ``POT``: ``ot.bregman.empirical_sinkhorn_divergence``. Its cost is |x - y|^2
  (not halved), so reg = 2 eps = 2 * 0.05^2 solves the same problem and its value
  is divided by 2 here. At that reg its default solver underflows and returns 0
  (see ../shared/PEERS.md), so it runs with ``method="sinkhorn_log"`` (log
  domain), on torch tensors; POT has no eps-scaling, so it needs thousands of
  iterations (its cap is 10,000 per problem, three problems per divergence).
  As that takes minutes at 1k points, a second configuration that POT's users
  would run, a larger reg with its default solver (numpy, float64), is timed
  against skshapes at the same blur (0.2). POT runs are value only (its
  gradient through autodiff would store every iteration's N x N matrices),
  once each (no warm-up: nothing to compile), in a subprocess stopped after
  ``--pot-limit`` seconds.

Timings: a warm-up round first (KeOps compiles its formulas, cached afterwards),
then the median of ``--repeats`` rounds; the contenders run in turn within
each round. ``--threads`` (default 1) sets the torch, OpenMP and BLAS threads.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import statistics
import time

import torch
from _machine import cpu_model

BLUR, SCALING, POT_BLUR = 0.05, 0.8, 0.2


def clouds(n, seed=0):
    """Two Gaussian clouds of n points in 3D, centres one unit apart along x, float32."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = torch.randn(n, 3, generator=generator)
    y[:, 0] += 1.0
    return x, y


def value_and_grad_seconds(function, x, y):
    """(seconds, value) of one call of value + gradient w.r.t. x."""
    points = x.clone().requires_grad_(True)
    start = time.perf_counter()
    loss = function(points, y)
    loss.backward()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(points.grad).all()
    return elapsed, loss.item()


def timed_interleaved(functions, x, y, repeats):
    """Warm-up round, then ``repeats`` rounds calling every function once, in turn.

    Interleaving spreads any change of load on the (shared) machine over all
    the contenders instead of one. Returns {name: (median seconds, value)}.
    """
    times = {name: [] for name in functions}
    values = {}
    for round_ in range(repeats + 1):
        for name, function in functions.items():
            seconds, values[name] = value_and_grad_seconds(function, x, y)
            if round_ > 0:  # round 0 is the warm-up (KeOps compilation, allocations)
                times[name].append(seconds)
    return {name: (statistics.median(times[name]), values[name]) for name in functions}


def skshapes_runner(blur):
    import skshapes as sks

    loss = sks.SinkhornLoss(blur=blur, scaling=SCALING)
    return lambda x, y: loss(sks.PolyData(x), sks.PolyData(y))


def geomloss_runner(backend, blur=BLUR):
    from geomloss import SamplesLoss

    loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=SCALING, debias=True, backend=backend)
    return lambda x, y: loss(x, y)


# ----------------------------------------------------------------------- POT
def _pot_worker(queue, n, configuration):
    import warnings

    import ot

    warnings.simplefilter("ignore")
    x, y = clouds(n)
    start = time.perf_counter()
    if configuration == "log":
        value = ot.bregman.empirical_sinkhorn_divergence(x, y, 2 * BLUR**2, method="sinkhorn_log")
        value = float(value)
    else:
        value = float(ot.bregman.empirical_sinkhorn_divergence(x.double().numpy(), y.double().numpy(), 2 * POT_BLUR**2))
    queue.put((time.perf_counter() - start, value / 2))  # POT's cost is |x - y|^2: halve it


def pot_time(n, configuration, limit):
    """(seconds, value) of one POT call, or (None, None) when it runs past ``limit`` seconds."""
    context = multiprocessing.get_context("spawn")  # no fork after torch/OpenMP threads started
    queue = context.Queue()
    process = context.Process(target=_pot_worker, args=(queue, n, configuration))
    process.start()
    process.join(limit + 30)  # + start-up (imports)
    if process.is_alive():
        process.terminate()
        process.join()
        return None, None
    if process.exitcode != 0:
        raise RuntimeError(f"the POT run ({configuration}, N={n}) failed with exit code {process.exitcode}")
    seconds, value = queue.get(timeout=10)
    return (seconds, value) if seconds <= limit else (None, None)


# --------------------------------------------------------------------- main
def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu_model()}, {gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pot-limit", type=float, default=150.0, help="seconds before a POT run is stopped")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/OpenMP/BLAS threads (default 1: on a shared 2-core machine two threads oversubscribe "
        "the cores and run 5-10x slower; use 2 on an idle machine)",
    )
    args = parser.parse_args()
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(args.threads)  # read by the POT subprocesses and KeOps' OpenMP
    torch.set_num_threads(args.threads)

    import geomloss
    import ot

    from skshapes.reductions import choose_backend

    print(f"# Sinkhorn benchmark, {datetime.date.today()}: {machine()}")
    print(f"geomloss {geomloss.__version__}, POT {ot.__version__}; load average at start {os.getloadavg()}")
    print(
        f"value + gradient, float32, two 3D Gaussian clouds one unit apart; p=2, blur={BLUR}, scaling={SCALING}; "
        f"warm-up + median of {args.repeats}\n"
    )
    rows = []
    for n in args.sizes:
        x, y = clouds(n)
        resolved = choose_backend("auto", n, n, "sinkhorn", device=x.device, dim=x.shape[1])
        ours_backend = {"torch": "tensorized", "keops": "online", "multiscale": "multiscale"}[resolved]
        functions = {
            "skshapes": skshapes_runner(BLUR),
            "geomloss tensorized": geomloss_runner("tensorized"),
            "geomloss online": geomloss_runner("online"),
            "geomloss multiscale": geomloss_runner("multiscale"),
            f"skshapes blur={POT_BLUR}": skshapes_runner(POT_BLUR),
        }
        results = timed_interleaved(functions, x, y, args.repeats)
        for name, (seconds, value) in results.items():
            print(f"  N={n} {name}: {seconds:.3f} s, value {value:.6f}", flush=True)
        for configuration in ("log", "default"):
            key = f"pot {configuration}"
            previous = [r for r in rows if r["N"] < n and r[key][0] is None]
            if previous:  # timed out at a smaller size: it will at this one too (O(N^2) per iteration)
                results[key] = (None, None)
                print(f"  N={n} {key}: skipped (over {args.pot_limit:.0f} s at N={previous[-1]['N']})", flush=True)
                continue
            results[key] = pot_time(n, configuration, args.pot_limit)
            seconds, value = results[key]
            shown = "over the limit" if seconds is None else f"{seconds:.3f} s, value {value:.6f}"
            print(f"  N={n} {key}: {shown}", flush=True)
        rows.append({"N": n, "backend": ours_backend, **results})

    def fmt_time(entry):
        return f"> {args.pot_limit:.0f}" if entry[0] is None else f"{entry[0]:.2f}"

    def fmt_value(entry):
        return "-" if entry[1] is None else f"{entry[1]:.5f}"

    def ratio(ours, other):
        return f"< {ours[0] / args.pot_limit:.3f}" if other[0] is None else f"{ours[0] / other[0]:.2f}"

    print(f"\nload average at end {os.getloadavg()}\n")
    print(f"Same problem, blur = {BLUR} (eps = {BLUR**2:g}); times in seconds (value + gradient; POT value only):\n")
    print(
        "| N | skshapes (backend) | GeomLoss tensorized | GeomLoss online | GeomLoss multiscale "
        "| POT log-domain, reg = 2·0.05² | ours / GeomLoss same backend | ours / best GeomLoss | ours / POT "
        "| values: skshapes, GeomLoss t/o/m, POT |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ours, pot = r["skshapes"], r["pot log"]
        geomloss = {name: r[f"geomloss {name}"] for name in ("tensorized", "online", "multiscale")}
        same, best = geomloss[r["backend"]], min(entry[0] for entry in geomloss.values())
        times = " | ".join(f"{entry[0]:.2f}" for entry in geomloss.values())
        values = "/".join(f"{entry[1]:.5f}" for entry in geomloss.values())
        print(
            f"| {r['N']} | {ours[0]:.2f} ({r['backend']}) | {times} | {fmt_time(pot)} "
            f"| {ours[0] / same[0]:.2f} | {ours[0] / best:.2f} | {ratio(ours, pot)} "
            f"| {ours[1]:.5f}, {values}, {fmt_value(pot)} |"
        )
    print(
        f"\nA configuration POT's users run: blur = {POT_BLUR} "
        f"(reg = 2·{POT_BLUR}² = {2 * POT_BLUR**2:g} on |x-y|², "
        "default solver, numpy float64, value only):\n"
    )
    print(
        f"| N | skshapes blur={POT_BLUR} (value + gradient) | POT default solver (value) | ours / POT "
        "| values: skshapes, POT |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        ours, pot = r[f"skshapes blur={POT_BLUR}"], r["pot default"]
        print(f"| {r['N']} | {ours[0]:.2f} | {fmt_time(pot)} | {ratio(ours, pot)} | {ours[1]:.5f}, {fmt_value(pot)} |")


if __name__ == "__main__":
    main()
