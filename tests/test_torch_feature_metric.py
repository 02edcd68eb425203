"""The eigenbasis feature metric of the device R-FISTA: the rotation round
trip, the rule, and solves on correlated features against CLARABEL and the
compiled backend (its group prox is tested with the compiled one in
test_fast_feature_metric.py)."""

import numpy as np
import pytest
from conftest import METRIC_CASES, correlated

torch = pytest.importorskip("torch")

import cvxnn  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402
from cvxnn_fast.common.polish import Polisher  # noqa: E402
from cvxnn_fast.pytorch import feature_metric  # noqa: E402
from cvxnn_fast.pytorch.certificates import Spec  # noqa: E402
from cvxnn_fast.pytorch.operator import DeviceData  # noqa: E402

TOL = {np.float64: 1e-7, np.float32: 1e-4}


@pytest.fixture(autouse=True)
def every_loss_takes_the_metric(monkeypatch):
    """The correlated problems here (spread ~9) are below the rule's
    threshold for cross-entropy and logistic (tests/test_fast_feature_metric.py
    tests it): lower it, so that every loss runs in the metric."""
    from cvxnn_fast.fista import feature_metric as rule

    monkeypatch.setattr(rule, "MIN_SPREAD_WEIGHTED", rule.MIN_SPREAD)
SLACK = {np.float64: 1e-9, np.float32: 1e-5}  # relative, on top of the gap




@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rotation_round_trip_and_products(rng, dtype):
    X, y = correlated("squared", n_samples=50, n_features=7, dtype=dtype)
    problem = cvxnn.build_problem(X, y, loss="squared", lam=1e-2, n_gates=6,
                                  bias=True, random_state=0)
    data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, "cpu",
                                  problem.dtype)
    fm = feature_metric.FeatureMetric.of(data)
    U = torch.from_numpy(rng.standard_normal((data.weight_rows, 8)).astype(dtype))
    atol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(fm.from_basis(fm.to_basis(U)).numpy(), U.numpy(),
                               atol=atol)
    rotated = fm.rotated(data)
    np.testing.assert_allclose(rotated.forward(fm.to_basis(U)).numpy(),
                               data.forward(U).numpy(), atol=100 * atol)
    S = torch.from_numpy(rng.standard_normal((50, 3)).astype(dtype))
    np.testing.assert_allclose(fm.from_basis(rotated.adjoint(S)).numpy(),
                               data.adjoint(S).numpy(), atol=100 * atol)


def test_rule_picks_correlated_features_only():
    spec = Spec("squared", "group_l1", 1e-2, 3)
    X, y = correlated("squared")
    problem = cvxnn.build_problem(X, y, loss="squared", lam=1e-2, n_gates=5,
                                  bias=True, random_state=0)
    data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, "cpu",
                                  problem.dtype)
    assert feature_metric.choose(data, spec) is not None
    assert feature_metric.choose(data, spec, False) is None
    assert feature_metric.choose(data, Spec("squared", "l1", 1e-2, 3), True) is None
    white = np.random.default_rng(1).standard_normal((2000, 20))
    problem = cvxnn.build_problem(white, white[:, :3], loss="squared", lam=1e-2,
                                  n_gates=5, bias=False, random_state=0)
    data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, "cpu",
                                  problem.dtype)
    assert feature_metric.choose(data, spec) is None  # Sigma near I


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,reg", METRIC_CASES)
def test_solution_matches_clarabel_and_compiled(loss, reg, dtype):
    X, y = correlated(loss, dtype=dtype)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-2, n_gates=12, bias=True,
                                  random_state=0, regularizer=reg)
    sol = fast_solve(problem, tol=TOL[dtype], device="cpu")
    assert sol.info["feature_metric"] and sol.status == "optimal"
    gap = sol.certificate.duality_gap
    assert gap <= 2 * TOL[dtype] * abs(sol.objective)
    slack = gap + SLACK[dtype] * abs(sol.objective)
    if dtype == np.float64:
        reference = problem.solve(solver="CLARABEL").objective
        assert abs(sol.objective - reference) <= slack
    compiled = fast_solve(problem, tol=TOL[dtype])
    slack += compiled.certificate.duality_gap
    assert abs(sol.objective - compiled.objective) <= slack


