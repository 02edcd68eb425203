"""Optional column scaling (standardize=True) and badly scaled features."""

import numpy as np
import pytest
import reference

import cvxnn
from cvxnn.core.problem import column_scales

BAD_SCALES = np.array([1e-6, 1e6, 1.0, 1.0])


@pytest.fixture
def badly_scaled():
    """Well-scaled X, the same X with columns scaled by 1e-6 and 1e6, and y."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 4))
    y = np.tanh(X @ rng.standard_normal(4)) + 0.1 * rng.standard_normal(40)
    return X, X * BAD_SCALES, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_scales(dtype):
    X = np.array([[1.0, 5.0, 0.0, -3e6], [3.0, 5.0, 0.0, 1e6], [2.0, 5.0, 0.0, 2e6]],
                 dtype=dtype)
    scale = column_scales(X)
    expected = [np.std([1.0, 2.0, 3.0]), 5.0, 1.0, np.std([-3e6, 1e6, 2e6])]
    np.testing.assert_allclose(scale, expected, rtol=reference.tol(dtype)["rtol"])


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_standardize_undoes_bad_scaling(badly_scaled, formulation):
    X, X_bad, y = badly_scaled
    options = {"formulation": formulation, "lam": 1e-2, "n_gates": 10, "bias": True,
               "standardize": True, "random_state": 0}
    good = cvxnn.build_problem(X, y, **options)
    bad = cvxnn.build_problem(X_bad, y, **options)
    np.testing.assert_allclose(bad.X, good.X, rtol=1e-12)
    np.testing.assert_array_equal(bad.patterns, good.patterns)
    np.testing.assert_allclose(bad.input_scale,
                               np.append(column_scales(X) * BAD_SCALES, 1.0),
                               rtol=1e-12)
    sol, sol_good = bad.solve("CLARABEL"), good.solve("CLARABEL")
    assert sol.status == "optimal"
    assert sol.certificate.satisfied(1e-6, cone_tol=1e-7)
    assert sol.objective == pytest.approx(sol_good.objective, rel=1e-6)
    # the network takes raw inputs and predicts what the convex model predicts
    np.testing.assert_allclose(sol.predict(X_bad), bad.model_predict(sol.blocks),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sol.predict(X_bad), sol_good.predict(X), atol=1e-6)
    np.testing.assert_allclose(bad.prepare_X(X_bad), bad.X, rtol=1e-12)


def test_weight_decay_identity_holds_in_scaled_coordinates(badly_scaled):
    X, X_bad, y = badly_scaled
    problem = cvxnn.build_problem(X_bad, y, lam=1e-2, n_gates=10, bias=True,
                                  standardize=True)
    sol = problem.solve("CLARABEL")
    net = sol.network
    W1_scaled = net.W1 * problem.input_scale
    data = reference.loss_sum(net.predict(X_bad), y[:, None], "squared") / 40
    decay = 0.5 * (np.sum(W1_scaled**2) + np.sum(net.W2**2))
    assert data + 1e-2 * decay == pytest.approx(sol.objective, rel=1e-8)


def test_user_gates_are_raw_space_gates(badly_scaled):
    X, X_bad, y = badly_scaled
    G = np.random.default_rng(1).standard_normal((5, 12))
    raw = cvxnn.build_problem(X_bad, y, gates=G, bias=True)
    scaled = cvxnn.build_problem(X_bad, y, gates=G, bias=True, standardize=True)
    np.testing.assert_array_equal(scaled.patterns, raw.patterns)
    np.testing.assert_allclose(scaled.gates / scaled.input_scale[:, None], raw.gates,
                               rtol=1e-12)
    sol = scaled.solve("CLARABEL")
    np.testing.assert_allclose(sol.predict(X_bad), scaled.model_predict(sol.blocks),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("source, dtype", [("numpy", np.float64),
                                           ("numpy", np.float32),
                                           ("torch", np.float32)])
def test_standardized_patterns_are_the_networks_gate_test_at_exact_ties(source,
                                                                        dtype):
    """Integer data on a gate's hyperplane (3 x1 - x2 = 0 on 18 rows): the
    patterns were formed on the scaled data, where rounding decided 8 of
    those rows the other way than the network's test on raw inputs
    (network and convex model 0.17 apart on the training data); from a
    float32 tensor, the gates were divided by the scales in float64."""
    rng = np.random.default_rng(0)
    X = (rng.integers(-5, 6, (200, 2)) * np.array([1.0, 3.0])).astype(dtype)
    G = np.array([[3.0, 1.0], [-1.0, 0.5]])
    data = X
    if source == "torch":
        data = pytest.importorskip("torch").from_numpy(X)
    problem = cvxnn.build_problem(data, rng.standard_normal(200), gates=G, lam=1e-3,
                                  standardize=True)
    assert np.sum(X @ G[:, 0] == 0) == 18
    np.testing.assert_array_equal(problem.patterns, X @ G > 0)
    sol = problem.solve("fast", tol=1e-6)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(sol.predict(X), problem.model_predict(sol.blocks),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_standardized_float32_patterns_use_the_networks_gates(source):
    """Integer float32 data and integer gates (ties on many rows): a float32
    tensor's patterns divided the gates by the scales in float64 where the
    network divides in float32, and 20 entries fell the other way."""
    from cvxnn.core.patterns import raw_input_gates

    rng = np.random.default_rng(0)
    X = (rng.integers(-9, 10, (400, 4)).astype(float)
         * rng.integers(1, 7, 4)).astype(np.float32)
    G = rng.integers(-3, 4, (4, 30)).astype(float)
    data = X if source == "numpy" else pytest.importorskip("torch").from_numpy(X)
    problem = cvxnn.build_problem(data, rng.standard_normal(400), gates=G, lam=1e-3,
                                  standardize=True)
    gates = raw_input_gates(problem.gates, problem.input_scale)
    np.testing.assert_array_equal(problem.patterns, X @ gates > 0)


def test_standardize_is_off_by_default(badly_scaled):
    X, X_bad, y = badly_scaled
    problem = cvxnn.build_problem(X_bad, y, n_gates=5)
    assert problem.input_scale is None
    np.testing.assert_array_equal(problem.X, X_bad)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_near_duplicate_samples_in_both_dtypes(formulation):
    """Samples repeated up to 1e-9 with different targets; float32 and float64."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 4))
    y = np.tanh(X @ rng.standard_normal(4))
    X2 = np.vstack([X, X + 1e-9 * rng.standard_normal(X.shape)])
    y2 = np.concatenate([y, y + 0.1 * rng.standard_normal(20)])
    objectives = {}
    for dtype, gap in [(np.float64, 1e-6), (np.float32, 1e-5)]:
        problem = cvxnn.build_problem(X2.astype(dtype), y2, formulation=formulation,
                                      lam=1e-2, n_gates=10, bias=True)
        sol = problem.solve("CLARABEL")
        assert sol.status == "optimal"
        assert sol.certificate.satisfied(gap, cone_tol=1e-6)
        objectives[dtype] = sol.objective
    assert objectives[np.float32] == pytest.approx(objectives[np.float64], rel=1e-5)
