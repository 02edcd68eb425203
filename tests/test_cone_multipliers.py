"""lam_max of the ReLU program: NNLS against CVXPY and against the solutions."""

import numpy as np
import pytest

import cvxnn
from cvxnn.core.cone_multipliers import relu_lam_max


def make_problem(loss, regularizer, formulation="relu", seed=0, n_outputs=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 3))
    signal = X @ rng.standard_normal((3, n_outputs)) + 0.3 * rng.standard_normal(
        (30, n_outputs))
    y = {"squared": signal[:, 0], "logistic": np.sign(signal[:, 0]),
         "cross_entropy": np.argmax(signal, axis=1)}[loss]
    return cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                               regularizer=regularizer, n_gates=8, bias=True,
                               random_state=seed)


@pytest.mark.parametrize("loss,n_outputs", [("squared", 1), ("logistic", 1),
                                            ("cross_entropy", 3)])
def test_nnls_matches_cvxpy(loss, n_outputs):
    problem = make_problem(loss, "group_l1", n_outputs=n_outputs)
    nnls_value = relu_lam_max(problem, method="nnls")
    assert cvxnn.lam_max(problem) == nnls_value  # the public entry dispatches
    assert nnls_value == pytest.approx(relu_lam_max(problem, method="cvxpy"),
                                       rel=1e-6)


@pytest.mark.parametrize("regularizer", ["group_l1", "l1", "feature_group_l1"])
def test_zero_solution_exactly_from_lam_max(regularizer):
    problem = make_problem("squared", regularizer, seed=1)
    top = cvxnn.lam_max(problem)
    gated_top = cvxnn.lam_max(make_problem("squared", regularizer, "gated_relu", 1))
    assert 0 < top <= gated_top * (1 + 1e-9)  # zero multipliers are feasible
    above = cvxnn.with_lam(problem, 1.02 * top).solve("CLARABEL")
    below = cvxnn.with_lam(problem, 0.9 * top).solve("CLARABEL")
    scale = np.abs(below.U).max()
    assert scale > 1e-3
    assert np.abs(above.V).max() < 1e-4 * scale
    assert np.abs(above.W).max() < 1e-4 * scale


def test_relu_lam_max_is_below_gated_on_this_data():
    """The cone multipliers matter: the ReLU value is strictly smaller here."""
    relu = make_problem("squared", "group_l1", seed=2)
    gated = make_problem("squared", "group_l1", "gated_relu", seed=2)
    assert cvxnn.lam_max(relu) < 0.99 * cvxnn.lam_max(gated)


def test_bad_arguments():
    with pytest.raises(ValueError, match="regularizer"):
        cvxnn.lam_max(make_problem("squared", "l2"))
    with pytest.raises(ValueError, match="method"):
        relu_lam_max(make_problem("squared", "l1"), method="nnls")
    with pytest.raises(ValueError, match="method"):
        relu_lam_max(make_problem("squared", "l1"), method="lp")
    with pytest.raises(TypeError, match="bogus"):
        relu_lam_max(make_problem("squared", "l1"), bogus=1)