@pytest.mark.parametrize("reg", ["group_l1", "l2"])
def test_prox_with_the_spike_part_satisfies_its_optimality_condition(rng, reg):
    # M = (I + beta Pi) (x) diag(m): m * ((x_i - z_i) + beta mean_i(x - z))
    # + t dR(x_i) contains 0 for every row i of every output.
    c, P, d, beta, t = 2, 15, 6, 5.0, 0.4
    fm = feature_metric.FeatureMetric.__new__(feature_metric.FeatureMetric)
    fm.m = torch.from_numpy(np.logspace(-2, 1, d))
    fm.beta, fm.c, fm.root, fm.shift = beta, c, None, None
    Z = rng.standard_normal((c * P, d)) * np.logspace(-1.5, 0.5, c * P)[:, None]
    X = fm.prox(reg, torch.from_numpy(Z), t).numpy()
    m = fm.m.numpy()
    mean = (X - Z).reshape(c, P, d).mean(axis=1)
    smooth = m * ((X - Z).reshape(c, P, d) + beta * mean[:, None, :])
    smooth = smooth.reshape(c * P, d)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    scale = np.abs(m * Z).max()
    if reg == "l2":
        np.testing.assert_allclose(smooth + t * X, 0.0, atol=1e-12 * scale)
        return
    on = norms[:, 0] > 0
    assert on.any() and (~on).any()
    r = smooth[on] + t * X[on] / norms[on]
    assert np.abs(r).max() <= 1e-8 * scale
    assert (np.linalg.norm(smooth[~on], axis=1) <= t * (1 + 1e-8)).all()


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_solution_with_the_spike_part_matches_clarabel(loss, monkeypatch):
    from cvxnn_fast.pytorch import fista

    monkeypatch.setattr(fista, "SPIKE_BETA", 5.0)
    X, y = correlated(loss)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-2, n_gates=12, bias=True,
                                  random_state=0)
    sol = fast_solve(problem, tol=TOL[np.float64], device="cpu")
    assert sol.info["feature_metric"] and sol.info["metric_beta"] > 0
    reference = problem.solve(solver="CLARABEL").objective
    slack = sol.certificate.duality_gap + SLACK[np.float64] * abs(sol.objective)
    assert abs(sol.objective - reference) <= slack


@pytest.mark.parametrize("reg", ["group_l1", "l2"])
def test_per_output_scales_divide_each_output_s_metric(rng, reg):
    # Per-output steps (cross-entropy) in the feature metric: output k's block
    # in M / w_k, i.e. the step t w_k and the prox of t w_k R in M.
    c, P, d, t = 3, 4, 5, 0.3
    m = torch.from_numpy(np.logspace(-1, 1, d))
    fm = feature_metric.FeatureMetric(_fake_data(c, d), np.eye(d), m.numpy())
    scale = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    y, g = (torch.from_numpy(rng.standard_normal((c * P, d))) for _ in range(2))
    w = np.repeat(scale.numpy(), P)[:, None]
    np.testing.assert_allclose(fm.step(y, g, t, scale).numpy(),
                               y.numpy() - t * w * g.numpy() / m.numpy(), atol=1e-14)
    delta = (y - g).numpy()
    assert fm.squared_distance(y, g, scale) == pytest.approx(
        float(np.sum(delta**2 * m.numpy() / w)), rel=1e-12)
    out = fm.prox(reg, y, t, scale).numpy()
    for k in range(c):
        block = feature_metric.FeatureMetric(_fake_data(1, d), np.eye(d), m.numpy())
        expected = block.prox(reg, y[k * P:(k + 1) * P], t * float(scale[k]))
        np.testing.assert_allclose(out[k * P:(k + 1) * P], expected.numpy(),
                                   atol=1e-12)


def _fake_data(c, d):
    """What FeatureMetric reads of the data: device, outputs, sharding."""
    class Data:
        device, n_outputs, sharded = torch.device("cpu"), c, False
    Data.torch = torch
    return Data()


@pytest.mark.parametrize("spike", [0.0, 5.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss,reg", [("squared", "group_l1"),
                                      ("cross_entropy", "group_l1"),
                                      ("logistic", "l2")])
def test_iterations_match_the_compiled_feature_metric(loss, reg, dtype, spike,
                                                      monkeypatch):
    # The same method in two implementations (fista/_feature.pxd and this
    # module): on correlated features both run in the feature metric and take
    # the same iterations (to rounding in the line search), polish off; with
    # the spike part (the compiled loop's default) and without (the device's).
    from cvxnn_fast.fista import feature_metric as rule
    from cvxnn_fast.pytorch import fista

    monkeypatch.setattr(Polisher, "START", -1.0)
    monkeypatch.setattr(fista, "SPIKE_BETA", spike)
    monkeypatch.setattr(rule, "SPIKE_BETA", spike)
    if spike:  # the device loop takes per-output steps with beta 0 only
        from cvxnn_fast.fista import solver

        monkeypatch.setattr(solver, "per_output_applies", lambda problem: False)
    X, y = correlated(loss, dtype=dtype)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=1e-2, n_gates=12, bias=True,
                                  random_state=0, regularizer=reg)
    compiled = fast_solve(problem, tol=TOL[dtype], method="fista")
    device = fast_solve(problem, tol=TOL[dtype], device="cpu")
    assert compiled.info["feature_metric"] and device.info["feature_metric"]
    assert compiled.info["metric_beta"] == device.info["metric_beta"] == spike
    assert device.status == compiled.status == "optimal"
    # float32: rounding flips line-search decisions, more or less often with
    # the BLAS build's float32 sums (12% apart on one build, 5% on another)
    apart = 0.05 if dtype == np.float64 else 0.25
    assert abs(device.n_iter - compiled.n_iter) <= apart * compiled.n_iter + 2
    slack = device.certificate.duality_gap + compiled.certificate.duality_gap
    assert abs(device.objective - compiled.objective) <= slack
