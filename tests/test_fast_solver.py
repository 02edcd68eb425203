"""The compiled solvers against CLARABEL, and their statuses, warm starts, dtypes."""

import re
import warnings

import numpy as np
import pytest
from conftest import LOSSES, REGULARIZERS, make_data

import cvxnn
from cvxnn.core.errors import ConvergenceWarning, NumericalBreakdown
from cvxnn_fast import fast_solve

TIGHT = {"tol_gap_rel": 1e-11, "tol_gap_abs": 1e-12, "tol_feas": 1e-11}


def build(loss, regularizer, formulation="gated_relu", lam=0.02, bias=False,
          n_outputs=1, n_samples=40, n_gates=8, seed=0, dtype=np.float64):
    if loss == "cross_entropy":
        n_outputs = max(n_outputs, 2)  # classes
    X, y = make_data(loss, n_samples=n_samples, n_features=3, n_outputs=n_outputs,
                     seed=seed, dtype=dtype)
    return cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                               regularizer=regularizer, lam=lam, n_gates=n_gates,
                               bias=bias, random_state=seed)


def clarabel(problem):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = problem.solve("CLARABEL", **TIGHT)
    assert sol.status in ("optimal", "optimal_inaccurate")
    return sol


def assert_matches(fast, ref, tol):
    assert fast.status == "optimal", fast.message
    assert fast.solver == "fast"
    assert fast.certificate.optimality <= tol
    # Both objectives are upper bounds on the optimum certified by their
    # duality gaps: they agree to 1e-6 relative, or to within the gaps where
    # CLARABEL itself stops short of that (exponential-cone losses).
    slack = max(1e-6 * abs(ref.objective),
                ref.certificate.duality_gap + fast.certificate.duality_gap
                if ref.certificate.duality_gap is not None else 0.0)
    assert abs(fast.objective - ref.objective) <= slack + 1e-12
    # Construction guard: the reported objective is cvxnn's own at the
    # returned weights (true while fast_solve builds its Solution through
    # Solution.from_weights; fails if a backend reports its own value).
    assert fast.objective == fast.problem.objective(**fast.blocks)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("bias,n_outputs", [(False, 1), (True, 3)])
def test_gated_matches_clarabel(loss, regularizer, bias, n_outputs):
    problem = build(loss, regularizer, bias=bias, n_outputs=n_outputs)
    fast = fast_solve(problem, tol=1e-9, max_iter=50_000)
    assert_matches(fast, clarabel(problem), 1e-9)


@pytest.mark.parametrize("loss", LOSSES)
def test_gated_lam_zero_matches_clarabel(loss):
    """No regularization: the KKT residual is the certificate."""
    problem = build(loss, None, lam=0.0, n_samples=80, n_gates=5)
    fast = fast_solve(problem, tol=1e-8, max_iter=50_000)
    assert fast.certificate.relative_gap is None
    assert_matches(fast, clarabel(problem), 1e-8)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", ["group_l1", "feature_group_l1", "l2", "l1"])
