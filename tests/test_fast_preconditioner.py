"""The pattern-mean metric of gated R-FISTA (cvxnn_fast/metric.py, _metric.pxd)
against explicit matrices, its optimality conditions and CVXPY."""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import make_data

import cvxnn
from cvxnn.core import operator
from cvxnn_fast import fast_solve
from cvxnn_fast.fista import _fista
from cvxnn_fast.fista import preconditioner as metric
from cvxnn_fast.fista import solver as engine

REG = {"group_l1": 0, "l1": 2, "l2": 3, None: 4}
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def explicit_metric(c, P, d, beta):
    """M = I + beta Pi as a dense matrix on the flat (c * P * d) weights."""
    Pi = np.kron(np.eye(c), np.kron(np.ones((P, P)) / P, np.eye(d)))
    return np.eye(c * P * d) + beta * Pi


def plain_prox(reg, Z, t):
    if reg == "group_l1":
        norms = np.linalg.norm(Z, axis=-1, keepdims=True)
        return np.maximum(0, 1 - t / np.maximum(norms, 1e-300)) * Z
    if reg == "l1":
        return np.sign(Z) * np.maximum(np.abs(Z) - t, 0)
    if reg == "l2":
        return Z / (1 + t)
    return Z


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reg", list(REG))
@pytest.mark.parametrize("c", [1, 3])
def test_prox_meets_its_optimality_conditions(rng, dtype, reg, c):
    P, d, beta, t = 9, 4, 5.0, 0.6
    Z = rng.standard_normal((c * P, d))
    Z[2] *= 0.1  # a row below the threshold
    x = Z.astype(dtype)
    m = rng.standard_normal((c, d))  # any start
    _fista.metric_proximal(REG[reg], x, t, beta, c, m)
    x = x.astype(np.float64)
    # x is the prox in M iff x_i = prox_tR(z_i - beta * mean_i(x - z)).
    shift = (x - Z).reshape(c, P, d).mean(axis=1, keepdims=True)
    expected = plain_prox(reg, Z.reshape(c, P, d) - beta * shift, t)
    np.testing.assert_allclose(x, expected.reshape(c * P, d), atol=TOL[dtype])
    if reg is not None:
        np.testing.assert_allclose(m, shift[:, 0], atol=TOL[dtype])


def test_prox_with_rows_at_their_threshold(rng):
    # Rows just above the threshold make the Jacobian's low-rank part large:
    # the diagonal steps stall and the Newton (CG) steps take over.
    c, P, d, beta, t = 1, 40, 6, 50.0, 1.0
    Z = rng.standard_normal((P, d))
    Z *= (1.0 + 1e-3 * rng.random((P, 1))) / np.linalg.norm(Z, axis=1, keepdims=True)
    Z += 0.05  # a common component for m to absorb
    x, m = Z.copy(), np.zeros((c, d))
    steps = _fista.metric_proximal(REG["group_l1"], x, t, beta, c, m)
    shift = (x - Z).mean(axis=0, keepdims=True)
    np.testing.assert_allclose(x, plain_prox("group_l1", Z - beta * shift, t),
                               atol=1e-10)
    assert 0 < steps < 50


