"""Bad input raises ValueError/TypeError naming the argument, before any work.

Every message starts with ``"<argument>: "``; the tests match that prefix.
Legal but unusual data (constant, duplicate or zero columns, duplicate
samples, integer or Fortran-ordered arrays) must build and solve.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import cvxnn

RNG = np.random.default_rng(0)
X_OK = RNG.standard_normal((10, 3))
Y_OK = RNG.standard_normal(10)
ARGUMENTS = ("X", "y", "formulation", "loss", "regularizer", "lam", "n_gates",
             "gates", "bias", "random_state", "standardize", "solver")


def nan_at(A, index):
    A = np.array(A, dtype=float)
    A[index] = np.nan
    return A


# (name, keyword arguments of build_problem, error type, argument named)
BUILD_CASES = [
    ("X has NaN", {"X": nan_at(X_OK, (2, 1))}, ValueError, "X"),
    ("X has inf", {"X": X_OK * np.array([1, np.inf, 1])}, ValueError, "X"),
    ("X is 1-D", {"X": X_OK[:, 0]}, ValueError, "X"),
    ("X is 3-D", {"X": X_OK[:, :, None]}, ValueError, "X"),
    ("y is 3-D", {"y": Y_OK[:, None, None]}, ValueError, "y"),
    ("y has NaN", {"y": nan_at(Y_OK, 3)}, ValueError, "y"),
    ("sample counts differ", {"y": Y_OK[:7]}, ValueError, "y"),
    ("negative lam", {"lam": -0.1}, ValueError, "lam"),
    ("lam is a string", {"lam": "0.1"}, TypeError, "lam"),
    ("three classes with logistic", {"y": np.arange(10) % 3, "loss": "logistic"},
     ValueError, "y"),
    ("fractional labels for cross_entropy",
     {"y": Y_OK, "loss": "cross_entropy"}, ValueError, "y"),
    ("gates of the wrong shape", {"gates": np.ones((4, 5))}, ValueError, "gates"),
    ("n_gates < 1", {"n_gates": 0}, ValueError, "n_gates"),
    ("unknown formulation", {"formulation": "tanh"}, ValueError, "formulation"),
    ("unknown loss", {"loss": "hinge"}, ValueError, "loss"),
    ("unknown regularizer", {"regularizer": "l0"}, ValueError, "regularizer"),
    # issue 7, item 1
    ("lam is NaN", {"lam": float("nan")}, ValueError, "lam"),
    ("lam is inf", {"lam": float("inf")}, ValueError, "lam"),
    ("lam is None", {"lam": None}, TypeError, "lam"),
    ("X is empty", {"X": np.empty((0, 3)), "y": np.empty(0)}, ValueError, "X"),
    ("X has no features", {"X": np.empty((10, 0))}, ValueError, "X"),
    ("X is an empty list", {"X": [], "y": []}, ValueError, "X"),
    ("X is a scalar", {"X": 3.0}, ValueError, "X"),
    ("single sample", {"X": X_OK[:1], "y": Y_OK[:1]}, ValueError, "X"),
    ("X is all zeros", {"X": np.zeros((10, 3))}, ValueError, "X"),
    ("X of strings", {"X": X_OK.astype(str)}, TypeError, "X"),
    ("X of objects", {"X": np.array([[1, None, 2]] * 10, dtype=object)}, TypeError,
     "X"),
    ("X ragged", {"X": [[1.0, 2.0], [3.0]], "y": [1.0, 2.0]}, TypeError, "X"),
    ("X complex", {"X": X_OK + 1j}, TypeError, "X"),
    ("X sparse", {"X": sp.csr_matrix(X_OK)}, TypeError, "X"),
    ("X masked", {"X": np.ma.masked_greater(X_OK, 1.0)}, TypeError, "X"),
    ("y sparse", {"y": sp.csr_matrix(Y_OK[:, None])}, TypeError, "y"),
    ("y is None", {"y": None}, ValueError, "y"),
    ("y has inf", {"y": Y_OK * np.inf}, ValueError, "y"),
    ("y of strings for squared", {"y": Y_OK.astype(str)}, TypeError, "y"),
    ("y complex", {"y": Y_OK + 1j}, TypeError, "y"),
    ("y complex labels", {"y": np.arange(10) % 2 + 1j, "loss": "cross_entropy"},
     TypeError, "y"),
    ("y with no columns", {"y": np.empty((10, 0))}, ValueError, "y"),
    ("y labels mixed", {"y": np.array([1, "a"] * 5, dtype=object),
                        "loss": "cross_entropy"}, TypeError, "y"),
    ("y labels with None", {"y": np.array([1, None] * 5, dtype=object),
                            "loss": "cross_entropy"}, TypeError, "y"),
    ("y NaN labels", {"y": nan_at(np.arange(10) % 2, 0), "loss": "cross_entropy"},
     ValueError, "y"),
    ("y NaN with logistic", {"y": nan_at(np.arange(10) % 2, 0), "loss": "logistic"},
     ValueError, "y"),
    ("one class with cross_entropy", {"y": np.ones(10), "loss": "cross_entropy"},
     ValueError, "y"),
    ("gates 1-D", {"gates": np.ones(3)}, ValueError, "gates"),
    ("gates without columns", {"gates": np.ones((3, 0))}, ValueError, "gates"),
    ("gates miss the bias row", {"gates": np.ones((3, 4)), "bias": True},
     ValueError, "gates"),
    ("gates have NaN", {"gates": np.full((3, 2), np.nan)}, ValueError, "gates"),
    ("gates of strings", {"gates": "abc"}, TypeError, "gates"),
    ("n_gates negative", {"n_gates": -3}, ValueError, "n_gates"),
    ("n_gates float", {"n_gates": 5.0}, TypeError, "n_gates"),
    ("n_gates None", {"n_gates": None}, TypeError, "n_gates"),
    ("formulation None", {"formulation": None}, ValueError, "formulation"),
    ("formulation list", {"formulation": ["relu"]}, ValueError, "formulation"),
    ("loss array", {"loss": np.array(["squared", "logistic"])}, ValueError, "loss"),
    ("regularizer array", {"regularizer": np.array([1, 2])}, ValueError,
     "regularizer"),
    ("regularizer wrong case", {"regularizer": "L1"}, ValueError, "regularizer"),
    ("bias not a bool", {"bias": "yes"}, TypeError, "bias"),
    ("standardize not a bool", {"standardize": 1}, TypeError, "standardize"),
    ("random_state negative", {"random_state": -1}, ValueError, "random_state"),
    ("random_state string", {"random_state": "seed"}, TypeError, "random_state"),
]


def build(**kwargs):
    args = {"X": X_OK, "y": Y_OK, "n_gates": 5}
    args.update(kwargs)
    return cvxnn.build_problem(args.pop("X"), args.pop("y"), **args)


@pytest.mark.parametrize("case, kwargs, error, argument", BUILD_CASES,
                         ids=[c[0] for c in BUILD_CASES])
def test_build_problem_rejects(case, kwargs, error, argument):
    with pytest.raises(error, match=f"^{argument}: "):
        build(**kwargs)


def test_values_that_overflow_the_data_dtype_are_not_called_inf():
    X32 = X_OK.astype(np.float32)
    with pytest.raises(ValueError, match="^y: values up to 1.*e\\+39 do not fit in "
                                         "float32"):
        build(X=X32, y=Y_OK * 1e39)
    with pytest.raises(ValueError, match="^gates: values up to 1e\\+39 do not fit"):
        build(X=X32, gates=np.full((3, 5), 1e39))
    with pytest.raises(ValueError, match="^y: contains inf values"):
        build(X=X32, y=Y_OK * np.inf)


@pytest.mark.parametrize("solver, options, error, match", [
    ("NOPE", {}, ValueError, "^solver: 'NOPE'"),
    (None, {}, TypeError, "^solver: "),
    ("CLARABEL", {"tolerance": 1e-3}, TypeError, "unknown option 'tolerance'"),
    ("SCS", {"max_iter": 10}, TypeError, "unknown option 'max_iter'"),
])
def test_solve_rejects_unknown_solver_and_option(solver, options, error, match):
    problem = build()
    with pytest.raises(error, match=match):
        problem.solve(solver, **options)


@pytest.mark.parametrize("solver", ["OSQP", "HIGHS", "SCIPY"])
def test_a_cvxpy_solver_that_cannot_take_the_program_is_named_before_work(solver,
                                                                        monkeypatch):
    import cvxpy as cp

    if solver not in cp.installed_solvers():
        pytest.skip(f"{solver} is not installed")
    from cvxnn.solvers import cvxpy_backend

    def no_build(problem):
        raise AssertionError("built the CVXPY program first")

    monkeypatch.setattr(cvxpy_backend, "build_cvxpy", no_build)
    with pytest.raises(ValueError, match=f"^solver: {solver} cannot solve this "
                                         "problem, which needs second-order cones"):
        build(regularizer="group_l1").solve(solver)
    y = (Y_OK > 0).astype(int)
    with pytest.raises(ValueError, match="exponential cones \\(the logistic loss"):
        build(y=y, loss="logistic", regularizer="l1").solve(solver)
    monkeypatch.undo()
    # what it can take still runs: squared loss with l1 as a QP (OSQP, HiGHS)
    if solver != "SCIPY":
        sol = build(regularizer="l1").solve(solver)
        ref = build(regularizer="l1").solve("CLARABEL")
        assert sol.objective == pytest.approx(ref.objective, rel=1e-3)


def test_predict_rejects_bad_input():
    sol = build(bias=True).solve()
    for bad, error in [(nan_at(X_OK, (0, 0)), ValueError), (X_OK[:, :2], ValueError),
                       (X_OK.astype(str), TypeError), (X_OK[0], ValueError)]:
        with pytest.raises(error, match="^X: "):
            sol.predict(bad)


# Legal data that must build and solve (decision: constant, duplicate and zero
# columns are data, not errors; see build_problem's Notes).
LEGAL = [
    ("constant column", np.hstack([X_OK, np.full((10, 1), 7.0)])),
    ("duplicate column", np.hstack([X_OK, X_OK[:, :1]])),
    ("zero column", np.hstack([X_OK, np.zeros((10, 1))])),
    ("duplicate samples", np.vstack([X_OK[:5], X_OK[:5]])),
    ("integers", np.round(3 * X_OK).astype(np.int64)),
    ("booleans", X_OK > 0),
    ("float16", X_OK.astype(np.float16)),
    ("Fortran order", np.asfortranarray(X_OK)),
    ("strided view", np.hstack([X_OK, X_OK])[:, ::2]),
    ("nested lists", X_OK.tolist()),
]


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("case, X", LEGAL, ids=[c[0] for c in LEGAL])
def test_legal_unusual_data(case, X, standardize, formulation):
    problem = build(X=X, bias=True, standardize=standardize, formulation=formulation)
    assert problem.X.flags.c_contiguous and np.isfinite(problem.X).all()
    sol = problem.solve()
    assert sol.status == "optimal"
    assert sol.certificate.relative_gap < 1e-6
    np.testing.assert_allclose(sol.predict(X), problem.model_predict(sol.blocks),
                               atol=1e-8)


def test_logistic_accepts_a_single_class_column():
    """One-vs-all outputs may have a column with one class: still a valid program."""
    y = np.stack([np.where(Y_OK > 0, 1, -1), np.ones(10)], axis=1)
    sol = build(y=y, loss="logistic").solve()
    assert sol.status == "optimal"


# --- property-based: random valid and invalid input ---------------------------

def arrays(draw, shape, kind):
    n = int(np.prod(shape))
    values = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n,
                           max_size=n))
    A = np.array(values, dtype=float).reshape(shape)
    if kind == "nan" and n:
        A.flat[draw(st.integers(0, n - 1))] = np.nan
    elif kind == "inf" and n:
        A.flat[draw(st.integers(0, n - 1))] = -np.inf
    elif kind == "complex":
        A = A + 1j
    elif kind == "strings":
        A = A.astype(str)
    elif kind == "sparse":
        A = sp.csr_matrix(A) if A.ndim == 2 else A
    return A


def valid_targets(draw, n, loss):
    y = arrays(draw, (n,), "ok")
    if loss == "logistic":
        return np.where(y > 0, 1, -1)
    if loss == "cross_entropy":
        return np.round(np.abs(y)).astype(int)
    return y


BAD = {
    "X": ["nan", "inf", "complex", "strings", "sparse", "1d", "3d", "empty", "one"],
    "y": ["short", "long", "nan", "strings", "3d", "labels3"],
    "formulation": ["tanh", None, 3],
    "loss": ["hinge", None],
    "regularizer": ["l0", 3, "L1"],
    "lam": [-1.0, float("nan"), float("inf"), "1", None],
    "n_gates": [0, -2, 2.5, None],
    "gates": ["rows", "cols", "nan", "1d"],
    "bias": ["yes", 1, None],
    "standardize": [None, "no"],
    "random_state": [-1, "a", 2.5],
    "solver": ["NOPE", 3],
    "options": [{"bogus": 1}, {"max_iters": 5}],
}


def corrupt_X(draw, X, how):
    n, d = X.shape
    if how in ("nan", "inf", "complex", "strings", "sparse"):
        return arrays(draw, (n, d), how)
    return {"1d": X[:, 0], "3d": X[:, :, None], "empty": X[:0], "one": X[:1]}[how]


def corrupt_y(draw, y, loss, how):
    n = y.shape[0]
    if how == "labels3":
        return np.arange(n) % 3 + (loss == "squared") * 0.5
    if how in ("nan", "strings"):
        return arrays(draw, (n,), how)
    return {"short": y[:-1], "long": np.append(y, y[:1]), "3d": y[:, None, None]}[how]


def corrupt_gates(draw, d, how):
    shape = {"rows": (d + 1, 3), "cols": (d, 0), "nan": (d, 3), "1d": (d,)}[how]
    return arrays(draw, shape, "nan" if how == "nan" else "ok")


@st.composite
def inputs(draw):
    """Valid arguments of build_problem and solve, with 0 to 2 of them corrupted."""
    n, d = draw(st.integers(2, 12)), draw(st.integers(1, 4))
    X = arrays(draw, (n, d), "ok")
    loss = draw(st.sampled_from(["squared", "logistic", "cross_entropy"]))
    y = valid_targets(draw, n, loss)
    bias = draw(st.booleans())
    kwargs = {
        "formulation": draw(st.sampled_from(["gated_relu", "relu"])),
        "loss": loss,
        "regularizer": draw(st.sampled_from(
            ["group_l1", "feature_group_l1", "l2", "l1", None])),
        "lam": draw(st.sampled_from([0.0, 1e-3, 0.1])),
        "n_gates": draw(st.integers(1, 8)),
        "bias": bias,
        "standardize": draw(st.booleans()),
        "random_state": draw(st.sampled_from([0, 7, None])),
    }
    if draw(st.booleans()):
        kwargs["gates"] = arrays(draw, (d + bias, draw(st.integers(1, 4))), "ok")
    solver = draw(st.sampled_from(["CLARABEL", "CLARABEL", "ECOS"]))
    options = {}
    for name in draw(st.lists(st.sampled_from(sorted(BAD)), max_size=2, unique=True)):
        how = draw(st.sampled_from(BAD[name]))
        if name == "X":
            X = corrupt_X(draw, X, how)
        elif name == "y":
            y = corrupt_y(draw, y, loss, how)
        elif name == "gates":
            kwargs["gates"] = corrupt_gates(draw, d + bias, how)
        elif name == "solver":
            solver = how
        elif name == "options":
            options = how
        else:
            kwargs[name] = how
    return X, y, kwargs, solver, options


def assert_names_an_argument(exc):
    message = str(exc)
    head = message.split(":")[0]
    event(f"error naming {head}")
    assert head in ARGUMENTS or head.startswith("solve(solver="), message
    if head.startswith("solve(solver="):
        assert "unknown option" in message


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(inputs())
def test_random_input_gives_a_solution_or_a_named_error(case):
    X, y, kwargs, solver, options = case
    try:
        problem = cvxnn.build_problem(X, y, **kwargs)
    except (ValueError, TypeError) as exc:
        assert_names_an_argument(exc)
        return
    assert isinstance(problem, cvxnn.Problem)
    assert np.isfinite(problem.X).all() and problem.n_patterns >= 1
    try:
        sol = problem.solve(solver, **options)
    except (ValueError, TypeError) as exc:
        assert_names_an_argument(exc)
        return
    assert isinstance(sol, cvxnn.Solution)
    event(f"solved: {sol.status}")
    if sol.status in ("optimal", "optimal_inaccurate") or (
            sol.status == "user_limit" and sol.U is not None):
        assert np.isfinite(sol.objective)
        assert sol.predict(np.asarray(X, dtype=float)).shape == (
            problem.n_samples, problem.n_outputs)
    else:
        assert sol.U is None and sol.message
