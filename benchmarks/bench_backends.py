"""Dense torch vs KeOps vs KD-tree, per operation: the timings behind ``skshapes.reductions.THRESHOLDS``.

Run as a script (not a test)::

    .venv/bin/python benchmarks/bench_backends.py                 # every operation, ~45 min on 2 cores
    .venv/bin/python benchmarks/bench_backends.py --ops knn hamiltonian --repeats 5
    .venv/bin/python benchmarks/bench_backends.py --quick         # N <= 1,000, a minute

Operations, float32, 3D, value + gradient (what a registration or a
training step needs), each backend named explicitly:

- ``hamiltonian``: the way LDDMM shoots its control points: Hamilton's equations of
  ``H = 1/2 sum_i p_i . (K(q, q) p)_i`` (sigma = 0.5) as ``LDDMM`` computes
  them with that backend (``LDDMM._hamiltonian_equations``: the dense closed
  form on ``"torch"``, the gradient of H with ``create_graph=True`` on
  ``"keops"``), then ``backward()`` of ``|dH/dq|^2 + |dH/dp|^2`` (a loss
  back-propagated through them). (Before 2026-11-23 this operation was
  ``kernel``, measured as the autograd path on both backends: the table
  "kernel" of RESULTS.md, behind the ``"kernel"`` rule of ``kernel_product``);
- ``kernel-first-order``: ``kernel_product(x, y, b, sigma=0.5)`` with b (M, 3),
  then ``backward()`` of ``(result * w).sum()`` w.r.t. x and b (for
  comparison: a first-order caller, e.g. the flow of points carried by
  LDDMM's control points);
- ``knn``: ``knn(x, y, k=16)``, then ``backward()`` of the distances' sum
  w.r.t. x (distances are recomputed from the indices on every backend);
- ``sinkhorn``: ``SinkhornLoss(blur=0.05, scaling=0.8, backend=...)`` between
  two clouds, then ``backward()`` (backend "torch": the dense loop of
  ``skshapes.losses.sinkhorn``, whose cache of the target's self-transport
  potential is filled by the warm-up call, as in a registration; "keops":
  GeomLoss's online backend; "multiscale": GeomLoss's multiscale backend,
  ``truncate=5``, through ``SinkhornLoss`` when it offers it, else
  ``geomloss.SamplesLoss`` called directly with uniform weights);
- ``varifold``: ``VarifoldLoss(sigma=0.1)`` between two triangulated spheres
  (``pyvista.Sphere``, radii 1 and 1.1) of N triangles each (N x N cell pairs
  in each of its three pairings), then ``backward()``;
- ``knn-queries``: ``knn`` with N query points against M = 100,000 fixed
  points, N = 1 ... 3,000: where the KD-tree's O(M log M) construction
  stops paying for itself (the ``min_queries`` of the KD-tree rule).

Point clouds: two Gaussian clouds (standard deviation 1), centres one unit
apart, N points each. Sizes N = 100, 300, 1,000, 3,000, 10,000, 30,000,
100,000 (the Hamiltonian and Sinkhorn add 2,000 and 5,000) while a backend stays
under its cap (``CAPS``: dense torch builds N x M matrices, so the Hamiltonian
stops at N = 5,000, the first-order kernel and the KNN at 10,000, the
Sinkhorn at 5,000 and the varifold at 6,000 triangles) and under
``--max-seconds`` (predicted from the previous size, quadratically; the
KD-tree as N log N).

Timings: at every size a warm-up call of every backend first (KeOps compiles
its formulas once, then loads them from ``~/.cache/keops*``: compilation is
never timed), then ``--repeats`` rounds that call every backend in turn
(interleaved, so that a change of load on this shared machine spreads over
all of them); the median is reported (one round when a call takes more than
5 s). One torch/OpenMP thread by default (``--threads``); the KD-tree
queries with ``torch.get_num_threads()`` workers.

The crossovers are estimated by linear interpolation of log(time ratio)
against log N between the two sizes where the faster backend changes; the
script then shows what ``backend="auto"`` picks at every measured size with
the current thresholds, and how far that is from the fastest.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import time

import torch
from _machine import cpu_model

SIZES = [100, 300, 1_000, 3_000, 10_000, 30_000, 100_000]
HAMILTONIAN_SIZES = [100, 300, 1_000, 2_000, 3_000, 5_000, 10_000]
QUERY_SIZES = [1, 3, 10, 30, 100, 300, 1_000, 3_000]
QUERY_REFERENCE = 100_000
K = 16
#: Largest N per (operation, backend): memory of the dense paths, time of the others on 2 cores.
CAPS = {
    "hamiltonian": {"torch": 5_000, "keops": 10_000},
    "kernel-first-order": {"torch": 10_000, "keops": 30_000},
    "knn": {"torch": 10_000, "keops": 100_000, "kdtree": 100_000},
    "sinkhorn": {"torch": 5_000, "keops": 5_000, "multiscale": 20_000},
    "varifold": {"torch": 6_000, "keops": 30_000},
    "knn-queries": {"torch": 300, "keops": 3_000, "kdtree": 3_000},
}
OPERATIONS = ("hamiltonian", "kernel-first-order", "knn", "sinkhorn", "varifold", "knn-queries")
SINKHORN_SIZES = [100, 300, 1_000, 2_000, 5_000, 10_000, 20_000]
VARIFOLD_SIZES = [100, 300, 1_000, 3_000, 6_000, 10_000, 30_000]


def clouds(n, m=None, seed=0):
    """Two 3D Gaussian clouds of n and m points (standard deviation 1), centres one unit apart, float32."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = torch.randn(n if m is None else m, 3, generator=generator)
    y[:, 0] += 1.0
    return x, y


