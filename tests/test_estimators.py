"""scikit-learn estimators: sklearn's own checks, pipelines, dtypes, pandas, gates."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import cvxnn
from cvxnn.core.solution import Solution
from cvxnn.estimators import (
    GATE_FAMILIES,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    ConvexReLURegressorCV,
    expected_failed_checks,
    register_gate_family,
)
from cvxnn.estimators import base as estimators

SOLVER = "CLARABEL"

@parametrize_with_checks(
    [
        ConvexReLURegressor(n_gates=5, solver=SOLVER),
        ConvexReLUClassifier(n_gates=5, solver=SOLVER, formulation="relu"),
        ConvexReLUClassifier(n_gates=5, solver=SOLVER, loss="squared"),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_checks(estimator, check):
    check(estimator)


@pytest.fixture
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = np.maximum(X @ np.array([1.0, -2.0, 0.5]), 0) - X[:, 1]
    return X, y


@pytest.fixture
def three_classes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((45, 2))
    labels = np.array(["low", "mid", "high"], dtype=object)
    y = labels[np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.4, 0.4])]
    return X, y


def test_regressor_matches_problem_built_by_hand(regression_data):
    X, y = regression_data
    est = ConvexReLURegressor(n_gates=12, lam=1e-2, solver=SOLVER,
                              random_state=3).fit(X, y)
    # the regressor fits the targets around their mean, its intercept
    problem = cvxnn.build_problem(X, y - y.mean(), lam=1e-2, n_gates=12, bias=True,
                                  random_state=3)
    np.testing.assert_array_equal(est.problem_.gates, problem.gates)
    np.testing.assert_array_equal(est.intercept_, [y.mean()])
    np.testing.assert_array_equal(est.network_.b2, est.intercept_)
    sol = problem.solve(SOLVER)
    assert est.solution_.objective == pytest.approx(sol.objective, rel=1e-6)
    # The network's predictions are the convex model's (plus the intercept)
    # on the training data.
    np.testing.assert_allclose(est.predict(X),
                               problem.model_predict(est.solution_.blocks)[:, 0]
                               + y.mean(), rtol=1e-10, atol=1e-12)
    r2 = 1 - np.sum((y - est.predict(X)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert est.score(X, y) == pytest.approx(r2)
    assert est.n_active_ == est.network_.W1.shape[0]
    assert est.certificate_ is est.solution_.certificate
    assert est.certificate_.relative_gap < 1e-5


@pytest.mark.parametrize("cls, options", [
    (ConvexReLURegressor, {}), (ConvexReLURegressorCV, {}),
    (ConvexReLURegressor, {"early_stopping": True, "validation_fraction": 0.25})])
def test_regressor_is_invariant_to_a_shift_of_the_targets(regression_data, cls,
                                                          options):
    """Targets 1000 + y: the same neurons, predictions shifted by 1000. Without
    the intercept the neurons had to build the offset (each paying lam for
    it): the CV regressor's R^2 on diabetes fell from 0.41 to -0.59."""
    X, y = regression_data
    Y = np.column_stack([y, 3 * y - 2])
    plain = cls(n_gates=8, random_state=0, **options).fit(X, Y)
    shifted = cls(n_gates=8, random_state=0, **options).fit(X, Y + [1000.0, -50.0])
    # the mean of the rows it solved on (early stopping: the training split)
    np.testing.assert_allclose(shifted.intercept_, plain.intercept_ + [1000.0, -50.0])
    np.testing.assert_allclose(shifted.predict(X), plain.predict(X) + [1000.0, -50.0],
                               rtol=1e-9, atol=1e-9)
    assert shifted.score(X, Y + [1000.0, -50.0]) == pytest.approx(plain.score(X, Y))
    assert shifted.n_active_ == plain.n_active_


def test_regressor_multi_output(regression_data):
    X, y = regression_data
    Y = np.column_stack([y, -2 * y + 1])
    est = ConvexReLURegressor(n_gates=8, solver=SOLVER).fit(X, Y)
    assert est.predict(X).shape == (40, 2)
    assert est.problem_.n_outputs == 2


