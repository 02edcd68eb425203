"""Progress bars: the solver callback, CVXPY solves, the fast solver, loops."""

import io as stdio

import numpy as np
import pytest

import cvxnn
import cvxnn.solvers
from cvxnn.core import backends
from cvxnn.estimators import ConvexReLURegressor
from cvxnn.progress import SolveProgress, solve_with_progress, track

pytest.importorskip("tqdm")


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 3))
    return cvxnn.build_problem(X, X[:, 0] ** 2, n_gates=6, bias=True, lam=1e-2)


def test_bar_follows_solver_states():
    out = stdio.StringIO()
    states = [{"iteration": k, "time": 0.01 * k, "objective": 1.0 / k,
               "optimality": 10.0 ** -k} for k in (5, 10, 15)]
    with SolveProgress(total=100, file=out) as bar:
        for state in states:
            bar(state)
        assert bar.bar.n == 15
        assert bar.last_state == states[-1]
    text = out.getvalue()
    assert "objective=0.0666667" in text and "optimality=1.00e-15" in text
    assert "15/100" in text


def test_disabled_bar_draws_nothing():
    out = stdio.StringIO()
    bar = SolveProgress(file=out, disable=True)
    bar({"iteration": 3, "objective": 1.0, "optimality": 0.1})
    bar.close()
    assert out.getvalue() == "" and bar.last_state["iteration"] == 3


def test_cvxpy_solve_with_progress(problem):
    out = stdio.StringIO()
    sol = solve_with_progress(problem, "CLARABEL", file=out)
    assert sol.objective == pytest.approx(problem.solve("CLARABEL").objective,
                                          rel=1e-10)
    text = out.getvalue()
    assert "1/1" in text and "status=optimal" in text
    assert f"objective={sol.objective:.6g}" in text


def test_fast_callback_is_wired_and_chained(problem, monkeypatch):
    """A stand-in for fast_solve that reports states through ``callback``."""
    seen = []

    def fake_fast_solve(prob, callback=None, max_iter=50, **options):
        for k in (10, 20):
            callback({"iteration": k, "time": 0.0, "objective": 2.0 / k,
                      "optimality": 1e-3 / k})
        sol = prob.solve("CLARABEL")
        sol.n_iter = None  # so only the callback can move the bar to 20
        return sol

    fake = backends.Backend("fast", lambda prob, _name, **o: fake_fast_solve(prob, **o))
    monkeypatch.setitem(backends._BACKENDS, "fast", fake)
    out = stdio.StringIO()
    sol = solve_with_progress(problem, "fast", file=out, max_iter=50,
                              callback=seen.append)
    assert [s["iteration"] for s in seen] == [10, 20]
    text = out.getvalue()  # tqdm throttles redraws: check the final line
    assert "20/50" in text and "status=optimal" in text
    assert f"optimality={sol.certificate.optimality:.2e}" in text


def test_estimator_progress_flag(problem, capsys):
    X = problem.X[:, :-1]
    est = ConvexReLURegressor(n_gates=5, solver="CLARABEL", progress=True)
    est.fit(X, X[:, 0] ** 2)
    assert "objective=" in capsys.readouterr().err


def test_track():
    items = [1, 2, 3]
    assert track(items, verbose=False) is items
    out = stdio.StringIO()
    assert list(track(items, desc="path", file=out)) == items
    assert "path" in out.getvalue() and "3/3" in out.getvalue()


def test_real_fast_solver_progress(problem):
    out = stdio.StringIO()
    sol = solve_with_progress(problem, "fast", file=out, max_iter=10000)
    assert "objective=" in out.getvalue()
    assert sol.objective == pytest.approx(problem.solve("CLARABEL").objective,
                                          rel=1e-5)
