"""The Newton-CG method against CLARABEL; its kernels against explicit matrices;
its options, statuses, warm start and dtypes."""

import warnings

import numpy as np
import pytest
from conftest import LOSSES
from test_fast_solver import build, clarabel, float32_regression

import cvxnn
from cvxnn.core import operator
from cvxnn.core.certificates import lam_max
from cvxnn.core.errors import ConvergenceWarning
from cvxnn.core.status import OPTIMAL, USER_LIMIT
from cvxnn_fast import fast_solve
from cvxnn_fast.newton import curvature
from cvxnn_fast.newton.solver import Point

TOL = {np.float64: 1e-8, np.float32: 1e-4}


def newton(problem, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fast_solve(problem, method="newton", **kw)


def within_gaps(sol, ref):
    """|F - F_ref| is at most the sum of the two certified gaps."""
    slack = sol.certificate.duality_gap + (ref.certificate.duality_gap or 0.0)
    return abs(sol.objective - ref.objective) <= slack + 1e-6 * abs(ref.objective)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", ["group_l1", "l2"])
@pytest.mark.parametrize("bias,n_outputs", [(False, 1), (True, 3)])
def test_newton_matches_clarabel(loss, regularizer, bias, n_outputs):
    problem = build(loss, regularizer, bias=bias, n_outputs=n_outputs)
    sol = newton(problem, tol=1e-8, max_iter=500)
    assert sol.status == OPTIMAL, sol.message
    assert sol.info["method"] == "newton"
    assert sol.certificate.relative_gap <= 1e-8
    assert within_gaps(sol, clarabel(problem))


@pytest.mark.parametrize("regularizer", ["feature_group_l1", "l1", None])
def test_newton_takes_the_other_penalties(regularizer):
    problem = build("squared", regularizer, bias=True, n_outputs=2)
    sol = newton(problem, tol=1e-8, max_iter=500)
    assert sol.status == OPTIMAL, sol.message
    ref = clarabel(problem)
    assert abs(sol.objective - ref.objective) <= 1e-6 * abs(ref.objective) + 1e-9


@pytest.mark.parametrize("loss", LOSSES)
def test_newton_agrees_with_fista_in_both_dtypes(loss):
    sols = {}
    for dtype in (np.float64, np.float32):
        problem = build(loss, "group_l1", bias=True, n_outputs=3, n_samples=300,
                        n_gates=20, lam=1e-3, dtype=dtype)
        sols[dtype] = newton(problem, tol=TOL[dtype], max_iter=500)
        assert sols[dtype].status == OPTIMAL, sols[dtype].message
        assert sols[dtype].U.dtype == dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = fast_solve(problem, tol=TOL[dtype], method="fista",
                             max_iter=100_000)
        assert within_gaps(sols[dtype], ref)
    F64, F32 = sols[np.float64].objective, sols[np.float32].objective
    assert abs(F64 - F32) <= 1e-3 * abs(F64)


@pytest.mark.parametrize("loss", LOSSES)
def test_lam_above_lam_max_gives_zeros(loss):
    problem = build(loss, "group_l1", bias=True, n_outputs=2)
    problem.lam = 1.01 * lam_max(problem)
    sol = newton(problem, tol=1e-8)
    assert sol.status == OPTIMAL and not sol.U.any()


def test_bad_options_are_rejected_by_name():
    relu = build("squared", "group_l1", formulation="relu")
    with pytest.raises(ValueError, match="Newton-CG method solves gated_relu"):
        fast_solve(relu, method="newton")
    gated = build("squared", "group_l1")
    with pytest.raises(ValueError, match="method"):
        fast_solve(gated, method="newton_cg")
    with pytest.raises(TypeError, match="cg_max_iter"):
        fast_solve(gated, method="newton", cg_max_iter=5)


def test_warm_start_callback_and_time_limit():
    problem = build("logistic", "group_l1", bias=True, n_samples=200, lam=1e-3)
    sol = newton(problem, tol=1e-8)
    again = newton(problem, tol=1e-8, warm_start=sol)
    assert again.status == OPTIMAL and again.n_iter == 0
    seen = []

    def stop(info):
        seen.append(info["weights"]()["U"].shape)
        return True

    cold = build("squared", "group_l1", bias=True, n_samples=200, lam=1e-4)
    stopped = newton(cold, tol=1e-12, callback=stop)
    assert stopped.status == USER_LIMIT and seen == [cold.weight_shape]
    assert newton(cold, tol=1e-14, time_limit=1e-9).status == USER_LIMIT


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES)
def test_hessian_product_matches_the_explicit_matrix(loss, dtype, rng):
    problem = build(loss, "group_l1", bias=True, n_outputs=3, dtype=dtype)
    c, P, d = problem.weight_shape
    U = rng.standard_normal(problem.weight_shape).astype(dtype)
    V = rng.standard_normal(problem.weight_shape).astype(dtype)
    Yhat = operator.predict(problem.X, problem.patterns, U)
    apply, _ = curvature.loss_hessian(problem.loss, Yhat, problem.y)
    A = operator.design_matrix(problem.X, problem.patterns).toarray()
    AV = np.stack([A @ V[k].ravel() for k in range(c)], axis=1)
    HV = np.stack([A.T @ apply(AV)[:, k] for k in range(c)]).reshape(c, P, d)
    got = operator.adjoint(problem.X, problem.patterns, apply(operator.predict(
        problem.X, problem.patterns, V)))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(got, HV, rtol=rtol, atol=rtol * np.abs(HV).max())


