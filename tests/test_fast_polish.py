"""The group-scaling polish of cvxnn_fast against independent computations."""

import warnings

import numpy as np
import pytest
from conftest import LOSSES, make_data
from scipy.optimize import minimize
from scipy.special import softmax

import cvxnn
from cvxnn.core import operator
from cvxnn.core.certificates import certificate
from cvxnn_fast import fast_solve as _fast_solve
from cvxnn_fast.common.polish import MAX_SCALE, Polisher, best_multipliers, polish
from cvxnn_fast.fista import _fista

LOSS = {"squared": 0, "logistic": 1, "cross_entropy": 2}
TOL = {np.float64: 1e-6, np.float32: 2e-2}  # finite differences of gradients
NORMS = ("group_l1", "feature_group_l1", "l1")


def fast_solve(problem, **kwargs):
    """The first-order solvers, whose polish these tests examine, even where
    "auto" would pick the interior-point method."""
    relu = problem.formulation.name == "relu"
    kwargs.setdefault("method", "augmented_lagrangian" if relu else "fista")
    return _fast_solve(problem, **kwargs)


def numpy_gradient(loss, Z, Y):
    if loss == "squared":
        return Z - Y
    if loss == "logistic":
        return -Y / (1 + np.exp(Y * Z))
    return softmax(Z, axis=-1) - Y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", LOSSES)
def test_loss_hessian_matches_finite_differences(dtype, loss):
    rng = np.random.default_rng(3)
    n, c, h = 7, 3, 1e-6
    Z = rng.standard_normal((n, c))
    Y = {"squared": rng.standard_normal((n, c)),
         "logistic": np.sign(rng.standard_normal((n, c))),
         "cross_entropy": np.eye(c)[rng.integers(0, c, n)]}[loss]
    S = numpy_gradient(loss, Z, Y)
    Wd, Q = np.empty((n, c), dtype), np.empty((n, c), dtype)
    _fista.loss_hessian(LOSS[loss], S.astype(dtype), Y.astype(dtype), Wd, Q)
    for j in range(n):
        got = np.diag(Wd[j]) - np.outer(Q[j], Q[j])
        if loss == "cross_entropy":
            fd = np.array([(numpy_gradient(loss, Z[j] + h * e, Y[j])
                            - numpy_gradient(loss, Z[j] - h * e, Y[j])) / (2 * h)
                           for e in np.eye(c)])
        else:  # separable: one column at a time
            fd = np.diag((numpy_gradient(loss, Z[j] + h, Y[j])
                          - numpy_gradient(loss, Z[j] - h, Y[j])) / (2 * h))
        np.testing.assert_allclose(got, fd, atol=TOL[dtype])


def rough_solution(formulation, loss, regularizer, iterations=40, seed=0):
    n_outputs = 3 if loss == "cross_entropy" else 1
    X, y = make_data(loss, n_samples=40, n_features=3, n_outputs=n_outputs,
                     seed=seed)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                                  regularizer=regularizer, lam=0.02, n_gates=8,
                                  random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return problem, fast_solve(problem, tol=1e-14, max_iter=iterations)


def lagrangian_of_scales(problem, blocks, multipliers, axes):
    """Phi(s) from Problem.objective and the cone map, by brute force."""
    shapes = {k: np.sum(problem.regularizer.group_norms(b), axis=axes,
                        keepdims=True).shape for k, b in blocks.items()}
    sizes = [int(np.prod(shapes[k])) for k in blocks]
    signs = 2.0 * problem.patterns[:, None, :] - 1.0

    def split(s):
        parts = np.split(s, np.cumsum(sizes)[:-1])
        return {k: b * p.reshape(shapes[k])
                for (k, b), p in zip(blocks.items(), parts, strict=True)}

    def phi(s):
        scaled = split(s)
        value = problem.objective(**scaled)
        for k, lam_k in zip(("V", "W"), multipliers or (), strict=False):
            cones = signs * np.einsum("jd,kpd->jkp", problem.X, scaled[k])
            value -= np.sum(lam_k * cones)
        return value

    return phi, split, sum(sizes)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", NORMS)
