"""R-FISTA iterations of the PyTorch backend (CPU device) against the
compiled loop's, on the small problems of tests/test_torch_backend.py
(60 samples, 4 features + bias, 10 gates, lam 1e-2; tol 1e-7 in float64,
1e-4 in float32).

    PYTHONPATH=. python comparisons/torch_iterations.py
"""

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from conftest import LOSSES, make_data  # noqa: E402

import cvxnn  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402

TOL = {np.float64: 1e-7, np.float32: 1e-4}
REGULARIZERS = ("group_l1", "l1", "l2", None, "feature_group_l1")


def build(loss, reg, dtype):
    n_outputs = 3 if loss == "cross_entropy" else 2
    X, y = make_data(loss, 60, 4, n_outputs, seed=0, dtype=dtype)
    return cvxnn.build_problem(X, y, loss=loss, regularizer=reg, lam=1e-2,
                               n_gates=10, bias=True, random_state=0)


def main():
    warnings.simplefilter("ignore")
    print(f"{'dtype':8} {'loss':14} {'regularizer':17} {'compiled':>8} "
          f"{'device':>7} {'beta':>5} {'polished':>8} {'rel. diff obj':>13}")
    for dtype in (np.float64, np.float32):
        for loss in LOSSES:
            for reg in REGULARIZERS:
                problem = build(loss, reg, dtype)
                a = fast_solve(problem, tol=TOL[dtype], method="fista")
                b = fast_solve(problem, tol=TOL[dtype], device="cpu")
                diff = (b.objective - a.objective) / abs(a.objective)
                print(f"{np.dtype(dtype).name:8} {loss:14} {reg!s:17} {a.n_iter:8d} "
                      f"{b.n_iter:7d} {b.info['metric_beta']:5g} "
                      f"{b.info['polished']!s:>8} {diff:13.1e}")


if __name__ == "__main__":
    main()
