"""The eigenbasis feature metric of the compiled R-FISTA: its step, norm and
prox against explicit formulas and a direct minimization, the rule, and
solves on correlated features against CLARABEL and the Euclidean loop."""

import numpy as np
import pytest
from conftest import METRIC_CASES, correlated, direct_group_prox, make_targets

import cvxnn
from cvxnn.core import problem as problem_module
from cvxnn.core.certificates import certificate
from cvxnn_fast import fast_solve
from cvxnn_fast.fista import _fista
from cvxnn_fast.fista import feature_metric as features

REG = {name: cvxnn.core.regularizers.REGULARIZERS[name].code
       for name in ("group_l1", "l2", None)}
WEIGHTED = features.MIN_SPREAD_WEIGHTED  # the rule's, before the fixture
TOL = {np.float64: 1e-7, np.float32: 1e-4}
SLACK = {np.float64: 1e-9, np.float32: 1e-5}  # relative, on top of the gap


@pytest.fixture(autouse=True)
def every_loss_takes_the_metric(monkeypatch):
    """The correlated problems here (spread ~9) are below the rule's
    threshold for cross-entropy and logistic: lower it, so that every loss
    runs in the metric (the rule itself is tested below)."""
    monkeypatch.setattr(features, "MIN_SPREAD_WEIGHTED", features.MIN_SPREAD)




def _compiled_group_prox(Z, m, t, roots=None):
    W = Z.copy()
    _fista.feature_proximal(REG["group_l1"], W, t, m, 1, roots=roots)
    return W


def _device_group_prox(Z, m, t, roots=None):
    torch = pytest.importorskip("torch")
    from cvxnn_fast.pytorch import feature_metric as device

    u = None if roots is None else torch.from_numpy(roots.copy())
    return device.group_prox(torch.from_numpy(Z), torch.from_numpy(m), t, u).numpy()


# The two implementations of the group prox in diag(m): the compiled loop's
# (_feature.pxd) and the PyTorch loop's.
GROUP_PROX = {"compiled": _compiled_group_prox, "torch": _device_group_prox}


@pytest.mark.parametrize("impl", GROUP_PROX)
def test_group_prox_matches_a_direct_minimization(rng, impl):
    rows, d, t = 12, 6, 0.7
    m = np.logspace(-2, 1, d)
    Z = rng.standard_normal((rows, d)) * np.logspace(-1, 1, rows)[:, None]
    W = GROUP_PROX[impl](Z, m, t)
    for z, w in zip(Z, W, strict=True):
        if np.linalg.norm(m * z) <= t:
            assert not w.any()
            continue
        # optimality: m (w - z) + t w / ||w|| = 0, to rounding
        r = m * (w - z) + t * w / np.linalg.norm(w)
        assert np.linalg.norm(r) <= 1e-12 * np.linalg.norm(m * z)
        np.testing.assert_allclose(w, direct_group_prox(z, m, t), atol=1e-6)


@pytest.mark.parametrize("impl", GROUP_PROX)
def test_group_prox_warm_start_and_constant_metric(rng, impl):
    Z, t = rng.standard_normal((8, 5)), 0.5
    m = np.full(5, 2.0)  # constant metric: the Euclidean prox of t / 2
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    expected = np.maximum(0.0, 1.0 - t / (2.0 * norms)) * Z
    for roots in (None, np.full(8, 10.0)):  # cold, and right of every root
        np.testing.assert_allclose(GROUP_PROX[impl](Z, m, t, roots), expected,
                                   atol=1e-14)


def test_compiled_l2_and_no_penalty_proxes(rng):
    Z, t = rng.standard_normal((8, 5)), 0.5
    m = np.logspace(-1, 1, 5)
    W = Z.copy()
    _fista.feature_proximal(REG["l2"], W, t, m, 1)  # argmin t/2 ||w||^2 + ...
    np.testing.assert_allclose(W, m * Z / (m + t), atol=1e-15)
    W = Z.copy()
    _fista.feature_proximal(REG[None], W, t, m, 1)
    np.testing.assert_array_equal(W, Z)