@pytest.mark.parametrize("bias,n_outputs", [(False, 1), (True, 2)])
def test_relu_matches_clarabel(loss, regularizer, bias, n_outputs):
    problem = build(loss, regularizer, formulation="relu", bias=bias,
                    n_outputs=n_outputs, n_gates=6)
    fast = fast_solve(problem, tol=1e-8, max_iter=200_000,
                      method="augmented_lagrangian")
    assert_matches(fast, clarabel(problem), 1e-8)
    assert fast.certificate.cone_violation <= 1e-8
    lam_V, lam_W = fast.multipliers
    assert lam_V.shape == (problem.n_samples, problem.n_outputs, problem.n_patterns)
    assert lam_V.min() >= 0 and lam_W.min() >= 0


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", ["group_l1", "feature_group_l1", "l1"])
@pytest.mark.parametrize("factor,tol", [(1.01, 1e-8), (1.5, 1e-6), (2.0, 1e-6)])
def test_lam_above_lam_max_gives_zero(formulation, loss, regularizer, factor, tol):
    """Every norm penalty, at lam >= the formulation's own lam_max: exact zeros
    in every block, certified optimal."""
    top = cvxnn.lam_max(build(loss, regularizer, formulation=formulation))
    problem = build(loss, regularizer, formulation=formulation, lam=factor * top)
    sol = fast_solve(problem, tol=tol)
    assert sol.status == "optimal", sol.message
    assert sol.certificate.optimality <= tol
    for name, block in sol.blocks.items():
        assert not np.any(block), name
    assert sol.n_active == 0


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_float32_agrees_with_float64(formulation):
    p64 = build("squared", "group_l1", formulation=formulation)
    p32 = build("squared", "group_l1", formulation=formulation, dtype=np.float32)
    np.testing.assert_array_equal(p32.patterns, p64.patterns)
    s64 = fast_solve(p64, tol=1e-8, max_iter=100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        s32 = fast_solve(p32, tol=1e-5, max_iter=100_000)
    assert s32.U.dtype == np.float32
    assert s32.objective == pytest.approx(s64.objective, rel=1e-4)
    np.testing.assert_allclose(s32.predict(p32.X[:, :3]), s64.predict(p64.X[:, :3]),
                               atol=1e-3)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_float32_working_dtype_is_certified_on_the_problem(loss, formulation):
    """dtype="float32" on float64 data: the loop runs on a float32 copy with
    the same patterns (its iterates are those of that copy's own solve), and
    the weights come back in float64 with their float64 certificate."""
    from cvxnn.core.problem import with_dtype

    problem = build(loss, "group_l1", formulation=formulation, bias=True)
    copy = with_dtype(problem, np.float32)
    assert copy.X.dtype == copy.y.dtype == copy.gates.dtype == np.float32
    assert copy.patterns is problem.patterns
    assert with_dtype(problem, "float64") is problem
    sol = fast_solve(problem, tol=1e-4, max_iter=100_000, dtype="float32")
    alone = fast_solve(copy, tol=1e-4, max_iter=100_000)
    assert sol.status == "optimal", sol.message
    assert sol.problem is problem and sol.info["dtype"] == "float32"
    for name, block in sol.blocks.items():
        assert block.dtype == np.float64
        np.testing.assert_array_equal(block, getattr(alone, name))
    again = cvxnn.certificate(problem, **sol.blocks, **(
        {"multipliers": sol.multipliers} if formulation == "relu" else {}))
    assert sol.certificate.optimality == pytest.approx(again.optimality, rel=1e-12)
    assert sol.certificate.satisfied(1e-4, 1e-4)
    ref = clarabel(problem)
    assert abs(sol.objective - ref.objective) <= 1e-4 * abs(sol.objective) + 1e-12


def test_float32_working_dtype_refines_in_the_problems_dtype():
    """Below float32's reach the solve goes on in float64 from the float32
    one's point, and certifies there."""
    problem = build("squared", "group_l1", lam=1e-3, n_samples=60, n_gates=10)
    seen = []
    sol = fast_solve(problem, tol=1e-9, max_iter=100_000, dtype="float32",
                     callback=lambda state: seen.append(state["iteration"]))
    assert sol.status == "optimal", sol.message
    assert np.all(np.diff(seen) >= 0), seen  # counting on into the refinement
    assert sol.info["refined"] == "float64" and sol.info["dtype"] == "float32"
    assert sol.info["working_iterations"] > 0
    assert np.all(np.diff(sol.history["time"]) >= 0)  # the float64 part after
    assert sol.U.dtype == np.float64
    assert cvxnn.certificate(problem, sol.U).optimality <= 1e-9
    cold = fast_solve(problem, tol=1e-9, max_iter=100_000)
    assert sol.objective == pytest.approx(cold.objective, rel=1e-8)


@pytest.mark.parametrize("formulation, lam", [
    ("gated_relu", 1e-2), ("gated_relu", 1e-3), ("relu", 1e-2)])
def test_float32_working_dtype_hands_over_before_float32s_reach(formulation, lam):
    """Below float32's reach the float32 part iterates to FLOAT32_TOL only:
    asked for 1e-8 it used to spend all of max_iter there (auto's interior
    point ended optimal_inaccurate, the first-order method after it stalled)
    and return uncertified, with no float64 continuation."""
    problem = build("cross_entropy", "group_l1", formulation=formulation, lam=lam,
                    n_samples=60, n_gates=10, n_outputs=3)
    sol = fast_solve(problem, tol=1e-8, max_iter=5000, dtype="float32")
    assert sol.status == "optimal", sol.message
    assert sol.info["refined"] == "float64" and sol.info["working_iterations"] < 5000
    plain = fast_solve(problem, tol=1e-8, max_iter=5000)
    assert sol.objective == pytest.approx(plain.objective, rel=1e-7)


@pytest.mark.parametrize("formulation, method", [
    ("gated_relu", "interior_point"), ("gated_relu", "auto"), ("relu", "auto")])
def test_float32_working_dtype_before_an_interior_point_restarts_it(formulation,
                                                                    method):
    """A float32 interior point's weights cannot warm-start the float64 one,
    which starts cold with all of max_iter (it used to get what the float32
    steps had left, 8 of 30, and its worse point came back: 0.65 where the
    float32 weights had 2.7e-6 and float64 alone certifies 1e-6)."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((150, 5))
    y = np.argmax(X @ rng.standard_normal((5, 3)) + 0.5 * rng.standard_normal((150, 3)),
                  axis=1)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss="cross_entropy",
                                  lam=1e-3, n_gates=10, bias=True)
    plain = fast_solve(problem, method=method, max_iter=30, tol=1e-6)
    sol = fast_solve(problem, dtype="float32", method=method, max_iter=30, tol=1e-6)
    assert sol.status == plain.status == "optimal", sol.message
    assert sol.info["refined"] == "float64"
    assert sol.objective == pytest.approx(plain.objective, rel=1e-6)


def test_float32_after_an_interior_point_hand_over_restarts_in_float64():
    """auto's float32 interior point handed over to a float32 augmented
    Lagrangian, which stalled at 3e-3 through all of max_iter; no float64
    part ran (max_iter was spent) where float64's interior point certifies in
    55 steps. A float32 solve that ran the interior point now restarts in
    float64 with all of max_iter."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    z = (y - y.mean()) / y.std()
    labels = (z > 0).astype(int) + (z > 1)
    problem = cvxnn.build_problem(X[:200], labels[:200], formulation="relu",
                                  loss="cross_entropy", lam=1e-4, n_gates=10,
                                  random_state=0)
    sol = fast_solve(problem, tol=1e-6, max_iter=2000, dtype="float32")
    assert sol.status == "optimal" and sol.info["refined"] == "float64"
    plain = fast_solve(problem, tol=1e-6, max_iter=2000)
    assert sol.objective == pytest.approx(plain.objective, rel=1e-5)


def test_a_float32_solve_quotes_the_tol_asked_for():
    """The float32 part iterates to FLOAT32_TOL; where max_iter ends it, the
    message and info quote the tol the user asked for (they said 1e-4)."""
    problem = build("cross_entropy", "group_l1", lam=1e-3, n_samples=60, n_gates=6,
                    n_outputs=3, bias=True)
    with pytest.warns(ConvergenceWarning, match=r"tol=1\.0e-06") as said:
        sol = fast_solve(problem, dtype="float32", tol=1e-6, method="fista",
                         max_iter=30)
    assert sol.status == "optimal_inaccurate" and sol.info["tol"] == 1e-6
    assert "tol=1.0e-06" in sol.message and "1.0e-04" not in sol.message
    assert not any("1.0e-04" in str(w.message) for w in said)


def test_float32_working_dtype_falls_back_where_float32_overflows():
    """Data beyond float32's range break the float32 solve down; the problem's
    float64 solves it from the start, without leaking float32's warnings."""
    rng = np.random.default_rng(0)
    X = 1e22 * rng.standard_normal((60, 3))
    problem = cvxnn.build_problem(X, X[:, 0], lam=1e40, n_gates=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = fast_solve(problem, tol=1e-4, dtype="float32")
    assert sol.status == "optimal" and sol.certificate.optimality <= 1e-4
    assert sol.info["refined"] == "float64" and sol.info["working_iterations"] is None


@pytest.mark.parametrize("scale, y_scale", [(1e12, 1e-12), (1.0, 1e20)])
def test_float32_working_dtype_past_float32s_range(scale, y_scale):
    """Where float32 overflows (the interior point's weights carried back,
    y^2 in the certificate), the float64 problem is solved (from the start
    where nothing finite came back), without float32's warnings: the weights
    carried back used to raise 'U: contains NaN', a NaN certificate a
    TypeError in the message."""
    rng = np.random.default_rng(0)
    X = scale * rng.standard_normal((80, 3))
    y = y_scale * (X[:, 0] + 0.1 * scale * rng.standard_normal(80))
    problem = cvxnn.build_problem(X, y, regularizer="l2", n_gates=10, bias=True)
    with warnings.catch_warnings(record=True) as own:
        warnings.simplefilter("always")
        plain = fast_solve(problem, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if own else "error")  # float64's own
        sol = fast_solve(problem, tol=1e-4, dtype="float32")
    assert sol.status == plain.status  # optimal_inaccurate at X ~ 1e12
    assert sol.info["dtype"] == "float32" and sol.U.dtype == np.float64
    assert sol.objective == pytest.approx(plain.objective, rel=1e-3)


def test_float32_working_dtype_with_a_named_interior_point():
    """The float64 continuation of a named interior point starts from its own
    interior point (a warm start is refused there: it used to crash)."""
    X, y = make_data("squared", n_samples=60, n_features=3, n_outputs=1, seed=0)
    problem = cvxnn.build_problem(X, y, lam=0.01, n_gates=6, bias=True)
    sol = fast_solve(problem, tol=1e-9, dtype="float32", method="interior_point")
    assert sol.status == "optimal" and sol.info["method"] == "interior_point"
    assert cvxnn.certificate(problem, sol.U).optimality <= 1e-9


def test_max_iter_bounds_a_float32_solve_and_its_continuation():
    problem = build("cross_entropy", "group_l1", lam=1e-3, n_samples=60, n_gates=10,
                    n_outputs=3)
    seen = []
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        sol = fast_solve(problem, tol=1e-9, max_iter=30, dtype="float32",
                         method="fista", callback=lambda s: seen.append(s["iteration"]))
    assert sol.status == "optimal_inaccurate" and max(seen) <= 30
    assert "refined" not in sol.info and sol.n_iter == 30


def test_a_float32_continuations_max_iter_message_quotes_the_users():
    """The float64 continuation runs on what float32 left of max_iter; its
    message said "max_iter=10 reached" for the user's max_iter=100."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    problem = cvxnn.build_problem(X, X @ rng.standard_normal(4) + np.abs(X[:, 0]),
                                  lam=1e-2, n_gates=10, bias=True)
    with pytest.warns(ConvergenceWarning) as said:
        sol = fast_solve(problem, method="fista", dtype="float32", max_iter=100,
                         tol=1e-12)
    part = sol.info["working_iterations"]
    assert 0 < part < 100 and sol.n_iter == 100 - part
    expected = (f"max_iter=100 reached ({part} iterations in float32, "
                f"{100 - part} in float64)")
    assert sol.message.startswith(expected)
    assert any(str(w.message).startswith(f"fast_solve: {expected}") for w in said)


def test_float64_working_dtype_on_a_float32_problem_is_not_continued():
    """Iterating a float32 problem in float64: the weights are judged in
    float32 and returned; a float32 continuation could only lose digits."""
    problem = build("squared", "l2", lam=1e-3, n_samples=60, n_gates=10,
                    dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = fast_solve(problem, tol=1e-9, dtype="float64", max_iter=20_000)
    assert sol.info["dtype"] == "float64" and "refined" not in sol.info
    assert sol.U.dtype == np.float32


def test_a_stopped_float32_solve_is_not_refined():
    problem = build("squared", "group_l1", lam=1e-3, n_samples=60, n_gates=10)
    with pytest.warns(ConvergenceWarning, match="stopped by the callback"):
        sol = fast_solve(problem, tol=1e-9, dtype="float32", callback=lambda s: True)
    assert sol.status == "user_limit" and "refined" not in sol.info
    assert sol.info["dtype"] == "float32" and sol.U.dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "int64", np.complex128, "half"])
def test_bad_working_dtype_is_refused_before_any_work(dtype, monkeypatch):
    import cvxnn_fast.solve as solve_module

    problem = build("squared", "group_l1")
    monkeypatch.setattr(solve_module, "_in_working_dtype", None)  # never reached
    with pytest.raises(ValueError, match="^dtype: expected"):
        fast_solve(problem, dtype=dtype)


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_warm_start_from_the_optimum_stops_at_once(formulation):
    problem = build("logistic", "group_l1", formulation=formulation)
    sol = fast_solve(problem, tol=1e-7, max_iter=100_000)
    again = fast_solve(problem, tol=1e-7, warm_start=sol)
    assert again.status == "optimal"
    assert again.n_iter == 0
    assert again.objective == sol.objective
    if formulation == "gated_relu":
        assert fast_solve(problem, tol=1e-7, warm_start=sol.U).n_iter == 0
    else:  # weights without multipliers: the method must rebuild them
        cold = fast_solve(problem, tol=1e-7, max_iter=100_000,
                          method="augmented_lagrangian")
        warm = fast_solve(problem, tol=1e-7, warm_start=(sol.V, sol.W),
                          method="augmented_lagrangian")
        assert warm.status == "optimal" and warm.n_iter < cold.n_iter
        # auto: a bounded augmented Lagrangian from them, then the interior
        # point where that has not certified
        auto = fast_solve(problem, tol=1e-7, warm_start=(sol.V, sol.W))
        assert auto.status == "optimal"
        assert auto.info["method"] in ("augmented_lagrangian", "interior_point")


def test_relu_warm_start_from_other_samples_drops_the_multipliers():
    """A ReLU Solution of other samples (same weight shape) warm-starts by its
    weights; its cone multipliers, one per sample, are not used."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = X @ rng.standard_normal(4)
    a = cvxnn.build_problem(X, y, formulation="relu", lam=1e-2, n_gates=8,
                            random_state=0)
    b = cvxnn.build_problem(X[:50], y[:50], formulation="relu", lam=1e-2,
                            gates=a.gates)
    assert a.weight_shape == b.weight_shape
    sol = fast_solve(b, warm_start=fast_solve(a), method="augmented_lagrangian",
                     tol=1e-6)
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(fast_solve(b, tol=1e-6).objective,
                                          rel=1e-5)


def test_a_fallback_counts_the_interior_point_steps():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    problem = cvxnn.build_problem(X, X @ rng.standard_normal(4), lam=1e-2,
                                  n_gates=10, random_state=0)
    with pytest.warns(ConvergenceWarning):
        sol = fast_solve(problem, max_iter=3)  # the interior point stops early
    assert sol.info["fallback_from"] == "interior_point"
    steps = sol.info["interior_steps"]
    assert steps == 3 and sol.n_iter == 3
    assert len(sol.history["objective"]) == sol.n_iter + 1


def test_warm_start_from_a_neighbouring_lam_saves_iterations():
    problem = build("squared", "group_l1", lam=0.02)
    near = cvxnn.with_lam(problem, 0.021)
    cold = fast_solve(near, tol=1e-8, method="fista")
    warm = fast_solve(near, tol=1e-8, warm_start=fast_solve(problem, tol=1e-8))
    assert warm.objective == pytest.approx(cold.objective, rel=1e-7)
    assert warm.n_iter < cold.n_iter


def test_max_iter_returns_the_iterate_as_inaccurate():
    problem = build("squared", "group_l1", lam=1e-3)
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        sol = fast_solve(problem, tol=1e-12, max_iter=5)
    assert sol.status == "optimal_inaccurate"
    assert sol.n_iter == 5
    assert sol.certificate.optimality > 1e-12
    assert len(sol.history["objective"]) == 6


@pytest.mark.parametrize("stop", ["max_iter", "callback"])
def test_a_limit_stop_returns_the_best_certified_iterate(monkeypatch, stop):
    """Where the dual point oscillates (correlated features: the gap 0.08 at
    one iteration, 0.45 sixty iterations later), R-FISTA stopped on a limit
    returns the iterate that certifies best among those seen at a chunk's
    end (every iteration here, as on problems where one takes longer than
    a chunk), not the last one."""
    from cvxnn.core.certificates import certificate
    from cvxnn_fast.fista import solver as fista

    monkeypatch.setattr(fista, "CHUNK_SECONDS", 0.0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)) @ (rng.standard_normal((20, 20))
                                          * np.logspace(0, -2, 20))
    problem = cvxnn.build_problem(X, np.maximum(X @ rng.standard_normal((20, 3)), 0),
                                  lam=1e-3, n_gates=20, bias=True, random_state=0)
    options = ({"max_iter": 338} if stop == "max_iter" else
               {"callback": lambda state: state["iteration"] >= 338})
    kept = fast_solve(problem, method="fista", tol=1e-9,
                      **{"max_iter": 10_000, **options})
    monkeypatch.setattr(fista, "BEST_BY", 0.0)  # the last iterate, as before
    last = fast_solve(problem, method="fista", tol=1e-9,
                      **{"max_iter": 10_000, **options})
    seen = np.minimum.accumulate(last.history["optimality"])
    assert last.certificate.optimality > 4 * seen[-2]  # the gap rose at the end
    assert kept.certificate.optimality < 0.25 * last.certificate.optimality
    assert "returning the best-certified iterate it saw" in kept.message
    # its certificate is that of the weights returned
    again = certificate(problem, kept.U)
    assert again.optimality == pytest.approx(kept.certificate.optimality, rel=1e-9)
    np.testing.assert_array_equal(kept.history["optimality"],
                                  last.history["optimality"])


def test_a_relu_stop_names_the_cone_violation_where_that_misses():
    """The optimality met tol; the message said it did not ("optimality
    4.1e-3 > tol=1.0e-02") and never named cone_tol."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    problem = cvxnn.build_problem(X, X @ rng.standard_normal(4) + 0.3 * np.abs(X[:, 0]),
                                  formulation="relu", lam=1e-2, n_gates=10, bias=True)
    with pytest.warns(ConvergenceWarning, match="max_iter=1000"):
        sol = fast_solve(problem, method="augmented_lagrangian", tol=1e-2,
                         cone_tol=1e-14, max_iter=1000)
    assert sol.certificate.optimality <= 1e-2 < 1e6 * sol.certificate.cone_violation
    assert "reached with cone violation" in sol.message
    assert "cone_tol=1.0e-14" in sol.message


def test_relu_with_violated_cones_is_never_optimal():
    problem = build("squared", "group_l1", formulation="relu", lam=1e-3)
    with pytest.warns(ConvergenceWarning):
        sol = fast_solve(problem, tol=1e-10, max_iter=30,
                         method="augmented_lagrangian")
    assert sol.status != "optimal"
    assert sol.certificate.cone_violation > 1e-10


def test_history_is_recorded_per_iteration():
    problem = build("cross_entropy", "group_l1", n_outputs=3)
    sol = fast_solve(problem, tol=1e-7)
    h = sol.history
    assert set(h) >= {"time", "objective", "optimality", "step_size"}
    assert len(h["time"]) == sol.n_iter + 1
    assert np.all(np.diff(h["time"]) >= 0)
    assert h["optimality"][-1] <= 1e-7
    assert h["objective"][-1] == pytest.approx(sol.objective, rel=1e-10)


def test_overflowing_data_raise_a_named_breakdown():
    X, y = make_data("logistic", n_samples=30)
    problem = cvxnn.build_problem(X * 1e300, y, loss="logistic", n_gates=4)
    with np.errstate(over="ignore"), pytest.raises(NumericalBreakdown,
                                                   match="Lipschitz.*overflows"):
        fast_solve(problem, method="fista")
    with np.errstate(all="ignore"), pytest.raises(NumericalBreakdown,
                                                  match="interior point.*NaN/inf"):
        fast_solve(problem, method="interior_point")


def test_nan_during_the_solve_raises_with_the_last_finite_iterate():
    """Huge weights overflow the logistic loss's gradient mid-solve."""
    problem = build("logistic", "group_l1", lam=1e-3)
    start = np.full(problem.weight_shape, 1e306)
    with np.errstate(all="ignore"), pytest.raises(NumericalBreakdown) as info:
        fast_solve(problem, warm_start=start, method="fista")
    message = str(info.value)
    assert "NaN/inf at the starting point (a warm start with huge weights" in message
    assert "np.float64" not in message and "objective" in message
    assert info.value.solution is not None and np.all(info.value.solution.U == 1e306)
    # auto's R-FISTA breaks down the same way, and its interior point, which
    # starts from its own point, solves the problem
    with np.errstate(all="ignore"):
        sol = fast_solve(problem, warm_start=start)
    assert sol.status == "optimal" and sol.info["method"] == "interior_point"
    assert sol.info["fallback_from"] == "fista"


def test_callback_sees_progress_and_can_stop():
    problem = build("squared", "group_l1", lam=1e-4, n_samples=200, n_gates=40)
    seen = []

    def callback(state):
        seen.append(state)
        return True

    with pytest.warns(ConvergenceWarning, match="callback"):
        sol = fast_solve(problem, tol=1e-14, max_iter=10**6, callback=callback)
    assert sol.status == "user_limit"
    assert sol.U is not None and np.isfinite(sol.objective)
    assert seen and set(seen[0]) >= {"iteration", "time", "objective", "optimality"}


@pytest.mark.parametrize("formulation, method", [
    ("gated_relu", "fista"), ("gated_relu", "interior_point"),
    ("relu", "augmented_lagrangian"), ("relu", "interior_point")])
def test_callback_weights_are_the_iterate_the_solve_returns(formulation, method):
    """Stopped at its first report, a solve returns the weights the callback saw
    (a copy: the solve going on does not change them)."""
    problem = build("squared", "group_l1", formulation, lam=1e-4, n_samples=200,
                    n_gates=40)
    seen, copies = [], []

    def callback(state):
        seen.append(state["weights"]())
        copies.append({k: v.copy() for k, v in seen[-1].items()})
        return len(seen) == 3

    with pytest.warns(ConvergenceWarning, match="callback"):
        sol = fast_solve(problem, tol=1e-14, max_iter=10**6, callback=callback,
                         method=method)
    assert set(seen[-1]) == set(sol.blocks)
    for name, block in sol.blocks.items():
        np.testing.assert_array_equal(seen[-1][name], block)
        assert seen[-1][name] is not block
    for weights, copy in zip(seen, copies, strict=True):
        for name in weights:
            np.testing.assert_array_equal(weights[name], copy[name])


@pytest.mark.parametrize("formulation, method, device, reg", [
    ("gated_relu", "fista", None, "group_l1"), ("gated_relu", "fista", None, "l2"),
    ("relu", "augmented_lagrangian", None, "group_l1"),
    ("gated_relu", "interior_point", None, "group_l1"),
    ("relu", "interior_point", None, "group_l1"),
    ("gated_relu", "fista", "cpu", "group_l1"), ("gated_relu", "fista", "cpu", "l2")])
def test_last_report_shows_the_returned_point_and_converged_wins(formulation, method,
                                                                 device, reg):
    """The last callback call describes the point returned (the polished one
    where a polish certified), and a stop asked at that call, after
    convergence, does not turn ``optimal`` into ``user_limit``."""
    if device is not None:
        pytest.importorskip("torch")
    problem = build("squared", reg, formulation, lam=1e-3, n_samples=100, n_gates=20)
    seen = []

    def callback(state):
        seen.append((state["optimality"], state["weights"]()))
        return state["optimality"] <= 1e-6

    sol = fast_solve(problem, tol=1e-6, method=method, device=device,
                     callback=callback)
    assert sol.status == "optimal", sol.message
    optimality, weights = seen[-1]
    assert optimality <= 1e-6
    assert optimality == pytest.approx(sol.history["optimality"][-1], rel=1e-12)
    for name, block in sol.blocks.items():
        np.testing.assert_allclose(weights[name], block, rtol=1e-6, atol=1e-12)


def test_float32_device_solve_returns_the_point_it_certified():
    """A float32 device solve whose polish certified returns that point (in
    the problem's float64), not a float32 rounding of it."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(120)
    for reg in ("feature_group_l1", "group_l1"):
        problem = cvxnn.build_problem(X, y, regularizer=reg, lam=1e-3, n_gates=15,
                                      random_state=0)
        sol = fast_solve(problem, device="cpu", dtype="float32", method="fista",
                         tol=1e-6)
        if sol.status == "optimal":
            assert cvxnn.certificate(problem, sol.U).optimality <= 1e-6
            assert sol.history["optimality"][-1] <= 1e-6


@pytest.mark.parametrize("method", ["fista", "newton"])
def test_float32_device_solve_is_optimal_only_if_certified_on_the_host(method):
    """The device judges in its float32 working dtype; ``optimal`` is kept
    only where the returned weights certify tol in the problem's float64."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 5))
    y = X @ rng.standard_normal(5)
    for reg in ("group_l1", "feature_group_l1"):
        problem = cvxnn.build_problem(X, y, regularizer=reg, lam=1e-3, n_gates=12,
                                      random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = fast_solve(problem, device="cpu", dtype="float32", method=method,
                             tol=1e-6, max_iter=400)
        host = cvxnn.certificate(problem, sol.U).optimality
        assert sol.status != "optimal" or host <= 1e-6
        if sol.status == "optimal_inaccurate" and host < 1e-4:
            assert "working dtype" in sol.message or "max_iter" in sol.message \
                or "line search" in sol.message or "stopped improving" in sol.message


@pytest.mark.parametrize("device", [None, "cpu"])
def test_float32_stops_where_rounding_ends_the_line_search(device):
    """Below float32's reach (tol 1e-8, l1), R-FISTA stops on the line search,
    near the best point it saw, instead of drifting on its momentum with
    rounding-level steps (it ended 3,500x worse after max_iter)."""
    if device is not None:
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5)).astype(np.float32)
    problem = cvxnn.build_problem(X, y, regularizer="l1", lam=1e-3, n_gates=12,
                                  random_state=0)
    with pytest.warns(ConvergenceWarning, match="line search"):
        sol = fast_solve(problem, method="fista", tol=1e-8, max_iter=3000,
                         device=device)
    assert sol.status == "optimal_inaccurate" and sol.n_iter < 1000
    best = np.nanmin(sol.history["optimality"])
    assert sol.certificate.optimality <= 10 * best < 1e-2


