"""CV estimators, early stopping and whitening (cvxnn.estimators.selection)."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import cvxnn
from cvxnn.core import backends
from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE
from cvxnn.estimators import (
    ConvexReLUClassifier,
    ConvexReLUClassifierCV,
    ConvexReLURegressor,
    ConvexReLURegressorCV,
    expected_failed_checks,
)
from cvxnn.estimators.selection import validation_key, validation_splits

FAST = "fast"


@parametrize_with_checks(
    [
        ConvexReLURegressorCV(n_gates=5, n_lams=4, solver=FAST),
        ConvexReLUClassifierCV(n_gates=5, n_lams=4, solver=FAST),
        ConvexReLUClassifierCV(n_gates=5, n_lams=3, cv=3, solver=FAST, whiten=True),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cvxnn.ConvergenceWarning)
        check(estimator)


@pytest.fixture
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = np.maximum(X @ np.array([1.0, -2.0, 0.5, 0.0]), 0) - X[:, 1]
    return X, y + 0.5 * rng.standard_normal(120)


@pytest.fixture
def classification():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 3))
    y = np.digitize(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(150), [-0.3, 0.3])
    return X, y


def _brute_force_keys(est, X, y, lams):
    """Held-out keys of a grid of cold, tight solves on the estimator's split,
    scored as the estimator scores (a regressor's held-out targets around the
    training split's mean, the intercept it fits around)."""
    X, Y, loss = est._prepare(X, y)
    ((train, val),) = validation_splits(len(X), est.cv, est._split_labels(Y),
                                        est.random_state)
    keys = []
    for lam in lams:
        problem, _, offset = est._build(X[train], Y[train], loss, lam)
        targets = Y[val] if offset is None else Y[val] - offset
        sol = problem.solve(FAST, tol=1e-9, max_iter=100000)
        keys.append(validation_key(problem, sol.predict(X[val]), targets,
                                   est._score_outputs))
    return np.array(keys)


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_cv_lam_equals_brute_force_grid(kind, request):
    X, y = request.getfixturevalue(kind)
    cls = ConvexReLURegressorCV if kind == "regression" else ConvexReLUClassifierCV
    est = cls(n_gates=10, n_lams=8, lam_ratio=1e-3, patience=2, solver=FAST).fit(X, y)
    assert len(est.lams_) == len(est.scores_) <= 8
    grid = cvxnn.lam_grid(est.problem_, 8, 1e-3, lam_max=est.lams_[0])
    np.testing.assert_allclose(est.lams_, grid[:len(est.lams_)])
    # the early-stopped, warm-started, loose path picks what the whole grid
    # of cold, tight solves picks, or a lam whose tight held-out score is
    # within 1e-3 of the best (the path's solves are loose: path_tol)
    keys = _brute_force_keys(est, X, y, grid)
    best = max(range(len(grid)), key=lambda i: (tuple(keys[i]), -i))
    picked = int(np.flatnonzero(grid == est.lam_)[0])
    assert picked == best or keys[best, 0] - keys[picked, 0] <= 1e-3
    # the refit is the certified optimum at lam_
    assert est.problem_.lam == est.lam_
    assert est.certificate_.relative_gap <= est.tol
    assert est.solution_.status == OPTIMAL


@pytest.mark.parametrize("params, dtype", [
    ({}, "float32"), ({"whiten": True}, "float32"),
    ({"path_tol": 1e-6}, "float64"),  # below float32's reach
    ({"solver_options": {"dtype": "float64"}}, "float64"),  # the user's
    ({"n_rows": 150}, "float64")])  # small: interior point work
def test_cv_path_runs_in_float32_and_the_refit_starts_from_it(
        monkeypatch, params, dtype):
    """A loose path on float64 data solves float32 copies where R-FISTA runs
    it (1.5x faster on digits); the refit is float64 and starts from the
    path's solution at lam_ (its gates matched across the dtypes: they used
    to be matched by their float64 bytes, which a float32 path's never
    equal)."""
    from cvxnn.estimators import selection as model_selection

    params = dict(params)
    rng = np.random.default_rng(1)
    n = params.pop("n_rows", 700)  # 3 classes, 64 x 13 weights: past the
    X = rng.standard_normal((n, 12))  # interior point's sizes
    y = np.digitize(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(n), [-0.3, 0.3])
    path_dtypes, starts, path = [], [], {}
    quietly = model_selection._solve_quietly

    def record_path(problem, solver, options):
        path_dtypes.append(problem.dtype)
        path[problem.lam] = quietly(problem, solver, options)
        return path[problem.lam]

    refit = ConvexReLUClassifierCV._solve

    def record_refit(self, problem, solver, options):
        starts.append((problem, options.get("warm_start")))
        return refit(self, problem, solver, options)

    monkeypatch.setattr(model_selection, "_solve_quietly", record_path)
    monkeypatch.setattr(ConvexReLUClassifierCV, "_solve", record_refit)
    est = ConvexReLUClassifierCV(n_gates=64 if n == 700 else 16, n_lams=5,
                                 solver=FAST, **params).fit(X, y)
    assert path_dtypes and set(path_dtypes) == {np.dtype(dtype)}
    ((problem, start),) = starts
    assert problem is est.problem_ and problem.dtype == np.float64
    # the refit by the same rule (the full rows may take the interior point)
    options = {"tol": est.tol, **(est.solver_options or {})}
    refit_dtype = backends.working_dtype(problem, FAST, options) or "float64"
    assert est.solution_.info.get("dtype", "float64") == refit_dtype
    assert est.lam_ < est.lams_[0]  # a path solution to start from
    # the start is the path's solution at lam_, carried to the refit's gates
    sol = path[est.lam_]
    start = start if isinstance(start, tuple) else (start,)
    assert np.count_nonzero(start[0]) > 0 and start[0].dtype == np.float64
    by_gate = {g.astype(np.float32).tobytes(): i
               for i, g in enumerate(sol.problem.gates.T)}
    for block, name in zip(start, sol.problem.formulation.block_names, strict=True):
        for j, g in enumerate(problem.gates.T):
            i = by_gate.get(g.astype(np.float32).tobytes())
            expected = 0.0 if i is None else getattr(sol, name)[:, i]
            np.testing.assert_array_equal(block[:, j], expected)
    assert est.certificate_.relative_gap <= est.tol


def test_relu_cv_refit_runs_the_interior_point_cold(monkeypatch):
    """ReLU where auto takes the interior point: the path and the refit solve
    cold. From a warm start the augmented Lagrangian ran first and rarely
    certified within its budget, so the interior point ran after it anyway
    (breast cancer's ReLU CV fit 2.84 s warm, 1.77 s cold)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 12))
    y = np.digitize(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(150), [-0.3, 0.3])
    starts = []
    refit = ConvexReLUClassifierCV._solve

    def record_refit(self, problem, solver, options):
        starts.append(options.get("warm_start"))
        return refit(self, problem, solver, options)

    monkeypatch.setattr(ConvexReLUClassifierCV, "_solve", record_refit)
    est = ConvexReLUClassifierCV(n_gates=16, n_lams=5, solver=FAST,
                                 formulation="relu").fit(X, y)
    assert starts == [None] and est.lam_ < est.lams_[0]
    assert est.solution_.info["method"] == "interior_point"
    assert est.solution_.status == OPTIMAL


def test_cv_path_stops_when_validation_stops_improving(regression):
    X, y = regression
    est = ConvexReLURegressorCV(n_gates=10, n_lams=30, patience=2,
                                solver=FAST).fit(X, y)
    best = int(np.argmax(est.scores_))
    assert len(est.lams_) == best + 3 < 30
    assert est.lam_ == est.lams_[best]


def test_cv_folds_and_save_load(classification, tmp_path):
    X, y = classification
    est = ConvexReLUClassifierCV(cv=3, n_gates=8, n_lams=5, solver=FAST).fit(X, y)
    assert est.lam_ in est.lams_
    cvxnn.save(tmp_path / "m.npz", est)
    back = cvxnn.load(tmp_path / "m.npz")
    assert type(back) is ConvexReLUClassifierCV and back.lam_ == est.lam_
    np.testing.assert_array_equal(back.scores_, est.scores_)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))


def test_early_stopping_returns_best_validation_iterate(classification,
                                                        monkeypatch):
    X, y = classification
    offered = []
    from cvxnn.estimators import selection as model_selection

    original = model_selection.BestIterate.offer

    def record(self, blocks):
        key = original(self, blocks)
        offered.append((key, blocks))
        return key

    monkeypatch.setattr(model_selection.BestIterate, "offer", record)
    est = ConvexReLUClassifier(n_gates=20, lam=1e-5, early_stopping=True,
                               n_iter_no_change=2, solver=FAST,
                               solver_options={"max_iter": 3000}).fit(X, y)
    best_key, best_blocks = max(offered, key=lambda kb: tuple(kb[0]))
    for name, block in best_blocks.items():
        np.testing.assert_array_equal(getattr(est.solution_, name), block)
    assert est.problem_.n_samples == 135  # 10% held out
    assert est.solution_.status in (OPTIMAL, OPTIMAL_INACCURATE, "user_limit")
    cert = cvxnn.certificate(est.problem_, est.solution_.U)
    assert est.certificate_.relative_gap == pytest.approx(cert.relative_gap)


def test_splits_missing_a_class_keep_one_output_per_class():
    """A held-out part holding a class's only sample (splits are not
    stratified then): the training problem keeps an output per class."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.where(X[:, 0] > 0, "c", "b")
    (_, val), = validation_splits(40, 0.1, None, 0)
    y[val] = "b"
    y[val[0]] = "a"  # class "a" only in the held-out rows
    est = ConvexReLUClassifier(early_stopping=True, n_gates=8, lam=1e-3,
                               loss="cross_entropy", solver=FAST).fit(X, y)
    assert est.network_.W2.shape[0] == 3
    np.testing.assert_array_equal(est.problem_.classes, [0, 1, 2])
    rest = y != "a"
    assert np.mean(est.predict(X)[rest] == y[rest]) > 0.9
    # ten classes of nine samples, 9 validation rows: every split lacks a class
    X = rng.normal(size=(90, 4))
    y = np.repeat(np.arange(10), 9)
    for est in (ConvexReLUClassifier(early_stopping=True, n_gates=8, solver=FAST),
                ConvexReLUClassifierCV(n_gates=8, n_lams=3, cv=0.1, solver=FAST)):
        est.fit(X, y)
        assert est.network_.W2.shape[0] == 10
        assert est.decision_function(X).shape == (90, 10)