@pytest.mark.parametrize("reg", ["group_l1", "l2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_output_scales_divide_each_output_s_metric(rng, reg, dtype):
    # output k's rows in M / w_k: the step t w_k g / m, the norm divided by
    # w_k, and the prox of t w_k R in M, block by block
    c, P, d, t = 3, 4, 5, 0.3
    m = np.logspace(-1, 1, d)
    scale = np.array([1.0, 2.0, 5.0])
    w = np.repeat(scale, P)[:, None]
    y, g = (rng.standard_normal((c * P, d)).astype(dtype) for _ in range(2))
    out = np.empty_like(y)
    _fista.feature_gradient_step(y, g, t, m, c, out, scale)
    np.testing.assert_allclose(out, y - t * w * g / m, rtol=1e-6)
    delta = y.astype(np.float64) - g
    assert _fista.feature_distance(y, g, m, c, scale) == pytest.approx(
        float(np.sum(delta**2 * m / w)), rel=1e-12)
    assert _fista.feature_distance(y, g, m, c) == pytest.approx(
        float(np.sum(delta**2 * m)), rel=1e-12)
    V = y.copy()
    _fista.feature_proximal(REG[reg], V, t, m, c, scale)
    for k in range(c):
        block = y[k * P:(k + 1) * P].copy()
        _fista.feature_proximal(REG[reg], block, t * scale[k], m, 1)
        np.testing.assert_allclose(V[k * P:(k + 1) * P], block, rtol=1e-6)


def _spike_metric(m, beta, c, P, scale=None):
    """The explicit matrix of ``(I + beta Pi) (x) diag(m)`` on flat (c P d,)
    weights, output k's block divided by ``scale[k]``."""
    block = np.kron(np.eye(P) + beta / P * np.ones((P, P)), np.diag(m))
    w = np.ones(c) if scale is None else scale
    return np.kron(np.diag(1.0 / w), block)


@pytest.mark.parametrize("scale", [None, np.array([1.0, 3.0])])
def test_spike_step_and_norm_against_the_explicit_matrix(rng, scale):
    c, P, d, beta, t = 2, 3, 4, 5.0, 0.7
    m = np.logspace(-1, 1, d)
    M = _spike_metric(m, beta, c, P, scale)
    y, g, x = (rng.standard_normal((c * P, d)) for _ in range(3))
    out = np.empty_like(y)
    _fista.spike_gradient_step(y, g, t, m, beta, c, out, scale)
    expected = y.ravel() - t * np.linalg.solve(M, g.ravel())
    np.testing.assert_allclose(out.ravel(), expected, atol=1e-12)
    delta = (x - y).ravel()
    assert _fista.spike_distance(x, y, m, beta, c, scale) == pytest.approx(
        delta @ M @ delta, rel=1e-12)


@pytest.mark.parametrize("reg", ["group_l1", "l2"])
def test_spike_prox_satisfies_its_optimality_condition(rng, reg):
    # M = (I + beta Pi) (x) diag(m): m * ((x_i - z_i) + beta mean_i(x - z))
    # + t dR(x_i) contains 0 for every row i of every output.
    c, P, d, beta, t = 2, 15, 6, 5.0, 0.4
    m = np.logspace(-2, 1, d)
    Z = rng.standard_normal((c * P, d)) * np.logspace(-1.5, 0.5, c * P)[:, None]
    X = Z.copy()
    _fista.spike_proximal(REG[reg], X, t, m, beta, c)
    mean = (X - Z).reshape(c, P, d).mean(axis=1)
    smooth = m * ((X - Z).reshape(c, P, d) + beta * mean[:, None, :])
    smooth = smooth.reshape(c * P, d)
    scale = np.abs(m * Z).max()
    if reg == "l2":
        np.testing.assert_allclose(smooth + t * X, 0.0, atol=1e-12 * scale)
        return
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    on = norms[:, 0] > 0
    assert on.any() and (~on).any()
    r = smooth[on] + t * X[on] / norms[on]
    assert np.abs(r).max() <= 1e-8 * scale
    assert (np.linalg.norm(smooth[~on], axis=1) <= t * (1 + 1e-8)).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spectrum_is_the_gram_eigendecomposition_in_row_blocks(monkeypatch, dtype):
    X, y = correlated("squared", n_samples=70, n_features=18, dtype=dtype)
    monkeypatch.setattr(problem_module, "GRAM_ROWS", 16)  # five blocks
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=5, bias=True, random_state=0)
    lam, Q = problem.feature_spectrum
    Xd = problem.X.astype(np.float64)
    gram = Xd.T @ Xd / len(Xd)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(gram), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Q @ np.diag(lam) @ Q.T, gram, atol=1e-10)
    np.testing.assert_allclose(Q.T @ Q, np.eye(problem.n_features), atol=1e-12)
    assert lam.dtype == Q.dtype == np.float64 and Q.flags.c_contiguous


