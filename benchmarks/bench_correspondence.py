"""Dense-correspondence accuracy on the simulated faces: skshapes vs MeshMonk.

Run as a script (not a test)::

    .venv/bin/python -m pip install meshmonk        # once, optional (MeshMonk 0.3.0, prebuilt wheel)
    .venv/bin/python benchmarks/bench_correspondence.py             # 10 faces, both contenders
    .venv/bin/python benchmarks/bench_correspondence.py --quick     # 3 faces, smaller budgets
    .venv/bin/python benchmarks/bench_correspondence.py --n-faces 2 --no-multiscale-demo
    .venv/bin/python benchmarks/bench_correspondence.py --n-faces 0 --no-meshmonk   # the multiscale demo only

Problem: the 45 simulated SIMPOP faces share the template's triangles, so
vertex i of the template corresponds to vertex i of every face. For each of
the first ``--n-faces`` faces, the face is put in a random rigid pose
(rotation of at most 20 degrees about a random axis, shift of at most 10 mm,
about its centroid, ``numpy.random.default_rng(--seed)``) and the
full-resolution template (7,160 vertices) is registered onto it *without*
the correspondence. The error is |morphed template vertex i - posed face
vertex i| in mm: its mean and 95th percentile (over the vertices of all the
faces run, and per face), and the wall time per face.

Contenders

- ``skshapes`` (this library), three stages composed by feeding the morphed
  template of one stage as the source of the next (morphing keeps the vertex
  order):

  1. ``RigidMotion`` then ``Similarity`` (the faces differ in scale by
     0.92-1.16), ``SinkhornLoss`` (blur 3 then 2 mm), on both meshes
     decimated to 400 vertices; the fitted motion is applied to the full
     template with ``Registration.transform``;
  2. ``LDDMM`` (Gaussian kernels of 20 + 10 mm, 200 control points, 5 Euler
     steps, regularization weight 0.01) + ``SinkhornLoss`` (blur 1 mm,
     scaling 0.6), 40 L-BFGS iterations on the pair decimated to 1,000
     vertices, then carried to the 7,160 template vertices with
     ``transform`` (``multiscale=[250]`` at this stage gave the same error
     for 25% more time);
  3. each morphed vertex is moved to its closest point on the target surface
     (``skshapes.dysmorphology.closest_points_on_mesh``; no correspondence used).
     The error is printed before ("flow") and after ("+ proj") this step.

- ``MeshMonk`` 0.3.0 (``pip install meshmonk``) in the best configuration of
  ``../shared/PEERS.md``: ``features_from_vertices`` for both meshes,
  ``rigid_register(num_iterations=80, use_scaling=True)`` then
  ``pyramid_register(num_iterations=90, num_pyramid_layers=3)``. Skipped with
  a message if it is not importable. Its result is also projected onto the
  target surface ("+ proj"), for a like-for-like comparison.

Also printed (``--no-multiscale-demo`` to skip): on face 1, the LDDMM stage
run directly on the full-resolution template -> face problem, single-scale
(6, 9, 12 and 15 iterations) against coarse to fine (``multiscale=[450, 1800]``,
20 and 15 iterations on the coarse levels, 2, 3 or 4 at full resolution): final loss and seconds, and which
single-scale runs each coarse-to-fine run beats (a lower or equal final loss
in fewer seconds).

One torch thread (``--threads``): on a shared 2-core machine more threads
oversubscribe the cores and make torch many times slower. The load average
is printed next to the timings.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import numpy as np
import torch

from _correspondence_mesh import apply_pose, random_poses
from _machine import cpu_model

from skshapes.dysmorphology import closest_points_on_mesh


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-faces", type=int, default=None, help="faces SIMPOP_01.. to run (default 10, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 faces and about half the iterations")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random poses")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-meshmonk", action="store_true", help="run skshapes only")
    parser.add_argument("--no-multiscale-demo", action="store_true", help="skip coarse-to-fine vs single-scale")
    args = parser.parse_args()
    if args.n_faces is None:
        args.n_faces = 3 if args.quick else 10
    return args


def load_average():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average n/a"


# --------------------------------------------------------------------------- skshapes
def skshapes_pipeline(template, target, quick=False):
    """Register ``template`` onto ``target`` (PolyData, full resolution); returns the morphed vertices (N, 3) and a dict of stage times."""
    import skshapes as sks

    scale = 0.5 if quick else 1.0
    times = {}
    start = time.perf_counter()
    source = template
    # Stage 1: rigid then similarity, on 400-vertex decimations (fast, and the pose is a global property).
    small_target = target.decimate(400)
    for model, blur in ((sks.RigidMotion(), 3.0), (sks.Similarity(), 2.0)):
        registration = sks.Registration(
            model, sks.SinkhornLoss(blur=blur, scaling=0.6), regularization_weight=0.0,
            n_iter=max(5, int(30 * scale)), tol=1e-5,
        ).fit(source.decimate(400), small_target)
        source = registration.transform(source)
    times["linear"] = time.perf_counter() - start

    # Stage 2: LDDMM with control points, coarse to fine on the 1,000-vertex pair, then carried to every vertex.
    start = time.perf_counter()
    registration = sks.Registration(
        LDDMM_MODEL(),
        sks.SinkhornLoss(blur=1.0, scaling=0.6, backend="torch"),
        regularization_weight=1e-2,
        n_iter=max(5, int(40 * scale)),
        tol=1e-6,
    ).fit(source.decimate(1000), target.decimate(1000))
    flow = registration.transform(source).points.detach().double().numpy()
    times["lddmm"] = time.perf_counter() - start

    # Stage 3: closest point on the target surface.
    start = time.perf_counter()
    projected = closest_points_on_mesh(flow, target.points.double().numpy(), target.triangles.numpy())
    times["projection"] = time.perf_counter() - start
    return flow, projected, times


def LDDMM_MODEL():
    import skshapes as sks

    return sks.LDDMM(sigma=[20.0, 10.0], n_steps=5, integrator="euler", control_points=200)


def multiscale_demo(template, target, quick=False):
    """Single-scale vs coarse-to-fine LDDMM + Sinkhorn on the full-resolution template -> face (after a similarity)."""
    import skshapes as sks

    source = template
    for model in (sks.RigidMotion(), sks.Similarity()):
        registration = sks.Registration(model, sks.SinkhornLoss(blur=2.0, scaling=0.6), regularization_weight=0.0,
                                        n_iter=30, tol=1e-5).fit(source.decimate(400), target.decimate(400))
        source = registration.transform(source)
    loss = sks.SinkhornLoss(blur=2.0, scaling=0.5)
    # Loss against time: single-scale at four budgets (about 3-4 s per full-resolution iteration here), coarse to
    # fine with 2, 3 and 4 full-resolution iterations after two cheap levels (L-BFGS carries its curvature memory).
    runs = {f"single-scale, {n} iterations": dict(n_iter=max(2, n // 2) if quick else n) for n in (6, 9, 12, 15)}
    for n in (2, 3, 4):
        runs[f"coarse-to-fine [450, 1800, full], [20, 15, {n}]"] = dict(
            n_iter=[10, 8, max(1, n // 2)] if quick else [20, 15, n], multiscale=[450, 1800]
        )
    rows = []
    for name, options in runs.items():
        start = time.perf_counter()
        registration = sks.Registration(LDDMM_MODEL(), loss, regularization_weight=1e-2, tol=1e-6, **options)
        registration.fit(source, target)
        seconds = time.perf_counter() - start
        levels = getattr(registration, "levels_", [])
        detail = ", ".join(f"{lv['n_source_points']} pts: {lv['n_iter']} it {lv['seconds']:.1f} s" for lv in levels)
        rows.append((name, registration.loss_, seconds, detail))
    return rows


def multiscale_verdict(rows):
    """For each coarse-to-fine run, the single-scale runs it beats: a lower or equal final loss in fewer seconds."""
    single = [row for row in rows if row[0].startswith("single")]
    lines = []
    for name, loss, seconds, _ in (row for row in rows if not row[0].startswith("single")):
        beaten = [f"{other} ({other_loss:.4f} in {other_s:.1f} s)" for other, other_loss, other_s, _ in single
                  if loss <= other_loss and seconds < other_s]
        lines.append(f"  {name}: {loss:.4f} in {seconds:.1f} s beats " + (", ".join(beaten) or "no single-scale run"))
    return "\n".join(lines)


# --------------------------------------------------------------------------- MeshMonk
def meshmonk_pipeline(meshmonk, vertices, triangles, target_vertices):
    """PEERS.md's best MeshMonk configuration; returns the morphed template vertices (N, 3)."""
    faces = triangles.astype(np.int32)
    floating = meshmonk.features_from_vertices(vertices.astype(np.float32), faces)
    target = meshmonk.features_from_vertices(target_vertices.astype(np.float32), faces)
    rigid = meshmonk.rigid_register(floating_features=floating, target_features=target, floating_faces=faces,
                                    target_faces=faces, num_iterations=80, use_scaling=True)
    pyramid = meshmonk.pyramid_register(floating_features=rigid.aligned_features, target_features=target,
                                        floating_faces=faces, target_faces=faces, num_iterations=90,
                                        num_pyramid_layers=3)
    return np.asarray(pyramid.aligned_vertices, dtype=np.float64)


