"""Faults in population runs: a killed Dask worker and a killed process lose no result.

1. A population registration (the correspondence stage of ``DysmorphologyAnalysis``: the template
   registered onto every face) runs on a ``dask.distributed.LocalCluster`` of two worker processes
   through ``joblib.parallel_config(backend="dask")``. As soon as the scheduler reports a registration
   running on a worker, that worker's process is killed with SIGKILL. Its nanny restarts it and the
   scheduler runs the lost task again; every subject's correspondence must be there and equal those of a
   clean, sequential run.
2. A checkpointed atlas fit runs in a subprocess. Right after its first checkpoint, the subprocess is
   killed with SIGKILL (it waits to be killed there, so that the kill always lands mid-fit); a new fit
   with the same ``checkpoint_dir`` resumes from the checkpoint and must give the atlas of an
   uninterrupted fit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import joblib
import numpy as np
import pytest
import torch

from skshapes.datasets import make_dysmorphic_faces
from skshapes.dysmorphology import DysmorphologyAnalysis
from skshapes.statistics import atlas as atlas_module

# a small registration budget: the test checks the plumbing, not the accuracy
SMALL = {"alignment_points": 100, "alignment_n_iter": 5, "lddmm_points": 150, "control_points": 20, "n_iter": 4}


def _analysis(n_jobs):
    return DysmorphologyAnalysis(correspondence="registration", registration_parameters=SMALL, n_components=2,
                                 n_splits=2, n_permutations=20, random_state=0, n_jobs=n_jobs)


def test_a_killed_dask_worker_loses_no_subject():
    distributed = pytest.importorskip("dask.distributed")
    data = make_dysmorphic_faces(n_subjects=6, effect_mm=4.0, resolution=500, random_state=0)
    clean = _analysis(None).fit(data.shapes, data.labels, data.covariates)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)  # worker address -> process id
        killed = []

        def kill_a_busy_worker():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [address for address, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                    return
                time.sleep(0.02)

        import threading

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        with joblib.parallel_config(backend="dask"):
            on_dask = _analysis(2).fit(data.shapes, data.labels, data.covariates)
        killer.join()

    assert killed, "no worker was busy: the kill did not happen"
    assert on_dask.correspondences_.shape == clean.correspondences_.shape == (6, data.template.n_points, 3)
    gap = np.abs(on_dask.correspondences_ - clean.correspondences_).max()
    assert gap < 1e-4, gap  # mm; the same float32 computation in another process


ATLAS_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_atlas import make_atlas
    from skshapes.datasets import load_skulls
    from skshapes.statistics import atlas as atlas_module

    write = atlas_module.Atlas._write_checkpoint

    def write_then_wait(self, *args):
        write(self, *args)
        print("checkpoint", flush=True)
        time.sleep(600)  # killed here by the test

    atlas_module.Atlas._write_checkpoint = write_then_wait
    skulls = load_skulls()
    make_atlas(skulls, checkpoint_dir={directory!r}, checkpoint_every=2).fit(skulls.shapes)
    """
)


def test_a_killed_checkpointed_atlas_fit_resumes_to_the_same_atlas(tmp_path):
    from test_atlas import make_atlas

    from skshapes.datasets import load_skulls

    script = ATLAS_SCRIPT.format(tests=os.path.dirname(__file__), directory=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    try:
        for line in process.stdout:
            if line.strip() == "checkpoint":
                break
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        process.kill()
    saved = torch.load(tmp_path / atlas_module.CHECKPOINT_NAME, weights_only=False)
    assert len(saved["history"]["total"]) == 2  # killed mid-fit, right after the first checkpoint

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the subprocess
    try:
        skulls = load_skulls()
        reference = make_atlas(skulls).fit(skulls.shapes)
        resumed = make_atlas(skulls, checkpoint_dir=tmp_path, checkpoint_every=2).fit(skulls.shapes)
    finally:
        torch.set_num_threads(previous)
    assert resumed.n_iter_ == reference.n_iter_
    diameter = float(torch.cdist(reference.template_.points, reference.template_.points).max())
    gap = float(torch.linalg.norm(resumed.template_.points - reference.template_.points, dim=1).max())
    assert gap < 1e-6 * diameter
    assert resumed.loss_history_["total"] == pytest.approx(reference.loss_history_["total"], rel=1e-6)