def test_cv_with_one_row_validation_splits_is_decided_by_the_loss():
    """Leave-one-out regression: R^2 of one row is undefined, so the
    held-out loss picks lam (it used to keep lam_max: the zero model)."""
    X = np.random.default_rng(1).standard_normal((20, 3))
    y = X[:, 0] + 2.0
    est = ConvexReLURegressorCV(cv=20, n_gates=5, n_lams=4, solver=FAST).fit(X, y)
    assert np.all(np.isneginf(est.scores_))
    assert est.lam_ < est.lams_[0] and est.n_active_ > 0
    assert est.score(X, y) > 0.5


def test_cv_on_all_zero_targets_gives_the_zero_model():
    """lam_max = 0: every lam gives the zero model (the grid used to raise
    'lam_max: must be ... > 0', naming nothing the user set)."""
    X = np.random.default_rng(1).standard_normal((40, 3))
    est = ConvexReLURegressorCV(n_gates=5, n_lams=4, solver=FAST).fit(X, np.zeros(40))
    assert est.lam_ == est.lams_[0] == np.finfo(np.float64).resolution
    assert est.n_active_ == 0
    np.testing.assert_array_equal(est.predict(X), 0.0)


@pytest.mark.parametrize("regularizer", ["l2", None])
def test_cv_without_lam_max_is_refused_before_any_work(regularizer, monkeypatch):
    X = np.random.default_rng(1).standard_normal((40, 3))
    monkeypatch.setattr(ConvexReLURegressorCV, "_build", None)  # never reached
    with pytest.raises(ValueError, match="^regularizer: the CV estimators"):
        ConvexReLURegressorCV(regularizer=regularizer, solver=FAST).fit(X, X[:, 0])