def test_the_metric_comes_from_the_cached_spectrum_shared_along_a_path():
    X, y = correlated("squared")
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=5, bias=True, random_state=0)
    d = problem.n_features
    # A stand-in spectrum (identity basis, one spike: spread 1 + d): choose
    # must use it, not recompute it, on the problem and on its cheap copies.
    lam = np.zeros(d)
    lam[-1] = 100.0
    problem.data_cache["feature_spectrum"] = (lam, np.eye(d))
    other = cvxnn.with_lam(problem, 1e-3)
    for p in (other, problem, cvxnn.with_lam(other, 1e-4)):
        fm = features.choose(p)
        np.testing.assert_array_equal(fm.Q, np.eye(d))
        np.testing.assert_allclose(fm.m, lam + 100.0 / d)


def test_rule_picks_correlated_features_and_invariant_penalties_only():
    X, y = correlated("squared")
    problem = cvxnn.build_problem(X, y, loss="squared", lam=1e-2, n_gates=5,
                                  bias=True, random_state=0)
    fm = features.choose(problem)
    assert fm is not None and fm.m.max() / fm.m.min() >= features.MIN_SPREAD
    assert features.choose(problem, False) is None
    for reg in ("l1", "feature_group_l1"):
        other = cvxnn.build_problem(X, y, regularizer=reg, lam=1e-2, n_gates=5,
                                    bias=True, random_state=0)
        assert features.choose(other, True) is None
    white = np.random.default_rng(1).standard_normal((2000, 20))
    problem = cvxnn.build_problem(white, white[:, :3], loss="squared", lam=1e-2,
                                  n_gates=5, bias=False, random_state=0)
    assert features.choose(problem) is None  # Sigma near I
    assert features.choose(problem, True) is not None


def test_rule_asks_more_spread_of_cross_entropy_and_logistic(monkeypatch):
    monkeypatch.setattr(features, "MIN_SPREAD_WEIGHTED", WEIGHTED)
    rng = np.random.default_rng(2)
    for d, wanted in ((20, False), (80, True)):  # spread ~9, then ~80 (<= 1 + d)
        factor = rng.standard_normal((400, 1))
        X = factor + 0.1 * rng.standard_normal((400, d)) if wanted else \
            correlated("squared", n_samples=400, n_features=d)[0]
        for loss in ("cross_entropy", "logistic"):
            y = make_targets(rng, X, loss, 2)
            problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-2, n_gates=5,
                                          random_state=0)
            assert (features.choose(problem) is not None) == wanted
        squared = cvxnn.build_problem(X, X[:, :2], lam=1e-2, n_gates=5, random_state=0)
        assert features.choose(squared) is not None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rotated_problem_has_the_same_objective_and_certificate(rng, dtype):
    X, y = correlated("cross_entropy", n_samples=60, n_features=18, dtype=dtype)
    problem = cvxnn.build_problem(X, y, loss="cross_entropy", lam=1e-2, n_gates=6,
                                  bias=True, random_state=0)
    fm = features.choose(problem)
    rotated = fm.rotated(problem)
    np.testing.assert_allclose(fm.Q.T @ fm.Q, np.eye(problem.n_features), atol=1e-12)
    U = rng.standard_normal(problem.weight_shape).astype(dtype)
    W = fm.to_basis(U)
    atol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(fm.from_basis(W), U, atol=atol)
    a, b = certificate(problem, U), certificate(rotated, W)
    assert b.objective == pytest.approx(a.objective, rel=100 * atol)
    assert b.dual_objective == pytest.approx(a.dual_objective, rel=100 * atol)


