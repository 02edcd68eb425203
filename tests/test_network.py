"""The non-convex network behind a convex solution, and the ReLU/gated equivalence."""

import numpy as np
import pytest
import reference
from conftest import LOSSES, make_data
from hypothesis import given, settings
from hypothesis import strategies as st

import cvxnn
from cvxnn import network_from_weights


def weight_decay_objective(net, X, y, loss, lam):
    """(1/n) sum loss(h(x_j), y_j) + lam/2 (||W1||^2 + ||W2||^2), in plain NumPy."""
    Y = reference.encode_targets(y, loss)
    data = reference.loss_sum(net.predict(X), Y, loss) / X.shape[0]
    return data + lam / 2 * (np.sum(net.W1**2) + np.sum(net.W2**2))


def feasible_blocks(problem, rng, p_zero):
    """Cone-feasible ReLU weights: nonnegative multiples of each neuron's gate."""
    shape = problem.weight_shape
    blocks = {}
    for name in ("V", "W"):
        scale = rng.exponential(size=shape[:2]) * (rng.random(shape[:2]) > p_zero)
        blocks[name] = scale[:, :, None] * problem.gates.T[None]
    return blocks


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), loss=st.sampled_from(LOSSES),
       formulation=st.sampled_from(["gated_relu", "relu"]), bias=st.booleans(),
       n_outputs=st.integers(1, 3), p_zero=st.sampled_from([0.0, 0.5, 1.0]))
def test_network_is_the_convex_model(seed, loss, formulation, bias, n_outputs,
                                     p_zero):
    """For any (cone-feasible) weights: same predictions, same objective."""
    X, y = make_data(loss, n_samples=15, n_features=3,
                     n_outputs=n_outputs + (loss == "cross_entropy"), seed=seed)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                                  regularizer="group_l1", lam=0.1, n_gates=6,
                                  bias=bias, random_state=seed)
    rng = np.random.default_rng(seed)
    if formulation == "relu":
        blocks = feasible_blocks(problem, rng, p_zero)
    else:
        mask = rng.random(problem.weight_shape[:2]) > p_zero
        blocks = {"U": rng.standard_normal(problem.weight_shape) * mask[:, :, None]}
    net = network_from_weights(problem, blocks)
    np.testing.assert_allclose(net.predict(X), problem.model_predict(blocks),
                               rtol=1e-10, atol=1e-10)
    nonzero = sum(int(np.count_nonzero(np.linalg.norm(B, axis=2)))
                  for B in blocks.values())
    assert net.n_neurons == nonzero
    assert net.activation == formulation
    assert weight_decay_objective(net, X, y, loss, 0.1) == pytest.approx(
        problem.objective(**blocks), rel=1e-10)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
def test_network_of_a_clarabel_solution(data, formulation, loss):
    X, y = data(loss, n_samples=30, n_features=3, n_outputs=2, seed=5)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                                  regularizer="group_l1", lam=0.02, n_gates=10,
                                  bias=True)
    sol = problem.solve("CLARABEL")
    np.testing.assert_allclose(sol.predict(X), problem.model_predict(sol.blocks),
                               atol=1e-7)
    assert weight_decay_objective(sol.network, X, y, loss, 0.02) == pytest.approx(
        sol.objective, rel=1e-7)
    if formulation == "relu":
        assert sol.certificate.cone_violation < 1e-7
        assert sol.network.gates is None
    else:
        assert sol.network.gates.shape == (4, sol.network.n_neurons)


def test_gated_network_on_new_data(data, rng):
    X, y = data("squared", n_samples=30, n_features=3, seed=6)
    problem = cvxnn.build_problem(X, y, n_gates=7, bias=True)
    U = rng.standard_normal(problem.weight_shape)
    net = network_from_weights(problem, {"U": U})
    X_new = rng.standard_normal((9, 3))
    Xb = reference.with_bias(X_new, True)
    expected = reference.predict(Xb, Xb @ problem.gates > 0, U)
    np.testing.assert_allclose(net.predict(X_new), expected, rtol=1e-10)


def test_threshold_drops_small_blocks(data, rng):
    X, y = data("squared", seed=6)
    problem = cvxnn.build_problem(X, y, n_gates=7)
    U = rng.standard_normal(problem.weight_shape)
    U[0, :3] *= 1e-9
    assert network_from_weights(problem, {"U": U}).n_neurons == U.shape[1]
    assert network_from_weights(problem, {"U": U}, threshold=1e-6).n_neurons == \
        U.shape[1] - 3