def float32_regression(seed, n, **kwargs):
    """A float32 problem on n rows of 4 Gaussian features, y linear plus
    noise (seeded): small problems where float32 rounding shows."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(n)
    return cvxnn.build_problem(X.astype(np.float32), y.astype(np.float32), **kwargs)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_float32_metric_step_does_not_drift_from_the_best_point(device):
    """In the pattern-mean metric (l1), the gradient step rounded to float32
    before the prox drifted the momentum away from the optimum: 8e-5 at best,
    4e-2 (compiled) or 0.17 (device) after 3,000 iterations."""
    if device is not None:
        pytest.importorskip("torch")
    problem = float32_regression(8, 80, regularizer="l1", lam=1e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = fast_solve(problem, method="fista", tol=1e-9, max_iter=3000,
                         device=device)
    best = np.nanmin(sol.history["optimality"])
    assert sol.certificate.optimality <= 10 * best < 1e-3


@pytest.mark.parametrize("formulation, method, reg, seed, n, lam", [
    ("gated_relu", "fista", "l2", 8, 25, 1e-3),
    ("relu", "augmented_lagrangian", "group_l1", 11, 10, 1e-2)])
def test_float32_optimal_means_the_returned_weights_certify(formulation, method, reg,
                                                           seed, n, lam):
    """The compiled loops judged convergence through products they update
    rather than recompute, in float32: "optimal" with the returned weights'
    certificate at 1.28e-6 (R-FISTA) and 3.02e-6 (augmented Lagrangian)
    against tol 1e-6. A converged run is now confirmed on its weights and goes
    on where they miss; "optimal" holds for the returned weights."""
    problem = float32_regression(seed, n, formulation=formulation, regularizer=reg,
                                 n_gates=6, lam=lam)
    sol = fast_solve(problem, tol=1e-6, method=method)
    assert sol.status == "optimal", sol.message
    cert = cvxnn.certificate(problem, **sol.blocks, multipliers=sol.multipliers)
    assert cert.satisfied(1e-6)


def test_cross_entropy_starts_with_its_curvature_at_zero():
    """The initial step of a cold cross-entropy solve uses the softmax
    curvature at uniform probabilities, 1/c, not the global bound 1/2."""
    from cvxnn_fast.fista import solver as engine

    problem = build("cross_entropy", "group_l1", n_outputs=4)
    c = problem.n_outputs
    # the Hessian of the library's own loss at zero predictions, by differences
    eps = 1e-6
    y_row = problem.y[:1]
    H = np.column_stack([
        (problem.loss.gradient(eps * e[None], y_row)
         - problem.loss.gradient(-eps * e[None], y_row))[0] / (2 * eps)
        for e in np.eye(c)])
    assert np.linalg.eigvalsh(H).max() == pytest.approx(1.0 / c, rel=1e-6)
    zero = np.zeros(problem.weight_shape)
    assert engine.start_curvature(problem, zero) == pytest.approx(1.0 / c)
    assert engine.start_curvature(problem, zero + 0.1) == 0.5  # warm start: global
    squared = build("squared", "group_l1")
    assert engine.start_curvature(squared, np.zeros(squared.weight_shape)) == 1.0
    shape = (c * problem.n_patterns, problem.n_features)
    local = engine.initial_step(problem, shape, False, 0.0,
                                curvature=engine.start_curvature(problem, zero))
    assert local == pytest.approx(0.5 * c * engine.initial_step(problem, shape, False,
                                                                  0.0))


def test_keyboard_interrupt_returns_the_last_iterate():
    problem = build("squared", "group_l1", lam=1e-4, n_samples=200, n_gates=40)

    def interrupt(state):
        raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match="KeyboardInterrupt"):
        sol = fast_solve(problem, tol=1e-14, max_iter=10**6, callback=interrupt)
    assert sol.status == "user_limit"
    assert np.isfinite(sol.objective)


def test_time_limit():
    problem = build("squared", "group_l1", lam=1e-5, n_samples=300, n_gates=60)
    with pytest.warns(ConvergenceWarning, match="time limit"):
        sol = fast_solve(problem, tol=1e-15, max_iter=10**7, time_limit=0.3,
                         method="fista")
    assert sol.status == "user_limit"
    assert sol.solve_time < 5


def test_verbose_prints_progress(capsys):
    fast_solve(build("squared", "l1"), tol=1e-8, verbose=True)
    assert "objective" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs,error,match", [
    ({"tol": 0.0}, ValueError, "^tol:"),
    ({"tol": "small"}, TypeError, "^tol:"),
    ({"max_iter": 0}, ValueError, "^max_iter:"),
    ({"max_iter": 2.5}, TypeError, "^max_iter:"),
    ({"callback": 3}, TypeError, "^callback:"),
    ({"time_limit": -1.0}, ValueError, "^time_limit:"),
    ({"cone_tol": 0.0}, ValueError, "^cone_tol:"),
    ({"warm_start": np.zeros(3)}, ValueError, "^warm_start"),
    ({"learning_rate": 0.1}, TypeError, "learning_rate"),
    ({"verbose": "no"}, TypeError, "^verbose:"),
])
def test_bad_options_are_named(kwargs, error, match):
    problem = build("squared", "group_l1")
    with pytest.raises(error, match=match):
        fast_solve(problem, **kwargs)
    with pytest.raises(error, match=match):
        problem.solve("fast", **kwargs)


def test_problem_solve_fast_dispatches():
    problem = build("squared", "group_l1")
    assert problem.solve("fast").solver == "fast"
    with pytest.raises(TypeError, match="^problem:"):
        fast_solve("not a problem")


def test_a_path_hands_over_its_step_and_metric():
    problem = build("cross_entropy", "group_l1", n_outputs=3, n_samples=80, lam=0.05)
    first = fast_solve(problem, tol=1e-2, method="fista")
    beta, step = first.info["metric_beta"], first.history["step_size"][-1]
    nxt = fast_solve(cvxnn.with_lam(problem, 0.02), tol=1e-2, warm_start=first)
    # starts from that step (the line search may halve it, or grow it x1.1)
    assert step / 64 <= nxt.history["step_size"][0] <= 1.1 * step * (1 + 1e-9)
    assert nxt.info["metric_beta"] == beta
    # an explicit first step is used as given; the optimum does not change
    ref = fast_solve(problem, tol=1e-8)
    given = fast_solve(problem, tol=1e-8, step_size=3.0 * step, method="fista")
    assert given.objective == pytest.approx(ref.objective, rel=1e-6)


@pytest.mark.parametrize("step_size", [1e12, 1e-30])
def test_a_step_size_far_from_one_over_l_is_named(step_size):
    """The line search halves a too-long first step down to 1e-12 of it and
    does not try one below 1e-30: the solve stopped at iteration 0 blaming
    the dtype's precision."""
    problem = build("squared", "group_l1", n_samples=30)
    said = re.escape(f"step_size={step_size:.3g}")
    with pytest.warns(ConvergenceWarning, match=said):
        sol = fast_solve(problem, method="fista", step_size=step_size)
    assert sol.n_iter == 0 and "precision" not in sol.message
    assert fast_solve(problem, method="fista", step_size=1e10).status == "optimal"