def test_classifier_three_classes_strings(three_classes):
    X, y = three_classes
    est = ConvexReLUClassifier(n_gates=10, lam=1e-3, solver=SOLVER).fit(X, y)
    assert est.loss_ == "cross_entropy"
    np.testing.assert_array_equal(est.classes_, np.unique(y))
    Z = est.decision_function(X)
    P = est.predict_proba(X)
    expected = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(P, expected / expected.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(Z, axis=1)])
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(P), atol=1e-12)
    assert est.score(X, y) > 0.9


def test_binary_logistic_probabilities(three_classes):
    X, y = three_classes
    y = (y == "high").astype(int) * 5 + 2  # labels 2 and 7
    est = ConvexReLUClassifier(n_gates=10, solver=SOLVER).fit(X, y)
    assert est.loss_ == "logistic" and est.problem_.n_outputs == 1
    z = est.network_.predict(X)[:, 0]
    np.testing.assert_allclose(est.decision_function(X), z)
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], expit(z))
    np.testing.assert_array_equal(est.predict(X), np.where(z > 0, 7, 2))


def test_binary_cross_entropy_decision_is_logit_difference(three_classes):
    X, y = three_classes
    y = y == "high"
    est = ConvexReLUClassifier(loss="cross_entropy", n_gates=8, solver=SOLVER)
    est.fit(X, y)
    Z = est.network_.predict(X)
    np.testing.assert_allclose(est.decision_function(X), Z[:, 1] - Z[:, 0])
    np.testing.assert_allclose(est.predict_proba(X)[:, 1], expit(Z[:, 1] - Z[:, 0]))


def test_squared_loss_classifier_has_no_proba(three_classes):
    X, y = three_classes
    est = ConvexReLUClassifier(loss="squared", n_gates=8, solver=SOLVER).fit(X, y)
    assert not hasattr(est, "predict_proba")
    # Targets coded +-1, one column per class, as RidgeClassifier does.
    assert set(np.unique(est.problem_.y)) == {-1.0, 1.0}
    assert est.problem_.y.shape == (45, 3)


def test_pipeline_and_grid_search(regression_data):
    X, y = regression_data
    pipe = make_pipeline(StandardScaler(),
                         ConvexReLURegressor(n_gates=6, solver=SOLVER))
    grid = GridSearchCV(pipe, {"convexreluregressor__lam": [1e-3, 10.0]}, cv=2)
    grid.fit(X, y)
    # lam = 10 is far above lam_max here: all-zero weights, a constant model.
    assert grid.best_params_["convexreluregressor__lam"] == 1e-3
    assert grid.best_estimator_[-1].n_active_ > 0


def test_float32_and_float64_agree(regression_data):
    X, y = regression_data
    fits = {dt: ConvexReLURegressor(n_gates=8, solver=SOLVER).fit(X.astype(dt), y)
            for dt in (np.float32, np.float64)}
    assert fits[np.float32].problem_.dtype == np.float32
    assert fits[np.float32].predict(X.astype(np.float32)).dtype == np.float32
    assert fits[np.float32].solution_.objective == pytest.approx(
        fits[np.float64].solution_.objective, rel=1e-4)


def test_pandas_input(regression_data):
    pd = pytest.importorskip("pandas")
    X, y = regression_data
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = ConvexReLURegressor(n_gates=8, solver=SOLVER).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c"])
    ref = ConvexReLURegressor(n_gates=8, solver=SOLVER).fit(X, y)
    np.testing.assert_array_equal(est.predict(frame), ref.predict(X))