def sphere_mesh(n_triangles, radius=1.0):
    """A ``pyvista.Sphere`` with about ``n_triangles`` triangles (2 t (t - 2) for resolution t), as a PolyData."""
    import pyvista

    import skshapes as sks

    resolution = max(4, round(1 + math.sqrt(1 + n_triangles / 2)))
    mesh = pyvista.Sphere(radius=radius, theta_resolution=resolution, phi_resolution=resolution).triangulate()
    shape = sks.PolyData.from_pyvista(mesh)
    return sks.PolyData(shape.points.float(), triangles=shape.triangles)


def make_call(operation, backend, n):
    """A function running one value + gradient of ``operation`` at size ``n`` (inputs built once, outside)."""
    import skshapes as sks
    from skshapes.reductions import kernel_product, knn

    if operation == "hamiltonian":
        q, _ = clouds(n)
        p = torch.randn(n, 3, generator=torch.Generator().manual_seed(1))

        model = sks.LDDMM(sigma=0.5, backend=backend)

        def call():
            qq, pp = q.clone().requires_grad_(True), p.clone().requires_grad_(True)
            velocity, force, _ = model._hamiltonian_equations(qq, pp)
            ((force**2).sum() + (velocity**2).sum()).backward()

        return call
    if operation == "kernel-first-order":
        x, y = clouds(n)
        b = torch.randn(n, 3, generator=torch.Generator().manual_seed(1))
        weights = torch.randn(n, 3, generator=torch.Generator().manual_seed(2))

        def call():
            xx, bb = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
            (kernel_product(xx, y, bb, 0.5, backend=backend) * weights).sum().backward()

        return call
    if operation in ("knn", "knn-queries"):
        x, y = clouds(n, QUERY_REFERENCE if operation == "knn-queries" else n)

        def call():
            xx = x.clone().requires_grad_(True)
            knn(xx, y, k=K, backend=backend)[0].sum().backward()

        return call
    if operation == "sinkhorn":
        x, y = clouds(n)
        if backend == "multiscale" and not sinkhorn_has_multiscale():
            from geomloss import SamplesLoss

            samples_loss = SamplesLoss("sinkhorn", p=2, blur=0.05, scaling=0.8, backend="multiscale", truncate=5)
            weights = torch.full((n,), 1.0 / n)

            def call():
                xx = x.clone().requires_grad_(True)
                samples_loss(weights, xx, weights, y).backward()

            return call
        loss = sks.SinkhornLoss(blur=0.05, scaling=0.8, backend=backend)
        target = sks.PolyData(y)

        def call():
            xx = x.clone().requires_grad_(True)
            loss(sks.PolyData(xx), target).backward()

        return call
    if operation == "varifold":
        source, target = sphere_mesh(n), sphere_mesh(n, radius=1.1)
        loss = sks.VarifoldLoss(sigma=0.1, backend=backend)

        def call():
            points = source.points.clone().requires_grad_(True)
            loss(sks.PolyData(points, triangles=source.triangles), target).backward()

        return call
    raise ValueError(operation)