@pytest.mark.parametrize("spike", [features.SPIKE_BETA, 0.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,reg", METRIC_CASES)
def test_solution_matches_clarabel_and_the_euclidean_loop(loss, reg, dtype, spike,
                                                          monkeypatch):
    monkeypatch.setattr(features, "SPIKE_BETA", spike)
    X, y = correlated(loss, dtype=dtype)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-2, n_gates=12, bias=True,
                                  random_state=0, regularizer=reg)
    sol = fast_solve(problem, tol=TOL[dtype], method="fista")
    assert sol.info["feature_metric"] and sol.status == "optimal"
    assert sol.info["metric_beta"] == spike
    # the returned weights are in the original basis: their own certificate
    cert = certificate(problem, sol.U)
    assert cert.objective == pytest.approx(sol.objective, rel=1e-6)
    gap = cert.duality_gap
    assert gap <= 2 * TOL[dtype] * abs(sol.objective)
    slack = gap + SLACK[dtype] * abs(sol.objective)
    if dtype == np.float64:
        reference = problem.solve(solver="CLARABEL").objective
        assert abs(sol.objective - reference) <= slack
    monkeypatch.setattr(features, "considered", lambda *args: False)
    euclidean = fast_solve(problem, tol=TOL[dtype], method="fista")
    assert not euclidean.info["feature_metric"]
    slack += euclidean.certificate.duality_gap
    assert abs(sol.objective - euclidean.objective) <= slack


def test_callback_warm_start_and_polish_see_the_original_basis():
    X, y = correlated("squared", n_outputs=2)
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=8, bias=True,
                                  random_state=0)
    seen = []

    def callback(state):
        U = state["weights"]()["U"]
        seen.append((problem.objective(U), state["objective"]))

    sol = fast_solve(problem, tol=1e-8, method="fista", callback=callback)
    assert sol.info["feature_metric"] and seen
    for objective, reported in seen:  # the iterate behind each reported value
        assert objective == pytest.approx(reported, rel=1e-9)
    start = sol.U.copy()
    again = fast_solve(problem, tol=1e-8, method="fista", warm_start=start)
    np.testing.assert_array_equal(start, sol.U)  # the warm start is not written to
    assert again.status == "optimal" and again.n_iter <= 5
    assert again.objective == pytest.approx(sol.objective, rel=1e-8)


def test_feature_metric_takes_fewer_iterations_on_correlated_features(monkeypatch):
    # the reason it exists (docs/design/feature-metric.md): on features whose
    # covariance spans four decades the Euclidean loop needs more iterations
    X, y = correlated("squared", n_samples=300)
    problem = cvxnn.build_problem(X, y, lam=1e-3, n_gates=10, bias=True,
                                  random_state=0)
    sol = fast_solve(problem, tol=1e-6, method="fista", max_iter=50_000)
    monkeypatch.setattr(features, "considered", lambda *args: False)
    plain = fast_solve(problem, tol=1e-6, method="fista", max_iter=50_000)
    assert sol.info["feature_metric"] and not plain.info["feature_metric"]
    assert sol.status == plain.status == "optimal"
    assert sol.n_iter < plain.n_iter
