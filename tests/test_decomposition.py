"""Cone decomposition: exact splits, same predictions, degenerate cones reported."""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import cvxnn
from cvxnn.decomposition.cones import least_distance
from cvxnn.decomposition.decompose import DecompositionWarning, decompose

METHODS = ("fast", "cvxpy")


def make_problem(loss="squared", n=40, d=3, n_outputs=1, lam=1e-3, seed=0,
                 dtype=np.float64, n_gates=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    signal = np.tanh(X @ rng.standard_normal((d, n_outputs)))
    noisy = signal + 0.2 * rng.standard_normal((n, n_outputs))
    y = {"squared": noisy[:, 0], "logistic": np.sign(noisy[:, 0]),
         "cross_entropy": np.argmax(noisy, axis=1)}[loss]
    return cvxnn.build_problem(X, y, loss=loss, lam=lam, n_gates=n_gates, bias=True,
                               random_state=seed)


@pytest.fixture(scope="module")
def solved():
    problem = make_problem()
    return problem, problem.solve("CLARABEL")


def raw_X(problem):
    X = problem.X if problem.input_scale is None else problem.X * problem.input_scale
    return X[:, :-1] if problem.bias else X


def check_exact_split(problem, gated, relu, rtol=1e-9):
    """V - W = U, cones hold, the ReLU network predicts what the gated model does."""
    U = gated.U if hasattr(gated, "U") else gated
    scale = np.abs(U).max()
    np.testing.assert_allclose(relu.V - relu.W, U, rtol=0, atol=rtol * scale * 10)
    signs = 2.0 * problem.patterns[:, None, :] - 1.0
    for B in (relu.V, relu.W):
        Z = np.einsum("nd,kpd->nkp", problem.X.astype(np.float64), B) * signs
        assert Z.min() >= -rtol * np.abs(problem.X).max() * np.abs(B).max()
    gated_pred = cvxnn.core.operator.predict(problem.X, problem.patterns, U)
    np.testing.assert_allclose(relu.predict(raw_X(problem)), gated_pred,
                               atol=rtol * 100 * max(1.0, np.abs(gated_pred).max()))


@pytest.mark.parametrize("method", METHODS)
def test_split_is_exact(solved, method):
    problem, gated = solved
    relu = decompose(problem, gated, method=method)
    report = relu.info["decomposition"]
    assert relu.status == "optimal" and report.exact
    assert relu.problem.formulation.name == "relu"
    assert relu.problem.patterns is problem.patterns
    check_exact_split(problem, gated, relu)
    # The certificate and the report are those of the ReLU program at (V, W).
    twin = cvxnn.relu_twin(problem)
    assert relu.objective == pytest.approx(twin.objective(V=relu.V, W=relu.W))
    assert relu.certificate.cone_violation < 1e-12
    assert report.gated_objective == pytest.approx(gated.objective)
    assert report.gated_norm == pytest.approx(np.linalg.norm(gated.U, axis=2).sum())
    norms = np.linalg.norm(relu.V, axis=2).sum() + np.linalg.norm(relu.W, axis=2).sum()
    assert report.relu_norm == pytest.approx(norms)
    assert report.norm_growth >= 1 - 1e-12
    # Same predictions, so the objectives differ by lam times the norm growth.
    assert report.objective_growth == pytest.approx(
        problem.lam * (report.relu_norm - report.gated_norm), rel=1e-6)
    assert report.n_blocks == int(np.sum(np.linalg.norm(gated.U, axis=2) > 0))


def test_exact_socp_is_no_worse_than_fast(solved):
    problem, gated = solved
    exact = decompose(problem, gated, method="cvxpy").info["decomposition"]
    fast = decompose(problem, gated, method="fast").info["decomposition"]
    assert exact.relu_norm <= fast.relu_norm * (1 + 1e-6)
    # The SOCP is solved by another CVXPY solver to the same value.
    scs = decompose(problem, gated, method="cvxpy", solver="SCS", eps_abs=1e-8,
                    eps_rel=1e-8).info["decomposition"]
    assert scs.relu_norm == pytest.approx(exact.relu_norm, rel=1e-4)


def test_fast_split_is_the_least_distance_solution(solved):
    """Each fast w is min ||w|| s.t. w and u + w in the cone (checked with CVXPY)."""
    problem, gated = solved
    relu = decompose(problem, gated, method="fast")
    k, i = np.nonzero(np.linalg.norm(gated.U, axis=2) > 0)
    for kk, ii in list(zip(k, i, strict=True))[:4]:
        C = (2.0 * problem.patterns[:, ii] - 1.0)[:, None] * problem.X
        u, w = gated.U[kk, ii], cp.Variable(problem.n_features)
        cp.Problem(cp.Minimize(cp.norm(w)), [C @ w >= 0, C @ (u + w) >= 0]).solve(
            "CLARABEL")
        assert np.linalg.norm(relu.W[kk, ii]) == pytest.approx(
            np.linalg.norm(w.value), rel=1e-6, abs=1e-9)


def test_least_distance_against_cvxpy():
    rng = np.random.default_rng(1)
    G = rng.standard_normal((60, 5))
    h = G @ rng.standard_normal(5) - rng.exponential(size=60)  # feasible
    w_ref = cp.Variable(5)
    cp.Problem(cp.Minimize(cp.sum_squares(w_ref)), [G @ w_ref >= h]).solve("CLARABEL")
    np.testing.assert_allclose(least_distance(G, h), w_ref.value, atol=1e-7)
    assert least_distance(np.array([[1.0], [-1.0]]), np.array([1.0, 1.0])) is None
    assert least_distance(np.zeros((2, 3)), np.array([0.0, 1.0])) is None
    np.testing.assert_array_equal(least_distance(G, -np.ones(60)), np.zeros(5))


@pytest.mark.parametrize("shrink_rounds", [1, 50])
def test_least_distance_with_many_rows_against_cvxpy(monkeypatch, shrink_rounds):
    """Thousands of rows: the working set drops far rows between rounds (or,
    with shrink_rounds=1, only grows) and still finds the exact solution."""
    from cvxnn.decomposition import cones

    monkeypatch.setattr(cones, "SHRINK_ROUNDS", shrink_rounds)
    rng = np.random.default_rng(2)
    G = rng.standard_normal((3000, 8))
    h = G @ rng.standard_normal(8) - 0.05 * rng.exponential(size=3000)
    w_ref = cp.Variable(8)
    cp.Problem(cp.Minimize(cp.sum_squares(w_ref)), [G @ w_ref >= h]).solve(
        "CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    w = least_distance(G, h)
    np.testing.assert_allclose(w, w_ref.value, atol=1e-7)
    assert np.min(G @ w - h) >= -1e-9


def test_block_in_its_cone_is_kept(solved):
    """u in K_i splits as v = u, w = 0 with no norm growth."""
    problem, _ = solved
    U = np.zeros(problem.weight_shape)
    U[0, :3] = 0.5 * problem.gates[:, :3].T  # a gate lies in its own cone
    relu = decompose(problem, U)
    np.testing.assert_array_equal(relu.W, 0.0)
    np.testing.assert_allclose(relu.V, U)
    assert relu.info["decomposition"].norm_growth == pytest.approx(1.0)


@pytest.mark.parametrize("loss,n_outputs", [("cross_entropy", 3), ("logistic", 1)])
def test_classification_outputs(loss, n_outputs):
    problem = make_problem(loss, n_outputs=n_outputs, lam=1e-2, seed=2)
    gated = problem.solve("CLARABEL")
    for method in METHODS:
        check_exact_split(problem, gated, decompose(problem, gated, method=method))


def test_standardized_problem_splits_into_a_network_on_raw_inputs():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3)) * np.array([1.0, 100.0, 0.01])
    y = np.tanh(X / X.std(axis=0)) @ np.ones(3)
    problem = cvxnn.build_problem(X, y, lam=1e-3, n_gates=12, bias=True,
                                  standardize=True, random_state=0)
    gated = problem.solve("CLARABEL")
    relu = decompose(problem, gated)
    assert relu.problem.input_scale is problem.input_scale
    check_exact_split(problem, gated, relu)
    np.testing.assert_allclose(relu.predict(X), gated.predict(X), rtol=1e-8, atol=1e-8)


