"""Worker of ``bench_lddmm.py`` for skshapes 0.3 (PyPI), run by the interpreter of its own virtualenv.

Not a test and not meant to be run by hand: ``bench_lddmm.py`` calls

    benchmarks/.venv-skshapes03/bin/python benchmarks/_lddmm_peer.py PROBLEM.npz OUT.npz REPEATS

in a fresh process with an empty ``KEOPS_CACHE_FOLDER``. The problem file holds the source and
target points and cells (edges for curves, triangles for meshes) and the settings; this worker
fits skshapes 0.3's ``Registration(ExtrinsicDeformation + OptimalTransportLoss, LBFGS)`` once
(first call: KeOps compiles its formulas), then ``REPEATS`` more times (warm), and writes the
morphed points of the last fit, the timings and skshapes 0.3's own ``fidelity_`` to OUT.npz
(and one JSON line on stdout). The shared import name is why this runs in another interpreter:
``import skshapes`` here is skshapes 0.3.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from _machine import polydata, time_fits


def main():
    problem_path, out_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(1)
    start = time.perf_counter()
    import skshapes as sks

    import_seconds = time.perf_counter() - start
    problem = np.load(problem_path)
    settings = json.loads(str(problem["settings"]))
    source = polydata(sks, problem["source_points"], problem["source_cells"])
    target = polydata(sks, problem["target_points"], problem["target_cells"])

    def fit():
        registration = sks.Registration(
            model=sks.ExtrinsicDeformation(n_steps=settings["n_steps"], kernel="gaussian", scale=settings["sigma"]),
            loss=sks.OptimalTransportLoss(loss="sinkhorn", blur=settings["blur"], scaling=settings["scaling"]),
            optimizer=sks.LBFGS(),
            n_iter=settings["peer_n_iter"],
            regularization_weight=settings["regularization"],
            gpu=False,
        )
        registration.fit(source=source, target=target)
        return registration

    timings, registration = time_fits(fit, repeats)
    result = {
        "import_s": import_seconds,
        **timings,
        "fidelity": float(registration.fidelity_),
        "regularization": float(registration.regularization_),
        "torch_threads": torch.get_num_threads(),
    }
    np.savez(out_path, morphed_points=registration.morphed_shape_.points.detach().numpy(), result=json.dumps(result))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
