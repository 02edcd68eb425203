"""Regularization paths: cheap lam variants, grids, per-lam results, warm starts."""

import dataclasses

import numpy as np
import pytest

import cvxnn
from cvxnn.core import backends
from cvxnn.core.errors import ConvergenceWarning
from cvxnn.core.solution import Solution
from cvxnn.path import (
    RegularizationPath,
    active_neurons,
    lam_grid,
    regularization_path,
)
from cvxnn.solvers.cvxpy_backend import solve_cvxpy


def make_data(loss="logistic", n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = np.tanh(X @ rng.standard_normal(d)) + 0.3 * rng.standard_normal(n)
    y = {"logistic": (score > 0).astype(int), "squared": score,
         "cross_entropy": np.digitize(score, [-0.4, 0.4])}[loss]
    return X, y


@pytest.fixture(scope="module")
def classification():
    X, y = make_data("logistic", n=90)
    problem = cvxnn.build_problem(X[:60], y[:60], loss="logistic", n_gates=10,
                                  bias=True, random_state=0)
    return problem, X[60:], y[60:]


def test_with_lam_shares_everything_but_lam(classification):
    problem, _, _ = classification
    other = cvxnn.with_lam(problem, 0.25)
    _ = problem.gradient_at_zero, other.feature_spectrum  # either computes them
    assert other.lam == 0.25 and problem.lam == 1e-3
    for name in ("X", "y", "patterns", "gates"):
        assert getattr(other, name) is getattr(problem, name)
    assert other.data_cache is problem.data_cache
    assert other.gradient_at_zero is problem.gradient_at_zero
    assert problem.feature_spectrum is other.feature_spectrum
    rebuilt = cvxnn.build_problem(problem.X[:, :-1], (problem.y[:, 0] > 0).astype(int),
                                  loss="logistic", lam=0.25, n_gates=10, bias=True,
                                  random_state=0)
    U = np.random.default_rng(0).standard_normal(problem.weight_shape)
    assert other.objective(U) == pytest.approx(rebuilt.objective(U), rel=1e-14)
    twin = cvxnn.relu_twin(problem)
    assert twin.formulation.name == "relu" and twin.patterns is problem.patterns
    with pytest.raises(ValueError, match="lam"):
        cvxnn.with_lam(problem, -1.0)


def test_lam_grid(classification):
    problem, _, _ = classification
    lams = lam_grid(problem, 7, 1e-3)
    top = cvxnn.lam_max(problem)
    assert lams[0] == top and lams[-1] == pytest.approx(1e-3 * top)
    np.testing.assert_allclose(lams[1:] / lams[:-1], 1e-3 ** (1 / 6))
    np.testing.assert_array_equal(lam_grid(problem, 1), [top])
    l2 = cvxnn.build_problem(np.eye(3), [1.0, 2.0, 3.0], regularizer="l2")
    with pytest.raises(ValueError, match="regularizer"):
        lam_grid(l2, 5)
    np.testing.assert_allclose(lam_grid(l2, 3, 0.01, lam_max=2.0), [2.0, 0.2, 0.02])
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="ratio"):
            lam_grid(problem, 5, bad)
    for bad in ("a", None, True):
        with pytest.raises(TypeError, match="ratio"):
            lam_grid(problem, 5, bad)
    for bad in ("a", -1.0, float("inf")):
        with pytest.raises((TypeError, ValueError), match="lam_max"):
            lam_grid(problem, 5, lam_max=bad)
    with pytest.raises(ValueError, match="n_lams"):
        lam_grid(problem, 0)


@pytest.fixture(scope="module")
def clarabel_path(classification):
    problem, X_val, y_val = classification
    lams = np.concatenate([[1.05 * cvxnn.lam_max(problem)], lam_grid(problem, 4, 0.01)])
    return regularization_path(problem, lams, solver="CLARABEL", X_val=X_val,
                               y_val=y_val), lams


