"""Detectability of a simulated syndrome: cross-validated AUC and Dice against the effect size.

Run as a script (not a test), from the repository root::

    .venv/bin/python benchmarks/bench_dysmorphology.py                   # known correspondence, 60 and 600 subjects
    .venv/bin/python benchmarks/bench_dysmorphology.py --registration    # + the full pipeline on 60 subjects

For each ``effect_mm`` in 0, 1, 2, 4 (midface retrusion, ``make_dysmorphic_faces``, 1,000-vertex faces, half
of the subjects in the syndrome group) and each seed, ``DysmorphologyAnalysis`` is fitted and the table prints
the cross-validated AUC of the syndrome-vs-control classifier (PCA + logistic regression, 5 folds), the
number of FWER-significant vertices (max-statistic, Freedman-Lane with age, sex and BMI, 1,000
permutations), their Dice overlap with the simulated region and with its visible part (see
``evaluate_against_truth``), the measured amplitude in mm and the wall time.

``correspondence="known"`` uses the faces' shared vertex order (the statistics alone);
``--registration`` registers the template onto every face first (the demo's pipeline, ~3 s per face on
one core), as a clinician's data would need.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(__file__))
from _machine import cpu_model  # noqa: E402

EFFECTS_MM = (0.0, 1.0, 2.0, 4.0)


def run(n_subjects, effect_mm, seed, correspondence, n_permutations):
    from skshapes.datasets import make_dysmorphic_faces
    from skshapes.dysmorphology import DysmorphologyAnalysis, evaluate_against_truth

    start = time.perf_counter()
    data = make_dysmorphic_faces(n_subjects=n_subjects, effect_mm=effect_mm, region="midface", resolution=1000,
                                 random_state=seed)
    analysis = DysmorphologyAnalysis(template=data.template, correspondence=correspondence,
                                     n_permutations=n_permutations, random_state=seed)
    analysis.fit(data.shapes, data.labels, data.covariates)
    ev = evaluate_against_truth(analysis, data.displacement, data.region_mask, effect_mm or None)
    return {
        "auc": analysis.roc_auc_,
        "significant": ev.n_significant,
        "dice": ev.dice if effect_mm else float("nan"),
        "dice_visible": ev.dice_visible if effect_mm else float("nan"),
        "measured_mm": ev.measured_effect_mm if effect_mm else float("nan"),
        "seconds": time.perf_counter() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 600], help="numbers of subjects")
    parser.add_argument("--seeds", type=int, default=3, help="populations per size and effect")
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--registration", action="store_true",
                        help="also run the full pipeline (registration) on the first size, one seed")
    args = parser.parse_args(argv)

    print(f"machine: {cpu_model()}; load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d')}")
    runs = [("known", n, args.seeds) for n in args.sizes]
    if args.registration:
        runs.append(("registration", args.sizes[0], 1))
    header = (f"{'correspondence':>14s} {'subjects':>8s} {'effect':>7s} {'AUC':>12s} {'significant':>11s} "
              f"{'Dice':>11s} {'Dice vis.':>11s} {'measured':>9s} {'s/run':>6s}")
    print(header)
    with threadpool_limits(limits=1):
        for correspondence, n, seeds in runs:
            for effect in EFFECTS_MM:
                rows = [run(n, effect, seed, correspondence, args.permutations) for seed in range(seeds)]

                def stat(key, fmt="{:.2f}"):
                    values = np.array([r[key] for r in rows], dtype=float)
                    if np.isnan(values).all():
                        return "-"
                    text = fmt.format(values.mean())
                    return text if len(values) == 1 else f"{text}±{fmt.format(values.std())}"

                print(f"{correspondence:>14s} {n:8d} {effect:5.1f}mm {stat('auc'):>12s} "
                      f"{stat('significant', '{:.0f}'):>11s} {stat('dice'):>11s} {stat('dice_visible'):>11s} "
                      f"{stat('measured_mm'):>9s} {stat('seconds', '{:.0f}'):>6s}", flush=True)


if __name__ == "__main__":
    main()