def test_gate_families(regression_data):
    X, y = regression_data
    calls = []

    def half_gates(X_used, n_gates, rng, scale=1.0):
        calls.append((X_used.shape, n_gates, scale))
        return scale * rng.standard_normal((X_used.shape[1], n_gates))

    register_gate_family("test_half", half_gates)
    try:
        est = ConvexReLURegressor(gates="test_half", gate_options={"scale": 2.0},
                                  n_gates=7, solver=SOLVER).fit(X, y)
    finally:
        del GATE_FAMILIES["test_half"]
    assert calls == [((40, 4), 7, 2.0)]  # the bias column is included
    G = np.random.default_rng(0).standard_normal((4, 7)) * 2.0
    assert all(any(np.array_equal(g, col) for col in G.T) for g in est.problem_.gates.T)


def _doubled_gates(X_used, n_gates, rng):
    return 2.0 * rng.standard_normal((X_used.shape[1], n_gates))


def test_a_registered_family_travels_with_the_pickled_estimator(regression_data):
    """A joblib worker (n_jobs > 1) unpickles the estimator without the
    parent's registrations: 'gates: unknown value' in every worker. Only the
    estimator's own family travels (all of them made a gaussian estimator's
    pickle 16 MB where another family held an array)."""
    import pickle

    X, y = regression_data
    register_gate_family("test_travel", _doubled_gates)
    try:
        plain = pickle.dumps(ConvexReLURegressor(n_gates=5, solver=SOLVER))
        blob = pickle.dumps(ConvexReLURegressor(gates="test_travel", n_gates=5,
                                                solver=SOLVER))
    finally:
        del GATE_FAMILIES["test_travel"]  # as in a fresh worker process
    assert b"_doubled_gates" not in plain
    try:
        est = pickle.loads(blob).fit(X, y)
        assert GATE_FAMILIES["test_travel"] is _doubled_gates
    finally:
        GATE_FAMILIES.pop("test_travel", None)
    G = _doubled_gates(np.ones((1, X.shape[1] + 1)), 5, np.random.default_rng(0))
    assert all(any(np.array_equal(g, col) for col in G.T) for g in est.problem_.gates.T)
    with pytest.raises(ValueError, match="^gates: unknown value 'test_travel'"):
        ConvexReLURegressor(gates="test_travel", solver=SOLVER).fit(X, y)


def test_a_fitted_estimator_loads_where_its_family_cannot_be_rebuilt(
        regression_data, tmp_path):
    """A family whose sampler the loading process cannot import (here this
    test module, not on its path; a script's __main__ likewise): the pickle
    failed to load as a whole; the fitted estimator now predicts."""
    import pickle
    import subprocess
    import sys

    X, y = regression_data
    register_gate_family("test_elsewhere", _doubled_gates)
    try:
        est = ConvexReLURegressor(gates="test_elsewhere", n_gates=5,
                                  solver=SOLVER).fit(X, y)
        (tmp_path / "est.pkl").write_bytes(pickle.dumps(est))
    finally:
        del GATE_FAMILIES["test_elsewhere"]
    np.save(tmp_path / "X.npy", X)
    code = ("import pickle, numpy as np; "
            f"e = pickle.loads(open({str(tmp_path / 'est.pkl')!r}, 'rb').read()); "
            f"np.save({str(tmp_path / 'p.npy')!r}, "
            f"e.predict(np.load({str(tmp_path / 'X.npy')!r})))")
    root = str(Path(cvxnn.__file__).resolve().parents[1])
    run = subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": root},
                         capture_output=True, text=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), est.predict(X))
    assert "'test_elsewhere' could not be rebuilt" in run.stderr


