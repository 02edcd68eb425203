"""build_problem and Problem: data as used, shapes, and the objective."""

import numpy as np
import pytest
import reference
from conftest import LOSSES, REGULARIZERS

import cvxnn


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_data_as_used(data, bias, dtype):
    X, y = data("squared", n_samples=20, n_features=3, n_outputs=2)
    problem = cvxnn.build_problem(X.astype(dtype), y, n_gates=10, bias=bias)
    d = 3 + bias
    assert problem.X.shape == (20, d) and problem.X.dtype == dtype
    np.testing.assert_array_equal(problem.X[:, :3], X.astype(dtype))
    if bias:
        np.testing.assert_array_equal(problem.X[:, 3], 1.0)
    assert problem.y.shape == (20, 2) and problem.y.dtype == dtype
    assert problem.gates.shape == (d, problem.n_patterns)
    assert problem.gates.dtype == dtype
    assert problem.weight_shape == (2, problem.n_patterns, d)
    assert problem.n_patterns <= 10
    assert problem.patterns.shape == (20, problem.n_patterns)
    assert f"n_patterns={problem.n_patterns}" in repr(problem)


def test_integer_input_becomes_float64(data):
    X, y = data("squared")
    problem = cvxnn.build_problem(np.round(3 * X).astype(np.int32), y, n_gates=5)
    assert problem.X.dtype == np.float64


@pytest.mark.parametrize("loss, n_outputs, expected", [
    ("squared", 1, 1), ("squared", 3, 3), ("logistic", 1, 1), ("logistic", 2, 2),
    ("cross_entropy", 2, 2), ("cross_entropy", 4, 4),
])
def test_targets_shaped_per_loss(data, loss, n_outputs, expected):
    X, y = data(loss, n_outputs=n_outputs)
    problem = cvxnn.build_problem(X, y, loss=loss, n_gates=5)
    assert problem.n_outputs == expected
    np.testing.assert_array_equal(problem.y, reference.encode_targets(y, loss))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", REGULARIZERS)
def test_objective_against_numpy(data, rng, dtype, formulation, loss, regularizer):
    X, y = data(loss, n_samples=25, n_features=3, n_outputs=3)
    problem = cvxnn.build_problem(X.astype(dtype), y, formulation=formulation,
                                  loss=loss, regularizer=regularizer, lam=0.1,
                                  n_gates=6, bias=True)
    shape = problem.weight_shape
    blocks = ({"U": rng.standard_normal(shape).astype(dtype)}
              if formulation == "gated_relu" else
              {"V": rng.standard_normal(shape).astype(dtype),
               "W": rng.standard_normal(shape).astype(dtype)})
    expected = reference.objective(X.astype(dtype), y, problem.gates.astype(float),
                                   loss=loss, regularizer=regularizer, lam=0.1,
                                   bias=True, **blocks)
    value = problem.objective(**blocks)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=reference.tol(dtype)["rtol"] * 10)


def test_objective_at_zero_is_the_loss_at_zero(data):
    X, y = data("logistic")
    problem = cvxnn.build_problem(X, y, loss="logistic", n_gates=5)
    assert problem.objective(np.zeros(problem.weight_shape)) == pytest.approx(np.log(2))


def test_objective_rejects_wrong_blocks(data):
    X, y = data("squared")
    gated = cvxnn.build_problem(X, y, n_gates=5)
    relu = cvxnn.build_problem(X, y, formulation="relu", n_gates=5)
    Z = np.zeros(gated.weight_shape)
    with pytest.raises(ValueError, match="^V: not a weight"):
        gated.objective(V=Z, W=Z)
    with pytest.raises(ValueError, match="^W: required"):
        relu.objective(V=Z)
    with pytest.raises(ValueError, match="^U: expected shape"):
        gated.objective(Z[:, :-1])
    with pytest.raises(ValueError, match="^U: contains NaN"):
        gated.objective(np.full(gated.weight_shape, np.nan))


def test_prepare_X_appends_bias_and_checks_width(data):
    X, y = data("squared")
    problem = cvxnn.build_problem(X, y, n_gates=5, bias=True)
    np.testing.assert_array_equal(problem.prepare_X(X[:4]), problem.X[:4])
    with pytest.raises(ValueError, match="^X: has 2 features"):
        problem.prepare_X(X[:, :2])
