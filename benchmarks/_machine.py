"""What every benchmark shares: the machine line, and the timing of first and warm fits.

Imported by the scripts of this folder, run from the repository root; also by ``_lddmm_peer.py`` in the
virtualenv of skshapes 0.3, so nothing here imports skshapes (torch only inside :func:`polydata`).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time


def cpu_model() -> str:
    """``"<CPU model name>, <N> cores"`` from ``lscpu`` (``platform.processor()`` where lscpu is missing)."""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (KeOps runs the C++ compiler as a child)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def time_fits(fit, repeats: int):
    """Call ``fit()`` once (the first call: compilation, caches) then ``repeats`` times more (warm).

    Returns ``(timings, fitted)``: wall and CPU seconds (``first_s``, ``warm_s``, ``first_cpu_s``,
    ``warm_cpu_s``: medians of the warm calls, ``None`` without any; ``all_s``: every call), and what the
    last call of ``fit`` returned.
    """
    seconds, cpu, fitted = [], [], None
    for _ in range(1 + repeats):
        begin, begin_cpu = time.perf_counter(), cpu_seconds()
        fitted = fit()
        seconds.append(time.perf_counter() - begin)
        cpu.append(cpu_seconds() - begin_cpu)
    timings = {
        "first_s": seconds[0],
        "warm_s": statistics.median(seconds[1:]) if repeats else None,
        "first_cpu_s": cpu[0],
        "warm_cpu_s": statistics.median(cpu[1:]) if repeats else None,
        "all_s": seconds,
    }
    return timings, fitted


def polydata(sks, points, cells):
    """``sks.PolyData`` (of either skshapes) from float32 points and (E, 2) edges or (T, 3) triangles."""
    import torch

    points = torch.as_tensor(points, dtype=torch.float32)
    cells = torch.as_tensor(cells, dtype=torch.int64)
    return sks.PolyData(points, edges=cells) if cells.shape[1] == 2 else sks.PolyData(points, triangles=cells)
