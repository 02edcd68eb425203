"""Regularization path: warm starts against cold solves, and the path plot.

Solves the breast-cancer classification problem (logistic loss, group_l1,
standardised features with a bias, 400 training / 169 validation samples)
along a geometric grid from lam_max down to ``ratio * lam_max``, twice with
the fast solver: warm-started from the previous lam (the default of
``regularization_path``) and cold (every lam from zero). It prints per lam
the iterations and seconds of both, the active neurons and the validation
accuracy, and then the totals (median over ``--repeats`` runs). It also saves
the plot of active neurons and validation accuracy against lam.

Without the fast solver (``cvxnn_fast.solve`` not built) or with
``--solver CLARABEL`` (any CVXPY solver) only one path is solved: CVXPY
programs are rebuilt for every lam and have nothing to warm start from.

Run from the repository root::

    python comparisons/path_warm_start.py                   # fast if built
    python comparisons/path_warm_start.py --formulation relu
    python comparisons/path_warm_start.py --solver CLARABEL --n-lams 10
"""

import argparse
import statistics
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

import cvxnn
from cvxnn.estimators import fast_available

HAS_FAST = fast_available()


def load(n_train=400, seed=0):
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = X[order], y[order]
    X = (X - X[:n_train].mean(axis=0)) / X[:n_train].std(axis=0)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def run_path(problem, lams, solver, warm, data, options):
    X_val, y_val = data
    return cvxnn.regularization_path(problem, lams, solver=solver, warm_start=warm,
                                     X_val=X_val, y_val=y_val, **options)


def median_path(problem, lams, solver, warm, data, options, repeats):
    """Solve the path ``repeats`` times; the run with the median total time."""
    paths = [run_path(problem, lams, solver, warm, data, options)
             for _ in range(repeats)]
    times = [p.total_time for p in paths]
    return paths[times.index(statistics.median_low(times))]


def print_table(warm, cold):
    header = f"{'lam':>10} {'active':>6} {'val acc':>7} {'iters warm':>10}"
    header += f" {'iters cold':>10} {'s warm':>7} {'s cold':>7}" if cold else ""
    print(header)
    for i, point in enumerate(warm):
        row = (f"{point.lam:10.4g} {point.n_active:6d} "
               f"{point.validation.get('accuracy', np.nan):7.4f} "
               f"{point.n_iter if point.n_iter is not None else -1:10d}")
        if cold:
            row += (f" {cold[i].n_iter:10d} {point.time:7.3f} {cold[i].time:7.3f}")
        print(row)


def summarize(warm, cold):
    print(f"\nwarm path: {warm.total_time:.3f} s, {warm.total_iterations} iterations")
    if cold is None:
        return
    print(f"cold path: {cold.total_time:.3f} s, {cold.total_iterations} iterations")
    print(f"warm starts: {cold.total_time / warm.total_time:.2f}x less time, "
          f"{cold.total_iterations / max(warm.total_iterations, 1):.2f}x fewer "
          "iterations")
    rel = np.abs(warm.column("objective") - cold.column("objective"))
    rel /= np.abs(cold.column("objective"))
    print(f"largest relative objective difference warm vs cold: {rel.max():.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", default="fast" if HAS_FAST else "CLARABEL")
    parser.add_argument("--formulation", default="gated_relu",
                        choices=["gated_relu", "relu"])
    parser.add_argument("--n-gates", type=int, default=100)
    parser.add_argument("--n-lams", type=int, default=20)
    parser.add_argument("--ratio", type=float, default=1e-3)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="comparisons/results")
    args = parser.parse_args()

    X, y, X_val, y_val = load()
    problem = cvxnn.build_problem(X, y, formulation=args.formulation,
                                  loss="logistic", n_gates=args.n_gates, bias=True)
    lams = cvxnn.lam_grid(problem, args.n_lams, args.ratio)
    fast = args.solver.lower() == "fast"
    options = {"tol": args.tol} if fast else {}
    repeats = args.repeats if fast else 1
    print(f"{problem!r}\nsolver={args.solver}, {args.n_lams} lams from lam_max = "
          f"{lams[0]:.4g} to {lams[-1]:.4g}, median of {repeats} run(s)")
    data = (X_val, y_val)
    warm = median_path(problem, lams, args.solver, True, data, options, repeats)
    cold = (median_path(problem, lams, args.solver, False, data, options, repeats)
            if fast else None)
    print_table(warm, cold)
    summarize(warm, cold)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"path_breast_cancer_{args.formulation}_{args.solver}.png"
    try:
        warm.plot(png)
        print(f"plot saved to {png}")
    except ImportError as exc:
        print(f"no plot: {exc}")


if __name__ == "__main__":
    main()