# --------------------------------------------------------------------------- main
def summary(errors):
    errors = np.concatenate(errors) if isinstance(errors, list) else errors
    return errors.mean(), np.percentile(errors, 95)


def report(results, seconds):
    """The "all" row (every vertex of every face) and the verdict against MeshMonk."""
    cells = []
    for key in ("ours (flow)", "ours + proj"):
        cells.append("%6.3f / %6.3f" % summary(results[key]))
    row = f"{'all':<10} " + " ".join(cells) + f" {np.mean(seconds['ours']):6.1f} |"
    if results["MeshMonk"]:
        row += " " + " ".join("%6.3f / %6.3f" % summary(results[key]) for key in ("MeshMonk", "MeshMonk + proj"))
        row += f" {np.mean(seconds['MeshMonk']):5.1f}"
    print(row)
    print("(all: mean and 95th percentile over every vertex of every face; time: mean per face)")
    print(f"# {load_average()}")

    if results["MeshMonk"]:
        ours_mean, theirs_mean = summary(results["ours + proj"])[0], summary(results["MeshMonk"])[0]
        verdict = "lower" if ours_mean < theirs_mean else "higher"
        print(f"\nskshapes (+ proj) mean error {ours_mean:.3f} mm is {verdict} than MeshMonk's {theirs_mean:.3f} mm "
              f"(ratio {ours_mean / theirs_mean:.2f}).")


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import skshapes as sks
    from skshapes.datasets import load_faces

    try:
        import meshmonk
    except ImportError:
        meshmonk = None
    if args.no_meshmonk:
        meshmonk = None

    print(f"# Dense correspondence, template -> {args.n_faces} posed SIMPOP faces ({datetime.date.today()})")
    print(f"# {cpu_model()}, torch {torch.__version__} ({args.threads} thread), "
          f"skshapes {getattr(sks, '__version__', '?')}, {load_average()}")
    if meshmonk is None and not args.no_meshmonk:
        print("# MeshMonk is not installed: running skshapes only. Install it with\n"
              "#     .venv/bin/python -m pip install meshmonk")
    elif meshmonk is not None:
        print(f"# MeshMonk {getattr(meshmonk, '__version__', '')}".rstrip())

    faces = load_faces()
    template = faces.template
    triangles = template.triangles.numpy()
    vertices = template.points.double().numpy()
    poses = random_poses(max(args.n_faces, 1), seed=args.seed)  # face 1's pose also serves the multiscale demo
    results = {"ours (flow)": [], "ours + proj": [], "MeshMonk": [], "MeshMonk + proj": []}
    seconds = {"ours": [], "MeshMonk": []}
    header = f"{'face':<10} {'ours flow':>15} {'ours + proj':>15} {'s':>6} | {'MeshMonk':>15} {'MM + proj':>15} {'s':>5}"
    print("\nmean / 95th percentile error in mm per face, wall time in s")
    print(header)
    print("-" * len(header))
    for k in range(args.n_faces):
        face = faces.shapes[k]
        truth = apply_pose(face.points.double().numpy(), poses[k])
        target = face.with_points(torch.as_tensor(truth, dtype=template.dtype))
        target_triangles = face.triangles.numpy()

        start = time.perf_counter()
        flow, projected, _ = skshapes_pipeline(template, target, quick=args.quick)
        seconds["ours"].append(time.perf_counter() - start)
        ours = [np.linalg.norm(p - truth, axis=1) for p in (flow, projected)]
        results["ours (flow)"].append(ours[0])
        results["ours + proj"].append(ours[1])
        row = f"{faces.names[k]:<10} " + " ".join(f"{e.mean():6.3f} / {np.percentile(e, 95):6.3f}" for e in ours)
        row += f" {seconds['ours'][-1]:6.1f} |"
        if meshmonk is not None:
            start = time.perf_counter()
            morphed = meshmonk_pipeline(meshmonk, vertices, triangles, truth)
            seconds["MeshMonk"].append(time.perf_counter() - start)
            theirs = [morphed, closest_points_on_mesh(morphed, truth, target_triangles)]
            theirs = [np.linalg.norm(p - truth, axis=1) for p in theirs]
            results["MeshMonk"].append(theirs[0])
            results["MeshMonk + proj"].append(theirs[1])
            row += " " + " ".join(f"{e.mean():6.3f} / {np.percentile(e, 95):6.3f}" for e in theirs)
            row += f" {seconds['MeshMonk'][-1]:5.1f}"
        print(row, flush=True)

    if args.n_faces:
        print("-" * len(header))
        report(results, seconds)

    if not args.no_multiscale_demo:
        face = faces.shapes[0]
        target = face.with_points(torch.as_tensor(apply_pose(face.points.double().numpy(), poses[0]),
                                                  dtype=template.dtype))
        print(f"\nCoarse-to-fine vs single-scale, LDDMM + SinkhornLoss(blur=2) on the {template.n_points}-vertex "
              f"template -> {faces.names[0]} (after a similarity):")
        rows = multiscale_demo(template, target, quick=args.quick)
        for name, loss, secs, detail in rows:
            print(f"  {name:<46} final loss {loss:8.4f}  {secs:6.1f} s   ({detail})")
        print(multiscale_verdict(rows))
        print(f"# {load_average()}")


if __name__ == "__main__":
    main()
