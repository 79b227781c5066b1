"""LDDMM registration: skshapes vs skshapes 0.3 (PyPI), wall time and final data loss side by side.

Run as a script (not a test)::

    .venv/bin/python benchmarks/bench_lddmm.py              # 5 skulls + the face (about 30 min here)
    .venv/bin/python benchmarks/bench_lddmm.py --quick      # one skull (neandertalis), about 5 min
    .venv/bin/python benchmarks/bench_lddmm.py --workdir /tmp/lddmm --reuse-peer   # ours again, peer cached

The peer is the seed's own library, skshapes 0.3 from PyPI. It shares our import
name, so the script installs it, if missing, into its own virtual environment
``benchmarks/.venv-skshapes03`` (``torch==2.13.0``, the CPU wheel, with
``--find-links /opt/wheels`` when that folder exists, as the Makefile does; then
``skshapes==0.3 jaxtyping==0.3.2``, see ``../shared/PEERS.md``), and runs it in a
subprocess of that interpreter (``_lddmm_peer.py``).

Problems (the same input points and cells for both libraries, written to a file):

- skulls: the 2D template curve (150 points) onto each hominid skull of
  :func:`skshapes.datasets.load_skulls` (178-206 points), with the peer
  configuration of PEERS.md: Gaussian kernel of width 20, 5 time steps, debiased
  Sinkhorn with blur 1 and scaling 0.9, regularization weight 0.01, 5 L-BFGS
  ``step()`` calls for the peer.
- face: ``faces/Template_1K.obj`` (1,049 vertices) onto SIMPOP_01 at about 1k
  vertices (``load_faces(resolution=1000)``, 1,009 vertices), centred on the
  template's centroid and then put in a rigid pose (rotation of 15 degrees about
  a random axis through its centroid, translation of 5 mm in a random direction,
  seed 0): kernel width 25 mm, 5 time steps, blur 2 mm, scaling 0.8,
  regularization weight 0.01, 2 L-BFGS ``step()`` calls for the peer (one
  evaluation of the peer's objective takes about 3.5 s of CPU here).

Both libraries minimise ``data(morphed source, target) + 0.01 * H(q0, p0)`` with
the same Gaussian kernel ``exp(-|x - y|^2 / (2 sigma^2))``, the same Hamiltonian
``H = 1/2 p^T K(q, q) p`` (momenta on every source point) and the same explicit
Euler scheme with 5 steps; the data term is GeomLoss's debiased Sinkhorn
divergence with cost ``|x - y|^2 / 2``, but on different measures of one shape:
ours puts the segment lengths or vertex areas on the vertices, skshapes 0.3 the
segment lengths or triangle areas on the segment midpoints or triangle
centroids. Each side is better on its own definition by construction (by 5-10%
on the skulls), so the final data loss of *both* results is recomputed here, in
this process, on three measures: ours (``SinkhornLoss``), the peer's (equal to
its ``fidelity_``), and a dense one that favours neither, close to the length or
area measure of the curve or surface itself (each segment cut in 8, each
triangle in 4: see :func:`data_losses`). The verdict uses the dense one.

L-BFGS budgets differ in meaning: a ``step()`` of skshapes 0.3's optimiser is up
to 20 L-BFGS iterations (``torch.optim.LBFGS`` defaults, 25 objective
evaluations), while our ``n_iter`` counts single iterations (each with its
strong-Wolfe line search). Our budget (``OURS`` below) is the smallest round
number of iterations after which more iterations stopped lowering the dense
data loss below the peer's on the problems here, with ``tol=0`` (we stop only
when an iteration makes no progress at all: both optimisers end that way on
the skulls, when the line search fails on the inexact Sinkhorn gradient).

Timings: each side runs each problem in a fresh process (``torch`` one thread,
``OMP_NUM_THREADS=1``), fits once ("first call"), then ``--repeats`` more times
("warm": the median). Each side has its own KeOps cache folder
(``KEOPS_CACHE_FOLDER``), empty at the start of the run: a first call that
compiles KeOps formulas (files appear in that folder) is marked †, the later
problems find them on disk. skshapes 0.3 always uses KeOps for its kernels (†
on the first skull and on the face). Ours picks dense torch or KeOps per
operation and size (``skshapes.reductions.choose_backend``): dense torch at
these sizes with the thresholds of 2026-11-23, its only compilation being the
one-formula check of ``keops_available()`` on its first call (†). Imports are
not timed. The machine's load average is printed: on a shared machine the
timings move with it.

The speed-ups once measured here as run-time patches (``--proposed-fixes``,
removed) are in the library: the clamped dense soft-min and the cached target
term of ``SinkhornLoss`` (``skshapes/losses/sinkhorn.py``), and the L-BFGS
closure that reuses the evaluation at which the previous line search stopped
(``skshapes.optimization._stepper``; the patch kept the last 4 evaluations, which
would save 0-2 of the 60-143 evaluations of a skull fit here).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _machine import cpu_model, polydata, time_fits

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-skshapes03"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PEER_WORKER = HERE / "_lddmm_peer.py"
PEER_STAMP = PEER_VENV / ".installed-stamp"
TORCH_PIN = "torch==2.13.0"
PEER_PINS = ("skshapes==0.3", "jaxtyping==0.3.2")  # jaxtyping >= 0.3.3 breaks ExtrinsicDeformation(n_steps > 1)

#: Problem settings shared by both libraries. ``peer_n_iter``: L-BFGS ``step()`` calls of skshapes 0.3.
SKULL = {"sigma": 20.0, "n_steps": 5, "blur": 1.0, "scaling": 0.9, "regularization": 0.01, "peer_n_iter": 5}
FACE = {"sigma": 25.0, "n_steps": 5, "blur": 2.0, "scaling": 0.8, "regularization": 0.01, "peer_n_iter": 2}
FACE_POSE = {"degrees": 15.0, "millimetres": 5.0, "seed": 0}

#: Our configuration: ``Registration(LDDMM(sigma, n_steps, integrator), SinkhornLoss(blur, scaling),
#: regularization_weight, n_iter, tol)``. Euler, the peer's scheme (rk4 integrates the same flow more
#: accurately for 4 kernel evaluations per step: another discretisation of the problem); tol=0 because L-BFGS on the Sinkhorn loss crawls for a
#: few iterations before it speeds up again (with tol=1e-7 it stopped after 29 iterations on
#: neandertalis, dense data loss 8.77 against the peer's 8.0; 40 iterations gave 8.39, 60 gave 7.94;
#: on the face, 40 iterations gave 4.67 against the peer's 4.81, and the loss is flat from 30 on).
OURS = {
    "skull": {"integrator": "euler", "n_iter": 60, "tol": 0.0},
    "face": {"integrator": "euler", "n_iter": 30, "tol": 0.0},
}


# -------------------------------------------------------------- peer venv
def ensure_peer_venv() -> None:
    """Create ``.venv-skshapes03`` with skshapes 0.3 and a CPU torch 2.13.0, unless already done."""
    if PEER_STAMP.is_file() and PEER_PYTHON.is_file():
        return
    print(f"installing skshapes 0.3 into {PEER_VENV} (once)...", flush=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not PEER_PYTHON.is_file():
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    find_links = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
    pip = [str(PEER_PYTHON), "-m", "pip", "install", "--quiet", *find_links]
    subprocess.run([*pip, TORCH_PIN], check=True)
    # torch pinned again so that pip keeps the CPU build instead of pulling a CUDA one
    subprocess.run([*pip, TORCH_PIN, *PEER_PINS], check=True)
    listing = subprocess.run(
        [str(PEER_PYTHON), "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True
    ).stdout
    packages = {p["name"].lower(): p["version"] for p in json.loads(listing)}
    cuda = sorted(name for name in packages if name.startswith("nvidia-"))
    if cuda or not packages.get("torch", "").startswith("2.13.0"):
        raise RuntimeError(f"the peer venv got torch {packages.get('torch')} and {cuda}: expected the CPU torch 2.13.0")
    PEER_STAMP.write_text(" ".join([TORCH_PIN, *PEER_PINS]) + "\n")


# --------------------------------------------------------------- problems
def skull_problems(quick: bool):
    from skshapes.datasets import SKULL_NAMES, load_skulls

    skulls = load_skulls()
    names = ("neandertalis",) if quick else SKULL_NAMES
    for name in names:
        target = skulls.shapes[SKULL_NAMES.index(name)]
        yield f"skull {name}", skulls.template, target, dict(SKULL, kind="skull")


def face_problem():
    import skshapes as sks
    from skshapes.datasets import get_data_dir, load_faces

    source = sks.read(get_data_dir("faces") / "faces" / "Template_1K.obj")
    face = load_faces(resolution=1000).shapes[0]
    generator = torch.Generator().manual_seed(FACE_POSE["seed"])
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    direction = torch.randn(3, generator=generator, dtype=torch.float64)
    rotation = _rotation(axis / axis.norm(), math.radians(FACE_POSE["degrees"]))
    points = face.points.double()
    centre = points.mean(0)
    posed = (points - centre) @ rotation.T + source.points.double().mean(0)
    posed = posed + FACE_POSE["millimetres"] * direction / direction.norm()
    target = face.with_points(posed.to(face.dtype))
    return "face 1K → SIMPOP_01", source, target, dict(FACE, kind="face")


def _rotation(axis, angle):
    """Rodrigues' rotation matrix about a unit axis."""
    x, y, z = axis.tolist()
    cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def _cells(shape):
    return shape.edges if shape.kind == "curve" else shape.triangles