def test_path_points_match_independent_solves(classification, clarabel_path):
    problem, X_val, y_val = classification
    path, lams = clarabel_path
    np.testing.assert_array_equal(path.lams, lams)
    assert len(path) == 5 and path.solver == "CLARABEL"
    for point in path:
        single = cvxnn.with_lam(problem, point.lam).solve("CLARABEL")
        assert point.objective == pytest.approx(single.objective, rel=1e-6)
        assert point.solution.problem.lam == point.lam
        assert point.certificate.relative_gap < 1e-4
        assert not point.warm_started  # CVXPY has nothing to warm start
        # Metrics against NumPy one-liners on the network's predictions.
        pred_val = point.solution.predict(X_val)[:, 0]
        assert point.validation["accuracy"] == np.mean((pred_val > 0) == (y_val == 1))
        pred = point.solution.predict(problem.X[:, :-1])[:, 0]
        y_pm = problem.y[:, 0]
        assert point.train["loss"] == pytest.approx(np.mean(np.log1p(np.exp(
            -y_pm * pred))))
        assert point.train["accuracy"] == np.mean(np.sign(pred) == y_pm)
    assert path[0].n_active == 0  # above lam_max the solution is zero
    assert path[-1].n_active > 0
    assert path.total_time == pytest.approx(sum(p.time for p in path))
    np.testing.assert_array_equal(path.metric("accuracy"),
                                  [p.validation["accuracy"] for p in path])


def test_active_neurons_counts_contributing_blocks(classification):
    problem, _, _ = classification
    U = np.zeros(problem.weight_shape)
    U[0, 2] = problem.gates[:, 2]  # contributes on its own pattern
    U[0, 5] = 1e-12  # negligible
    sol = cvxnn.Solution.from_weights(problem, status="optimal", solver="test",
                                      solve_time=0.0, U=U)
    assert active_neurons(sol) == 1
    assert active_neurons(sol, rtol=1e-20) == 2


def test_regression_and_multiclass_metrics():
    X, y = make_data("cross_entropy", n=50)
    problem = cvxnn.build_problem(X, y, loss="cross_entropy", n_gates=6, lam=0.01)
    path = regularization_path(problem, [0.02], solver="CLARABEL", X_val=X[:10],
                               y_val=y[:10])
    pred = path[0].solution.predict(X[:10])
    assert path[0].validation["accuracy"] == np.mean(np.argmax(pred, 1) == y[:10])
    with pytest.raises(ValueError, match="y_val"):
        regularization_path(problem, [0.02], solver="CLARABEL", X_val=X[:3],
                            y_val=[0, 1, 7])
    for y_val, error, match in [
            (np.array([0, "a", 1], dtype=object), TypeError, "^y_val: class labels"),
            (np.array(["a", "b", "a"]), ValueError,
             "^y_val: labels are strings but the training classes are numbers")]:
        with pytest.raises(error, match=match):
            regularization_path(problem, [0.02], solver="CLARABEL", X_val=X[:3],
                                y_val=y_val)
    X, y = make_data("squared", n=40)
    problem = cvxnn.build_problem(X, y, n_gates=6)
    point = regularization_path(problem, [0.01], solver="CLARABEL", X_val=X[:9],
                                y_val=y[:9])[0]
    pred = point.solution.predict(X[:9])[:, 0]
    assert point.validation["mse"] == pytest.approx(np.mean((pred - y[:9]) ** 2))
    assert point.validation["loss"] == pytest.approx(0.5 * np.mean((pred - y[:9]) ** 2))


def test_standardized_problem_path_predicts_on_raw_inputs():
    """A path on a ``standardize=True`` problem keeps its column scales: the
    networks take raw inputs, and the metrics equal those of the same path on
    data scaled by hand (same X, patterns and gates)."""
    X, y = make_data("squared", n=50)
    X *= np.array([1.0, 100.0, 0.01, 3.0])
    scaled = cvxnn.build_problem(X[:40], y[:40], n_gates=6, bias=True,
                                 standardize=True, random_state=0)
    scale = scaled.input_scale[:-1]
    by_hand = cvxnn.build_problem(X[:40] / scale, y[:40], gates=scaled.gates, bias=True)
    np.testing.assert_array_equal(by_hand.patterns, scaled.patterns)
    lams = [0.05, 0.01]
    path = regularization_path(scaled, lams, solver="CLARABEL", X_val=X[40:],
                               y_val=y[40:])
    ref = regularization_path(by_hand, lams, solver="CLARABEL", X_val=X[40:] / scale,
                              y_val=y[40:])
    for point, other in zip(path, ref, strict=True):
        sol = point.solution
        assert sol.problem.input_scale is scaled.input_scale
        expected = scaled.model_predict(sol.blocks)
        np.testing.assert_allclose(sol.predict(X[:40]), expected, rtol=1e-9, atol=1e-9)
        for name in ("train", "validation"):
            for key, value in getattr(other, name).items():
                assert getattr(point, name)[key] == pytest.approx(value, rel=1e-6)


