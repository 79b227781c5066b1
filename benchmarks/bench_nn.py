"""Forward + backward time and peak memory of the sks.nn layers, KeOps against dense torch.

Run as a script (not a test)::

    .venv/bin/python benchmarks/bench_nn.py            # N = 1e3, 1e4, 1e5 (and 1e6 on a GPU)
    .venv/bin/python benchmarks/bench_nn.py --quick    # N = 1e3 and 3e3 only
    .venv/bin/python benchmarks/bench_nn.py --sizes 1000 5000 --layers quasi-geodesic

Problem: N points drawn uniformly on the unit sphere (normals = the points),
float32, features of C = 16 channels, 16 output channels.

- ``knn``: ``KNNConv(16, 16, k=16, aggr="max")`` (hidden width 16); KeOps and
  torch differ in the neighbour search only (``argKmin`` with ranges against
  blocked dense ``topk``), the messages are gathered and reduced by torch.
- ``quasi-geodesic``: ``QuasiGeodesicConv(16, 16, radius=0.1, hidden_channels=8)``;
  two reductions over all pairs (orientation, then filter), KeOps with a
  hand-written backward against dense torch row blocks kept for autograd.

Each row is also run on batches of ``--clouds`` clouds of N / clouds points
(default 1 and 10; PyG batching, block-diagonal KeOps ``ranges``), the
typical deep-learning setting, which costs ``clouds`` times fewer pairs::

    .venv/bin/python benchmarks/bench_nn.py --sizes 100000 --clouds 100

One fresh subprocess per configuration: it warms up (KeOps loads its
compiled formulas, compiled once and cached on disk; a first-ever run
compiles them, 10-30 s each) on clouds of 20 points, reads its resident
memory, then times ``--repeats`` rounds (one if the previous size predicts
more than 30 s) of forward + ``backward()`` of
``(out * w).sum()`` w.r.t. the features, the points and the weights, and
reports the median time and the peak resident memory above the pre-run level
(``resource.getrusage``; on CUDA, ``torch.cuda.max_memory_allocated``).

Skips rather than crashes: the dense quasi-geodesic path keeps
about ``2 H + 2 C + 14`` floats per pair for the backward pass, and a row whose
estimate exceeds half the available memory prints "out of memory (would need
X GB)"; a row whose time, extrapolated quadratically from the previous size,
exceeds ``--max-seconds`` prints "skipped (predicted X s)".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

CHANNELS, HIDDEN, K, RADIUS = 16, 8, 16, 0.1
LAYERS = ("knn", "quasi-geodesic")


def sphere(n, device, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    x = torch.randn(n, CHANNELS, generator=g)
    return x.to(device), pos.to(device), pos.clone().to(device)


def make_layer(name, backend, device):
    import torch

    from skshapes.nn import KNNConv, QuasiGeodesicConv

    torch.manual_seed(0)
    if name == "knn":
        layer = KNNConv(CHANNELS, CHANNELS, k=K, aggr="max", backend=backend)
    else:
        layer = QuasiGeodesicConv(CHANNELS, CHANNELS, radius=RADIUS, hidden_channels=HIDDEN, backend=backend)
    return layer.to(device)


def step(layer, name, n, clouds, device):
    """One forward + backward; returns the elapsed seconds."""
    import torch

    x, pos, normals = sphere(n, device)
    batch = None if clouds == 1 else torch.repeat_interleave(torch.arange(clouds, device=device), n // clouds)
    x.requires_grad_(True)
    pos.requires_grad_(True)
    weights = torch.cos(torch.arange(n * CHANNELS, device=device, dtype=torch.float32)).reshape(n, CHANNELS)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = layer(x, pos, batch) if name == "knn" else layer(x, pos, normals, batch)
    (out * weights).sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(pos.grad).all()
    return elapsed


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(name, backend, n, clouds, repeats, device_name):
    """Runs in a fresh process: prints one JSON line {seconds, peak_bytes}."""
    import torch

    device = torch.device(device_name)
    layer = make_layer(name, backend, device)
    step(layer, name, 20 * clouds, clouds, device)  # tiny warm-up: loads the KeOps modules, keeps the peak low
    baseline = resident_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = [step(layer, name, n, clouds, device) for _ in range(repeats)]
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peak_bytes": max(peak, 0)}))


def dense_bytes(name, n, clouds):
    """Memory that the dense torch path keeps for the backward pass (0: no quadratic term)."""
    if name == "knn":
        return 0
    # (B, N_b, .) blocks of offsets, window, hidden layer (before/after ReLU), filters, products: measured
    # 247 bytes per pair at N = 3000 (C = 16, H = 8), i.e. about 2 H + 2 C + 14 floats.
    return (n // clouds) ** 2 * clouds * (2 * HIDDEN + 2 * CHANNELS + 14) * 4


def available_bytes():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def run(name, backend, n, clouds, repeats, device, threads, timeout):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", name, backend, str(n), str(clouds), str(repeats), device]
    command += ["--threads", str(threads)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        return None, f"failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:]}"
    return json.loads(lines[-1]), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="numbers of points (default 1e3 1e4 1e5, + 1e6 on GPU)")
    parser.add_argument("--quick", action="store_true", help="N = 1e3 and 3e3, one repeat")
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--clouds", type=int, nargs="+", default=[1, 10], help="numbers of clouds per batch (default 1 10)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads (default 1)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="skip rows predicted to take longer")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.worker:
        name, backend, n, clouds, repeats, device = args.worker
        worker(name, backend, int(n), int(clouds), int(repeats), device)
        return

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    sizes = args.sizes or ([1000, 3000] if args.quick else [1000, 10_000, 100_000] + ([1_000_000] if device == "cuda" else []))
    repeats = 1 if args.quick else args.repeats
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"# sks.nn layers, forward + backward, float32, {device}; {datetime.date.today()}")
    print(f"# {cpu}, {os.cpu_count()} cores, {args.threads} thread(s); load {os.getloadavg()[0]:.2f}")
    print(f"# C = {CHANNELS} channels in and out; KNNConv k = {K}; QuasiGeodesicConv H = {HIDDEN}, radius = {RADIUS}")
    print()
    header = f"| {'layer':<15} | {'N':>9} | {'clouds':>6} | {'backend':<7} | {'time (s)':>10} | {'peak memory':>12} |"
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    limit = available_bytes() / 2
    for name in args.layers:
        for clouds in sorted(set(args.clouds)):
            for backend in ("keops", "torch"):
                previous = None  # (n, seconds) of the last size that ran
                for n in sizes:
                    if n % clouds or n // clouds < K + 1:
                        continue
                    row = f"| {name:<15} | {n:>9,} | {clouds:>6} | {backend:<7} |"
                    need = dense_bytes(name, n, clouds) if backend == "torch" and device == "cpu" else 0
                    predicted = previous[1] * (n / previous[0]) ** 2 if previous else 0
                    if need > limit:
                        print(f"{row} out of memory (would need {need / 1e9:.0f} GB) | - |", flush=True)
                        continue
                    if predicted > args.max_seconds:
                        print(f"{row} skipped (predicted {predicted:,.0f} s > --max-seconds) | - |", flush=True)
                        continue
                    rounds = repeats if predicted < 30 else 1
                    result, error = run(name, backend, n, clouds, rounds, device, args.threads, 4 * args.max_seconds)
                    if error:
                        print(f"{row} {error} | - |", flush=True)
                        continue
                    previous = (n, result["seconds"])
                    print(f"{row} {result['seconds']:>10.3f} | {result['peak_bytes'] / 1e6:>9.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
