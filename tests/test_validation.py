"""Bad input raises ValueError/TypeError naming the argument, before any work."""

import numpy as np
import pytest

import cvxnn

RNG = np.random.default_rng(0)
X_OK = RNG.standard_normal((10, 3))
Y_OK = RNG.standard_normal(10)


def nan_at(A, index):
    A = np.array(A, dtype=float)
    A[index] = np.nan
    return A


# (name, keyword arguments of build_problem, error type, argument named)
BUILD_CASES = [
    ("X has NaN", {"X": nan_at(X_OK, (2, 1))}, ValueError, "X"),
    ("X has inf", {"X": X_OK * np.array([1, np.inf, 1])}, ValueError, "X"),
    ("X is 1-D", {"X": X_OK[:, 0]}, ValueError, "X"),
    ("X is 3-D", {"X": X_OK[:, :, None]}, ValueError, "X"),
    ("y is 3-D", {"y": Y_OK[:, None, None]}, ValueError, "y"),
    ("y has NaN", {"y": nan_at(Y_OK, 3)}, ValueError, "y"),
    ("sample counts differ", {"y": Y_OK[:7]}, ValueError, "y"),
    ("negative lam", {"lam": -0.1}, ValueError, "lam"),
    ("lam is a string", {"lam": "0.1"}, TypeError, "lam"),
    ("three classes with logistic", {"y": np.arange(10) % 3, "loss": "logistic"},
     ValueError, "y"),
    ("fractional labels for cross_entropy",
     {"y": Y_OK, "loss": "cross_entropy"}, ValueError, "y"),
    ("gates of the wrong shape", {"gates": np.ones((4, 5))}, ValueError, "gates"),
    ("n_gates < 1", {"n_gates": 0}, ValueError, "n_gates"),
    ("unknown formulation", {"formulation": "tanh"}, ValueError, "formulation"),
    ("unknown loss", {"loss": "hinge"}, ValueError, "loss"),
    ("unknown regularizer", {"regularizer": "l0"}, ValueError, "regularizer"),
]


def build(**kwargs):
    args = {"X": X_OK, "y": Y_OK, "n_gates": 5}
    args.update(kwargs)
    return cvxnn.build_problem(args.pop("X"), args.pop("y"), **args)


@pytest.mark.parametrize("case, kwargs, error, argument", BUILD_CASES,
                         ids=[c[0] for c in BUILD_CASES])
def test_build_problem_rejects(case, kwargs, error, argument):
    with pytest.raises(error, match=f"^{argument}: "):
        build(**kwargs)


def test_solve_rejects_unknown_solver_and_option():
    problem = build()
    with pytest.raises(ValueError, match="^solver: 'NOPE'"):
        problem.solve("NOPE")
    with pytest.raises(TypeError, match="unknown option 'tolerance'"):
        problem.solve("CLARABEL", tolerance=1e-3)