def test_float32():
    problem = make_problem(dtype=np.float32, seed=3)
    gated = problem.solve("CLARABEL")
    relu = decompose(problem, gated)
    assert relu.V.dtype == np.float32
    check_exact_split(problem, gated, relu, rtol=1e-5)


@pytest.fixture(scope="module")
def degenerate():
    """Samples +-e1 with a gate orthogonal to them: K_0 = {w1 = 0, w2 >= 0}."""
    rng = np.random.default_rng(0)
    X = np.vstack([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], rng.standard_normal((20, 2))])
    G = np.array([[0.0, 1.0, 0.3], [1.0, 0.2, -1.0]])
    return cvxnn.build_problem(X, rng.standard_normal(23), gates=G, lam=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_blocks_in_plus_or_minus_their_cone_split_into_one_neuron(method):
    """A gate lies in its own cone: u = c g splits as v = u, w = 0 and -u as
    v = 0, w = u, one neuron each at the least ||v|| + ||w||. The conic split
    left w ~ 2e-7 and the least-distance one v ~ 1e-16: spurious neurons."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 3))
    problem = cvxnn.build_problem(X, rng.standard_normal(20), n_gates=10, lam=1e-3)
    P = problem.n_patterns
    U = np.zeros(problem.weight_shape)
    U[0] = problem.gates.T * np.linspace(0.1, 2, P)[:, None]
    U[0, :3] *= -1
    relu = decompose(problem, U, method=method)
    assert relu.n_active == P and relu.certificate.cone_violation == 0
    np.testing.assert_array_equal(relu.V - relu.W, U)
    np.testing.assert_array_equal(relu.V[0, :3], 0)
    np.testing.assert_array_equal(relu.W[0, 3:], 0)


def test_a_cone_too_thin_for_the_fast_split_is_not_called_empty():
    """|w2| <= 1e-8 w1 has an interior, so u = (0, 1) splits (with |w| ~ 5e7);
    the fast least-distance split gives up past ~1e6 and said the cone had
    an empty interior. It now says the cone is too thin and points to the
    CVXPY split, which succeeds."""
    X = np.array([[1e-8, 1.0], [1e-8, -1.0]])
    problem = cvxnn.build_problem(X, np.array([1.0, 2.0]),
                                  gates=np.array([[1.0], [0.0]]), lam=1e-3)
    U = np.zeros(problem.weight_shape)
    U[0, 0] = [0.0, 1.0]
    with pytest.warns(DecompositionWarning, match="too thin.*method='cvxpy'"):
        assert decompose(problem, U).status == "infeasible"
    split = decompose(problem, U, method="cvxpy")
    assert split.status == "optimal" and split.certificate.cone_violation <= 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_undecomposable_pattern_is_reported(degenerate, method):
    problem = degenerate
    U = np.zeros(problem.weight_shape)
    U[0, 0] = [1.0, 1.0]  # not in K_0 - K_0 = {w1 = 0}
    U[0, 1] = [0.3, -0.2]
    with pytest.warns(DecompositionWarning, match=r"\[0\]: the cone has an empty"):
        relu = decompose(problem, U, method=method)
    report = relu.info["decomposition"]
    assert relu.status == "infeasible" and not report.exact
    assert report.undecomposable_patterns == (0,)
    assert report.undecomposable_blocks == ((0, 0),)
    assert 0 in report.degenerate_patterns and 1 not in report.degenerate_patterns
    np.testing.assert_allclose(relu.V - relu.W, U)
    assert relu.certificate.cone_violation > 0.1  # not silently wrong
    assert "[0]" in relu.message
    # The other block is split exactly.
    signs = 2.0 * problem.patterns[:, 1] - 1.0
    for w in (relu.V[0, 1], relu.W[0, 1]):
        assert np.min(signs * (problem.X @ w)) >= -1e-12


def test_degenerate_cone_splits_what_lies_in_its_span(degenerate):
    U = np.zeros(degenerate.weight_shape)
    U[0, 0] = [0.0, -2.0]  # in K_0 - K_0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        relu = decompose(degenerate, U, method="cvxpy")
    assert relu.status == "optimal"
    assert relu.info["decomposition"].degenerate_patterns == (0,)
    np.testing.assert_allclose(relu.W[0, 0], [0.0, 2.0], atol=1e-7)
    assert relu.certificate.cone_violation < 1e-7


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(5, 30), d=st.integers(1, 4),
       P=st.integers(1, 6))
def test_property_random_weights_split_exactly(seed, n, d, P):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    try:
        problem = cvxnn.build_problem(X, rng.standard_normal(n), n_gates=P + 3,
                                      bias=True, random_state=seed)
    except ValueError:  # no gate activates any sample
        assume(False)
    U = rng.standard_normal(problem.weight_shape)
    relu = decompose(problem, U, method="fast")
    assert relu.info["decomposition"].exact
    check_exact_split(problem, U, relu, rtol=1e-8)


def test_bad_arguments(solved, degenerate):
    problem, gated = solved
    twin = cvxnn.relu_twin(problem)
    with pytest.raises(ValueError, match="problem"):
        decompose(twin, gated)
    with pytest.raises(TypeError, match="problem"):
        decompose("problem", gated)
    with pytest.raises(ValueError, match="method"):
        decompose(problem, gated, method="exact")
    with pytest.raises(TypeError, match="max_iter"):
        decompose(problem, gated, method="fast", max_iter=3)
    with pytest.raises(ValueError, match="solver"):
        decompose(problem, gated, method="cvxpy", solver="NOPE")
    with pytest.raises(TypeError, match="^solver"):
        decompose(problem, gated, method="cvxpy", solver=3)
    with pytest.raises(ValueError, match="^solver: only method='cvxpy'"):
        decompose(problem, gated, solver="SCS")  # the fast method would ignore it
    with pytest.raises(ValueError, match="solution"):
        decompose(problem, gated.U[:, :2])
    with pytest.raises(ValueError, match="solution"):
        decompose(degenerate, gated)
    relu = twin.solve("CLARABEL")
    with pytest.raises(ValueError, match="gated_relu"):
        decompose(problem, relu)
    # same patterns (user gates), other data or scaling: refused, not split
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2)) * [100.0, 0.01]
    y = np.abs(X[:, 0] / 100) + X[:, 1] * 100
    G = rng.normal(size=(3, 6))
    scaled = cvxnn.build_problem(X, y, lam=1e-3, gates=G, bias=True, standardize=True)
    plain = cvxnn.build_problem(X, y, lam=1e-3, gates=G, bias=True)
    np.testing.assert_array_equal(scaled.patterns, plain.patterns)
    with pytest.raises(ValueError, match="column scales"):
        decompose(plain, scaled.solve("CLARABEL"))
    shifted = cvxnn.build_problem(X * 1.5, y, lam=1e-3, gates=G, bias=True)
    with pytest.raises(ValueError, match="other data"):
        decompose(shifted, plain.solve("CLARABEL"))