def test_group_prox_matches_cvxpy(rng):
    c, P, d, beta, t = 2, 6, 3, 4.0, 0.7
    Z = rng.standard_normal((c * P, d))
    x = Z.copy()
    _fista.metric_proximal(REG["group_l1"], x, t, beta, c, np.zeros((c, d)))
    M = explicit_metric(c, P, d, beta)

    def objective(v, norm, quad):
        return t * norm(v) + 0.5 * quad(v - Z.ravel(), M)

    v = cp.Variable(c * P * d)
    rows = cp.reshape(v, (c * P, d), order="C")
    problem = cp.Problem(cp.Minimize(objective(
        v, lambda v: cp.sum(cp.norm(rows, 2, axis=1)), cp.quad_form)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem.solve(solver="CLARABEL", tol_gap_rel=1e-12, tol_gap_abs=1e-12,
                      tol_feas=1e-12)
    ours = objective(x.ravel(),
                     lambda v: np.linalg.norm(v.reshape(-1, d), axis=1).sum(),
                     lambda a, M: a @ M @ a)
    assert ours <= problem.value + 1e-9
    np.testing.assert_allclose(x.ravel(), v.value, atol=1e-5)


def test_prox_at_beta_zero_is_the_plain_prox(rng):
    Z = rng.standard_normal((8, 5))
    x = Z.copy()
    _fista.metric_proximal(REG["group_l1"], x, 0.9, 0.0, 2, np.zeros((2, 5)))
    np.testing.assert_allclose(x, plain_prox("group_l1", Z, 0.9), atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_step_and_distance_match_the_explicit_metric(rng, dtype):
    c, P, d, beta, step = 2, 5, 3, 3.0, 0.4
    M = explicit_metric(c, P, d, beta)
    y, g = (rng.standard_normal((c * P, d)).astype(dtype) for _ in range(2))
    out = np.empty_like(y)
    _fista.metric_gradient_step(y, g, step, beta, c, out)
    expected = y.ravel() - step * np.linalg.solve(M, g.ravel().astype(np.float64))
    np.testing.assert_allclose(out.ravel(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    delta = (y - g).ravel().astype(np.float64)
    assert _fista.metric_distance(y, g, beta, c) == pytest.approx(
        delta @ M @ delta, rel=TOL[dtype])
    np.testing.assert_allclose(metric.block_mean(g.astype(np.float64), c).ravel(),
                               (M - np.eye(c * P * d)) @ g.ravel() / beta,
                               atol=1e-12)


def test_spike_curvature_is_the_explicit_rayleigh_quotient(rng):
    X = rng.standard_normal((30, 3))
    D = (rng.standard_normal((30, 7)) > 0).astype(np.uint8)
    A = operator.design_matrix(X, D).toarray()
    T = np.kron(np.ones((7, 1)), np.eye(3)) / np.sqrt(7)  # orthonormal basis of 1 (x) v
    expected = np.linalg.eigvalsh(T.T @ A.T @ A @ T / 30)[-1]
    assert metric.spike_curvature(X, D) == pytest.approx(expected, rel=1e-12)


def test_beta_where_the_metric_applies():
    X, y = make_data("squared", n_samples=200, n_features=5, seed=0)
    many = cvxnn.build_problem(X, y, lam=1e-3, n_gates=50, random_state=0)
    assert engine.metric_beta(many) == metric.BETA
    assert engine.metric_beta(cvxnn.with_lam(many, 0.0)) == metric.BETA
    for kwargs in ({"regularizer": "feature_group_l1"}, {"formulation": "relu"},
                   {"n_gates": 1}):
        problem = cvxnn.build_problem(X, y, lam=1e-3, random_state=0,
                                      **{"n_gates": 50, **kwargs})
        assert engine.metric_beta(problem) == 0.0


@pytest.mark.parametrize("loss,regularizer", [("squared", "group_l1"),
                                              ("logistic", "l1"),
                                              ("cross_entropy", "l2")])
def test_metric_and_euclidean_runs_reach_the_same_optimum(monkeypatch, loss,
                                                          regularizer):
    X, y = make_data(loss, n_samples=120, n_features=4, n_outputs=3, seed=1)
    problem = cvxnn.build_problem(X, y, loss=loss, regularizer=regularizer,
                                  lam=1e-3, n_gates=40, bias=True, random_state=1)
    with_metric = fast_solve(problem, tol=1e-7, max_iter=50_000, method="fista")
    monkeypatch.setattr(engine, "metric_beta", lambda problem: 0.0)
    plain = fast_solve(problem, tol=1e-7, max_iter=50_000, method="fista")
    assert with_metric.info["metric_beta"] == metric.BETA
    assert plain.info["metric_beta"] == 0.0
    assert with_metric.status == plain.status == "optimal"
    assert with_metric.objective == pytest.approx(plain.objective, rel=1e-6)


# --- Per-output steps (cross-entropy) -----------------------------------------

def explicit_scaled_metric(c, P, d, beta, scale):
    """M with output k's block divided by scale[k], dense."""
    weights = np.repeat(1.0 / np.asarray(scale), P * d)
    return weights[:, None] * explicit_metric(c, P, d, beta)


@pytest.mark.parametrize("beta", [0.0, 3.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scaled_step_and_distance_match_the_explicit_metric(rng, dtype, beta):
    c, P, d, step = 3, 4, 2, 0.4
    scale = np.array([1.0, 2.5, 7.0])
    M = explicit_scaled_metric(c, P, d, beta, scale)
    y, g = (rng.standard_normal((c * P, d)).astype(dtype) for _ in range(2))
    out = np.empty_like(y)
    _fista.metric_gradient_step(y, g, step, beta, c, out, scale)
    expected = y.ravel() - step * np.linalg.solve(M, g.ravel().astype(np.float64))
    np.testing.assert_allclose(out.ravel(), expected, rtol=TOL[dtype], atol=TOL[dtype])
    delta = (y - g).ravel().astype(np.float64)
    assert _fista.metric_distance(y, g, beta, c, scale) == pytest.approx(
        delta @ M @ delta, rel=TOL[dtype])


@pytest.mark.parametrize("reg", ["group_l1", "l1", "l2"])
def test_scaled_prox_is_each_block_s_prox_with_its_longer_step(rng, reg):
    # The prox of t R in M / w_k on block k is the prox of t w_k R in M.
    c, P, d, beta, t = 3, 6, 4, 5.0, 0.5
    scale = np.array([1.0, 3.0, 0.5])
    Z = rng.standard_normal((c * P, d))
    x = Z.copy()
    _fista.metric_proximal(REG[reg], x, t, beta, c, np.zeros((c, d)), scale)
    for k in range(c):
        block = Z[k * P:(k + 1) * P].copy()
        _fista.metric_proximal(REG[reg], block, t * scale[k], beta, 1, np.zeros((1, d)))
        np.testing.assert_allclose(x[k * P:(k + 1) * P], block, atol=1e-13)
    if reg == "group_l1":  # at beta = 0 that is the plain prox, block by block
        x0 = Z.copy()
        _fista.metric_proximal(REG[reg], x0, t, 0.0, c, np.zeros((c, d)), scale)
        expected = plain_prox(reg, Z.reshape(c, P, d), t * scale[:, None, None])
        np.testing.assert_allclose(x0, expected.reshape(c * P, d), atol=1e-14)


def test_output_scales_are_the_square_root_of_the_curvature_ratio():
    np.testing.assert_allclose(engine.output_scales([4.0, 1.0, 0.25]), [1.0, 2.0, 4.0])
    # Capped at MAX_OUTPUT_SCALE; an output without curvature gets the cap.
    cap = engine.MAX_OUTPUT_SCALE
    np.testing.assert_allclose(engine.output_scales([1.0, 1e-6, 0.0]), [1.0, cap, cap])
    np.testing.assert_array_equal(engine.output_scales([0.0, 0.0]), [1.0, 1.0])


def loss_curvature(loss, Z, Y):
    """Each output's summed diagonal loss curvature at predictions Z."""
    if loss == "cross_entropy":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        p = E / E.sum(axis=1, keepdims=True)
    else:  # logistic: sigma(-y z)
        p = 1.0 / (1.0 + np.exp(Y * Z))
    return (p * (1 - p)).sum(axis=0)


@pytest.mark.parametrize("loss", ["cross_entropy", "logistic"])
def test_kernel_scales_are_those_of_the_loss_curvature(rng, monkeypatch, loss):
    # Softmax outputs, and several logistic outputs (one class against the
    # rest), differ in curvature.
    X, y = make_data(loss, n_samples=80, n_features=4, n_outputs=4, seed=1)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-3, n_gates=6,
                                  bias=True, random_state=0)
    assert engine.per_output_applies(problem)
    U0 = rng.standard_normal(problem.weight_shape)
    seen = []

    class Capture(engine.Workspace):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(engine, "Workspace", Capture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_solve(problem, method="fista", warm_start=U0, max_iter=1)
    # One iteration, no restart: the scales are those of the start point.
    Z = operator.predict(problem.X, problem.patterns, U0)
    expected = engine.output_scales(loss_curvature(loss, Z, problem.y))
    assert seen[0].per_output and not np.allclose(expected, 1.0)
    np.testing.assert_allclose(seen[0].out_scale, expected, rtol=1e-10)


@pytest.mark.parametrize("reg", ["group_l1", "l1", "l2"])
@pytest.mark.parametrize("loss", ["cross_entropy", "logistic"])
def test_per_output_steps_reach_the_cvxpy_optimum(loss, reg):
    X, y = make_data(loss, n_samples=70, n_features=3, n_outputs=3, seed=2)
    problem = cvxnn.build_problem(X, y, loss=loss, regularizer=reg,
                                  lam=1e-2, n_gates=8, bias=True, random_state=0)
    assert engine.per_output_applies(problem)
    sol = fast_solve(problem, method="fista", tol=1e-8)
    ref = problem.solve(solver="CLARABEL")
    assert sol.status == "optimal"
    assert abs(sol.objective - ref.objective) <= \
        sol.certificate.duality_gap + 1e-7 * abs(ref.objective)