def sinkhorn_has_multiscale() -> bool:
    """Whether ``SinkhornLoss`` offers ``backend="multiscale"`` here (else GeomLoss is called directly)."""
    from skshapes.reductions import OPERATION_BACKENDS

    return "multiscale" in OPERATION_BACKENDS["sinkhorn"]


def problem_size(operation, n):
    """(N, M) of the reduction that ``choose_backend`` sees for this benchmark row."""
    if operation == "knn-queries":
        return n, QUERY_REFERENCE
    if operation == "varifold":
        cells = sphere_mesh(n).triangles.shape[0]
        return cells, cells
    return n, n


def backends_of(operation):
    if operation == "sinkhorn":
        return ("torch", "keops", "multiscale")
    return ("torch", "keops", "kdtree") if operation.startswith("knn") else ("torch", "keops")


def predicted_seconds(operation, backend, previous, n):
    """Time at size ``n`` extrapolated from ``previous = (n0, seconds)``: N log N for the KD-tree, N^2 otherwise."""
    if previous is None:
        return 0.0
    n0, seconds = previous
    if operation == "knn-queries":
        return seconds * max(1.0, n / n0) if backend == "kdtree" else seconds * n / n0
    if backend == "kdtree":
        return seconds * (n / n0) * math.log(n) / math.log(max(n0, 2))
    return seconds * (n / n0) ** 2