def test_gated_polish_minimizes_over_group_scales(loss, regularizer):
    problem, sol = rough_solution("gated_relu", loss, regularizer, iterations=150)
    axes = (0, 1) if regularizer == "feature_group_l1" else (2,)
    phi, split, m = lagrangian_of_scales(problem, sol.blocks, None, axes)
    best = minimize(phi, np.ones(m), method="L-BFGS-B", bounds=[(0, MAX_SCALE)] * m,
                    options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    polished = polish(problem, sol.blocks)
    value = problem.objective(**polished)
    assert value <= sol.objective * (1 + 1e-14)
    assert value <= best.fun + 1e-9 * abs(best.fun)


def neuron_scales(blocks, polished):
    """Per-neuron scale of each block (1 for zero neurons), flattened V then W."""
    out = []
    for k, b in blocks.items():
        norms = np.linalg.norm(b, axis=2)
        out.append(np.where(norms > 0, np.linalg.norm(polished[k], axis=2)
                            / np.where(norms > 0, norms, 1), 1.0).ravel())
    return np.concatenate(out)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_relu_polish_minimizes_the_lagrangian(loss):
    problem, sol = rough_solution("relu", loss, "group_l1", iterations=3000)
    phi, split, m = lagrangian_of_scales(problem, sol.blocks, sol.multipliers, (2,))
    best = minimize(phi, np.ones(m), method="L-BFGS-B", bounds=[(0, MAX_SCALE)] * m,
                    options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    polished = polish(problem, sol.blocks, sol.multipliers)
    scales = neuron_scales(sol.blocks, polished)
    np.testing.assert_allclose(split(scales)["V"], polished["V"], rtol=1e-12)
    assert phi(scales) <= best.fun + 1e-9 * abs(best.fun)
    # Scaling a neuron keeps it in its cone: violations scale with it.
    before = certificate(problem, **sol.blocks).cone_violation
    after = certificate(problem, **polished).cone_violation
    assert after <= scales.max() * before * (1 + 1e-9) + 1e-15


def test_polish_helps_the_certificate_near_the_optimum():
    problem, sol = rough_solution("gated_relu", "squared", "group_l1", iterations=60)
    polished = polish(problem, sol.blocks)
    assert certificate(problem, **polished).relative_gap < \
        0.1 * sol.certificate.relative_gap


@pytest.mark.parametrize("regularizer,lam", [("l2", 0.02), (None, 0.0),
                                             ("group_l1", 0.0)])
def test_polish_applies_to_norms_only(regularizer, lam):
    X, y = make_data("squared", n_samples=20)
    problem = cvxnn.build_problem(X, y, regularizer=regularizer, lam=lam, n_gates=4)
    U = np.ones(problem.weight_shape)
    assert polish(problem, {"U": U}) is None
    assert not Polisher(problem, 1e-6, np.inf).enabled


def test_solver_history_ends_at_the_returned_point():
    problem, _ = rough_solution("gated_relu", "squared", "group_l1")
    sol = fast_solve(problem, tol=1e-8)
    assert sol.status == "optimal"
    assert sol.history["objective"][-1] == sol.objective
    assert sol.history["optimality"][-1] == pytest.approx(
        sol.certificate.optimality, rel=1e-9)


@pytest.mark.parametrize("loss", LOSSES)
def test_polish_zeroes_every_group_when_lam_is_above_lam_max(loss):
    # The Newton steps drive every scale to the bound 0, where no scale is
    # free: found by comparisons/correctness.py as a ZeroDivisionError.
    problem, sol = rough_solution("gated_relu", loss, "group_l1")
    big = cvxnn.with_lam(problem, 10 * cvxnn.lam_max(problem))
    polished = polish(big, sol.blocks)
    assert not np.any(polished["U"])
    assert big.objective(**polished) <= big.objective(**sol.blocks)


def small_relu(loss="squared", seed=0):
    n_outputs = 3 if loss == "cross_entropy" else 1
    X, y = make_data(loss, n_samples=40, n_features=3, n_outputs=n_outputs,
                     seed=seed)
    return cvxnn.build_problem(X, y, formulation="relu", loss=loss,
                               regularizer="group_l1", lam=0.02, n_gates=8,
                               random_state=seed)


@pytest.mark.parametrize("loss", LOSSES)
def test_best_multipliers_solve_each_neurons_least_squares(loss):
    import cvxpy as cp

    problem = small_relu(loss)
    rng = np.random.default_rng(1)
    blocks = {k: rng.standard_normal(problem.weight_shape) for k in ("V", "W")}
    lam_V, lam_W = best_multipliers(problem, blocks)
    G = operator.adjoint(problem.X, problem.patterns, problem.loss.gradient(
        problem.model_predict(problem.blocks(**blocks)), problem.y)) \
        / problem.n_samples
    signs = 2.0 * problem.patterns - 1.0
    for lam, sign in ((lam_V, 1.0), (lam_W, -1.0)):
        assert np.all(lam >= 0)
        for k in range(problem.n_outputs):
            for i in range(problem.n_patterns):
                Ct = (signs[:, i, None] * problem.X).T
                mu = cp.Variable(problem.n_samples, nonneg=True)
                cp.Problem(cp.Minimize(cp.sum_squares(Ct @ mu - sign * G[k, i]))
                           ).solve(solver="CLARABEL")
                best = np.linalg.norm(Ct @ mu.value - sign * G[k, i])
                got = np.linalg.norm(Ct @ lam[:, k, i] - sign * G[k, i])
                assert got <= best + 1e-7 * max(1.0, np.linalg.norm(G[k, i]))


@pytest.mark.parametrize("loss", LOSSES)
def test_refined_multipliers_certify_where_the_given_ones_cannot(loss):
    problem = small_relu(loss)
    sol = fast_solve(problem, tol=1e-9, max_iter=100_000)
    reference = problem.solve("CLARABEL")
    # Multipliers 0.1% short of the optimal ones (as an augmented Lagrangian's
    # lag behind its accurate primal point) give no certificate at 1e-6 ...
    lagging = tuple(0.999 * m for m in sol.multipliers)
    assert not certificate(problem, **sol.blocks, multipliers=lagging).satisfied(
        1e-6, 1e-6)
    plain = Polisher(problem, 1e-6, 1e-6)
    plain.refine = False
    assert not plain.attempt(1000, 1e-3, sol.blocks, lagging)
    # ... and the attempt's refinement finds multipliers that give one.
    polisher = Polisher(problem, 1e-6, 1e-6)
    assert polisher.attempt(1000, 1e-3, sol.blocks, lagging)
    blocks, multipliers, cert = polisher.result
    assert cert.satisfied(1e-6, 1e-6)
    # A valid lower bound: the dual value is below CLARABEL's optimum.
    assert cert.objective - cert.duality_gap <= reference.objective * (1 + 1e-8)
    assert cert == certificate(problem, **blocks, multipliers=multipliers)


@pytest.mark.parametrize("seed", range(4))
def test_working_set_nnls_matches_the_full_problem(seed):
    from scipy.optimize import nnls

    from cvxnn_fast.common.polish import _nnls_columns

    rng = np.random.default_rng(seed)
    n, d = 300, 8
    X = rng.standard_normal((n, d))
    Ct = np.ascontiguousarray((np.sign(X @ rng.standard_normal(d))[:, None] * X).T)
    b = rng.standard_normal(d) if seed % 2 else -Ct[:, :3].sum(axis=1)
    start = rng.random(n) < 0.02  # a hint: some columns, right or wrong
    lam = _nnls_columns(Ct, b, start)
    full = nnls(Ct, b, maxiter=10 * n)[1]
    assert np.all(lam >= 0)
    assert np.linalg.norm(Ct @ lam - b) <= full + 1e-10 * max(1.0, full)
    # Cut short after one round it is still non-negative (a valid choice).
    assert np.all(_nnls_columns(Ct, b, start, rounds=1) >= 0)


def test_relu_attempts_come_closer_together_once_near_the_optimum():
    problem = small_relu()
    sol = fast_solve(problem, tol=1e-9, max_iter=100_000)
    lagging = tuple(0.999 * m for m in sol.multipliers)
    violation = certificate(problem, **sol.blocks).cone_violation
    cone_tol = violation / 2  # not met, but within CLOSE_VIOLATION of it
    polisher = Polisher(problem, 1e-6, cone_tol)
    assert not polisher.attempt(10_000, 1e-3, sol.blocks, lagging)
    assert polisher.next_iter == 10_000 + int(np.ceil(Polisher.CLOSE_SPACING * 10_000))
    far = Polisher(problem, 1e-6, cone_tol)  # multipliers far off: gap ~0.8
    assert not far.attempt(10_000, 1e-3, sol.blocks, tuple(0 * m for m in lagging))
    assert far.next_iter == 10_000 + int(np.ceil(Polisher.SPACING * 10_000))


def test_best_multipliers_in_float32_give_a_valid_bound():
    problem = small_relu()
    single = cvxnn.build_problem(problem.X.astype(np.float32),
                                 problem.y.astype(np.float32), formulation="relu",
                                 regularizer="group_l1", lam=problem.lam,
                                 gates=problem.gates)
    assert np.array_equal(single.patterns, problem.patterns)  # the same program
    sol = fast_solve(single, tol=1e-4, max_iter=100_000)
    lam_V, lam_W = best_multipliers(single, sol.blocks)
    assert lam_V.dtype == np.float32 and lam_W.dtype == np.float32
    assert np.all(lam_V >= 0) and np.all(lam_W >= 0)
    cert = certificate(single, **sol.blocks, multipliers=(lam_V, lam_W))
    reference = problem.solve("CLARABEL")
    assert cert.objective - cert.duality_gap <= reference.objective * (1 + 1e-4)
    assert cert.relative_gap <= 1e-3