def test_kronecker_preconditioner_inverts_its_explicit_matrix(rng):
    problem = build("squared", "group_l1", bias=True, n_outputs=2)
    c, P, d = problem.weight_shape
    kron = curvature.Kronecker(problem.X, problem.patterns)
    h = rng.uniform(0.1, 1.0, (problem.n_samples, c))
    free = rng.uniform(size=(c, P)) < 0.7
    kron.update(h, free, np.array([0.3, 0.1]))
    R = rng.standard_normal((c, P, d)) * free[:, :, None]
    X, D = problem.X, problem.patterns.astype(float)
    Sigma = X.T @ X / problem.n_samples
    for k in range(c):
        idx = np.flatnonzero(free[k])
        C = (D[:, idx] * h[:, k:k + 1]).T @ D[:, idx] / problem.n_samples
        M = np.kron(C, Sigma) + [0.3, 0.1][k] * np.eye(idx.size * d)
        expected = np.linalg.solve(M, R[k, idx].ravel())
        np.testing.assert_allclose(kron.apply(R)[k, idx].ravel(), expected,
                                   rtol=1e-8, atol=1e-10)


def rank_deficient(kind):
    """Squared-loss data whose X^T X is singular (a duplicated or a zero
    column), or full rank; the targets are linear in X."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 4))
    y = X @ rng.standard_normal(4)
    extra = {"full rank": None, "duplicated column": X[:, 0],
             "zero column": np.zeros(100)}[kind]
    return (X if extra is None else np.c_[X, extra]), y


def test_kronecker_preconditioner_is_positive_definite_on_singular_sigma(rng):
    X, _ = rank_deficient("zero column")
    D = (rng.standard_normal((100, 6)) > 0).astype(np.float64)
    kron = curvature.Kronecker(X, D)
    kron.update(np.ones((100, 1)), np.ones((1, 6), bool), np.zeros(1))
    R = rng.standard_normal((1, 6, X.shape[1]))
    Z = kron.apply(R)
    assert np.all(np.isfinite(Z)) and float(np.vdot(R, Z)) > 0


@pytest.mark.parametrize("device", [None, "cpu"])
@pytest.mark.parametrize("regularizer", ["group_l1", "l1"])
@pytest.mark.parametrize("kind", ["full rank", "duplicated column", "zero column"])
def test_newton_leaves_zero_when_x_is_rank_deficient(kind, regularizer, device):
    """A singular X^T X with the squared loss (zero preconditioner shift at
    U = 0) made every Newton direction zero, and the loop stayed at U = 0."""
    if device is not None:
        pytest.importorskip("torch")
    X, y = rank_deficient(kind)
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=10,
                                  regularizer=regularizer, random_state=0)
    sol = newton(problem, tol=1e-8, max_iter=100, device=device)
    assert sol.status == OPTIMAL, sol.message
    assert sol.certificate.optimality <= 1e-8
    assert within_gaps(sol, clarabel(problem))


def test_zero_newton_direction_falls_back_to_a_proximal_step(monkeypatch):
    from cvxnn_fast.newton import solver

    def zero_direction(step, rtol, max_iter, out_of_time):
        p = step.problem
        return np.zeros(p.weight_shape, p.dtype), 0

    monkeypatch.setattr(solver.Step, "direction", zero_direction)
    problem = build("squared", "group_l1", bias=True)
    sol = newton(problem, tol=1e-12, max_iter=5)
    assert sol.U.any()
    assert np.all(np.diff(sol.history["objective"]) < 0)


def test_point_certificate_is_the_shared_one():
    problem = build("cross_entropy", "group_l1", bias=True, n_outputs=3)
    U = np.random.default_rng(1).standard_normal(problem.weight_shape)
    point = Point(problem, U)
    from cvxnn.core.certificates import certificate
    ref = certificate(problem, U)
    assert point.cert.relative_gap == pytest.approx(ref.relative_gap, rel=1e-10)



def test_auto_chooses_newton_only_at_large_n_with_squared_loss(monkeypatch):
    from cvxnn_fast.newton import solver
    from cvxnn_fast.solve import choose_method
    # (20,000 rows of few weights: the weight-space interior point after a
    # bounded R-FISTA, test_fast_interior; none of them Newton-CG)
    assert choose_method(build("squared", "group_l1", n_samples=20_000)) == \
        "interior_point"
    big = build("squared", "group_l1", n_samples=100_000)
    assert choose_method(big) == "newton"
    assert choose_method(big, "fista") == "fista"
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 1000)
    for loss, reg in [("logistic", "group_l1"), ("squared", "l2")]:
        assert choose_method(build(loss, reg, n_samples=9000)) != "newton"
    assert choose_method(build("squared", "group_l1", n_samples=9000)) == "newton"


@pytest.mark.parametrize("loss", LOSSES)
def test_subsample_start_and_hessian_reach_the_optimum(loss, monkeypatch):
    """Large-n path (thresholds lowered): a warm start on a row subsample, then
    Newton steps with a subsampled Hessian; the certificate is the full one."""
    from cvxnn_fast.newton import solver
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 500)
    monkeypatch.setattr(solver, "HESSIAN_ROWS_PER_WEIGHT", 1)
    problem = build(loss, "group_l1", bias=True, n_outputs=2, n_samples=2000,
                    n_gates=10, lam=1e-3)
    assert solver._hessian_rows(problem) is not None
    sol = newton(problem, tol=1e-6, max_iter=500)
    assert sol.status == OPTIMAL, sol.message
    assert sol.certificate.relative_gap <= 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fast_solve(problem, tol=1e-6, method="fista", max_iter=100_000)
    assert within_gaps(sol, ref)


def test_time_limit_during_the_subsample_start(monkeypatch):
    from cvxnn_fast.newton import solver
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 500)
    problem = build("squared", "group_l1", bias=True, n_samples=2000, lam=1e-4)
    sol = newton(problem, tol=1e-14, time_limit=1e-9)
    assert sol.status == USER_LIMIT and sol.U.shape == problem.weight_shape


def test_float32_sparse_solution_does_not_stall():
    """lam 1e-2 zeroes many groups; short Newton steps get a proximal step."""
    problem = build("squared", "group_l1", bias=True, n_outputs=3, n_samples=300,
                    n_gates=20, lam=1e-2, dtype=np.float32)
    sol = newton(problem, tol=1e-4, max_iter=100)
    assert sol.status == OPTIMAL, sol.message


def test_float32_optimal_means_the_returned_certificate_meets_tol():
    # The accepted points' predictions are accumulated (Yhat + alpha A delta);
    # in float32 their rounding drifted far enough that the loop stopped on
    # gap 1.2e-7 while the returned weights' certificate was 2.4e-6 > tol.
    rng = np.random.default_rng(0)
    n, d = 20000, 50
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) @ (basis * np.arange(1, d + 1) ** -0.5).T)
    X /= X.std(axis=0)
    y = np.maximum(X @ rng.standard_normal((d, 10)) / np.sqrt(d), 0) @ \
        rng.standard_normal(10)
    y = (y - y.mean()) / y.std() + 0.1 * rng.standard_normal(n)
    problem = cvxnn.build_problem(X.astype(np.float32), y.astype(np.float32),
                                  lam=1e-3, n_gates=100, bias=True, random_state=0)
    sol = fast_solve(problem, method="newton", tol=1e-6)
    assert sol.status == OPTIMAL
    assert sol.certificate.relative_gap <= 1e-6


def test_stall_test_compares_with_the_optimality_stall_steps_before():
    from cvxnn_fast.newton.solver import STALL_FACTOR, STALL_STEPS, _stalled
    opt = [1.0] * STALL_STEPS + [0.9]
    assert _stalled({"optimality": opt})
    assert not _stalled({"optimality": opt[:-1]})  # too few steps yet
    opt[-1] = 0.99 * STALL_FACTOR
    assert not _stalled({"optimality": opt})


def test_auto_goes_on_with_fista_where_newton_stalls(monkeypatch):
    """Newton-CG made little progress on Fashion-MNIST features from zero
    (optimality 0.997 -> 0.935 in 10 steps); ``auto`` then hands its iterate
    to R-FISTA. Forced here by an unreachable stall factor."""
    from cvxnn_fast import solve as solve_module
    from cvxnn_fast.newton import solver
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 500)
    monkeypatch.setattr(solver, "HESSIAN_ROWS_PER_WEIGHT", 1)
    monkeypatch.setattr(solver, "STALL_STEPS", 2)
    monkeypatch.setattr(solver, "STALL_FACTOR", 1e-30)
    monkeypatch.setattr(solve_module, "INTERIOR_MAX_FLOPS", 0)  # not this size
    problem = build("squared", "group_l1", bias=True, n_samples=2000, n_gates=10,
                    lam=1e-3)
    assert solver.preferred(problem)
    sol = fast_solve(problem, tol=1e-8)
    assert sol.info["method"] == "fista" and sol.info["fallback_from"] == "newton"
    assert sol.status == OPTIMAL and sol.certificate.relative_gap <= 1e-8
    assert within_gaps(sol, clarabel(problem))
    # The history holds Newton's steps (none here: it stalled in its subsample
    # start), then R-FISTA's iterations, in time order.
    steps = sol.info["newton_steps"]
    newton_rows = steps + 1 if steps else 0
    assert len(sol.history["time"]) == newton_rows + sol.n_iter + 1
    assert np.all(np.diff(sol.history["time"]) >= 0)
    # An explicit method="newton" never hands over.
    explicit = fast_solve(problem, tol=1e-8, method="newton")
    assert explicit.info["method"] == "newton" and not explicit.info["stalled"]
    assert explicit.status == OPTIMAL


@pytest.mark.parametrize("device", [None, "cpu"])
def test_float32_below_its_precision_ends_at_its_best_point(device):
    """Below float32's reach, a named Newton-CG ran all max_iter steps (8.6 s
    for 10,000 on 25 rows) on drifting predictions: its message said 2.2e-5
    while the returned weights had 4.2e-2. It now refreshes the predictions,
    ends where its best certificate stops improving, returns that point, and
    its message quotes the returned weights' certificate."""
    if device is not None:
        pytest.importorskip("torch")
    problem = float32_regression(8, 25, n_gates=6, lam=1e-3)
    with pytest.warns(ConvergenceWarning, match="stopped improving"):
        sol = fast_solve(problem, method="newton", max_iter=3000, device=device)
    assert sol.n_iter < 500
    assert f"{sol.certificate.optimality:.2e}" in sol.message
    # the history holds the loop's numbers: the device's are float32 sums,
    # which near float32's reach differ from the host's in the second digit
    slack = 1.01 if device is None else 2.0
    assert sol.certificate.optimality <= slack * np.nanmin(sol.history["optimality"])


def test_a_newton_plateau_far_above_the_dtypes_precision_blames_the_method():
    """Newton-CG on 8 rows and 65 weights (l1) plateaus at 1.8e-3, where
    R-FISTA certifies: the message blamed the dtype's precision."""
    rng = np.random.default_rng(3)
    rng.standard_normal((40, 3))
    X = rng.standard_normal((8, 12))
    problem = cvxnn.build_problem(X, X[:, 0] + np.abs(X[:, 1]), regularizer="l1",
                                  lam=1.0, n_gates=6, bias=True, random_state=0)
    problem = cvxnn.with_lam(problem, 0.05 * lam_max(problem))
    with pytest.warns(ConvergenceWarning, match="Newton-CG makes no progress here"):
        sol = fast_solve(problem, method="newton", max_iter=20_000)
    assert sol.certificate.optimality > 1e-4 and "precision" not in sol.message
    assert fast_solve(problem, method="fista", max_iter=20_000).status == "optimal"