def measure(operation, sizes, repeats, max_seconds):
    """{n: {backend: median seconds or None (skipped)}} for one operation."""
    results, previous = {}, {}
    for n in sizes:
        row = {}
        calls = {}
        for backend in backends_of(operation):
            guess = predicted_seconds(operation, backend, previous.get(backend), n)
            if n > CAPS[operation][backend] or guess > max_seconds:
                row[backend] = None
                continue
            calls[backend] = make_call(operation, backend, n)
        if not calls:
            break
        times = {backend: [] for backend in calls}
        for backend, call in calls.items():  # warm-up: KeOps compilation/loading, allocations, target cache
            start = time.perf_counter()
            call()
            times[backend].append(time.perf_counter() - start)
        slow = max(t[0] for t in times.values()) > 5.0
        for backend in calls:
            times[backend] = []
        for _ in range(1 if slow else repeats):
            for backend, call in calls.items():
                start = time.perf_counter()
                call()
                times[backend].append(time.perf_counter() - start)
        for backend, values in times.items():
            row[backend] = statistics.median(values)
            previous[backend] = (n, row[backend])
        results[n] = row
        shown = ", ".join(f"{b} {'-' if t is None else f'{1e3 * t:.2f} ms'}" for b, t in row.items())
        print(f"  {operation} N={n:,}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
    return results


def crossovers(operation, results):
    """Lines 'A -> B between N=a and N=b, about N*' where the fastest measured backend changes."""
    lines, last = [], None
    ordered = sorted(results)
    for i, n in enumerate(ordered):
        timed = {b: t for b, t in results[n].items() if t is not None}
        fastest = min(timed, key=timed.get)
        if last is not None and fastest != last[1]:
            n0 = last[0]
            a, b = last[1], fastest
            estimate = ""
            before, after = results[n0], results[n]
            if all(v is not None for v in (before.get(a), before.get(b), after.get(a), after.get(b))):
                r0, r1 = math.log(before[b] / before[a]), math.log(after[b] / after[a])
                ln = math.log(n0) + (math.log(n) - math.log(n0)) * r0 / (r0 - r1)
                star = math.exp(ln)
                pairs = star * (QUERY_REFERENCE if operation == "knn-queries" else star)
                estimate = f", about N = {star:,.0f} ({pairs:.2g} pairs)"
            lines.append(f"{operation}: {a} -> {b} between N = {n0:,} and N = {n:,}{estimate}")
        last = (n, fastest)
    return lines or [f"{operation}: {last[1]} fastest at every measured size"]


def auto_check(operation, results):
    """Rows 'N: auto picks X, X/fastest = r' with the current THRESHOLDS."""
    from skshapes.reductions import choose_backend

    op = {"knn-queries": "knn"}.get(operation, operation)
    rows = []
    for n, row in sorted(results.items()):
        timed = {b: t for b, t in row.items() if t is not None}
        fastest = min(timed, key=timed.get)
        big_n, big_m = problem_size(operation, n)
        picked = choose_backend("auto", big_n, big_m, op, device="cpu", dim=3)
        ratio = f"{timed[picked] / timed[fastest]:.2f}" if picked in timed else "not measured"
        rows.append((n, picked, fastest, ratio))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=100.0, help="skip a backend predicted to take longer")
    parser.add_argument("--quick", action="store_true", help="N <= 1,000 only")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (default 1, see PEERS.md)")
    parser.add_argument("--save", help="write the timings to this JSON file")
    parser.add_argument("--report", help="print the tables of a saved JSON file with the current thresholds, and exit")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as file:
            saved = json.load(file)["results"]
        print_tables({op: {int(n): row for n, row in results.items()} for op, results in saved.items()})
        return
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    torch.set_num_threads(args.threads)

    import pykeops
    import scipy

    print(f"# Backends per operation, {datetime.date.today()}: {cpu_model()}, {torch.get_num_threads()} thread(s)")
    print(f"torch {torch.__version__}, pykeops {pykeops.__version__}, scipy {scipy.__version__}; "
          f"load average at start {os.getloadavg()}")
    print(f"float32, 3D, value + gradient; warm-up then median of {args.repeats} interleaved rounds\n")
    all_results = {}
    for operation in args.ops:
        sizes = {
            "hamiltonian": HAMILTONIAN_SIZES, "sinkhorn": SINKHORN_SIZES, "varifold": VARIFOLD_SIZES, "knn-queries": QUERY_SIZES,
        }.get(operation, SIZES)
        if args.quick:
            sizes = [n for n in sizes if n <= 1_000]
        all_results[operation] = measure(operation, sizes, args.repeats, args.max_seconds)
    print(f"\nload average at end {os.getloadavg()}\n")
    if args.save:
        with open(args.save, "w") as file:
            json.dump({"date": str(datetime.date.today()), "results": all_results}, file, indent=1)
    print_tables(all_results)


def print_tables(all_results):
    """Per operation: the timings, the fastest backend, what "auto" picks now; the crossovers; the thresholds."""
    for operation, results in all_results.items():
        names = backends_of(operation)
        unit = {"varifold": "N (triangles)", "knn-queries": f"N (queries, M = {QUERY_REFERENCE:,})"}.get(operation, "N")
        print(f"### {operation}\n")
        print(f"| {unit} | " + " | ".join(f"{b} (ms)" for b in names) + " | fastest | auto picks | auto / fastest |")
        print("|---" * (len(names) + 4) + "|")
        checks = {n: (picked, ratio) for n, picked, _, ratio in auto_check(operation, results)}
        for n, row in sorted(results.items()):
            timed = {b: t for b, t in row.items() if t is not None}
            cells = " | ".join("-" if row.get(b) is None else f"{1e3 * row[b]:.3g}" for b in names)
            size = problem_size(operation, n)[0] if operation == "varifold" else n
            print(f"| {size:,} | {cells} | {min(timed, key=timed.get)} | {checks[n][0]} | {checks[n][1]} |")
        print()
        for line in crossovers(operation, results):
            print(f"- {line}")
        print()
    from skshapes.reductions import THRESHOLDS

    print("Current CPU thresholds (skshapes.reductions.THRESHOLDS['cpu']):")
    for operation, rules in THRESHOLDS["cpu"].items():
        print(f"- {operation}: " + "; ".join(
            f"{r.backend}" + (f" from {r.min_pairs:.2g} pairs" if r.min_pairs else "")
            + (f" from {r.min_queries} queries" if r.min_queries else "") for r in rules))


if __name__ == "__main__":
    main()
