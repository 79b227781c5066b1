"""Time and peak memory against the number of points N, for the operations that must scale to 1e5-1e6 points.

Run as a script (not a test)::

    .venv/bin/python benchmarks/bench_scaling.py                       # every operation, about an hour on 2 cores
    .venv/bin/python benchmarks/bench_scaling.py --ops knn lddmm --max-seconds 60
    .venv/bin/python benchmarks/bench_scaling.py --ops sinkhorn-multiscale --sizes 10000 100000

Operations (float32, 3D, value + gradient, one call):

- ``sinkhorn-dense``: the same problem on ``backend="torch"`` (the dense
  loop: N x M cost matrices, quadratic memory), for comparison.
- ``sinkhorn-online``: ``SinkhornLoss(blur=0.01, scaling=0.5, backend="keops")``
  (GeomLoss's online backend, KeOps) between two clouds of N points drawn
  uniformly in the unit cube, the second one shifted by 0.1 along x (so that
  the value, about 0.1^2 / 2, is not a difference of noise), then
  ``backward()``. O(N^2) time, O(N) memory.
- ``sinkhorn-multiscale``: the same problem with GeomLoss's ``"multiscale"``
  backend (``truncate=5``, default cluster scale): through
  ``SinkhornLoss(backend="multiscale")`` when this skshapes has it, else
  ``geomloss.SamplesLoss`` called directly with the same normalised weights
  (the row says which).
- ``varifold``: ``VarifoldLoss(sigma=0.05)`` (``backend="auto"``, i.e. KeOps
  from the sizes measured here) between two ``pyvista.Sphere`` meshes of N
  vertices (radii 1 and 1.05, about 2N triangles each), then ``backward()``.
- ``knn``: ``knn(x, y, k=16)`` with ``backend="auto"`` (the KD-tree on this
  CPU), between two Gaussian clouds of N points, then ``backward()`` of the
  distances' sum.
- ``knn-keops``: the same with ``backend="keops"`` (the KeOps path, O(N^2)
  time, O(N) memory).
- ``lddmm``: one ``LDDMM(sigma=0.3, n_steps=5, control_points=C)`` shooting
  (RK4) with C = 200 fixed control points (a Fibonacci sphere, radius 0.9)
  carrying a ``pyvista.Sphere`` mesh of N vertices: ``morph`` then
  ``backward()`` of the squared morphed points' sum w.r.t. the momenta. The
  shooting of the control points (C x C kernel products) does not depend on
  N; the vertices enter through the flow of the points (N x C products per
  RK4 stage), so the time should grow linearly in N. The row
  ``lddmm-shooting`` times the shooting without the mesh.

Every (operation, N) runs in a fresh subprocess: imports, a warm-up call at a
small size with the same backends (KeOps compiles or loads its formulas:
never timed), then the freed heap is returned to the system
(``malloc_trim``), the peak RSS is reset to the current RSS (``echo 5 >
/proc/self/clear_refs``) and read (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
as the baseline; the inputs of size N are built, one call is timed, and the
peak is read again. The peak memory reported is the difference: what the
call and its inputs took on top of the warm process.
Sizes N = 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6 while the time predicted from the
previous size (with the operation's expected exponent) stays under
``--max-seconds``; the sizes that the issue requires (Sinkhorn at 1e5 points
on the multiscale path, KNN at 1e6) run whatever the prediction.

Slopes: least-squares fits (``numpy.polyfit``) of log(time) and log(memory)
against log(N), per operation and path (the backend that ``"auto"``
resolved to: LDDMM's flow is dense below 4e6 point pairs and KeOps above),
over the sizes where the call took more than 0.05 s (time) and the peak
memory exceeded 0.2 MB (memory), below which fixed costs and the
allocator's granularity dominate. The KeOps paths (online Sinkhorn, varifold, KNN on KeOps) must
keep a memory slope <= 1.1 (linear memory: no N x M matrix).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import subprocess
import sys
import time

SIZES = [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
#: Expected time exponent per operation (to skip sizes predicted too slow), smallest N, warm-up N.
OPERATIONS = {
    "sinkhorn-dense": {"exponent": 2.0, "sizes": [1_000, 2_000, 5_000, 10_000], "warm": 200},
    "sinkhorn-online": {"exponent": 2.0, "sizes": SIZES, "warm": 200},
    "sinkhorn-multiscale": {"exponent": 1.5, "sizes": [3_000, 10_000, 30_000, 100_000], "warm": 2_000,
                            "required": 100_000},
    "varifold": {"exponent": 2.0, "sizes": SIZES, "warm": 1_000},
    "knn": {"exponent": 1.1, "sizes": SIZES, "warm": 500, "required": 1_000_000},
    "knn-keops": {"exponent": 2.0, "sizes": SIZES, "warm": 200},
    "lddmm": {"exponent": 1.0, "sizes": SIZES, "warm": 10_000},
    "lddmm-shooting": {"exponent": 0.0, "sizes": [1_000], "warm": 10_000},
}
#: (operation, path) pairs that run on KeOps: their memory must grow linearly.
KEOPS_PATHS = {
    ("sinkhorn-online", "keops"), ("sinkhorn-multiscale", "multiscale"), ("varifold", "keops"),
    ("knn-keops", "keops"), ("lddmm", "keops"),
}
BLUR, SCALING, SIGMA_VARIFOLD, SIGMA_LDDMM, CONTROL_POINTS, N_STEPS, K = 0.01, 0.5, 0.05, 0.3, 200, 5, 16


# ----------------------------------------------------------------- problems
def unit_cube(n, seed):
    import torch

    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed))


def gaussian(n, seed, shift=0.0):
    import torch

    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    x[:, 0] += shift
    return x


def sphere(n_vertices, radius=1.0):
    """A ``pyvista.Sphere`` with about ``n_vertices`` vertices (t^2 - 2t + 2 at resolution t), float32 PolyData."""
    import pyvista

    import skshapes as sks

    resolution = max(4, round(1 + math.sqrt(max(n_vertices - 1, 1))))
    mesh = pyvista.Sphere(radius=radius, theta_resolution=resolution, phi_resolution=resolution).triangulate()
    shape = sks.PolyData.from_pyvista(mesh)
    return sks.PolyData(shape.points.float(), triangles=shape.triangles)


def fibonacci_sphere(n, radius):
    import torch

    i = torch.arange(n, dtype=torch.float64) + 0.5
    phi = torch.acos(1 - 2 * i / n)
    theta = math.pi * (1 + 5**0.5) * i
    points = torch.stack([phi.sin() * theta.cos(), phi.sin() * theta.sin(), phi.cos()], dim=1)
    return (radius * points).float()


def multiscale_in_skshapes() -> bool:
    """Whether ``SinkhornLoss`` accepts ``backend="multiscale"`` in this checkout."""
    from skshapes.reductions import OPERATION_BACKENDS

    return "multiscale" in OPERATION_BACKENDS.get("sinkhorn", ())


def build(operation, n):
    """(call, description): ``call()`` runs one value + gradient of ``operation`` at size ``n``."""
    import torch

    import skshapes as sks
    from skshapes.reductions import knn

    if operation.startswith("sinkhorn"):
        x, y = unit_cube(n, 0), unit_cube(n, 1) + torch.tensor([0.1, 0.0, 0.0])
        if operation != "sinkhorn-multiscale" or multiscale_in_skshapes():
            backend = {"sinkhorn-dense": "torch", "sinkhorn-online": "keops"}.get(operation, "multiscale")
            loss = sks.SinkhornLoss(blur=BLUR, scaling=SCALING, backend=backend)
            target = sks.PolyData(y)

            def call():
                points = x.clone().requires_grad_(True)
                value = loss(sks.PolyData(points), target)
                value.backward()
                return float(value)

            return call, f"SinkhornLoss(backend={backend!r})", backend
        from geomloss import SamplesLoss

        samples_loss = SamplesLoss("sinkhorn", p=2, blur=BLUR, scaling=SCALING, backend="multiscale", truncate=5)
        weights = torch.full((n,), 1.0 / n)

        def call():
            points = x.clone().requires_grad_(True)
            value = samples_loss(weights, points, weights, y)
            value.backward()
            return float(value.detach())

        return call, "geomloss SamplesLoss(backend='multiscale') (not in SinkhornLoss here)", "multiscale"
    if operation == "varifold":
        source, target = sphere(n), sphere(n, radius=1.05)
        loss = sks.VarifoldLoss(sigma=SIGMA_VARIFOLD)

        def call():
            points = source.points.clone().requires_grad_(True)
            value = loss(sks.PolyData(points, triangles=source.triangles), target)
            value.backward()
            return float(value)

        from skshapes.reductions import choose_backend

        cells = source.triangles.shape[0]
        # VarifoldLoss resolves its pairings with the default ("kernel") rules of choose_backend
        path = choose_backend("auto", cells, cells, device="cpu")
        return call, f"{cells:,} triangles, pairings on {path}", path
    if operation in ("knn", "knn-keops"):
        x, y = gaussian(n, 0), gaussian(n, 1, shift=1.0)
        backend = "keops" if operation == "knn-keops" else "auto"
        from skshapes.reductions import choose_backend

        resolved = choose_backend(backend, n, n, "knn", device="cpu", dim=3)

        def call():
            points = x.clone().requires_grad_(True)
            distances, _ = knn(points, y, k=K, backend=backend)
            distances.sum().backward()
            return float(distances[:, -1].mean())

        return call, f"backend {resolved}", resolved
    if operation.startswith("lddmm"):
        control = fibonacci_sphere(CONTROL_POINTS, 0.9)
        momenta = 0.1 * torch.randn(CONTROL_POINTS, 3, generator=torch.Generator().manual_seed(0))
        model = sks.LDDMM(sigma=SIGMA_LDDMM, n_steps=N_STEPS, control_points=control)
        shape = None if operation != "lddmm" else sphere(n)

        def call():
            p0 = momenta.clone().requires_grad_(True)
            if shape is None:
                q, p, _ = model.shoot(control, p0)
                value = (q**2).sum() + (p**2).sum()
            else:
                value = (model.morph(shape, p0).shape.points ** 2).sum()
            value.backward()
            return float(value)

        from skshapes.reductions import choose_backend

        if shape is None:
            return call, f"shooting of the {CONTROL_POINTS} control points only", "torch"
        path = choose_backend("auto", shape.n_points, CONTROL_POINTS, device="cpu")  # LDDMM's kernel products
        return call, f"{shape.n_points:,} vertices, flow of the points on {path}", path
    raise ValueError(operation)


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def reset_peak() -> bool:
    """Return freed memory to the system and reset the peak RSS to the current RSS (Linux >= 4.0).

    ``malloc_trim(0)`` releases the heap that the warm-up freed, and writing 5
    to ``/proc/self/clear_refs`` resets the high-water mark that ``ru_maxrss``
    reports, so that the peak measured next is that of the timed call, not
    the warm-up's transient one. False where either is unavailable (the
    baseline is then the warm-up's peak).
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def worker(operation, n):
    """In a fresh process: warm up, read the baseline, time one call at size n; print one JSON line."""
    warm_call, _, _ = build(operation, min(n, OPERATIONS[operation]["warm"]))
    warm_call()
    del warm_call
    reset = reset_peak()
    baseline = peak_bytes()
    start = time.perf_counter()
    call, description, path = build(operation, n)
    built = time.perf_counter() - start
    start = time.perf_counter()
    value = call()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds, "build_seconds": built, "peak_bytes": max(peak_bytes() - baseline, 0),
        "baseline_bytes": baseline, "value": value, "description": description, "path": path, "reset": reset,
    }))