def write_problem(path: Path, source, target, settings) -> None:
    np.savez(
        path,
        source_points=source.points.numpy(),
        source_cells=_cells(source).numpy(),
        target_points=target.points.numpy(),
        target_cells=_cells(target).numpy(),
        settings=json.dumps(settings),
    )


def _same_problem(path: Path, source, target, settings) -> bool:
    """Whether ``path`` holds this very problem (so that a stored skshapes 0.3 result may be reused)."""
    if not path.is_file():
        return False
    saved = np.load(path)
    arrays = (source.points, _cells(source), target.points, _cells(target))
    keys = ("source_points", "source_cells", "target_points", "target_cells")
    return str(saved["settings"]) == json.dumps(settings) and all(
        saved[key].shape == tuple(array.shape) and np.array_equal(saved[key], array.numpy())
        for key, array in zip(keys, arrays)
    )


# ----------------------------------------------------------------- ours
def ours_worker(problem_path: str, out_path: str, repeats: int) -> None:
    """Runs in a fresh process: first fit, then ``repeats`` warm fits; writes the last result."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    import geomloss  # noqa: F401  (imported lazily by SinkhornLoss: not part of the timed fit, as for the peer)

    import skshapes as sks
    import skshapes.deformations  # noqa: F401
    import skshapes.losses  # noqa: F401
    import skshapes.registration  # noqa: F401

    import_seconds = time.perf_counter() - start
    problem = np.load(problem_path)
    settings = json.loads(str(problem["settings"]))
    ours = OURS[settings["kind"]]
    source = polydata(sks, problem["source_points"], problem["source_cells"])
    target = polydata(sks, problem["target_points"], problem["target_cells"])

    def fit():
        return sks.Registration(
            sks.LDDMM(sigma=settings["sigma"], n_steps=settings["n_steps"], integrator=ours["integrator"]),
            sks.SinkhornLoss(blur=settings["blur"], scaling=settings["scaling"]),
            regularization_weight=settings["regularization"],
            n_iter=ours["n_iter"],
            tol=ours["tol"],
            device="cpu",
        ).fit(source, target)

    timings, registration = time_fits(fit, repeats)
    result = {
        "import_s": import_seconds,
        **timings,
        "fidelity": registration.data_loss_,
        "regularization": registration.regularization_,
        "n_iter": registration.n_iter_,
        "torch_threads": torch.get_num_threads(),
    }
    np.savez(out_path, morphed_points=registration.morphed_shape_.points.numpy(), result=json.dumps(result))
    print(json.dumps(result), flush=True)


def run_side(command, out_path: Path, cache: Path, cwd: Path, timeout: float):
    """Run one worker; returns its result dict with the morphed points, or a dict with ``error``."""
    env = dict(os.environ, KEOPS_CACHE_FOLDER=str(cache))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[variable] = "1"
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s", "timed_out": True}
    if completed.returncode != 0 or not out_path.is_file():
        tail = (completed.stderr or completed.stdout)[-2000:]
        return {"error": f"exit code {completed.returncode}: {tail}"}
    saved = np.load(out_path)
    result = json.loads(str(saved["result"]))
    result["morphed_points"] = saved["morphed_points"]
    result["process_s"] = time.perf_counter() - start
    return result


# ------------------------------------------------------------- metrics
#: Subdivisions for the dense measure: each segment cut in 8, each triangle in 2 x 2.
DENSE_CUTS = {"curve": 8, "mesh": 2}


def data_losses(points, target, settings):
    """Debiased Sinkhorn divergence of the morphed source onto the target on three measures of the shapes.

    ``(ours, peer, dense)``: our ``SinkhornLoss`` (vertices weighted by half
    their segments' lengths or a third of their triangles' areas); GeomLoss on
    skshapes 0.3's measure (segment midpoints or triangle centroids, length or
    area weights), which is its ``fidelity_``; and GeomLoss on a dense measure
    close to the uniform length or area measure of the polyline or surface
    itself (each segment cut into 8, each triangle into 4, weights at the
    pieces' midpoints or centroids), which favours neither discretisation.
    Same blur, scaling and cost |x - y|^2 / 2 for all three.
    """
    import skshapes as sks
    from geomloss import SamplesLoss

    source = settings["source"]
    morphed_points = torch.as_tensor(points, dtype=target.dtype)
    values = []
    with torch.no_grad():
        values.append(float(sks.SinkhornLoss(blur=settings["blur"], scaling=settings["scaling"])(
            source.with_points(morphed_points), target
        )))
        for cuts, backend in ((1, "tensorized"), (DENSE_CUTS[source.kind], "auto")):
            x, a = _pieces(morphed_points, _cells(source), cuts)
            y, b = _pieces(target.points, _cells(target), cuts)
            loss = SamplesLoss("sinkhorn", p=2, blur=settings["blur"], scaling=settings["scaling"], backend=backend)
            values.append(float(loss(a, x, b, y)))
    return tuple(values)


def _pieces(points, cells, cuts):
    """Each segment (triangle) cut into ``cuts`` (``cuts**2``) equal pieces: their midpoints (centroids), weights.

    ``cuts=1`` is skshapes 0.3's ``to_weighted_points``: segment midpoints or
    triangle centroids weighted by length or area, normalised to a total of 1.
    """
    corners = points[cells]  # (C, 2 or 3, D)
    origin, edges = corners[:, 0], corners[:, 1:] - corners[:, :1]  # (C, D), (C, 1 or 2, D)
    if cells.shape[1] == 2:
        sizes = edges[:, 0].norm(dim=1)
        coordinates = [((i + 0.5) / cuts,) for i in range(cuts)]
    else:
        sizes = torch.linalg.cross(edges[:, 0], edges[:, 1]).norm(dim=1) / 2
        coordinates = [((i + 1 / 3) / cuts, (j + 1 / 3) / cuts) for i in range(cuts) for j in range(cuts - i)]
        coordinates += [((i + 2 / 3) / cuts, (j + 2 / 3) / cuts) for i in range(cuts) for j in range(cuts - i - 1)]
    barycentric = torch.tensor(coordinates, dtype=points.dtype)  # (K, 1 or 2)
    centres = origin[:, None] + torch.einsum("kj,cjd->ckd", barycentric, edges)
    weights = (sizes / len(coordinates))[:, None].expand(-1, len(coordinates))
    return centres.reshape(-1, points.shape[1]), weights.reshape(-1) / weights.sum()


# --------------------------------------------------------------- report
def machine() -> str:
    return f"{cpu_model()}, torch {torch.__version__}, 1 torch thread per process"


def _keops_files(cache: Path) -> int:
    return sum(1 for path in cache.rglob("*") if path.is_file())


def _seconds(result, key, dagger=False):
    if "error" in result:
        return result["error"] if result.get("timed_out") else "failed"
    value = result.get(key)
    return "–" if value is None else f"{value:.1f}{' †' if dagger else ''}"


def _ratio(peer, ours, key):
    if "error" in ours or ours.get(key) is None:
        return "–"
    if "error" in peer:
        return f"> {peer['limit'] / ours[key]:.1f}" if peer.get("timed_out") else "–"
    return "–" if peer.get(key) is None else f"{peer[key] / ours[key]:.1f}"


def _loss(result, index):
    return "–" if "error" in result else f"{result['losses'][index]:.3f}"


def print_tables(rows, contenders):
    print("\nTimes in seconds (wall time of `fit`); ratio = skshapes 0.3 / ours (above 1: we are faster). "
          "Data loss: Sinkhorn divergence on the dense measure (see below), recomputed here for both results.\n")
    print("| problem | contender | ours first | ours warm | ours data loss | skshapes 0.3 first "
          "| skshapes 0.3 warm | skshapes 0.3 data loss | ratio first | ratio warm | ratio warm, CPU time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        peer = row["skshapes 0.3"]
        for name in contenders:
            ours = row[name]
            ours_first, peer_first = (_seconds(r, "first_s", r.get("compiled")) for r in (ours, peer))
            print(
                f"| {row['name']} | {name} | {ours_first} | {_seconds(ours, 'warm_s')} "
                f"| {_loss(ours, 2)} | {peer_first} | {_seconds(peer, 'warm_s')} "
                f"| {_loss(peer, 2)} | {_ratio(peer, ours, 'first_s')} | {_ratio(peer, ours, 'warm_s')} "
                f"| {_ratio(peer, ours, 'warm_cpu_s')} |"
            )
    print("\n† this side's first call on this problem compiled KeOps formulas (new files in its KeOps cache "
          "folder, empty at the start of the run). CPU time: user + system of "
          "the worker and its finished children (the compiler), less sensitive than wall time to the other "
          "jobs on a shared machine.")
    print("\nFinal data loss on three measures of the same shapes (see `data_losses`), deformation cost "
          "H = ½ pᵀK(q,q)p, iterations:\n")
    print("| problem | contender | ours (vertices) | skshapes 0.3 (midpoints / centroids) | dense "
          "| H | iterations |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for name in (*contenders, "skshapes 0.3"):
            result = row[name]
            if "error" in result:
                print(f"| {row['name']} | {name} | {_seconds(result, 'first_s')} | | | | |")
                continue
            iterations = result.get("n_iter", f"{row['settings']['peer_n_iter']} × ≤ 20")
            print(
                f"| {row['name']} | {name} | {result['losses'][0]:.3f} | {result['losses'][1]:.3f} "
                f"| {result['losses'][2]:.3f} | {result['regularization']:.1f} | {iterations} |"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one skull (neandertalis) and no face: a smoke run")
    parser.add_argument("--repeats", type=int, default=1, help="warm fits after the first one (median)")
    parser.add_argument("--no-face", action="store_true", help="skulls only")
    parser.add_argument("--peer-timeout", type=float, default=2400.0, help="seconds per skshapes 0.3 process")
    parser.add_argument("--workdir", type=Path, help="keep problems and outputs there (default: a temporary folder)")
    parser.add_argument("--reuse-peer", action="store_true", help="reuse skshapes 0.3 outputs found in --workdir")
    parser.add_argument("--json", type=Path, help="also write the results there")
    parser.add_argument("--worker", nargs=3, metavar=("PROBLEM", "OUT", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        ours_worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    torch.set_num_threads(1)
    ensure_peer_venv()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_lddmm_"))
    workdir.mkdir(parents=True, exist_ok=True)
    # KeOps (GeomLoss's online backend for the dense data loss) compiles here, not in the user's cache
    os.environ.setdefault("KEOPS_CACHE_FOLDER", str(workdir / "keops-main"))
    contenders = ["ours"]
    caches = {name: workdir / f"keops-{i}" for i, name in enumerate([*contenders, "skshapes 0.3"])}
    for name, cache in caches.items():
        if not (name == "skshapes 0.3" and args.reuse_peer):
            shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(exist_ok=True)

    print(f"# LDDMM benchmark, {datetime.date.today()}: {machine()}")
    print(f"load average at start {tuple(round(v, 2) for v in os.getloadavg())}; work folder {workdir}", flush=True)
    problems = list(skull_problems(args.quick))
    if not (args.quick or args.no_face):
        problems.append(face_problem())
    rows, seen_dims = [], set()
    for name, source, target, settings in problems:
        slug = name.split(" ")[0] + "_" + (name.split(" ")[1] if settings["kind"] == "skull" else "simpop")
        problem_path = workdir / f"problem-{slug}.npz"
        same_problem = _same_problem(problem_path, source, target, settings)
        write_problem(problem_path, source, target, settings)
        row = {"name": name, "settings": settings, "cold": source.dim not in seen_dims}
        seen_dims.add(source.dim)
        print(f"\n{name}: {source.n_points} → {target.n_points} points, {settings}", flush=True)
        for side in ("skshapes 0.3", *contenders):
            out = workdir / f"out-{slug}-{side.replace(' ', '_').replace('+', 'plus')}.npz"
            if side == "skshapes 0.3":
                if args.reuse_peer and same_problem and out.is_file():
                    saved = np.load(out)
                    result = {**json.loads(str(saved["result"])), "morphed_points": saved["morphed_points"]}
                    result["compiled"] = row["cold"]  # skshapes 0.3 compiles on the first problem of each dimension
                else:
                    out.unlink(missing_ok=True)
                    command = [str(PEER_PYTHON), str(PEER_WORKER), str(problem_path), str(out), str(args.repeats)]
                    before = _keops_files(caches[side])
                    result = run_side(command, out, caches[side], workdir, args.peer_timeout)
                    result["limit"] = args.peer_timeout
                    result["compiled"] = _keops_files(caches[side]) > before
            else:
                out.unlink(missing_ok=True)
                command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(problem_path), str(out),
                           str(args.repeats)]
                before = _keops_files(caches[side])
                result = run_side(command, out, caches[side], workdir, args.peer_timeout)
                result["compiled"] = _keops_files(caches[side]) > before
            if "error" not in result:
                result["losses"] = data_losses(result.pop("morphed_points"), target, {**settings, "source": source})
            row[side] = result
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items() if k != "all_s"}
            print(f"  {side}: {shown}  (load {os.getloadavg()[0]:.2f})", flush=True)
        rows.append(row)

    print(f"\nload average at end {tuple(round(v, 2) for v in os.getloadavg())}")
    print(f"ours: {OURS}; problems: skull {SKULL}, face {FACE}, face pose {FACE_POSE}")
    print_tables(rows, contenders)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
