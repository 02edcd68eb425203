"""The interior-point method for ReLU: cone algebra, Newton system, solves."""

import warnings

import numpy as np
import pytest
from conftest import make_data
from test_fast_solver import assert_matches, build, clarabel

import cvxnn
from cvxnn.core.errors import ConvergenceWarning
from cvxnn_fast import fast_solve
from cvxnn_fast.interior import conic, newton_system
from cvxnn_fast.interior import solver as interior
from cvxnn_fast.solve import INTERIOR_MAX_FLOPS_RELU, _blas_threads, choose_method


def soc_points(rng, n_cones, m, margin=0.5):
    x = rng.standard_normal((n_cones, m))
    x[:, 0] = np.linalg.norm(x[:, 1:], axis=1) + margin * rng.random(n_cones)
    return x


def test_nt_scaling_maps_z_and_s_to_one_point(rng):
    s, z = soc_points(rng, 6, 5), soc_points(rng, 6, 5)
    W = conic.SOCScaling(s, z)
    np.testing.assert_allclose(W.apply(z), W.lam, rtol=1e-12)
    np.testing.assert_allclose(W.apply_inverse(s), W.lam, rtol=1e-10)
    x = rng.standard_normal((6, 5))
    np.testing.assert_allclose(W.apply(W.apply_inverse(x)), x, atol=1e-12)
    np.testing.assert_allclose(W.apply_inverse_squared(x),
                               W.apply_inverse(W.apply_inverse(x)), rtol=1e-10)
    M = W.inverse_squared()
    np.testing.assert_allclose(conic.apply(M, x), W.apply_inverse_squared(x),
                               rtol=1e-10)
    np.testing.assert_allclose(M, M.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(M) > 0)


def test_jordan_division_inverts_the_product(rng):
    lam, x = soc_points(rng, 5, 4), rng.standard_normal((5, 4))
    r = conic.soc_product(lam, x)
    np.testing.assert_allclose(r[:, 0], np.sum(lam * x, axis=1))
    np.testing.assert_allclose(conic.soc_divide(lam, r), x, rtol=1e-10, atol=1e-12)


def test_max_steps_reach_the_cone_boundary(rng):
    x, dx = soc_points(rng, 8, 4), 3.0 * rng.standard_normal((8, 4))
    alpha = conic.max_step_soc(x, dx)
    y = x + alpha * dx
    j = np.abs(y[:, 0] - np.linalg.norm(y[:, 1:], axis=1))
    assert np.min(j) < 1e-9 * np.max(np.abs(y))  # one cone on its boundary
    inside = x + 0.999 * alpha * dx
    assert np.all(inside[:, 0] > np.linalg.norm(inside[:, 1:], axis=1))
    assert conic.max_step_soc(x, x) == np.inf
    s, ds = rng.random(10) + 0.1, rng.standard_normal(10)
    expected = np.min(-s[ds < 0] / ds[ds < 0])
    assert conic.max_step_orthant(s, ds) == pytest.approx(expected)
    assert conic.max_step_orthant(s, np.abs(ds)) == np.inf
    assert conic.max_step_orthant(s.reshape(2, 5), ds.reshape(2, 5)) == \
        pytest.approx(expected)
    assert conic.max_step_orthant(np.ones((3, 0)), np.ones((3, 0))) == np.inf


@pytest.mark.parametrize("formulation,loss,regularizer,n_outputs", [
    ("relu", "squared", "group_l1", 1), ("relu", "squared", "group_l1", 2),
    ("relu", "squared", "l2", 2), ("relu", "squared", None, 1),
    ("relu", "logistic", "group_l1", 2), ("relu", "logistic", None, 1),
    ("gated_relu", "squared", "group_l1", 2), ("gated_relu", "squared", "l2", 1),
    ("gated_relu", "logistic", "group_l1", 2)])