def test_warm_starts_are_passed_to_the_fast_solver(classification, monkeypatch):
    """The path hands each fast solve the previous solution (fake backend)."""
    calls = []

    def fake_fast_solve(problem, tol=1e-6, warm_start=None):
        calls.append((problem.lam, warm_start))
        return solve_cvxpy(problem, "CLARABEL")

    fake = backends.Backend("fast", lambda prob, _name, **o: fake_fast_solve(prob, **o),
                            warm_start_helps=lambda prob, options: True)
    monkeypatch.setitem(backends._BACKENDS, "fast", fake)
    problem, _, _ = classification
    lams = lam_grid(problem, 3, 0.1)
    path = regularization_path(problem, lams, solver="fast", tol=1e-7)
    assert [lam for lam, _ in calls] == list(lams)
    assert calls[0][1] is None
    assert calls[1][1] is path[0].solution and calls[2][1] is path[1].solution
    assert [p.warm_started for p in path] == [False, True, True]
    calls.clear()
    regularization_path(problem, lams, solver="fast", warm_start=False)
    assert all(warm is None for _, warm in calls)


def test_plot(clarabel_path, tmp_path):
    pytest.importorskip("matplotlib")
    path, _ = clarabel_path
    fig = path.plot(tmp_path / "path.png")
    assert (tmp_path / "path.png").stat().st_size > 1000
    top, bottom = fig.axes
    np.testing.assert_array_equal(top.lines[0].get_ydata(), path.column("n_active"))
    np.testing.assert_array_equal(bottom.lines[0].get_ydata(), path.metric("accuracy"))


def test_plot_leaves_out_lam_zero(classification):
    pytest.importorskip("matplotlib")
    problem, _, _ = classification
    path = regularization_path(problem, [0.1, 0.01, 0.0], solver="CLARABEL")
    top, _ = path.plot().axes
    np.testing.assert_array_equal(top.lines[0].get_xdata(), [0.1, 0.01])
    with pytest.raises(ValueError, match="path: has no point with lam > 0"):
        regularization_path(problem, [0.0], solver="CLARABEL").plot()


def test_plot_shows_failed_solves_as_gaps_and_checks_the_metric(classification):
    """A failed solve (no weights) was drawn as 0 active neurons; a misspelled
    metric drew an empty line."""
    pytest.importorskip("matplotlib")
    problem, X_val, y_val = classification
    path = regularization_path(problem, [0.1, 0.01], solver="CLARABEL", X_val=X_val,
                               y_val=y_val)
    nothing = Solution.failed(problem, status="solver_error", solver="CLARABEL",
                              solve_time=0.0, message="failed")
    failed = dataclasses.replace(path.points[0], lam=0.05, solution=nothing,
                                 n_active=0, train={}, validation={})
    mixed = RegularizationPath([path.points[0], failed, path.points[1]], path.solver)
    top, _ = mixed.plot().axes
    drawn = top.lines[0].get_ydata()
    assert np.isnan(drawn[1]) and drawn[0] == path.points[0].n_active
    with pytest.raises(ValueError, match="^metric: 'bogus'.*accuracy"):
        path.plot(metric="bogus")


