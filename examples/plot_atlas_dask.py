"""
Atlas on a Dask cluster: one task per subject, on several processes or machines
===============================================================================

Estimating an :class:`~skshapes.Atlas` evaluates, at every step of the
optimiser, one data term and one deformation per subject, each with its
gradient. These terms are independent: :class:`~skshapes.Atlas` computes
them through :mod:`joblib`, so they can run on local processes
(``n_jobs=4``) or, inside ``with joblib.parallel_config(backend="dask"):``,
on a `Dask <https://www.dask.org>`_ cluster. The subjects' terms are added
in the same order whatever runs them, so the atlas does not depend on
where it was computed.

Here a local cluster of two worker processes (one thread each) is started
on this machine, the atlas of the five bundled hominid skull outlines
(2D, in the units of the data) is estimated on it, then again in this
process alone (``n_jobs=1``), and the two templates and the wall times are
compared. The figure shows both templates over the skulls, and the times.
(The atlas template moves slowly away from the schematic initial template:
see the gallery's example on tangent PCA for the mean shape of the atlas,
which looks like a skull.)

When Dask helps: with many subjects, or costly ones (dense 3D meshes,
many control points), and above all with several machines: replace the
local cluster by ``Client("scheduler-address:8786")``, the address of a
cluster started with ``dask scheduler`` and ``dask worker`` (or by
dask-jobqueue on an HPC cluster, dask-kubernetes...), and leave the rest
unchanged. Each evaluation of the objective sends one task per subject
(the template, the momentum and the subject travel each time), which
costs a few milliseconds to tens of milliseconds: it pays off only when
one subject's term takes more than about 100 ms. The five small skulls
of this example take much less, so Dask is slower here: the example
shows how to set it up and that the result is the same, not a speed-up.
With one GPU, keep ``n_jobs=1`` and compute on the GPU instead.

A script that starts worker *processes* (Dask's ``LocalCluster``, or
``n_jobs`` > 1 with joblib's default backend on some systems) must keep its
work under ``if __name__ == "__main__":``: each new process imports the
script again, and without that guard it would start a cluster of its own.

Installation: ``pip install "skshapes[dask]"`` (Dask and distributed).
"""

import logging
import time

import joblib
import torch
from _common import setup

import skshapes as sks
from skshapes.datasets import load_skulls


def make_atlas(template, n_iter, n_steps, n_jobs=None):
    """The atlas of the gallery's example on tangent PCA: LDDMM (sigma 20), Sinkhorn loss."""
    return sks.Atlas(
        sks.LDDMM(sigma=20.0, n_steps=n_steps), sks.SinkhornLoss(blur=1.0, scaling=0.8),
        regularization_weight=1e-3, n_iter=n_iter, template=template, n_jobs=n_jobs,
    )


def prepare_worker():
    """Run once on each worker: one torch thread, and the imports done before the timing starts."""
    import contextlib
    import io

    torch.set_num_threads(1)
    with contextlib.redirect_stdout(io.StringIO()):  # pykeops prints a banner when it finds no GPU
        import geomloss  # noqa: F401


def draw(ax, shape, color, label=None, width=1.6, style="-", alpha=1.0):
    """A 2D curve on a matplotlib axes."""
    from matplotlib.collections import LineCollection

    points = shape.points.detach().cpu().numpy()
    ax.add_collection(LineCollection(points[shape.edges.cpu().numpy()], colors=color, linewidths=width,
                                     linestyles=style, alpha=alpha, label=label, capstyle="round"))


