"""The machine line printed by every benchmark (imported by the scripts of this folder, run from the repository root)."""

from __future__ import annotations

import os
import platform
import subprocess


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
