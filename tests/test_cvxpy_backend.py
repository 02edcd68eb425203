"""Every formulation x loss x regularizer through CVXPY, checked three ways.

CVXPY's optimal value, cvxnn's objective at the returned weights and an
independent NumPy evaluation (tests/reference.py) must agree.
"""

import numpy as np
import pytest
import reference
from conftest import FORMULATIONS, LOSSES, REGULARIZERS

import cvxnn
from cvxnn.solvers import cvxpy_backend


@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
@pytest.mark.parametrize("several_outputs", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("regularizer", REGULARIZERS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_three_objectives_agree(data, formulation, loss, regularizer, bias,
                                several_outputs):
    n_outputs = (3 if several_outputs else 1) + (loss == "cross_entropy")
    X, y = data(loss, n_samples=30, n_features=3, n_outputs=n_outputs, seed=7)
    problem = cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                                  regularizer=regularizer, lam=0.05, n_gates=8,
                                  bias=bias, random_state=1)
    sol = problem.solve("CLARABEL")
    # CLARABEL calls a few exponential-cone solves "almost solved"; the
    # certificate below shows they are optimal to ~1e-5 all the same.
    assert sol.status in ("optimal", "optimal_inaccurate")
    assert sol.solver == "CLARABEL"
    if sol.certificate.relative_gap is not None:
        assert -1e-12 <= sol.certificate.relative_gap < 1e-4
    assert sol.U.shape == problem.weight_shape == (n_outputs, problem.n_patterns,
                                                   3 + bias)
    expected = reference.objective(X, y, problem.gates, loss=loss,
                                   regularizer=regularizer, lam=0.05, bias=bias,
                                   **sol.blocks)
    assert sol.objective == pytest.approx(sol.info["cvxpy_objective"], rel=1e-9)
    assert sol.objective == pytest.approx(expected, rel=1e-9)
    if formulation == "relu":
        np.testing.assert_allclose(sol.U, sol.V - sol.W)
        assert sol.certificate.cone_violation < 1e-7
    else:
        assert sol.V is None and sol.W is None


@pytest.fixture
def small(data):
    X, y = data("squared", n_samples=30, n_features=3, seed=2)
    return cvxnn.build_problem(X, y, lam=0.05, n_gates=8, bias=True)


@pytest.mark.parametrize("solver, options", [
    ("ECOS", {"abstol": 1e-9, "reltol": 1e-9}),
    ("SCS", {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 100_000}),
    ("clarabel", {"tol_gap_rel": 1e-10}),
])
def test_other_solvers_agree_with_clarabel(small, solver, options):
    reference_value = small.solve("CLARABEL").objective
    sol = small.solve(solver, **options)
    assert sol.status == "optimal" and sol.solver == solver.upper()
    assert sol.objective == pytest.approx(reference_value, rel=1e-6)


def test_solution_fields(small):
    sol = small.solve()
    assert sol.solve_time > 0 and sol.info["build_time"] >= 0
    assert sol.n_iter == sol.info["n_iter"] > 0
    assert sol.certificate.objective == sol.objective
    assert "CLARABEL" in repr(sol)


def test_float32_problem_returns_float32_weights(data):
    X, y = data("squared", seed=2)
    p32 = cvxnn.build_problem(X.astype(np.float32), y, lam=0.05, n_gates=8)
    p64 = cvxnn.build_problem(X, y, lam=0.05, n_gates=8)
    s32, s64 = p32.solve(), p64.solve()
    assert s32.U.dtype == np.float32
    assert s32.objective == pytest.approx(s64.objective, rel=1e-4)


def test_solver_status_is_kept(small):
    with pytest.warns(UserWarning):
        sol = small.solve("CLARABEL", max_iter=2)
    assert sol.status in ("user_limit", "optimal_inaccurate")
    assert sol.status != "optimal"
    # the message says why (it was empty) and what the weights certify
    assert sol.message.startswith(f"CLARABEL stopped with status '{sol.status}'")
    assert f"{sol.certificate.optimality:.2e}" in sol.message


def test_an_optimal_the_certificate_does_not_back_is_explained():
    """CLARABEL's "optimal" at relative gap 8e-4 (separable logistic data,
    tiny lam: its tolerances are absolute) keeps the solver's word but says
    what the certificate found; a certified "optimal" has no message."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(float)
    loose = cvxnn.build_problem(X, y, loss="logistic", formulation="relu", lam=1e-6,
                                n_gates=5).solve("CLARABEL")
    assert loose.status == "optimal" and loose.certificate.relative_gap > 1e-4
    assert "relative duality gap 7.9" in loose.message
    assert "cone violation 0.00e+00" in loose.message
    tight = cvxnn.build_problem(X, X[:, 0], lam=1e-3, n_gates=5).solve("CLARABEL")
    assert tight.status == "optimal" and tight.certificate.optimality <= 1e-6
    assert tight.message == ""


def test_cvxpy_program_has_no_loop_over_patterns(data):
    """One sparse product: the expression tree does not grow with P."""
    X, y = data("squared", n_samples=40, n_features=3)
    sizes = []
    for n_gates in (5, 40):
        problem = cvxnn.build_problem(X, y, formulation="relu", n_gates=n_gates)
        model = cvxpy_backend.build_cvxpy(problem)
        sizes.append(len(model.problem.variables()) + len(model.problem.constraints))
    assert sizes[0] == sizes[1] == 4


@pytest.mark.parametrize("solver, options, error, match", [
    ("NOT_A_SOLVER", {}, ValueError, "^solver: 'NOT_A_SOLVER' is not a solver"),
    ("CLARABEL", {"tol": 1e-3}, TypeError, "unknown option 'tol'"),
    ("ECOS", {"max_iter": 3}, TypeError, "unknown option 'max_iter'"),
    (3, {}, TypeError, "^solver: expected a solver name"),
    (None, {}, TypeError, "^solver: expected a solver name"),
    ("CLARABEL", {"max_iter": -1}, ValueError, "^max_iter:"),
    ("CLARABEL", {"max_iter": "a"}, TypeError, "^max_iter:"),
    ("CLARABEL", {"time_limit": -1}, ValueError, "^time_limit:"),
    ("CLARABEL", {"verbose": "a"}, TypeError, "^verbose:"),
    ("SCS", {"max_iters": 0}, ValueError, "^max_iters:"),
])
def test_bad_solver_or_option(small, solver, options, error, match):
    with pytest.raises(error, match=match):
        small.solve(solver, **options)


def test_uninstalled_solver_lists_installed(small):
    missing = next(s for s in ("MOSEK", "GUROBI", "CPLEX", "XPRESS", "COPT")
                   if s not in cvxnn.installed_solvers())
    with pytest.raises(ValueError, match="not installed; installed: .*CLARABEL"):
        small.solve(missing)