def run(operation, n, threads, timeout):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", operation, str(n), "--threads", str(threads)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = result.stderr.strip().splitlines()[-1:] or [f"signal {-result.returncode}"]
        return None, f"failed (exit {result.returncode}): {tail[0]}"
    return json.loads(lines[-1]), None


def slope(rows, key, floor):
    import numpy as np

    points = [(n, r[key]) for n, r in rows if r[key] > floor]
    if len(points) < 2:
        return None, []
    ns, values = zip(*points)
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0]), list(ns)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", choices=list(OPERATIONS), default=list(OPERATIONS))
    parser.add_argument("--sizes", type=int, nargs="+", help="override the sizes of every operation")
    parser.add_argument("--max-seconds", type=float, default=240.0, help="skip sizes predicted to take longer")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (default 1, see PEERS.md)")
    parser.add_argument("--save", help="write the measured rows to this JSON file")
    parser.add_argument("--report", nargs="+", help="print the tables of saved JSON files (merged, later wins)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    if args.report:
        merged = {}
        for path in args.report:
            with open(path) as file:
                merged.update(json.load(file)["rows"])
        print_report(merged)
        return

    from _machine import cpu_model

    print(f"# Scaling, {datetime.date.today()}: {cpu_model()}, {args.threads} thread(s), torch {torch.__version__}")
    with open("/proc/meminfo") as meminfo:
        available = int(meminfo.read().split("MemAvailable:")[1].split()[0]) * 1024
    print(f"load average at start {os.getloadavg()}; available memory {available / 1e9:.1f} GB\n")
    report = {}
    for operation in args.ops:
        spec = OPERATIONS[operation]
        rows, previous = [], None
        for n in args.sizes or spec["sizes"]:
            if previous is not None:
                predicted = previous[1] * (n / previous[0]) ** spec["exponent"]
                if predicted > args.max_seconds and n != spec.get("required"):
                    print(f"  {operation} N={n:,}: skipped (predicted {predicted:,.0f} s > --max-seconds)", flush=True)
                    break
            load = os.getloadavg()[0]
            timeout = max(4 * args.max_seconds, 600) if n != spec.get("required") else 3_600
            result, error = run(operation, n, args.threads, timeout=timeout)
            if error:
                print(f"  {operation} N={n:,}: {error}", flush=True)
                break
            result["load"] = load
            rows.append((n, result))
            previous = (n, result["seconds"])
            print(f"  {operation} N={n:,}: {result['seconds']:.3f} s, peak +{result['peak_bytes'] / 1e6:.0f} MB "
                  f"({result['description']}; value {result['value']:.6g}; load {load:.1f})", flush=True)
        report[operation] = rows
    print(f"\nload average at end {os.getloadavg()}\n")
    if args.save:
        with open(args.save, "w") as file:
            json.dump({"date": str(datetime.date.today()), "rows": report}, file, indent=1)
    print_report(report)


def print_report(report):
    """The table of rows and the table of slopes, per operation and path (backend)."""
    print("| operation | N | time (s) | peak memory (MB) | bytes per point | details | load |")
    print("|---|---|---|---|---|---|---|")
    for operation, rows in report.items():
        for n, r in rows:
            print(f"| {operation} | {n:,} | {r['seconds']:.3g} | {r['peak_bytes'] / 1e6:.1f} "
                  f"| {r['peak_bytes'] / n:.0f} | {r['description']} | {r['load']:.1f} |")
    print("\n| operation | path | time slope (sizes) | memory slope (sizes) | linear memory (<= 1.1)? |")
    print("|---|---|---|---|---|")
    for operation, rows in report.items():
        for path in dict.fromkeys(r.get("path", "-") for _, r in rows):
            group = [(n, r) for n, r in rows if r.get("path", "-") == path]
            t_slope, t_sizes = slope(group, "seconds", 0.05)
            m_slope, m_sizes = slope([(n, {"peak": r["peak_bytes"] / 1e6}) for n, r in group], "peak", 0.2)

            def shown(value, sizes):
                return "-" if value is None else f"{value:.2f} (N = {min(sizes):,} to {max(sizes):,})"

            check = "-" if m_slope is None or (operation, path) not in KEOPS_PATHS else (
                "yes" if m_slope <= 1.1 else "NO"
            )
            print(f"| {operation} | {path} | {shown(t_slope, t_sizes)} | {shown(m_slope, m_sizes)} | {check} |")


if __name__ == "__main__":
    main()