def test_the_carried_family_is_the_estimators_own_where_it_is_loaded(
        regression_data):
    """A joblib worker reused from an earlier search held the name's earlier
    sampler and scored it: a loaded estimator samples with the sampler it
    carries. The process's own registration stays (replacing it, a load or
    a deepcopy changed what every later fit used). A pickle written before
    samplers travelled as bytes held the sampler itself."""
    import copy
    import pickle

    X, y = regression_data
    register_gate_family("test_stale", _doubled_gates)
    try:
        est = ConvexReLURegressor(gates="test_stale", n_gates=5, solver=SOLVER)
        blob = pickle.dumps(est)
        register_gate_family("test_stale", half_of_doubled)  # the worker's
        loaded = pickle.loads(blob).fit(X, y)
        assert GATE_FAMILIES["test_stale"] is half_of_doubled
        G = _doubled_gates(np.ones((1, X.shape[1] + 1)), 5, np.random.default_rng(0))
        assert all(any(np.array_equal(g, col) for col in G.T)
                   for g in loaded.problem_.gates.T)
        copy.deepcopy(est)
        assert GATE_FAMILIES["test_stale"] is half_of_doubled
        # pickling or copying the loaded one keeps its family, on it and on
        # the copies (pickling took it off the instance)
        again = pickle.loads(pickle.dumps(loaded))
        twin = copy.deepcopy(loaded)
        for each in (loaded, again, twin):
            assert each._family_sampler().__name__ == "_doubled_gates"
        old = est.__getstate__()
        old["_gate_family"] = _doubled_gates  # the earlier format
        restored = ConvexReLURegressor()
        restored.__setstate__(old)
        assert restored._family_sampler() is _doubled_gates
    finally:
        GATE_FAMILIES.pop("test_stale", None)


def test_a_built_in_family_name_is_not_replaced():
    """A replaced built-in did not travel to joblib's workers, which sampled
    the original: a grid search scored another family than one process."""
    with pytest.raises(ValueError, match="^name: 'gaussian' is a built-in family"):
        register_gate_family("gaussian", _doubled_gates)
    assert GATE_FAMILIES["gaussian"].__name__ == "_gaussian_family"


def half_of_doubled(X_used, n_gates, rng):
    return 0.5 * _doubled_gates(X_used, n_gates, rng)


def test_a_sampler_that_cannot_be_pickled_stays_behind():
    """cloudpickle carries a closure by value, and raised whatever its
    contents raise (a ctypes pointer: ValueError; a queue: RuntimeError):
    the estimator did not pickle or deep-copy at all."""
    import copy
    import ctypes
    import pickle

    held = ctypes.pointer(ctypes.c_int(1))
    register_gate_family("test_lock", lambda X, n, rng: (held, rng)[1].standard_normal(
        (X.shape[1], n)))
    try:
        est = ConvexReLURegressor(gates="test_lock", n_gates=5, solver=SOLVER)
        assert "_gate_family" not in est.__getstate__()
        pickle.loads(pickle.dumps(est))
        copy.deepcopy(est)
    finally:
        GATE_FAMILIES.pop("test_lock", None)