def test_predict_checks_its_input(data):
    X, y = data("squared", seed=6)
    sol = cvxnn.build_problem(X, y, n_gates=5, bias=True).solve()
    with pytest.raises(ValueError, match="^X: expected shape"):
        sol.predict(X[:, :2])


def test_network_from_weights_checks_its_arguments(data, rng):
    X, y = data("squared", seed=6)
    problem = cvxnn.build_problem(X, y, n_gates=7)
    U = rng.standard_normal(problem.weight_shape)
    for blocks, error, match in (
            ({"U": U[:, :1]}, ValueError, "^U: expected shape"),
            ({"U": np.full_like(U, np.nan)}, ValueError, "^U"),
            (U, TypeError, "^blocks: expected a dict"),
            ({}, ValueError, "^U: required"),
            ({"U": U, "V": U}, ValueError, "^blocks: 'V' is not a weight")):
        with pytest.raises(error, match=match):
            network_from_weights(problem, blocks)
    for threshold in (-1.0, float("nan"), "a", True):
        with pytest.raises((TypeError, ValueError), match="^threshold"):
            network_from_weights(problem, {"U": U}, threshold=threshold)
    with pytest.raises(TypeError, match="^problem"):
        network_from_weights(None, {"U": U})


def test_network_checks_its_arrays():
    W1, W2, G = np.ones((3, 4)), np.ones((2, 3)), np.ones((4, 3))
    net = cvxnn.TwoLayerNetwork(W1=W1, W2=W2, gates=G, bias=True)
    assert net.predict(np.ones((5, 3))).shape == (5, 2)
    for kwargs, error, match in (
            ({"W2": np.ones((1, 5))}, ValueError, "^W2: expected 3 columns"),
            ({"gates": np.ones((3, 3))}, ValueError, r"^gates: expected shape \(4"),
            ({"W1": None}, TypeError, "^W1"),
            ({"W1": "abc"}, TypeError, "^W1"),
            ({"W1": np.ones(4)}, ValueError, "^W1: expected a 2-D"),
            ({"W2": np.full((2, 3), np.inf)}, ValueError, "^W2"),
            ({"b2": np.ones(3)}, ValueError, r"^b2: expected shape \(2,\)"),
            ({"b2": np.ones((1, 2))}, ValueError, r"^b2: expected shape \(2,\)"),
            ({"b2": [np.nan, 0.0]}, ValueError, "^b2"),
            ({"bias": "x"}, TypeError, "^bias")):
        with pytest.raises(error, match=match):
            cvxnn.TwoLayerNetwork(**{"W1": W1, "W2": W2, "gates": G, "bias": True,
                                     **kwargs})
    shifted = cvxnn.TwoLayerNetwork(W1=W1, W2=W2, gates=G, bias=True, b2=[1.0, -2.0])
    X = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_array_equal(shifted.predict(X), net.predict(X) + [1.0, -2.0])
    assert shifted.weight_decay() == net.weight_decay()  # the bias is not decayed


def test_relu_and_gated_losses_coincide_without_regularization():
    """With lam = 0 and every pattern present, both reach the same optimal loss.

    Each of 12 distinct 1-D inputs appears twice with different targets, so no
    model can fit exactly: the optimal loss of both is the within-pair variance,
    0.5 * sum over pairs of (y_a - y_b)^2 / 2, divided by n.
    """
    rng = np.random.default_rng(8)
    x = np.sort(rng.uniform(-2, 2, 12))
    X = np.repeat(x, 2)[:, None]
    y = np.repeat(np.sin(2 * x), 2) + 0.3 * rng.standard_normal(24)
    best = 0.5 * np.sum((y[0::2] - y[1::2]) ** 2 / 2) / 24
    values = {}
    for formulation in ("gated_relu", "relu"):
        problem = cvxnn.build_problem(X, y, formulation=formulation, lam=0.0,
                                      regularizer=None, n_gates=400, bias=True)
        assert problem.n_patterns == 23  # every {x > t} and {x < t}, all-ones once
        values[formulation] = problem.solve("CLARABEL").objective
    assert values["gated_relu"] == pytest.approx(best, rel=1e-6)
    assert values["relu"] == pytest.approx(values["gated_relu"], rel=1e-6)