@pytest.mark.parametrize("weight_space", [False, True])
def test_newton_system_solves_the_explicit_matrix(rng, formulation, loss, regularizer,
                                                  n_outputs, weight_space, monkeypatch):
    lam = 0.0 if regularizer is None else 0.05
    problem = build(loss, regularizer, formulation=formulation, lam=lam,
                    n_outputs=n_outputs, n_samples=12, n_gates=4)
    relu = formulation == "relu"
    monkeypatch.setattr(newton_system, "use_weight_space", lambda p: weight_space)
    system = (newton_system.ReluSystem if relu else newton_system.GatedSystem)(problem)
    assert system.weight_space == weight_space
    B, n, d, o = system.n_blocks, system.n, system.d, system.offset
    w = rng.random((B, n if relu else 0)) + 0.1
    scaling = None
    if system.soc:
        scaling = conic.SOCScaling(soc_points(rng, B, d + 1), soc_points(rng, B, d + 1))
    Yhat = rng.standard_normal((n, n_outputs))
    system.factor(w, scaling, Yhat)
    # The explicit block-diagonal part.
    blocks = np.zeros((B, o + d, o + d))
    if relu:
        X = system.X
        blocks[:, o:, o:] = np.einsum("bj,ja,jc->bac", w, X, X)
    if scaling is not None:
        blocks += scaling.inverse_squared()
    if system.ridge:
        blocks[:, o:, o:] += system.ridge * np.eye(d)
    # The explicit matrix: block diagonal part plus A^T A / n on the u columns.
    m = o + d
    H = np.zeros((B * m, B * m))
    for b in range(B):
        H[b * m:(b + 1) * m, b * m:(b + 1) * m] = blocks[b]
    A = np.zeros((n * n_outputs, B * m))
    for b in range(B):
        e = np.zeros((B, d))
        for a in range(d):
            e[:] = 0
            e[b, a] = 1
            A[:, b * m + o + a] = system.predict(e).ravel()
    h = problem.loss.curvature(Yhat, problem.y).ravel()
    matrix = H + A.T @ (h[:, None] * A) / n
    rhs = rng.standard_normal((B, m))
    expected = np.linalg.solve(matrix, rhs.ravel()).reshape(B, m)
    np.testing.assert_allclose(system.solve(rhs), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("regularizer,lam", [("group_l1", 0.02), ("group_l1", 1e-3),
                                             ("l2", 0.02), (None, 0.0)])
@pytest.mark.parametrize("bias,n_outputs", [(False, 1), (True, 2)])
def test_interior_point_matches_clarabel(loss, regularizer, lam, bias, n_outputs):
    if loss == "logistic" and lam == 0:
        pytest.skip("separable data: the unregularized logistic fit has no minimizer")
    problem = build(loss, regularizer, formulation="relu", lam=lam, bias=bias,
                    n_outputs=n_outputs, n_gates=6)
    fast = fast_solve(problem, tol=1e-8, method="interior_point")
    assert fast.info["method"] == "interior_point"
    assert_matches(fast, clarabel(problem), 1e-8)
    assert fast.certificate.cone_violation <= 1e-8
    assert all(np.all(m >= 0) for m in fast.multipliers)
    assert fast.n_iter < 60


@pytest.mark.parametrize("formulation,loss,regularizer,lam,n_outputs", [
    ("relu", "squared", "group_l1", 1e-3, 2), ("relu", "logistic", "group_l1", 0.02, 1),
    ("relu", "squared", "l1", 0.02, 1), ("relu", "squared", "l2", 0.02, 2),
    ("relu", "squared", None, 0.0, 1), ("gated_relu", "squared", "l1", 0.02, 2),
    ("gated_relu", "logistic", "l1", 1e-3, 1),
    ("gated_relu", "squared", "group_l1", 1e-3, 2),
    ("gated_relu", "logistic", "l2", 0.02, 1), ("gated_relu", "squared", None, 0.0, 1),
    # cross-entropy: one coupled (c P d) factor against the (n c) one
    ("relu", "cross_entropy", "group_l1", 1e-3, 3),
    ("relu", "cross_entropy", "l1", 0.02, 3), ("relu", "cross_entropy", "l2", 0.02, 2),
    ("gated_relu", "cross_entropy", "group_l1", 1e-3, 3),
    ("gated_relu", "cross_entropy", "l1", 0.02, 3)])
def test_weight_space_takes_the_n_space_steps(formulation, loss, regularizer, lam,
                                              n_outputs, monkeypatch):
    """The P d x P d Woodbury solve and the n x n one: the same steps to
    rounding, and both CLARABEL's optimum."""
    problem = build(loss, regularizer, formulation=formulation, lam=lam,
                    n_outputs=n_outputs, n_gates=6)
    sols = []
    for weight_space in (False, True):
        monkeypatch.setattr(newton_system, "use_weight_space",
                            lambda p, w=weight_space: w)
        sols.append(fast_solve(problem, tol=1e-8, method="interior_point"))
    n_space, weights = sols
    assert weights.status == n_space.status == "optimal"
    assert weights.n_iter == n_space.n_iter
    assert weights.objective == pytest.approx(n_space.objective, rel=1e-9)
    assert_matches(weights, clarabel(problem), 1e-8)


def test_weight_space_is_chosen_where_the_weights_are_fewer_than_the_rows(rng):
    """ReLU at n = 20,000, P d = 5000: an n x n step would cost ~7e12 flops,
    in weight space ~2e11, so ``auto`` takes the interior point there."""
    X = rng.standard_normal((20_000, 50))
    y = np.maximum(X[:, :3], 0).sum(axis=1)
    big = cvxnn.build_problem(X, y, formulation="relu", n_gates=100, lam=1e-3)
    assert newton_system.use_weight_space(big)
    assert newton_system.step_flops(big, False) > 20 * newton_system.step_flops(
        big, True)
    assert interior.estimated_flops(big) == newton_system.step_flops(big, True)
    assert interior.estimated_entries(big) == 5000**2 + 2 * 100 * 20_000
    assert choose_method(big) == "interior_point"
    small = build("squared", "group_l1", formulation="relu", n_samples=30,
                  n_gates=20)
    assert not newton_system.use_weight_space(small)  # P d = 80 > n = 30
    # cross-entropy: the outputs coupled in one (c P d) factor, not (n c)
    ce = cvxnn.build_problem(X[:2000, :3], np.digitize(y[:2000], [0.5, 1.5]),
                             loss="cross_entropy", formulation="relu", n_gates=8)
    assert newton_system.use_weight_space(ce)
    assert interior.estimated_entries(ce) == (3 * 8 * 3) ** 2 + 2 * 3 * 8 * 2000
    assert choose_method(ce) == "interior_point"  # n c = 6000: past the (n c) one


@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("regularizer,lam", [("group_l1", 0.02), ("group_l1", 1e-3),
                                             ("l2", 0.02)])
@pytest.mark.parametrize("bias,n_outputs", [(False, 1), (True, 3)])
def test_gated_interior_point_matches_clarabel(loss, regularizer, lam, bias,
                                               n_outputs):
    problem = build(loss, regularizer, lam=lam, bias=bias, n_outputs=n_outputs)
    fast = fast_solve(problem, tol=1e-9, method="interior_point")
    assert_matches(fast, clarabel(problem), 1e-9)
    assert fast.multipliers is None and fast.n_iter < 60


def test_inactive_neurons_are_tiny_and_pruned_where_the_certificate_allows():
    problem = build("squared", "group_l1", formulation="relu", lam=0.05, n_gates=8)
    sol = fast_solve(problem, tol=1e-8, method="interior_point")
    ref = clarabel(problem)
    norms = np.linalg.norm(np.concatenate([sol.V, sol.W]), axis=2)
    ref_norms = np.linalg.norm(np.concatenate([ref.V, ref.W]), axis=2)
    # Exact zeros only where CLARABEL has (numerical) zeros too, and every
    # neuron CLARABEL zeroes is at most 1e-6 of the largest.
    assert np.all(ref_norms[norms == 0] < 1e-6)
    np.testing.assert_array_equal(norms <= 1e-6 * norms.max(), ref_norms < 1e-6)
    # At a tolerance the point beats by 10x, prune zeroes all of those.
    tol = 10 * sol.certificate.relative_gap
    pruned, complete = interior.prune(problem, sol.blocks, sol.multipliers, tol, 1e-8)
    assert complete
    pruned_norms = np.linalg.norm(np.concatenate([pruned["V"], pruned["W"]]), axis=2)
    np.testing.assert_array_equal(pruned_norms == 0, ref_norms < 1e-6)
    assert cvxnn.certificate(problem, **pruned,
                             multipliers=sol.multipliers).relative_gap <= tol


def test_prune_zeroes_all_weights_above_lam_max():
    problem = build("squared", "group_l1", formulation="relu", lam=5.0)
    sol = fast_solve(problem, tol=1e-8, method="interior_point")
    assert sol.status == "optimal" and sol.n_active == 0


def test_auto_chooses_the_interior_point_method_where_it_applies():
    squared = build("squared", "group_l1", formulation="relu")
    assert choose_method(squared) == "interior_point"
    assert choose_method(squared, warm_start=(None, None)) == "augmented_lagrangian"
    assert choose_method(build("logistic", "group_l1", formulation="relu")) == \
        "interior_point"
    for loss, reg in [("cross_entropy", "group_l1"), ("squared", "l1"),
                      ("squared", "feature_group_l1")]:
        assert choose_method(build(loss, reg, formulation="relu")) == \
            "interior_point"
    assert choose_method(build("squared", "group_l1")) == "interior_point"
    for reg in ("l1", "feature_group_l1", None):
        gated = build("squared", reg, lam=0.0 if reg is None else 0.02)
        assert choose_method(gated) == "interior_point"
        # a warm start prefers R-FISTA, except without a duality gap (its
        # KKT residual judges it there; docs/design/convergence.md)
        assert choose_method(gated, warm_start=gated.weight_shape) == (
            "interior_point" if reg is None else "fista")
    X, y = make_data("squared", n_samples=3000, n_features=30)
    big = cvxnn.build_problem(X, y, formulation="relu", n_gates=1000)
    assert interior.estimated_flops(big) > INTERIOR_MAX_FLOPS_RELU
    assert choose_method(big) == "augmented_lagrangian"


@pytest.mark.parametrize("formulation,loss,method,kwargs,match", [
    ("relu", "squared", "fista", {}, "^method: 'fista' does not solve the relu"),
    ("gated_relu", "squared", "augmented_lagrangian", {}, "^method: .*gated_relu"),
    ("relu", "squared", "newton_raphson", {}, "^method: expected one of"),
    ("relu", "squared", "interior_point", {"warm_start": "sol"}, "^warm_start:"),
])
def test_bad_methods_are_named(formulation, loss, method, kwargs, match):
    problem = build(loss, "group_l1", formulation=formulation)
    if kwargs.get("warm_start") == "sol":
        kwargs = {"warm_start": fast_solve(problem, method="augmented_lagrangian")}
    with pytest.raises(ValueError, match=match):
        fast_solve(problem, method=method, **kwargs)


def test_max_iter_and_callback_stop_the_interior_point_method():
    problem = build("squared", "group_l1", formulation="relu", lam=1e-3)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        sol = fast_solve(problem, tol=1e-10, max_iter=3)
    assert sol.status == "optimal_inaccurate"
    assert sol.n_iter == 3 and len(sol.history["objective"]) == 4
    assert set(sol.history) >= {"time", "objective", "optimality", "cone_violation"}
    seen = []

    def stop_at_two(state):
        seen.append(state)
        return state["iteration"] >= 2

    with pytest.warns(ConvergenceWarning, match="callback"):
        sol = fast_solve(problem, tol=1e-10, callback=stop_at_two)
    assert sol.status == "user_limit" and sol.n_iter == 2
    assert "cone_violation" in seen[0]


def test_messages_quote_the_returned_weights():
    """A stopped interior point quoted its own gap estimate: "optimality
    4.00e+05" for weights whose certificate was exactly 0 (y = 0), which it
    called optimal_inaccurate. The returned weights now decide both."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    zero = cvxnn.build_problem(X, np.zeros(40), n_gates=5, lam=1e-3)
    assert fast_solve(zero, method="interior_point", max_iter=2).status == "optimal"
    fit = cvxnn.build_problem(X, X[:, 0] + 0.1 * rng.standard_normal(40), n_gates=5,
                              lam=1e-3)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        sol = fast_solve(fit, method="interior_point", max_iter=2)
    assert f"optimality {sol.certificate.optimality:.2e}" in sol.message


def test_float32_problem_gets_float32_weights():
    p64 = build("squared", "group_l1", formulation="relu")
    p32 = build("squared", "group_l1", formulation="relu", dtype=np.float32)
    s64 = fast_solve(p64, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        s32 = fast_solve(p32, tol=1e-5)
    assert s32.info["method"] == "interior_point"
    assert s32.V.dtype == np.float32 and s32.multipliers[0].dtype == np.float32
    assert s32.objective == pytest.approx(s64.objective, rel=1e-5)


def test_blas_threads_hold_the_other_library_to_one_thread():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    libs = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if len(libs.lib_controllers) < 2:
        pytest.skip("NumPy and SciPy share one BLAS library here")
    X, y = make_data("squared", n_samples=500, n_features=20)
    problem = cvxnn.build_problem(X, y, formulation="relu", n_gates=100)
    before = [lib.num_threads for lib in libs.lib_controllers]
    with _blas_threads(problem, "interior_point"):
        inside = {lib.filepath: lib.num_threads for lib in
                  threadpoolctl.ThreadpoolController().select(
                      user_api="blas").lib_controllers}
    import scipy

    numpy_dir, scipy_dir = (m.__file__.rsplit("/", 1)[0] for m in (np, scipy))
    numpy_libs = [p for p in inside if p.startswith(numpy_dir)]
    scipy_libs = [p for p in inside if p.startswith(scipy_dir)]
    if not numpy_libs or not scipy_libs:
        pytest.skip("NumPy's or SciPy's BLAS is not a separate library here")
    assert all(inside[p] == 1 for p in scipy_libs)
    assert all(inside[p] == n for p, n in zip(
        [lib.filepath for lib in libs.lib_controllers], before, strict=True)
        if p in numpy_libs)
    assert [lib.num_threads for lib in libs.lib_controllers] == before


def test_keep_interior_lifts_boundary_points_inside():
    x = np.array([[1.0, 0.6, 0.8], [0.0, 0.0, 0.0], [2.0, 0.1, 0.0]])
    conic.keep_interior(x)
    r = np.linalg.norm(x[:, 1:], axis=1)
    assert np.all(x[:, 0] > r)
    assert x[0, 0] == pytest.approx(1.0 + conic.SOC_MARGIN, rel=1e-15)
    assert x[2, 0] == 2.0  # already inside: untouched


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_cross_entropy_newton_system_solves_the_explicit_matrix(rng, formulation):
    """The (n c) Woodbury factor of cross-entropy's coupled Hessian."""
    problem = build("cross_entropy", "l2", formulation=formulation, lam=0.05,
                    n_outputs=3, n_samples=10, n_gates=3)
    relu = formulation == "relu"
    system = (newton_system.ReluSystem if relu else newton_system.GatedSystem)(problem)
    B, n, d, c = system.n_blocks, system.n, system.d, system.c
    w = rng.random((B, n if relu else 0)) + 0.1
    Yhat = rng.standard_normal((n, c))
    system.factor(w, None, Yhat)
    blocks = np.zeros((B, d, d)) + system.ridge * np.eye(d)
    if relu:
        blocks += np.einsum("bj,ja,jc->bac", w, system.X, system.X)
    H = np.zeros((B * d, B * d))
    A = np.zeros((n * c, B * d))
    for b in range(B):
        H[b * d:(b + 1) * d, b * d:(b + 1) * d] = blocks[b]
        for a in range(d):
            e = np.zeros((B, d))
            e[b, a] = 1
            A[:, b * d + a] = system.predict(e).ravel()
    p = np.exp(Yhat - Yhat.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    hessian = np.zeros((n * c, n * c))
    for j in range(n):
        hessian[j * c:(j + 1) * c, j * c:(j + 1) * c] = np.diag(p[j]) - np.outer(p[j],
                                                                                 p[j])
    matrix = H + A.T @ hessian @ A / n
    rhs = rng.standard_normal((B, d))
    expected = np.linalg.solve(matrix, rhs.ravel()).reshape(B, d)
    np.testing.assert_allclose(system.solve(rhs), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("loss,regularizer", [
    ("cross_entropy", "l2"), ("cross_entropy", "feature_group_l1"),
    ("logistic", "feature_group_l1"), ("squared", "feature_group_l1")])
def test_dense_capacitance_is_the_sum_over_outputs_of_the_roots(rng, loss,
                                                                regularizer):
    """``L^T blockdiag(M) L`` from its O(n^2 c^2) formula equals the sum of
    ``L[:, k]^T M_k L[:, k]`` over outputs, formed term by term."""
    problem = build(loss, regularizer, lam=0.05, n_outputs=4, n_samples=9,
                    n_gates=3)
    system = newton_system.GatedSystem(problem)
    n, c = system.n, system.c
    system._curvature(rng.standard_normal((n, c)))
    M = [(lambda a: a @ a.T)(rng.standard_normal((n, n))) for _ in range(c)]
    L = system.root_L
    expected = sum(np.einsum("ja,jl,lb->jalb", L[:, k, :], M[k], L[:, k, :])
                   for k in range(c))
    np.testing.assert_allclose(system._dense_capacitance(M), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("loss,regularizer,lam", [
    ("squared", "l1", 0.02), ("logistic", "l1", 1e-3),
    ("squared", "feature_group_l1", 0.02), ("logistic", "feature_group_l1", 1e-3),
    ("cross_entropy", "group_l1", 0.02), ("cross_entropy", "l1", 0.02),
    ("cross_entropy", "feature_group_l1", 1e-3), ("cross_entropy", "l2", 0.02),
    ("squared", None, 0.0)])
def test_new_combinations_of_the_interior_point_match_clarabel(formulation, loss,
                                                               regularizer, lam):
    """l1 (t eliminated per entry), feature_group_l1 (cone scalars eliminated,
    rank-one terms in the capacitance matrix), cross-entropy (one (n c)
    factor) and gated ReLU without a penalty (proximal damping)."""
    problem = build(loss, regularizer, formulation=formulation, lam=lam,
                    n_outputs=2, n_gates=6, bias=True)
    fast = fast_solve(problem, tol=1e-8, method="interior_point")
    assert fast.info["method"] == "interior_point" and fast.n_iter < 80
    assert_matches(fast, clarabel(problem), 1e-8)
    if formulation == "relu":
        assert fast.certificate.cone_violation <= 1e-8


def test_auto_continues_a_stalled_interior_point_with_the_first_order_method(
        monkeypatch):
    problem = build("squared", "group_l1", formulation="relu", n_gates=6)
    monkeypatch.setattr(interior, "MAX_ITER", 3)
    with pytest.warns(ConvergenceWarning):
        stopped = fast_solve(problem, method="interior_point")
    assert stopped.status == "optimal_inaccurate"
    sol = fast_solve(problem, tol=1e-8)
    assert sol.info["fallback_from"] == "interior_point"
    assert sol.info["method"] == "augmented_lagrangian"
    assert_matches(sol, clarabel(problem), 1e-8)


def test_rank_deficient_data_are_solved_in_their_column_space():
    """A constant column next to the bias: without a penalty the blocks are
    singular along it (the method stalled at a relative KKT residual of 5.8
    on such a campaign problem)."""
    X, y = make_data("squared", n_samples=60, n_features=3)
    X[:, 2] = 2.5
    problem = cvxnn.build_problem(X, y, formulation="relu", regularizer=None,
                                  lam=0.0, n_gates=6, bias=True)
    fast = fast_solve(problem, tol=1e-8, method="interior_point")
    assert fast.status == "optimal" and fast.n_iter < 40
    assert_matches(fast, clarabel(problem), 1e-8)


def test_feature_group_l1_with_several_outputs_is_costed_as_one_coupled_factor():
    """feature_group_l1's cones put one (n c) x (n c) factor in each step, as
    cross-entropy's coupling does; the rule costed c factors of n x n, so
    auto ran 3.6 s of interior point (3 steps) where R-FISTA took 0.03 s."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 10))
    Y = X @ rng.standard_normal((10, 10))
    problem = cvxnn.build_problem(X, Y, regularizer="feature_group_l1", lam=1e-3,
                                  n_gates=20, random_state=0)
    n, c = 400, 10
    assert newton_system.dense_capacitance(problem)
    assert interior.estimated_entries(problem) == (n * c) ** 2
    assert newton_system.step_flops(problem, False) >= (n * c) ** 3 / 3
    assert choose_method(problem) == "fista"
    one_output = cvxnn.build_problem(X, Y[:, 0], regularizer="feature_group_l1",
                                     lam=1e-3, n_gates=20, random_state=0)
    assert choose_method(one_output) == "interior_point"


def test_a_named_interior_point_too_big_for_memory_is_refused(monkeypatch):
    """Named on 20,000 rows of 10-class cross-entropy, the interior point
    allocated until the kernel killed the process (24 GB)."""
    from cvxnn_fast import solve

    problem = build("cross_entropy", "group_l1", n_outputs=3, n_samples=60,
                    n_gates=5)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 10}  # a 40 KB machine
    monkeypatch.setattr(solve.os, "sysconf", lambda name: pages[name])
    with pytest.raises(ValueError, match=r"^method: the interior point's systems "
                                         r"need about .* GiB .* use 'fista'"):
        fast_solve(problem, method="interior_point")
    assert fast_solve(problem).status == "optimal"  # auto is not refused (by size)


@pytest.mark.parametrize("lam_ratio,first", [(1e-6, "interior_point"),
                                             (0.5, "fista")])
def test_auto_runs_a_bounded_fista_before_the_weight_space_interior_point(
        lam_ratio, first, monkeypatch):
    """Gated ReLU whose interior point is cheap only in weight space went to
    R-FISTA alone, which took 6-30 s (or failed) at tiny lam where the
    interior point took 0.6-0.9 s (n = 20,000, d = 20, P = 50). R-FISTA now
    runs first for a bounded number of iterations (fista_budget): near
    lam_max it certifies within them, at tiny lam the interior point
    follows. Here the n x n limit is lowered to put a small problem there."""
    from cvxnn_fast import solve

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4))
    y = np.maximum(X @ rng.standard_normal(4), 0) + 0.1 * rng.standard_normal(600)
    problem = cvxnn.build_problem(X, y, lam=1.0, n_gates=8, bias=True)
    problem = cvxnn.build_problem(X, y, lam=lam_ratio * cvxnn.lam_max(problem),
                                  n_gates=8, bias=True)
    assert interior.use_weight_space(problem)
    monkeypatch.setattr(solve, "INTERIOR_MAX_FLOPS",
                        interior.estimated_flops(problem) * 1.01)  # n x n: over
    assert interior.estimated_flops(problem, False) > solve.INTERIOR_MAX_FLOPS
    budget = solve.fista_budget(problem)
    c, P, d = problem.weight_shape
    assert budget == max(solve.MIN_FISTA_BUDGET, int(
        solve.INTERIOR_STEPS_PARITY * interior.estimated_flops(problem)
        / (4.0 * 600 * c * P * d)))
    sol = fast_solve(problem, tol=1e-8)
    assert_matches(sol, clarabel(problem), 1e-8)
    assert sol.info["method"] == first and sol.info["fista_budget"] == budget
    if first == "interior_point":
        assert sol.info["fallback_from"] == "fista"
        assert sol.info["fista_iterations"] == budget
    else:
        assert sol.n_iter < budget


def test_a_breakdown_in_autos_first_fista_leaves_it_to_the_interior_point(
        monkeypatch):
    from cvxnn.core.errors import NumericalBreakdown
    from cvxnn_fast import solve

    calls = []

    def breaks(*args, **kwargs):
        calls.append(1)
        raise NumericalBreakdown("overflow (test)", None)

    monkeypatch.setattr(solve.fista, "solve_gated", breaks)
    problem = build("squared", "group_l1", lam=1e-2)
    sol = fast_solve(problem, tol=1e-8)
    assert calls == [1] and sol.status == "optimal"
    assert sol.info["method"] == "interior_point"
    assert sol.info["fallback_from"] == "fista" and sol.info["fista_iterations"] is None


def test_a_warm_started_relu_auto_runs_the_interior_point_after_a_bounded_al():
    """ReLU with a warm start (a CV path's refit) ran the augmented Lagrangian
    alone: at tiny lam with cross-entropy 10,000 iterations left it at gap
    0.18 (700 rows, 3 classes), where the interior point certifies in 89
    steps. A bounded augmented Lagrangian now comes first, the interior point
    after it."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = np.digitize(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(300), [-0.3, 0.3])
    problem = cvxnn.build_problem(X, y, formulation="relu", loss="cross_entropy",
                                  n_gates=8, bias=True, lam=1.0)
    tiny = cvxnn.with_lam(problem, 1e-4 * cvxnn.lam_max(problem))
    near = fast_solve(cvxnn.with_lam(tiny, 2 * tiny.lam), tol=2e-2)
    sol = fast_solve(tiny, tol=1e-3, warm_start=near)
    assert sol.status == "optimal" and sol.info["method"] == "interior_point"
    assert sol.info["fallback_from"] == "augmented_lagrangian"
    assert sol.info["augmented_iterations"] == sol.info["augmented_budget"]
    assert sol.certificate.satisfied(1e-3, 1e-3)
    # from a start that certifies already the bounded augmented Lagrangian
    # ends it alone (from lam 0.6 lam_max to 0.5 it needs 210 iterations, past
    # its budget of 100: the interior point takes 9 steps)
    large = cvxnn.with_lam(problem, 0.5 * cvxnn.lam_max(problem))
    warm = fast_solve(large, tol=1e-6)
    again = fast_solve(large, tol=1e-3, warm_start=warm)
    assert again.status == "optimal"
    assert again.info["method"] == "augmented_lagrangian"
    assert again.n_iter <= again.info["augmented_budget"]


def test_a_slowly_closing_gap_is_not_polished_at_every_step(monkeypatch):
    """ReLU cross-entropy at tiny lam: the gap falls a few percent a step
    under the trust region, and a polish at every judged step was 40% of the
    solve; polishes now wait for the certificate to halve."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = np.digitize(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(300), [-0.3, 0.3])
    problem = cvxnn.build_problem(X, y, formulation="relu", loss="cross_entropy",
                                  n_gates=8, bias=True, lam=6.65e-5)
    calls = {"judged": 0, "polished": 0}
    judge, polished = interior.Finisher.judge, interior.Finisher._polished

    def count_judge(self, *args):
        out = judge(self, *args)
        calls["judged"] += out[3] is not None
        return out

    def count_polish(self, *args):
        calls["polished"] += 1
        return polished(self, *args)

    monkeypatch.setattr(interior.Finisher, "judge", count_judge)
    monkeypatch.setattr(interior.Finisher, "_polished", count_polish)
    sol = fast_solve(problem, tol=1e-3)
    assert sol.status == "optimal" and sol.info["method"] == "interior_point"
    assert calls["judged"] >= 6 and calls["polished"] <= calls["judged"] // 2, calls
    assert cvxnn.certificate(problem, V=sol.V, W=sol.W,
                             multipliers=sol.multipliers).satisfied(1e-3, 1e-3)


def test_a_warm_started_auto_keeps_the_interior_point_after_its_fista():
    """With a warm start auto ran R-FISTA alone, unbounded; now its bounded
    R-FISTA starts from the warm start and the interior point follows."""
    from cvxnn_fast import solve

    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4))
    y = np.maximum(X @ rng.standard_normal(4), 0) + 0.1 * rng.standard_normal(600)
    problem = cvxnn.build_problem(X, y, lam=1.0, n_gates=8, bias=True)
    problem = cvxnn.with_lam(problem, 1e-6 * cvxnn.lam_max(problem))
    near = fast_solve(cvxnn.with_lam(problem, 2 * problem.lam), tol=1e-3)
    seen = []
    sol = fast_solve(problem, tol=1e-8, warm_start=near,
                     callback=lambda state: seen.append(state["iteration"]))
    assert_matches(sol, clarabel(problem), 1e-8)
    assert sol.info["fista_budget"] == solve.fista_budget(problem)
    # tiny lam: R-FISTA does not certify within its budget, even warm
    assert sol.info["method"] == "interior_point"
    assert sol.info["fallback_from"] == "fista"
    assert sol.info["fista_iterations"] == sol.info["fista_budget"]
    # the callback's iteration numbers count on into the interior point (they
    # started again from 0)
    assert np.all(np.diff(seen) >= 0), seen
    assert seen[-1] == sol.info["fista_iterations"] + sol.n_iter


def test_a_raw_certificate_at_its_floor_still_gets_polished():
    """The raw iterate's certificate sat at its floor (~5e-6) while the
    method's own gap estimate fell 10x a step; polishing waited for the raw
    certificate to halve, so the solve stalled at tol 1e-8 (optimal_inaccurate,
    1.1e-6) where a polish at the next step certifies 1.2e-9."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 4))
    y = np.argmax(X @ rng.standard_normal((4, 3)) + 0.5 * rng.standard_normal((60, 3)),
                  axis=1)
    problem = cvxnn.build_problem(X, y, formulation="relu", loss="cross_entropy",
                                  lam=1e-4, n_gates=6, bias=True, random_state=5)
    sol = fast_solve(problem, method="interior_point", tol=1e-8)
    assert sol.status == "optimal" and sol.certificate.optimality <= 1e-8


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_coupled_root_is_a_root_of_the_coupled_hessian(formulation):
    """F^T F = N = A^T blockdiag(H_j) A / n for cross-entropy's weight-space
    factor, against N summed sample by sample; F has N's rank (a shift of all
    outputs is in its null space). The root used to come from a chunked QR
    that re-factored its whole triangle per chunk (90 s on n = 2,000, c P d
    = 2,000, now 2.6 s)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    y = np.argmax(X @ rng.standard_normal((3, 4)), axis=1)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss="cross_entropy",
                                  lam=1e-3, n_gates=5, bias=True)
    system = (newton_system.ReluSystem if formulation == "relu"
              else newton_system.GatedSystem)(problem)
    c, P, d = problem.weight_shape
    prob = rng.dirichlet(np.ones(c), size=problem.n_samples)
    q = np.sqrt(prob)
    L = -prob[:, :, None] * q[:, None, :]
    L[:, np.arange(c), np.arange(c)] += q  # L_j L_j^T = diag(p_j) - p_j p_j^T
    system.root_L = L
    F = system._coupled_root()
    Phi = (problem.patterns[:, :, None] * system.X[:, None, :]).reshape(
        problem.n_samples, P * d)
    H = np.einsum("jka,jba->jkb", L, L)
    N = np.einsum("jab,ju,jv->aubv", H, Phi, Phi).reshape(c * P * d, c * P * d)
    N /= problem.n_samples
    np.testing.assert_allclose(F.T @ F, N, rtol=0, atol=1e-12 * np.abs(N).max())
    assert F.shape[0] == np.linalg.matrix_rank(N) < c * P * d


def test_a_stalled_relu_interior_point_quotes_the_returned_point():
    """No judged point met cone_tol, so none was kept as the best: the
    message quoted the best optimality as inf and said it returned "the best
    point"; it names the returned point's miss (here the cone violation of
    a float32 problem at tolerances float32 cannot hold) and the last iterate."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = np.sign(X @ rng.standard_normal(4) + 0.3 * np.abs(X[:, 0]) - 0.2)
    problem = cvxnn.build_problem(X.astype(np.float32), y, loss="logistic",
                                  regularizer="l2", formulation="relu", lam=1e-1,
                                  n_gates=10, bias=True)
    with pytest.warns(ConvergenceWarning, match="stopped improving"):
        sol = fast_solve(problem, method="interior_point", tol=1e-8)
    assert "inf" not in sol.message and "returning the last iterate" in sol.message
    cert = sol.certificate
    quoted = (f"cone violation {cert.cone_violation:.2e}" if cert.optimality <= 1e-8
              else f"optimality {cert.optimality:.2e}")
    assert quoted in sol.message