def test_fixed_gate_array(regression_data):
    X, y = regression_data
    G = np.random.default_rng(5).standard_normal((4, 6))
    est = ConvexReLURegressor(gates=G, solver=SOLVER).fit(X, y)
    ref = cvxnn.build_problem(X, y, gates=G, bias=True)
    np.testing.assert_array_equal(est.problem_.gates, ref.gates)


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"gates": "nope"}, ValueError, "gates"),
    ({"n_gates": 0}, ValueError, "n_gates"),
    ({"solver_options": [1]}, TypeError, "solver_options"),
    ({"gate_options": {"a": 1}, "gates": np.ones((4, 3))}, ValueError,
     "gate_options"),
    ({"gate_options": {"foo": 1}}, TypeError, "^gate_options: .*foo"),
    ({"gates": "conv"}, TypeError, "^gate_options: .*height"),
    ({"gates": "conv", "gate_options": {"height": 3, "width": 3}}, ValueError,
     r"^gate_options: .*height x width x channels: images of 3 x 3 x 1 = 9 "
     "features, but X has 3"),
    ({"gates": "spectral", "gate_options": {"exponent": "x"}}, TypeError,
     "^gate_options"),
    ({"loss": "logistic"}, ValueError, "loss"),
    ({"lam": -1.0}, ValueError, "lam"),
    ({"bias": "yes"}, TypeError, "bias"),
    ({"solver_options": {"bogus": 1}}, TypeError, "bogus"),
    ({"tol": -1.0, "solver": "CLARABEL"}, ValueError, "^tol"),
    ({"gates": None}, TypeError, "^gates: expected"),
    ({"device": "gpu"}, ValueError, "^device: expected"),
    ({"gates": lambda X, n, rng: None}, TypeError, "^gates: the sampler returned"),
    ({"gates": "sparse", "gate_options": {"bias": False}}, ValueError,
     "^gate_options: 'bias'"),
    ({"tol": "a", "solver": "CLARABEL"}, ValueError, "^tol"),
    # checked by fit whether used or not: save refuses them (model files)
    ({"validation_fraction": 5}, ValueError, "^validation_fraction"),
    ({"n_iter_no_change": 0}, ValueError, "^n_iter_no_change"),
    ({"solver": "fast", "early_stopping": True,
      "solver_options": {"callback": lambda info: False}}, ValueError,
     "^solver_options: 'callback' cannot be given with early_stopping"),
    ({"solver": "fast", "device": "cpu", "solver_options": {"device": "cpu"}},
     ValueError, "^device: given both"),
    ({"solver": "fast", "solver_options": {"bogus": 1}}, TypeError,
     "^solver_options: unknown option 'bogus' for solver='fast'; it takes "),
])
def test_bad_parameters_are_named(regression_data, params, error, match):
    X, y = regression_data
    with pytest.raises(error, match=match):
        ConvexReLURegressor(**{"n_gates": 4, "solver": SOLVER, **params}).fit(X, y)


