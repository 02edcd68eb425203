r"""The study behind the estimators' defaults: one factor at a time.

Datasets and splits as in ``vs_sklearn.py`` (every offline scikit-learn
dataset, 80/20, standardized on the training rows unless the row says
``raw``), ``--seeds`` seeds. Each row changes one setting of a base
estimator and prints the mean test score (accuracy or R^2) per dataset and
the median fit time per dataset, with the sum of the times. Rows:

* ``plain ...``: :class:`ConvexReLUClassifier` / ``Regressor`` at lam 1e-3,
  varying ``tol``, ``n_gates``, the classification loss, ``whiten``, raw vs
  standardized input and the gate family;
* ``CV ...``: the CV estimators, varying ``n_gates``, the grid
  (``n_lams``, ``lam_ratio``), ``patience``, ``path_tol`` and ``whiten``.

Usage (from the repository root; one BLAS thread, as the numbers in
comparisons/README.md)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python comparisons/defaults_study.py [--rows plain]
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _suite import load_average, machine_header
from vs_sklearn import DATASETS, split

import cvxnn

# (name, CV?, keyword arguments); every row starts from the fixed base below.
PLAIN = {"lam": 1e-3, "n_gates": 50, "tol": 1e-4}
CV = {"n_gates": 50, "tol": 1e-4, "n_lams": 20, "lam_ratio": 1e-4, "patience": 3,
      "path_tol": 1e-3}
# The cheap settings that the rows above show cost no score, together.
FAST_CV = {"path_tol": 1e-2, "n_lams": 10, "lam_ratio": 1e-3, "patience": 2,
           "tol": 1e-3}
# The estimators' defaults (rows "CV defaults..." start from them).
DEFAULT = {"n_gates": 16, "tol": 1e-3, "path_tol": 2e-2, "n_lams": 10,
           "lam_ratio": 1e-3, "patience": 2}
ROWS = [
    ("plain tol 1e-6", False, {"tol": 1e-6}),
    ("plain tol 1e-4", False, {}),
    ("plain tol 1e-3", False, {"tol": 1e-3}),
    ("plain n_gates 16", False, {"n_gates": 16}),
    ("plain n_gates 32", False, {"n_gates": 32}),
    ("plain n_gates 100", False, {"n_gates": 100}),
    ("plain squared loss", False, {"loss": "squared"}),
    ("plain whiten", False, {"whiten": True}),
    ("plain raw input", False, {"raw": True}),
    ("plain raw input, whiten", False, {"raw": True, "whiten": True}),
    ("plain spectral gates", False, {"gates": "spectral"}),
    ("CV base", True, {}),
    ("CV n_gates 32", True, {"n_gates": 32}),
    ("CV n_gates 100", True, {"n_gates": 100}),
    ("CV path_tol 1e-2", True, {"path_tol": 1e-2}),
    ("CV 10 lams ratio 1e-3", True, {"n_lams": 10, "lam_ratio": 1e-3}),
    ("CV patience 2", True, {"patience": 2}),
    ("CV whiten", True, {"whiten": True}),
    ("CV tol 1e-3", True, {"tol": 1e-3}),
    ("CV squared loss", True, {"loss": "squared"}),
    ("CV fast: 32 gates", True, dict(FAST_CV, n_gates=32)),
    ("CV fast: 16 gates", True, dict(FAST_CV, n_gates=16)),
    ("CV fast: 32 gates, whiten", True, dict(FAST_CV, n_gates=32, whiten=True)),
    ("CV defaults", True, DEFAULT),
    ("CV defaults, path_tol 1e-2", True, dict(DEFAULT, path_tol=1e-2)),
    ("CV defaults, path_tol 3e-2", True, dict(DEFAULT, path_tol=3e-2)),
    ("CV defaults, 7 lams", True, dict(DEFAULT, n_lams=7)),
    ("CV defaults, patience 1", True, dict(DEFAULT, patience=1)),
    ("CV defaults, cv=3", True, dict(DEFAULT, cv=3)),
]


def estimator(task, cv, params):
    classify = task == "classification"
    params = dict(params)
    if params.get("loss") == "squared" and not classify:
        params.pop("loss")
    if cv:
        cls = cvxnn.ConvexReLUClassifierCV if classify else cvxnn.ConvexReLURegressorCV
        return cls(**{**CV, **params})
    cls = cvxnn.ConvexReLUClassifier if classify else cvxnn.ConvexReLURegressor
    return cls(**{**PLAIN, **params})


def run_row(cv, params, seeds):
    params = dict(params)
    raw = params.pop("raw", False)
    scores, times = [], []
    for name, task in DATASETS.items():
        s, t = [], []
        for seed in range(seeds):
            X_tr, X_te, y_tr, y_te = split(name, task, seed, standardize=not raw)
            model = estimator(task, cv, params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model.fit(X_tr, y_tr)
                t.append(time.perf_counter() - start)
            s.append(model.score(X_te, y_te))
        scores.append(np.mean(s))
        times.append(np.median(t))
    return scores, times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--rows", default="", help="only rows whose name contains this")
    args = p.parse_args(argv)
    print(machine_header(), flush=True)
    names = list(DATASETS)
    print(f"{'row':26s}" + "".join(f"{n[:8]:>9s}" for n in names) + " | "
          + "".join(f"{n[:6]:>7s}" for n in names) + "   total s")
    for label, cv, params in ROWS:
        if args.rows not in label:
            continue
        scores, times = run_row(cv, params, args.seeds)
        print(f"{label:26s}" + "".join(f"{v:9.4f}" for v in scores) + " | "
              + "".join(f"{v:7.2f}" for v in times) + f"  {sum(times):7.2f}"
              + f"   ({load_average()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