# %%
# Everything below runs in the main process only (see the text above).
if __name__ == "__main__":
    example = setup(__file__, __doc__)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print('This example needs Dask: pip install "skshapes[dask]" (or pip install "dask[distributed]")')
        raise SystemExit(0) from None

    skulls = load_skulls()
    n_iter, n_steps = example.pick(20, 3), example.pick(5, 3)

    # Start a cluster of two worker processes on this machine (no web
    # dashboard), and connect to it. With a remote cluster, only this line
    # changes: ``client = Client("scheduler-address:8786")``.
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(prepare_worker)
    cluster_seconds = time.perf_counter() - start
    print(f"local Dask cluster of {len(client.scheduler_info()['workers'])} workers started in "
          f"{cluster_seconds:.1f} s")

    # The atlas on the cluster: joblib hands the subjects' terms to Dask.
    try:
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            on_dask = make_atlas(skulls.template, n_iter, n_steps).fit(skulls.shapes)
        dask_seconds = time.perf_counter() - start
    finally:
        client.close()
        cluster.close()

    # The same atlas in this process.
    start = time.perf_counter()
    local = make_atlas(skulls.template, n_iter, n_steps, n_jobs=1).fit(skulls.shapes)
    local_seconds = time.perf_counter() - start

    # The two templates, compared with the size of the template (its
    # diameter, the largest distance between two of its points).
    points = local.template_.points
    diameter = float(torch.cdist(points, points).max())
    difference = float((on_dask.template_.points - points).norm(dim=1).max())
    results = {
        "template_difference": difference,
        "relative_template_difference": difference / diameter,
        "template_diameter": diameter,
        "data_term_difference": float((on_dask.data_losses_ - local.data_losses_).abs().max()),
        "iterations": float(on_dask.n_iter_),
        "cluster_seconds": cluster_seconds,
        "dask_seconds": dask_seconds,
        "local_seconds": local_seconds,
    }
    print(f"{n_iter} iterations on Dask: {dask_seconds:.1f} s; in this process (n_jobs=1): {local_seconds:.1f} s")
    print(f"largest distance between the two templates: {difference:.3g} data units "
          f"({difference / diameter:.2g} of the template's diameter, {diameter:.0f} units)")

    # The figure: the two templates over the skulls, and the wall times.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.6), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.25, 1))
    for index, skull in enumerate(skulls.shapes):
        draw(left, skull, "#9a9a9a", "the five skulls" if index == 0 else None, width=0.9, alpha=0.8)
    draw(left, skulls.template, "#2ca02c", "initial template", width=1.2, style=":")
    draw(left, local.template_, "#1f77b4", "atlas template, in this process", width=4.5)
    draw(left, on_dask.template_, "#ff7f0e", "atlas template, on Dask", width=1.6, style="--")
    left.autoscale_view()
    left.set_aspect("equal", adjustable="datalim")
    left.set_xlabel("x (data units)")
    left.set_ylabel("y (data units)")
    left.grid(True, color="#e6e6e6", linewidth=0.6)
    left.set_axisbelow(True)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=8, ncol=2, frameon=False)
    agreement = ("identical to the last digit" if difference == 0 else
                 f"largest distance {difference:.2g} units, {difference / diameter:.1g} of the template's diameter")
    left.set_title(f"Atlas templates after {on_dask.n_iter_} iterations, on Dask and in this process:\n"
                   f"{agreement}", fontsize=10)

    labels = ["start the cluster\n(2 worker processes)", "atlas on Dask\n(2 workers)",
              "atlas in this process\n(n_jobs=1)"]
    seconds = [cluster_seconds, dask_seconds, local_seconds]
    bars = right.bar(labels, seconds, color=["#c7c7c7", "#ff7f0e", "#1f77b4"], edgecolor="black", linewidth=0.6)
    right.bar_label(bars, labels=[f"{s:.1f} s" for s in seconds], padding=3)
    right.set_ylabel("wall time (seconds)")
    right.set_ylim(0, 1.2 * max(seconds))
    right.tick_params(axis="x", labelsize=9)
    right.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
    right.set_axisbelow(True)
    if dask_seconds > local_seconds:
        verdict = "Dask slower: sending the tasks costs more than\nthe work on five small skulls"
    else:
        verdict = "Dask faster: the subjects' terms outweigh\nthe cost of sending them"
    right.set_title(f"Wall times ({verdict})", fontsize=10)
    fig.suptitle("Atlas of five skull outlines computed on a local Dask cluster and in a single process", fontsize=12)
    fig.savefig(example.figure, facecolor="white")
    example.wrote(example.figure)

# %%
# On a cluster of many machines, start the scheduler and the workers there,
# for example ``dask scheduler`` on one machine and ``dask worker
# scheduler-address:8786 --nthreads 1`` on each of the others (each with
# skshapes installed), then run this script with ``Client("scheduler-address:8786")``.
