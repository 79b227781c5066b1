"""Permutation GLM: skshapes ``PermutationGLM`` vs nilearn ``permuted_ols`` (Freedman-Lane, max-t FWER).

Run as a script (not a test)::

    .venv/bin/pip install nilearn                      # once: nilearn 0.14.1 (+ nibabel, importlib_resources)
    .venv/bin/python benchmarks/bench_glm.py           # 200 subjects x 10,000 features x 5,000 permutations
    .venv/bin/python benchmarks/bench_glm.py --quick   # 100 x 2,000 x 1,000, and a smaller TFCE run

Problem: ``n`` subjects, ``F`` features, two confounds (one correlated with the
tested regressor x, both with effects on every feature), and an effect of x
growing linearly from 0 to 0.5 (per unit of x, noise sd 1) over the first 10 %
of the features so that the FWER p-values span (0, 1]. Both tools fit the same
model: Y ~ x + intercept + 2 confounds, t test of x, two-sided, Freedman-Lane
permutations, p-values (1 + #{max_b >= |t|}) / (N + 1).

- ``skshapes``: ``PermutationGLM(n_permutations=N, random_state=0, device="cpu")``
  ``.fit(Y, x, covariates=Z)``, float64 (default on the CPU) and float32
  (``dtype="float32"``: the null distribution in float32, t still float64).
- ``nilearn``: ``permuted_ols(x[:, None], Y, confounding_vars=Z, n_perm=N,
  two_sided_test=True, n_jobs=1, random_state=0)`` (it adds the intercept).

Checks, in the same run: the t maps agree to 1e-6 (relative, floored at |t| = 1);
the two null distributions of max |t| (different random permutations) agree
within Monte Carlo error: two-sample Kolmogorov-Smirnov test, quantiles, and the
largest difference between the FWER p-values, which are the two empirical
survival functions of max |t| evaluated at the observed |t|, so by the DKW
inequality it stays below 1.63 sqrt(2 / N) with probability 0.99.

``--threads`` (default 1 2) sets the torch threads and, through threadpoolctl,
the BLAS threads used by numpy (nilearn). Every timing is one run (``--repeats``
for the median of more), the contenders in turn; the load average is printed
before and after, as the machine may be shared.

TFCE (``--tfce-permutations``, 0 to skip): ``PermutationGLM(tfce=True)`` on an
icosphere (trimesh, 10,242 vertices; 2,562 with ``--quick``), to time the cost
per permutation of TFCE (nilearn's TFCE works on 3-D volumes only: no
comparison).
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import time

import numpy as np
import torch
from _machine import cpu_model
from scipy import stats

from skshapes.statistics.glm import PermutationGLM


def simulate(n, n_features, seed=0):
    """Y (n, F), x (n,), Z (n, 2): confound effects everywhere, an effect of x on the first 10 % of the features."""
    rng = np.random.default_rng(seed)
    Z = np.column_stack([rng.uniform(20, 80, n), rng.integers(0, 2, n).astype(float)])
    x = 0.03 * (Z[:, 0] - 50) + rng.normal(size=n)  # correlated with the first confound
    Y = rng.normal(size=(n, n_features))
    Y += np.outer((Z[:, 0] - 50) / 15, rng.normal(size=n_features)) + np.outer(Z[:, 1], rng.normal(size=n_features))
    n_effect = n_features // 10
    Y[:, :n_effect] += np.outer(x, np.linspace(0.0, 0.5, n_effect))
    return Y, x, Z


def machine():
    return f"{cpu_model()}"


def load():
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, repeats):
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def run_ours(Y, x, Z, n_perm, dtype, repeats):
    glm = PermutationGLM(n_permutations=n_perm, random_state=0, device="cpu", dtype=dtype)
    return timed(lambda: glm.fit(Y, x, covariates=Z), repeats)


def run_nilearn(Y, x, Z, n_perm, repeats):
    from nilearn.mass_univariate import permuted_ols

    return timed(
        lambda: permuted_ols(
            x[:, None], Y, confounding_vars=Z, n_perm=n_perm, two_sided_test=True, n_jobs=1, random_state=0,
            verbose=0, output_type="dict",
        ),
        repeats,
    )


def compare(ours, theirs, n_perm):
    """t agreement, null-distribution agreement, FWER p agreement (see the module docstring)."""
    t_nilearn = theirs["t"][0]
    t_error = float(np.max(np.abs(ours.t_ - t_nilearn) / np.maximum(1.0, np.abs(t_nilearn))))
    h0_nilearn = np.asarray(theirs["h0_max_t"]).ravel()
    ks = stats.ks_2samp(ours.h0_max_, h0_nilearn)
    quantiles = [0.5, 0.95, 0.99]
    q_ours = np.quantile(ours.h0_max_, quantiles)
    q_nilearn = np.quantile(h0_nilearn, quantiles)
    p_nilearn = 10.0 ** -theirs["logp_max_t"][0]
    p_gap = float(np.max(np.abs(ours.p_fwer_ - p_nilearn)))
    return {
        "t_error": t_error,
        "ks_p": float(ks.pvalue),
        "q_ours": q_ours,
        "q_nilearn": q_nilearn,
        "p_gap": p_gap,
        "p_bound": 1.63 * np.sqrt(2.0 / n_perm),
        "n_sig_ours": int((ours.p_fwer_ < 0.05).sum()),
        "n_sig_nilearn": int((p_nilearn < 0.05).sum()),
    }


def icosphere_problem(subdivisions, n, seed=1):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    rng = np.random.default_rng(seed)
    n_vertices = len(sphere.vertices)
    x = np.repeat([0.0, 1.0], n // 2)
    # white noise plus smooth noise (random bumps), an effect of 0.8 sd in a cap around the north pole
    centres = rng.normal(size=(200, 3))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bumps = np.exp(-((sphere.vertices @ centres.T - 1.0) ** 2) / 0.02)  # (V, 200)
    smooth = rng.normal(size=(n, 200)) @ bumps.T
    Y = 0.3 * smooth / smooth.std() + rng.normal(size=(n, n_vertices))
    cap = sphere.vertices[:, 2] > 0.9
    Y[:, cap] += 0.8 * x[:, None]
    return Y, x, np.asarray(sphere.faces), cap


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 subjects x 2,000 features x 1,000 permutations")
    parser.add_argument("--subjects", type=int, default=None)
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--permutations", type=int, default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tfce-permutations", type=int, default=None, help="default 100 (20 with --quick); 0 skips")
    parser.add_argument("--no-nilearn", action="store_true")
    args = parser.parse_args()
    n = args.subjects or (100 if args.quick else 200)
    n_features = args.features or (2000 if args.quick else 10_000)
    n_perm = args.permutations or (1000 if args.quick else 5000)
    n_tfce = args.tfce_permutations if args.tfce_permutations is not None else (20 if args.quick else 100)

    from threadpoolctl import threadpool_limits

    print(f"# PermutationGLM vs nilearn permuted_ols, {datetime.date.today()}")
    print(f"machine: {machine()}; torch {torch.__version__}; load average before: {load()}")
    if not args.no_nilearn:
        import nilearn

        print(f"nilearn {nilearn.__version__}")
    print(f"problem: {n} subjects x {n_features} features x {n_perm} permutations, 2 confounds, two-sided t")
    Y, x, Z = simulate(n, n_features)
    PermutationGLM(n_permutations=10, random_state=0, device="cpu").fit(Y[:, :100], x, covariates=Z)  # warm-up

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            seconds64, ours = run_ours(Y, x, Z, n_perm, "float64", args.repeats)
            rss_ours = peak_rss_mib()
            seconds32, ours32 = run_ours(Y, x, Z, n_perm, "float32", args.repeats)
            if args.no_nilearn:
                rows.append((threads, seconds64, seconds32, None, None))
                continue
            seconds_nilearn, theirs = run_nilearn(Y, x, Z, n_perm, args.repeats)
        check = compare(ours, theirs, n_perm)
        check32 = compare(ours32, theirs, n_perm)
        rows.append((threads, seconds64, seconds32, seconds_nilearn, (check, check32)))
        print(
            f"threads={threads}: ours float64 {seconds64:.2f} s (batch {ours.batch_size_}), float32 {seconds32:.2f} s, "
            f"nilearn {seconds_nilearn:.2f} s; peak RSS after ours {rss_ours:.0f} MiB, "
            f"after nilearn {peak_rss_mib():.0f} MiB"
        )
        for name, c in (("float64", check), ("float32", check32)):
            print(
                f"  {name}: max rel |t - t_nilearn| {c['t_error']:.1e}; max-|t| null quantiles 50/95/99% "
                f"ours {np.round(c['q_ours'], 3).tolist()} nilearn {np.round(c['q_nilearn'], 3).tolist()}; "
                f"KS p {c['ks_p']:.2f}; max |p_fwer - p_nilearn| {c['p_gap']:.4f} (99% bound {c['p_bound']:.4f}); "
                f"p_fwer < 0.05: {c['n_sig_ours']} vs {c['n_sig_nilearn']} features"
            )
            assert c["t_error"] < 1e-6, "t maps differ"
    print(f"load average after: {load()}")

    print()
    print(
        "| threads | ours float64 (s) | ours float32 (s) | nilearn n_jobs=1 (s) | nilearn / ours f64 "
        "| nilearn / ours f32 | max rel t diff | KS p (f64) | max abs p_fwer diff (99% MC bound) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for threads, s64, s32, snl, checks in rows:
        if checks is None:
            print(f"| {threads} | {s64:.2f} | {s32:.2f} | - | - | - | - | - | - |")
            continue
        c = checks[0]
        print(
            f"| {threads} | {s64:.2f} | {s32:.2f} | {snl:.2f} | {snl / s64:.1f} | {snl / s32:.1f} "
            f"| {c['t_error']:.0e} | "
            f"{c['ks_p']:.2f} | {c['p_gap']:.4f} ({c['p_bound']:.4f}) |"
        )

    if n_tfce > 0:
        torch.set_num_threads(args.threads[0])
        Y_s, x_s, faces, cap = icosphere_problem(4 if args.quick else 5, 40)
        n_vertices = len(cap)
        glm = PermutationGLM(n_permutations=n_tfce, random_state=0, device="cpu")
        seconds_glm, _ = timed(lambda: glm.fit(Y_s, x_s), 1)
        tfce_glm = PermutationGLM(n_permutations=n_tfce, tfce=True, random_state=0, device="cpu")
        seconds_tfce, fitted = timed(lambda: tfce_glm.fit(Y_s, x_s, adjacency=faces), 1)
        print()
        print(
            f"TFCE (E=1, H=2, 100 steps) on an icosphere of {n_vertices} vertices, 40 subjects, {n_tfce} permutations, "
            f"{args.threads[0]} thread(s): {seconds_tfce:.2f} s with TFCE vs {seconds_glm:.3f} s without, "
            f"{(seconds_tfce - seconds_glm) / (n_tfce + 1) * 1e3:.1f} ms per map; "
            f"p_fwer_tfce < 0.05 at {int((fitted.p_fwer_tfce_[cap] < 0.05).sum())} of the {int(cap.sum())} vertices "
            f"of the effect and {int((fitted.p_fwer_tfce_[~cap] < 0.05).sum())} outside; max-t p_fwer < 0.05 at "
            f"{int((fitted.p_fwer_[cap] < 0.05).sum())} and {int((fitted.p_fwer_[~cap] < 0.05).sum())}"
        )
        print(f"load average after TFCE: {load()}")


if __name__ == "__main__":
    main()
