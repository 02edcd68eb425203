r"""Gated ReLU and ReLU training are equivalent at lam = 0; how far apart for lam > 0.

Two convex programs share the activation patterns D_i of sampled gates:

* gated ReLU:  min_U  (1/n) sum loss(sum_i D_i X u_i, y) + lam sum ||u_i||
* ReLU:        the same with u_i = v_i - w_i, v_i and w_i in the cones
               K_i = {w : (2 D_i - I) X w >= 0}, penalised by ||v_i|| + ||w_i||.

The ReLU program is the exact convex reformulation of a two-layer ReLU network
with weight decay (restricted to those patterns); gated ReLU drops the cones.
Hence gated* <= relu*. Splitting the gated optimum into the cones
(``cvxnn.decompose``) gives a feasible ReLU point with the same predictions,
so relu* <= decomposed objective. At lam = 0 the penalty is gone and the three
numbers coincide: that is the equivalence theorem (Mishkin, Sahiner & Pilanci,
2022). For lam > 0 this script reports the gap on two sklearn datasets.

Measured (2026-11-27, ``--solver fast --n-gates 100``): the relative gap
``(relu* - gated*) / gated*`` is 0.23-0.24 for lam >= 0.03 lam_max on
diabetes and grows as lam falls (0.73 at 0.01 lam_max, 11 at 1e-4 lam_max);
0.32-1.9 on breast cancer. With sampled gates the two programs are not close
at lam > 0; the gated model and its decomposed ReLU network predict as well
as the ReLU program's solution on the test split (breast cancer: 0.970 vs
0.941-0.963 accuracy).

Run (about two minutes on 2 cores with CLARABEL)::

    python examples/equivalence.py                 # CVXPY / CLARABEL
    python examples/equivalence.py --solver fast   # compiled solvers, if built
"""

import argparse
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes

import cvxnn

LAM_FRACTIONS = (0.3, 0.1, 0.03, 0.01, 1e-3, 1e-4, 0.0)


def load(name, n_train, seed=0):
    """Standardised train/test split of a bundled sklearn dataset."""
    loader = {"diabetes": load_diabetes, "breast_cancer": load_breast_cancer}[name]
    X, y = loader(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    X, y = X[order], y[order].astype(float)
    mean, std = X[:n_train].mean(axis=0), X[:n_train].std(axis=0)
    X = (X - mean) / std
    if name == "diabetes":
        y = (y - y[:n_train].mean()) / y[:n_train].std()
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def test_metric(problem, solution, X, y):
    """Test accuracy (logistic) or test mean squared error (squared)."""
    pred = solution.predict(X)[:, 0]
    if problem.loss.name == "logistic":
        return float(np.mean((pred > 0) == (y == 1)))
    return float(np.mean((pred - y) ** 2))


def lam_zero(solver, n_gates):
    """Part 1: lam = 0 on diabetes (more samples than parameters)."""
    X, y, _, _ = load("diabetes", 300)
    gated_problem = cvxnn.build_problem(X, y, lam=0.0, n_gates=n_gates, bias=True)
    print(f"\n== lam = 0, diabetes: n = {len(y)}, d = {gated_problem.n_features}, "
          f"P = {gated_problem.n_patterns} ==")
    gated = gated_problem.solve(solver)
    relu = cvxnn.relu_twin(gated_problem).solve(solver)
    print(f"gated ReLU optimum        {gated.objective:.10f}   ({gated.solver})")
    print(f"ReLU program optimum      {relu.objective:.10f}   "
          f"(cone violation {relu.certificate.cone_violation:.1e})")
    for method in ("fast", "cvxpy"):
        split = cvxnn.decompose(gated_problem, gated, method=method)
        network_loss = gated_problem.data_fit(split.network.predict(X))
        report = split.info["decomposition"]
        print(f"decomposed ({method:5s})       {split.objective:.10f}   "
              f"ReLU network loss {network_loss:.10f}, prediction gap "
              f"{report.prediction_gap:.1e}, cone violation "
              f"{report.cone_violation:.1e}")


def gap_row(problem, solver, data, lam):
    X_test, y_test = data
    start = time.perf_counter()
    gated = problem.solve(solver)
    relu = cvxnn.relu_twin(problem).solve(solver)
    split = cvxnn.decompose(problem, gated, method="fast")
    elapsed = time.perf_counter() - start
    # Both optima are ~0 on separable data at lam = 0: no meaningful ratio.
    gap = (f"{relu.objective / gated.objective - 1:8.3f}"
           if gated.objective > 1e-6 else f"{'~0/~0':>8}")
    metrics = [test_metric(problem, s, X_test, y_test) for s in (gated, relu, split)]
    return (f"{lam:9.3g} {gated.objective:10.6f} {relu.objective:10.6f} {gap} "
            f"{split.objective:11.6f} {metrics[0]:7.4f} {metrics[1]:7.4f} "
            f"{metrics[2]:7.4f} {elapsed:6.1f}s")


def lam_positive(name, loss, solver, n_gates, n_train):
    """Part 2: the gap over a grid of lam / lam_max."""
    X, y, X_test, y_test = load(name, n_train)
    base = cvxnn.build_problem(X, y, loss=loss, n_gates=n_gates, bias=True)
    top = cvxnn.lam_max(base)
    metric = "acc" if loss == "logistic" else "mse"
    print(f"\n== {name} ({loss}): n = {len(y)}, d = {base.n_features}, P = "
          f"{base.n_patterns}, gated lam_max = {top:.4g}, ReLU lam_max = "
          f"{cvxnn.lam_max(cvxnn.relu_twin(base)):.4g} ==")
    print(f"{'lam':>9} {'gated*':>10} {'relu*':>10} {'rel gap':>8} {'decomposed':>11} "
          f"{'test ' + metric:>7}: {'gated':>6} {'relu':>7} {'decomp':>7}")
    for fraction in LAM_FRACTIONS:
        problem = cvxnn.with_lam(base, fraction * top)
        print(gap_row(problem, solver, (X_test, y_test), fraction * top))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", default="CLARABEL",
                        help="'fast' or a CVXPY solver (default CLARABEL)")
    parser.add_argument("--n-gates", type=int, default=20)
    args = parser.parse_args()
    lam_zero(args.solver, args.n_gates)
    lam_positive("diabetes", "squared", args.solver, args.n_gates, 300)
    lam_positive("breast_cancer", "logistic", args.solver, args.n_gates, 300)
    print("\nrel gap = relu*/gated* - 1 (>= 0: gated ReLU relaxes the cones); "
          "decomposed = ReLU objective of the split gated optimum (>= relu*).")


if __name__ == "__main__":
    main()