def test_auto_without_a_gap_skips_r_fistas_kkt_judged_budget():
    """lam = 0 has no duality gap: R-FISTA is judged by its KKT residual,
    which a column of scale 1e-8 hardly moves, and its budget run ended
    "optimal" 14% above the least-squares optimum. auto goes straight to
    the interior point there."""
    from cvxnn.core.operator import design_matrix

    rng = np.random.default_rng(0)
    problem = cvxnn.build_problem(rng.standard_normal((40, 3)) * 1e-8,
                                  rng.standard_normal(40), regularizer=None, lam=0.0,
                                  n_gates=8, bias=True)
    A = design_matrix(problem.X, problem.patterns).toarray()
    u = np.linalg.lstsq(A, problem.y[:, 0], rcond=None)[0]
    optimum = 0.5 * np.mean((A @ u - problem.y[:, 0]) ** 2)
    sol = fast_solve(problem, tol=1e-7)
    assert sol.status == "optimal" and "fista_budget" not in sol.info
    assert sol.objective == pytest.approx(optimum, rel=1e-6)
    # warm started too (a path's lam = 0 point was, and ended 14% above)
    warm = fast_solve(problem, tol=1e-7, warm_start=np.zeros(problem.weight_shape))
    assert warm.info["method"] == "interior_point"
    assert warm.objective == pytest.approx(optimum, rel=1e-6)
    point = cvxnn.regularization_path(problem, [1e-3, 0.0], tol=1e-7)[-1]
    assert not point.warm_started
    assert point.objective == pytest.approx(optimum, rel=1e-6)
    # a step_size given for a whole path has no use there, and is no error
    # (it was refused midway)
    path = cvxnn.regularization_path(problem, [1e-3, 0.0], tol=1e-7, step_size=0.5)
    assert path[-1].objective == pytest.approx(optimum, rel=1e-6)
    # where the interior point stalls (separable logistic: no minimizer),
    # the R-FISTA after it starts from the step given (it was dropped)
    X = np.random.default_rng(0).standard_normal((80, 5))
    separable = cvxnn.build_problem(X, (X[:, 0] > 0).astype(float), loss="logistic",
                                    regularizer=None, lam=0.0, n_gates=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = fast_solve(separable, tol=1e-10, step_size=1e-3, max_iter=200)
    assert sol.info["fallback_from"] == "interior_point"
    assert sol.history["step_size"][0] == pytest.approx(1e-3)


def test_step_size_is_for_r_fista_only():
    problem = build("squared", "group_l1", n_samples=30)
    with pytest.raises(ValueError, match="step_size: only R-FISTA"):
        fast_solve(problem, step_size=1.0, method="interior_point")
    with pytest.raises(ValueError, match="step_size"):
        fast_solve(problem, step_size=-1.0)
    relu = build("squared", "group_l1", n_samples=30, formulation="relu")
    with pytest.raises(ValueError, match="step_size: only R-FISTA"):
        fast_solve(relu, step_size=1.0)
    # auto's cold gated solve runs R-FISTA before the interior point: it takes
    # one (it was refused, while the same call with a warm start was not)
    sol = fast_solve(problem, step_size=1.0, tol=1e-8)
    assert sol.status == "optimal" and sol.info["fista_budget"] > 0
    assert sol.objective == pytest.approx(fast_solve(problem, tol=1e-8).objective,
                                          rel=1e-6)


def test_warm_starts_help_paths_where_a_first_order_method_takes_them():
    from cvxnn.core import backends

    # ReLU where auto takes the interior point: cold (the augmented
    # Lagrangian from a neighbouring lam rarely certified before it)
    small = build("squared", "group_l1", n_samples=30, formulation="relu")
    assert not backends.warm_start_helps(small, "fast", {"tol": 1e-6})
    assert not backends.warm_start_helps(small, "fast", {"tol": 1e-2})
    assert backends.warm_start_helps(small, "fast",
                                     {"tol": 1e-2, "method": "augmented_lagrangian"})
    assert not backends.warm_start_helps(small, "fast",
                                         {"tol": 1e-2, "method": "interior_point"})
    # gated ReLU: auto's bounded R-FISTA before its interior point takes it
    gated = build("squared", "group_l1", n_samples=30)
    assert backends.warm_start_helps(gated, "fast", {"tol": 1e-6})
    assert not backends.warm_start_helps(gated, "fast",
                                         {"tol": 1e-6, "method": "interior_point"})


@pytest.mark.parametrize("formulation,method", [("gated_relu", "fista"),
                                                ("relu", "augmented_lagrangian")])
def test_history_grows_instead_of_holding_max_iter_rows(monkeypatch, formulation,
                                                        method):
    """The per-iteration history starts small and doubles: a solve whose
    history outgrows it several times is the same solve, row for row, and a
    huge max_iter allocates nothing up front."""
    from cvxnn_fast.fista import solver as fista

    problem = build("squared", "group_l1", formulation=formulation)
    whole = fast_solve(problem, tol=1e-8, method=method)
    assert whole.n_iter > 30
    monkeypatch.setattr(fista, "HISTORY_ROWS", 8)
    grown = fast_solve(problem, tol=1e-8, method=method)
    assert grown.n_iter == whole.n_iter and grown.objective == whole.objective
    for key, column in whole.history.items():
        if key != "time":
            np.testing.assert_array_equal(grown.history[key], column, err_msg=key)
    ws = fista.Workspace(problem, fista.K["GATED"], np.zeros((8, 3)), 10**9)
    assert ws.history.shape[0] == 8


@pytest.mark.parametrize("formulation,method", [
    ("gated_relu", "fista"), ("gated_relu", "newton"),
    ("relu", "augmented_lagrangian")])
def test_warm_start_is_never_written_to(rng, formulation, method):
    # The compiled loop once iterated in the caller's warm-start array.
    X, y = rng.standard_normal((50, 3)), rng.standard_normal(50)
    problem = cvxnn.build_problem(X, y, lam=1e-2, n_gates=5, formulation=formulation)
    start = fast_solve(problem, method=method, max_iter=5)
    given = [b.copy() for b in start.blocks.values()]
    arrays = [b.copy() for b in given]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_solve(problem, method=method, warm_start=start, max_iter=5)
        fast_solve(problem, method=method, max_iter=5,
                   warm_start=arrays[0] if len(arrays) == 1 else tuple(arrays))
    for before, solution_block, array in zip(given, start.blocks.values(), arrays,
                                             strict=True):
        np.testing.assert_array_equal(solution_block, before)
        np.testing.assert_array_equal(array, before)


@pytest.mark.parametrize("formulation,method", [("gated_relu", "fista"),
                                                ("relu", "augmented_lagrangian")])
def test_reported_numbers_are_those_of_the_reported_weights(formulation, method,
                                                            monkeypatch):
    """A chunk that ended on time reported the objective of y before its
    step with weights() of y after it (up to 1.5x apart early in a solve);
    the augmented Lagrangian also reported after moving y to a subproblem's
    solution."""
    from cvxnn_fast.fista import solver

    monkeypatch.setattr(solver, "CHUNK_SECONDS", 0.0)  # a chunk per iteration
    problem = build("squared", "group_l1", formulation=formulation, lam=1e-3,
                    n_samples=200, n_gates=20, bias=True)
    pairs = []

    def record(info):
        weights = info["weights"]()
        pairs.append((info["objective"], problem.objective(**weights)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast_solve(problem, tol=1e-12, max_iter=150, method=method, callback=record)
    assert len(pairs) >= 100
    reported, recomputed = np.array(pairs).T
    np.testing.assert_allclose(reported, recomputed, rtol=1e-12)


def test_short_subproblems_do_not_put_the_reports_off(monkeypatch):
    """Each kernel call restarted its chunk clock, and a call ended by a
    solved subproblem did not report: with subproblems shorter than a
    chunk, an augmented Lagrangian without polish pauses (l2) reported
    twice in 3 s and overran time_limit=0.5 by 2.6 s."""
    import time

    from cvxnn_fast.fista import solver

    monkeypatch.setattr(solver, "CHUNK_SECONDS", 0.1)  # > a subproblem (~25 ms)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 10))
    problem = cvxnn.build_problem(X, rng.standard_normal(600), formulation="relu",
                                  regularizer="l2", lam=1e-3, n_gates=30)
    calls = []
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = fast_solve(problem, tol=1e-12, max_iter=3000,
                         method="augmented_lagrangian",
                         callback=lambda info: calls.append(info["iteration"]))
    elapsed = time.monotonic() - start
    assert sol.info["n_outer"] > 5  # many subproblems
    # about one report per chunk (2 in all before, at the first and last)
    assert len(calls) >= max(4, elapsed / 0.1 / 2)


def test_a_line_search_stalled_far_from_optimal_blames_the_data_scale():
    # features in units of 1e16: the first step underflows at gap 1, where
    # rounding in the dtype is not the reason (tol is not to blame)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 4))
    y = X @ rng.standard_normal(4)
    problem = cvxnn.build_problem(X * 1e16, y, n_gates=8, lam=0.01)
    with pytest.warns(ConvergenceWarning, match="the data's scale is the likely"):
        sol = fast_solve(problem, method="fista")
    assert sol.status == "optimal_inaccurate"
    assert "standardize=True" in sol.message and "tol=" not in sol.message