def test_a_cvxpy_solver_that_cannot_take_the_path_is_named_first(classification,
                                                                  monkeypatch):
    import cvxpy as cp

    import cvxnn.core.backends

    if "OSQP" not in cp.installed_solvers():
        pytest.skip("OSQP is not installed")
    problem, _, _ = classification  # logistic: exponential cones
    monkeypatch.setattr(cvxnn.core.backends, "solve", None)  # no solve may start
    with pytest.raises(ValueError, match="^solver: OSQP cannot solve this problem"):
        regularization_path(problem, [0.1, 0.0], solver="OSQP")


def test_bad_arguments(classification):
    problem, X_val, y_val = classification
    for lams in ([], [[0.1]], [0.1, -0.2], [np.nan]):
        with pytest.raises(ValueError, match="lams"):
            regularization_path(problem, lams, solver="CLARABEL")
    with pytest.raises(TypeError, match="warm_start"):
        regularization_path(problem, [0.1], solver="CLARABEL", warm_start=1)
    with pytest.raises(ValueError, match="X_val"):
        regularization_path(problem, [0.1], solver="CLARABEL", y_val=y_val)
    with pytest.raises(ValueError, match="y_val"):
        regularization_path(problem, [0.1], solver="CLARABEL", X_val=X_val)
    with pytest.raises(ValueError, match="X_val"):
        regularization_path(problem, [0.1], solver="CLARABEL", X_val=X_val[:, :2],
                            y_val=y_val)
    with pytest.raises(TypeError, match="bogus"):
        regularization_path(problem, [0.1], solver="CLARABEL", bogus=True)
    with pytest.raises(TypeError, match="solver"):
        regularization_path(problem, [0.1], solver=3)
    with pytest.raises(TypeError, match="problem"):
        regularization_path(None, [0.1])
    for rtol, error in (("a", TypeError), (-1.0, ValueError),
                        (float("nan"), ValueError)):
        with pytest.raises(error, match="^active_rtol"):
            regularization_path(problem, [0.1], solver="CLARABEL", active_rtol=rtol)
    X, y = make_data("squared", n=30, d=3, seed=3)
    squared = cvxnn.build_problem(X, y, n_gates=4)
    with pytest.raises(TypeError, match="^y_val: expected a numeric"):
        regularization_path(squared, [0.1], solver="CLARABEL", X_val=X,
                            y_val=np.array(["a"] * 30))


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_fast_path_matches_clarabel_and_warm_starts_save_iterations(formulation):
    X, y = make_data("squared", n=80, d=5, seed=3)
    problem = cvxnn.build_problem(X, y, formulation=formulation, n_gates=20,
                                  bias=True)
    lams = lam_grid(problem, 8, 1e-2)
    # The first-order methods (the interior-point method does not warm-start).
    method = "fista" if formulation == "gated_relu" else "augmented_lagrangian"
    warm = regularization_path(problem, lams, solver="fast", tol=1e-7, method=method)
    cold = regularization_path(problem, lams, solver="fast", warm_start=False,
                               tol=1e-7, method=method)
    for point in warm:
        reference = cvxnn.with_lam(problem, point.lam).solve("CLARABEL")
        assert point.objective == pytest.approx(reference.objective, rel=1e-5)
    assert warm.total_iterations < cold.total_iterations


def test_relu_path_by_interior_point_starts_every_point_cold():
    X, y = make_data("squared", n=80, d=5, seed=3)
    problem = cvxnn.build_problem(X, y, formulation="relu", n_gates=20, bias=True)
    path = regularization_path(problem, lam_grid(problem, 4, 1e-2), tol=1e-7)
    assert not any(point.warm_started for point in path)
    for point in path:
        assert point.solution.info["method"] == "interior_point"
        reference = cvxnn.with_lam(problem, point.lam).solve("CLARABEL")
        assert point.objective == pytest.approx(reference.objective, rel=1e-5)


