r"""cvxnn's estimators next to scikit-learn's, with everyone's defaults.

Every dataset bundled with scikit-learn that loads offline (iris, wine,
breast cancer, digits: classification; diabetes, linnerud: regression), split
80/20 (stratified for classes) for each of ``--seeds`` seeds, features
standardized on the training rows. Models, all with their defaults:

* ``cvxnn``: :class:`cvxnn.ConvexReLUClassifier` / ``ConvexReLURegressor``;
* ``cvxnn CV``: :class:`cvxnn.ConvexReLUClassifierCV` / ``...RegressorCV``;
* ``MLP``: scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` (``random_state``
  set to the seed);
* ``linear``: ``LogisticRegression`` / ``Ridge``.

Printed: mean test score (accuracy; R^2, averaged over outputs) and median
fit time over the seeds, side by side, from one run. Then full Fashion-MNIST
(``--skip-fashion`` to skip; needs ``apt-get install dataset-fashion-mnist``)
with the three-line pipeline of library objects::

    make_pipeline(PCA(100), ConvexReLUClassifier(gates="spectral", n_gates=120,
                  whiten=True, lam=1e-3, solver_options={"max_iter": 28}))

on pixels scaled to [0, 1] (fit time includes the PCA), for each gate seed
of ``--fashion-seeds``, and ``MLPClassifier``
with its defaults on the same standardized pixels for reference
(``--fashion-mlp``: minutes).

Usage (from the repository root)::

    PYTHONPATH=. python comparisons/vs_sklearn.py [--seeds 3] [--skip-fashion]
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _suite import load_average, machine_header
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cvxnn

DATASETS = {"iris": "classification", "wine": "classification",
            "breast_cancer": "classification", "digits": "classification",
            "diabetes": "regression", "linnerud": "regression"}
MODELS = ("cvxnn", "cvxnn CV", "MLP", "linear")


def make_model(name, task, seed):
    classify = task == "classification"
    if name == "cvxnn":
        return cvxnn.ConvexReLUClassifier() if classify else cvxnn.ConvexReLURegressor()
    if name == "cvxnn CV":
        return cvxnn.ConvexReLUClassifierCV() if classify \
            else cvxnn.ConvexReLURegressorCV()
    if name == "MLP":
        return MLPClassifier(random_state=seed) if classify \
            else MLPRegressor(random_state=seed)
    return LogisticRegression() if classify else Ridge()


def split(name, task, seed, standardize=True):
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.2, random_state=seed,
        stratify=y if task == "classification" else None)
    if not standardize:
        return X_tr, X_te, y_tr, y_te
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def run_dataset(name, task, seeds):
    scores = {m: [] for m in MODELS}
    times = {m: [] for m in MODELS}
    for seed in range(seeds):
        X_tr, X_te, y_tr, y_te = split(name, task, seed)
        for m in MODELS:
            model = make_model(m, task, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLP / lbfgs max_iter warnings
                start = time.perf_counter()
                model.fit(X_tr, y_tr)
                times[m].append(time.perf_counter() - start)
            scores[m].append(model.score(X_te, y_te))
    return ({m: float(np.mean(scores[m])) for m in MODELS},
            {m: float(np.median(times[m])) for m in MODELS})


def tabular(seeds):
    print(f"\n{'dataset':14s}" + "".join(f"{m:>10s} score" for m in MODELS)
          + "".join(f"{m:>10s} s" for m in MODELS), flush=True)
    wins = []
    for name, task in DATASETS.items():
        score, secs = run_dataset(name, task, seeds)
        wins.append((name, score["cvxnn CV"] - score["MLP"],
                     secs["cvxnn CV"] / secs["MLP"]))
        print(f"{name:14s}" + "".join(f"{score[m]:16.4f}" for m in MODELS)
              + "".join(f"{secs[m]:12.2f}" for m in MODELS)
              + f"   ({load_average()})", flush=True)
    print("\nCV vs MLP: score difference, time ratio")
    for name, diff, ratio in wins:
        print(f"  {name:14s} {diff:+.4f}  {ratio:5.2f}x")


def fashion(args):
    sys.path.insert(0, "comparisons")
    from _idx import load_fashion_mnist

    X_tr, y_tr, X_te, y_te = load_fashion_mnist()
    X_tr = (X_tr / np.float32(255)).astype(np.float32)
    X_te = (X_te / np.float32(255)).astype(np.float32)
    print(f"\nFashion-MNIST: {len(y_tr)} training, {len(y_te)} test images "
          f"({load_average()})", flush=True)
    for seed in args.fashion_seeds:
        model = make_pipeline(
            PCA(100, random_state=0),
            cvxnn.ConvexReLUClassifier(gates="spectral", n_gates=args.fashion_gates,
                                       gate_options={"exponent": args.fashion_exponent},
                                       whiten=True, lam=1e-3, random_state=seed,
                                       solver_options={"max_iter": args.fashion_iter}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter reached: not certified
            start = time.perf_counter()
            model.fit(X_tr, y_tr)
            seconds = time.perf_counter() - start
        clf = model[-1]
        print(f"  PCA(100) + ConvexReLUClassifier(spectral, {args.fashion_gates} "
              f"gates, exponent {args.fashion_exponent}, {args.fashion_iter} "
              f"iterations, whiten, seed {seed}): test "
              f"{model.score(X_te, y_te):.4f} in "
              f"{seconds:.1f} s ({clf.n_iter_} iterations, rel. gap "
              f"{clf.certificate_.relative_gap:.2g}; {load_average()})", flush=True)
    if args.fashion_mlp:
        mlp = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
        start = time.perf_counter()
        mlp.fit(X_tr, y_tr)
        print(f"  MLPClassifier defaults: test {mlp.score(X_te, y_te):.4f} in "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--skip-fashion", action="store_true")
    p.add_argument("--skip-tabular", action="store_true")
    p.add_argument("--fashion-iter", type=int, default=28)
    p.add_argument("--fashion-gates", type=int, default=120)
    p.add_argument("--fashion-exponent", type=float, default=0.5,
                   help="spectral gate exponent")
    p.add_argument("--fashion-seeds", default="0,1,2", help="gate seeds")
    p.add_argument("--fashion-mlp", action="store_true")
    args = p.parse_args(argv)
    args.fashion_seeds = [int(v) for v in args.fashion_seeds.split(",")]
    print(machine_header(), flush=True)
    if not args.skip_tabular:
        tabular(args.seeds)
    if not args.skip_fashion:
        fashion(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