def test_classifier_names_labels_of_mixed_types(regression_data):
    X, _ = regression_data
    y = np.array(["a", None] * (len(X) // 2), dtype=object)
    with pytest.raises(TypeError, match="^y: class labels must be all numbers or "
                                        "all strings"):
        ConvexReLUClassifier(n_gates=4, solver=SOLVER).fit(X[:len(y)], y)


def test_regressor_names_text_targets(regression_data):
    X, _ = regression_data
    with pytest.raises(ValueError, match="^y: a regressor needs numeric"):
        ConvexReLURegressor(n_gates=4, solver=SOLVER).fit(
            X, np.array(["a", "b"] * (len(X) // 2) + ["a"] * (len(X) % 2)))


def test_logistic_needs_two_classes(three_classes):
    X, y = three_classes
    with pytest.raises(ValueError, match="loss: 'logistic' is binary"):
        ConvexReLUClassifier(loss="logistic", n_gates=4, solver=SOLVER).fit(X, y)


def test_auto_solver_resolution(monkeypatch):
    monkeypatch.setattr(estimators, "fast_available", lambda: False)
    assert estimators.resolve_solver("auto") == "CLARABEL"
    monkeypatch.setattr(estimators, "fast_available", lambda: True)
    assert estimators.resolve_solver("auto") == "fast"
    assert estimators.resolve_solver("SCS") == "SCS"


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
def test_inaccurate_solve_warns(regression_data):
    X, y = regression_data
    est = ConvexReLURegressor(n_gates=6, solver=SOLVER,
                              solver_options={"max_iter": 1})
    with pytest.warns(ConvergenceWarning, match="user_limit"):
        est.fit(X, y)


def test_a_stopped_fit_warns_once_with_scikit_learns_warning(regression_data):
    """GridSearchCV users filter sklearn's ConvergenceWarning: the solver's
    own warning is not repeated beside it."""
    X, y = regression_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ConvexReLURegressor(n_gates=6, solver="fast", tol=1e-9,
                            solver_options={"max_iter": 2}).fit(X, y)
    assert [w.category for w in caught] == [ConvergenceWarning]


def test_large_targets_give_no_floating_point_warning():
    """Diabetes targets times 100: the interior point's cone step ratio
    overflowed to inf (harmless, but a RuntimeWarning reached the user)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = ConvexReLURegressor(solver="fast").fit(X, 100 * y)
    assert est.solution_.status == "optimal"


def test_failed_solve_raises(regression_data, monkeypatch):
    X, y = regression_data

    def fail(self, solver, **options):
        return Solution.failed(self, status="solver_error", solver=solver,
                               solve_time=0.0, message="numerical trouble")

    monkeypatch.setattr(cvxnn.Problem, "solve", fail)
    with pytest.raises(RuntimeError, match="numerical trouble"):
        ConvexReLURegressor(n_gates=4, solver=SOLVER).fit(X, y)


def test_fast_solver_matches_clarabel(regression_data):
    X, y = regression_data
    fast = ConvexReLURegressor(n_gates=10, lam=1e-2, solver="fast",
                               solver_options={"tol": 1e-8}).fit(X, y)
    ref = ConvexReLURegressor(n_gates=10, lam=1e-2, solver=SOLVER).fit(X, y)
    assert fast.solution_.objective == pytest.approx(ref.solution_.objective,
                                                     rel=1e-5)


def test_a_loose_fast_fit_of_float64_data_iterates_in_float32():
    """At tol >= 1e-4, where R-FISTA alone runs, the fast solver iterates in
    float32 on float64 data; the model, problem and certificate are float64,
    and the certificate is that of the returned weights on the float64
    problem."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 12))  # 3 classes, 16 x 13 weights: past
    y = np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.4, 0.4])  # the interior point
    est = ConvexReLUClassifier(n_gates=16, lam=1e-3, solver="fast").fit(X, y)
    assert est.solution_.info["dtype"] == "float32"
    assert est.problem_.dtype == est.solution_.U.dtype == np.float64
    assert est.network_.W1.dtype == np.float64
    again = cvxnn.certificate(est.problem_, est.solution_.U)
    assert est.certificate_.optimality == pytest.approx(again.optimality, rel=1e-12)
    assert again.optimality <= est.tol
    ref = ConvexReLUClassifier(n_gates=16, lam=1e-3, solver=SOLVER).fit(X, y)
    assert abs(est.solution_.objective - ref.solution_.objective) <= \
        est.tol * est.solution_.objective
    # early stopping too: its iterate is judged on the float64 problem
    early = ConvexReLUClassifier(n_gates=16, lam=1e-5, solver="fast",
                                 early_stopping=True).fit(X, y)
    assert early.solution_.info["dtype"] == "float32"
    assert early.solution_.U.dtype == np.float64
    assert early.certificate_.optimality == pytest.approx(
        cvxnn.certificate(early.problem_, early.solution_.U).optimality, rel=1e-12)
    # where float32 does not fit: a tight tol, float32 data, the ReLU program,
    # a dtype the user chose, the interior point (small problems)
    for params, data in [({"tol": 1e-6}, X), ({}, X.astype(np.float32)),
                         ({"solver_options": {"dtype": "float64"}}, X),
                         ({}, X[:60])]:
        fit = ConvexReLUClassifier(n_gates=16, lam=1e-3, solver="fast",
                                   **params).fit(data, y[:len(data)])
        assert fit.solution_.info.get("dtype") in (None, "float64"), params
    relu = cvxnn.relu_twin(est.problem_)  # its cone test stays in float64
    assert estimators.backends.working_dtype(relu, "fast", {"tol": 1e-3}) is None


def test_an_estimator_with_a_lambda_family_still_pickles(regression_data):
    """Carrying the sampler broke pickle for lambda or local samplers (loky's
    cloudpickle carried them, pickle and joblib.dump did not)."""
    import pickle

    X, y = regression_data
    register_gate_family(
        "test_lambda", lambda X_used, n, rng: rng.standard_normal((X_used.shape[1], n)))
    try:
        est = ConvexReLURegressor(gates="test_lambda", n_gates=5,
                                  solver=SOLVER).fit(X, y)
        back = pickle.loads(pickle.dumps(est))
    finally:
        del GATE_FAMILIES["test_lambda"]
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