@pytest.mark.parametrize("solver", ["fast", "CLARABEL"])
def test_interrupted_path_keeps_the_solutions_already_computed(monkeypatch, solver):
    """Ctrl-C at the third lam: two finished points (plus the fast solver's
    interrupted iterate) come back instead of nothing."""
    from cvxnn import path as path_module

    X, y = make_data("squared", n=60, d=4, seed=5)
    problem = cvxnn.build_problem(X, y, n_gates=10)
    lams = lam_grid(problem, 5, 1e-2)
    real = path_module._solve_point
    calls = []

    def interrupt_third(problem, lam, *args):
        calls.append(lam)
        if len(calls) == 3:
            if solver == "CLARABEL":
                raise KeyboardInterrupt
            sol = real(problem, lam, *args)
            sol.solution.status = "user_limit"
            sol.solution.message = "interrupted by the user (KeyboardInterrupt)"
            return sol
        return real(problem, lam, *args)

    monkeypatch.setattr(path_module, "_solve_point", interrupt_third)
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        path = regularization_path(problem, lams, solver=solver)
    assert path.interrupted
    assert len(path) == (3 if solver == "fast" else 2)
    assert all(np.isfinite(p.objective) for p in path)
    assert len(calls) == 3


def test_a_device_path_is_warm_started():
    """The rule asked which compiled method would run, without the device:
    an interior point on small data, so a device path never warm-started
    although the device runs first-order methods only."""
    pytest.importorskip("torch")
    problem = cvxnn.build_problem(*make_data("squared"), lam=1e-2, n_gates=8)
    path = regularization_path(problem, lam_grid(problem, 3, 0.1), device="cpu",
                               tol=1e-6)
    assert [p.warm_started for p in path] == [False, True, True]
    assert all(p.solution.status == "optimal" for p in path)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_standardized_path_metrics_are_the_networks_on_the_data_given(dtype):
    """Training metrics rebuilt the raw data from the scaled ones, whose
    rounding flipped gate tests on integer data at ties (training MSE 0.615
    where the network scores 0.599 on the data); validation data went
    through the same divide-and-multiply."""
    from cvxnn.metrics import metrics

    rng = np.random.default_rng(3)
    X = (rng.integers(-9, 10, (400, 4)).astype(float)
         * rng.integers(1, 7, 4)).astype(dtype)
    G = rng.integers(-3, 4, (4, 30)).astype(float)
    y = np.random.default_rng(1).standard_normal(400)
    problem = cvxnn.build_problem(X, y, gates=G, lam=1e-3, standardize=True)
    path = cvxnn.regularization_path(problem, [1e-2, 1e-3], tol=1e-8,
                                     X_val=X[:50], y_val=y[:50])
    rel = 1e-12 if dtype == np.float64 else 1e-6
    for point in path:
        train = metrics(problem, point.solution.predict(X), problem.y)
        assert point.train == pytest.approx(train, rel=rel)
        validation = metrics(problem, point.solution.predict(X[:50]), problem.y[:50])
        assert point.validation == pytest.approx(validation, rel=rel)


def test_unknown_fast_options_and_splits_are_named_first(classification,
                                                        monkeypatch):
    import cvxnn.core.backends

    problem, X_val, y_val = classification
    monkeypatch.setattr(cvxnn.core.backends, "solve", None)  # no solve may start
    with pytest.raises(TypeError, match="^regularization_path: unknown option "
                                        "'tolerance' for solver='fast'"):
        regularization_path(problem, [0.1], tolerance=1e-3)
    monkeypatch.undo()
    path = regularization_path(problem, [0.1], X_val=X_val, y_val=y_val)
    assert np.isfinite(path.metric("accuracy", "train")).all()
    with pytest.raises(ValueError, match="^split: unknown value 'test'"):
        path.metric("accuracy", "test")


def test_metrics_refuse_targets_not_encoded_like_the_problem():
    from cvxnn.metrics import encode_targets, metrics

    X, y = make_data("logistic", n=30)
    problem = cvxnn.build_problem(X, y, loss="logistic", n_gates=4, lam=0.01)
    Yhat = np.zeros((30, 1))
    with pytest.raises(ValueError, match="^Y: expected encoded targets"):
        metrics(problem, Yhat, y)  # raw 1-D labels broadcast to 30 x 30
    with pytest.raises(ValueError, match="^Y: logistic targets must be encoded as"):
        metrics(problem, Yhat, (y[:, None] > 0).astype(float))
    assert metrics(problem, Yhat, encode_targets(problem, y, 30))["loss"] == \
        pytest.approx(np.log(2))