def test_one_row_validation_scores_raise_no_metric_warning():
    """R^2 of one row is NaN by design (the loss decides): scikit-learn's
    UndefinedMetricWarning is not emitted at every score."""
    X = np.random.default_rng(1).standard_normal((6, 3))
    y = X[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConvexReLURegressor(early_stopping=True, n_gates=4, solver=FAST).fit(X[:4],
                                                                            y[:4])
        ConvexReLURegressorCV(n_gates=4, n_lams=3, solver=FAST).fit(X[:5], y[:5])


def test_early_stopping_needs_the_fast_solver(classification):
    X, y = classification
    with pytest.raises(ValueError, match="early_stopping"):
        ConvexReLUClassifier(early_stopping=True, solver="CLARABEL").fit(X, y)


@pytest.mark.parametrize("gates", ["gaussian", "spectral"])
def test_whitening_is_exact_and_keeps_hyperplanes(regression, gates):
    X, y = regression
    X = X * np.array([1.0, 10.0, 0.1, 3.0]) + 5.0
    est = ConvexReLURegressor(whiten=True, gates=gates, n_gates=12, solver=FAST,
                              tol=1e-8).fit(X, y)
    Z = (X - est.whiten_mean_) @ est.whiten_components_
    np.testing.assert_allclose(Z.T @ Z / len(X), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(est.predict(X),
                               est.solution_.predict(Z)[:, 0] + est.intercept_,
                               rtol=1e-9, atol=1e-9)
    plain = ConvexReLURegressor(gates=gates, n_gates=12, solver=FAST).fit(X, y)
    # the same hyperplanes split the raw data, so the same patterns are kept
    assert {p.tobytes() for p in plain.problem_.patterns.T} == \
        {p.tobytes() for p in est.problem_.patterns.T}


def test_gate_families_by_name(regression):
    X, y = regression
    for gates, options in [("sparse", {"order": 2}), ("spectral", None),
                           ("conv", {"height": 2, "width": 2, "kernel_size": 1})]:
        est = ConvexReLURegressor(gates=gates, gate_options=options, n_gates=9,
                                  solver=FAST).fit(X, y)
        assert est.problem_.gates.shape[0] == 5


def test_validation_splits():
    labels = np.repeat([0, 1, 2], 10)
    ((train, val),) = validation_splits(30, 0.2, labels, 0)
    assert len(val) == 6 and np.bincount(labels[val]).tolist() == [2, 2, 2]
    folds = validation_splits(30, 3, labels, 0)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(30))
    with pytest.raises(ValueError, match="cv"):
        validation_splits(30, 1.5)
    # too few training rows: the split's argument is named, not the fit's X
    with pytest.raises(ValueError, match="^cv: 2 folds of 3 samples leave 1 training"):
        validation_splits(3, 2)
    with pytest.raises(ValueError, match="^validation_fraction: 0.5 of 3 samples"):
        validation_splits(3, 0.5, name="validation_fraction")
    assert len(validation_splits(3, 3)) == 3  # 2 training rows each: enough


def test_too_few_rows_for_the_split_name_the_split(regression):
    X, y = regression
    with pytest.raises(ValueError, match="^validation_fraction"):
        ConvexReLURegressor(early_stopping=True, validation_fraction=0.5,
                            solver=FAST).fit(X[:3], y[:3])
    with pytest.raises(ValueError, match="^cv"):
        ConvexReLURegressorCV(cv=2, solver=FAST).fit(X[:2], y[:2])


def test_cv_path_scores_lam_max_without_a_solve(regression):
    X, y = regression
    est = ConvexReLURegressorCV(n_gates=10, n_lams=5, solver=FAST).fit(X, y)
    # the zero model at the largest lam_max: R^2 <= 0 on held-out rows
    assert est.scores_[0] <= 0 and est.lams_[0] > est.lams_[-1]


def test_ctrl_c_on_the_cv_path_ends_the_fit_at_once():
    """The path went on after Ctrl-C (26 more solves and the refit in the
    audit's run) and scored the interrupted solve as if it had finished."""
    X = np.random.default_rng(0).standard_normal((120, 4))
    y = X[:, 0] - X[:, 1] ** 2
    calls = []

    def interrupt(info):
        calls.append(info["iteration"])
        raise KeyboardInterrupt

    est = ConvexReLURegressorCV(n_gates=8, cv=3, solver=FAST,
                                solver_options={"callback": interrupt,
                                                "method": "fista"})
    with pytest.warns(ConvergenceWarning, match="KeyboardInterrupt.*not refitted"):
        est.fit(X, y)
    assert len(calls) == 1  # no solve after the interrupted one
    assert len(est.lams_) == 1 and est.lam_ == est.lams_[0]  # lam_max, unsolved
    assert est.solution_.status == "user_limit" and est.n_active_ == 0
    assert est.certificate_ is not None
    # the model is the first split's path solution: around its training mean
    from cvxnn.estimators import selection as model_selection
    train = model_selection.validation_splits(120, 3, None, est.random_state)[0][0]
    np.testing.assert_allclose(est.intercept_, [y[train].mean()], rtol=1e-12)
