"""Solve a :class:`cvxnn.core.problem.Problem` with any installed CVXPY solver.

The program handed to CVXPY is exactly the objective of API.md. The weights
enter as variables of shape (P * d, n_outputs) so that the predictions are a
single sparse product ``A @ U`` with the explicit design
``A = [D_1 X, ..., D_P X]`` (the solver needs the matrix anyway), and the
neurons are the columns of a free Fortran-order reshape. No Python loop runs
over patterns.

Each solver's options are declared below; an unknown keyword raises a
TypeError naming it before any work. ``solve_time`` counts everything from
building the CVXPY problem to reading back the weights.
"""

import time
from dataclasses import dataclass

import numpy as np

from cvxnn._optional import cvxpy as cp
from cvxnn.core import operator
from cvxnn.core.cvxpy_solvers import check_solver, check_solver_handles
from cvxnn.core.solution import Solution
from cvxnn.core.status import OPTIMAL, SOLVER_ERROR

# CVXPY's SciPy canonicalization backend handles the large constant design
# matrix 2.6x faster than its default C++ one (17.7 s vs 46.5 s for
# n=2000, d=50, P=500: 25 M non-zeros); ``canon_backend=`` overrides it.
CANON_BACKEND = "SCIPY"

# A solver's "optimal" is passed through as its word (API.md); where cvxnn's
# certificate at the returned weights misses this (fast_solve's default
# tol), the message says so.
CERTIFIED_TOL = 1e-6

@dataclass
class CvxpyModel:
    """The CVXPY problem of a cvxnn problem, with handles on its parts."""

    problem: "cp.Problem"
    variables: dict
    cone_constraints: list


def build_cvxpy(problem):
    """The CVXPY program of ``problem`` (see the module docstring)."""
    X, D = problem.X, problem.patterns
    c, P, d = problem.weight_shape
    A = operator.design_matrix(X, D)
    B = problem.formulation.cone_matrix(X, D)
    variables, yhat, penalty, constraints = problem.formulation.cvxpy(
        A, B, P, d, c, problem.regularizer)
    objective = problem.loss.cvxpy(yhat, problem.y) / problem.n_samples
    if problem.lam > 0 and problem.regularizer.name is not None:
        objective = objective + problem.lam * penalty
    return CvxpyModel(cp.Problem(cp.Minimize(objective), constraints), variables,
                      constraints)


def _weights(problem, variable):
    c, P, d = problem.weight_shape
    return np.ascontiguousarray(variable.value.T.reshape(c, P, d), dtype=problem.dtype)


def _multipliers(problem, constraint):
    n, (c, P, _) = problem.n_samples, problem.weight_shape
    dual = np.asarray(constraint.dual_value).reshape(P, n, c)
    return np.ascontiguousarray(dual.transpose(1, 2, 0), dtype=problem.dtype)


def solve_cvxpy(problem, solver="CLARABEL", **options):
    """Solve with a CVXPY solver; returns a :class:`cvxnn.core.solution.Solution`."""
    name = check_solver(solver, options)
    check_solver_handles(name, problem)
    start = time.perf_counter()
    model = build_cvxpy(problem)
    built = time.perf_counter()
    try:
        model.problem.solve(solver=name, **{"canon_backend": CANON_BACKEND, **options})
    except cp.error.SolverError as exc:
        return Solution.failed(problem, status=SOLVER_ERROR, solver=name,
                               solve_time=time.perf_counter() - start,
                               message=f"{name} failed: {exc}")
    info = {"build_time": built - start, "cvxpy_objective": model.problem.value,
            "solver_time": model.problem.solver_stats.solve_time,
            "n_iter": model.problem.solver_stats.num_iters}
    status = model.problem.status
    values = [v.value for v in model.variables.values()]
    if any(v is None for v in values) or status not in cp.settings.SOLUTION_PRESENT:
        return Solution.failed(problem, status=status, solver=name,
                               solve_time=time.perf_counter() - start,
                               message=f"{name} returned status {status!r} and no "
                                       "weights.", info=info)
    if not all(np.all(np.isfinite(v)) for v in values):
        return Solution.failed(problem, status=SOLVER_ERROR, solver=name,
                               solve_time=time.perf_counter() - start,
                               message=f"{name} returned status {status!r} with "
                                       "non-finite weights.", info=info)
    blocks = {k: _weights(problem, v) for k, v in model.variables.items()}
    multipliers = None
    if model.cone_constraints:
        multipliers = tuple(_multipliers(problem, con)
                            for con in model.cone_constraints)
    elapsed = time.perf_counter() - start
    sol = Solution.from_weights(problem, status=status, solver=name,
                                solve_time=elapsed, multipliers=multipliers,
                                n_iter=info["n_iter"], info=info, **blocks)
    sol.message = _message(name, status, sol.certificate)
    return sol


def _message(name, status, cert):
    """Why a solver stopped short (its status), or why cvxnn's certificate
    does not back its "optimal"; "" where it does."""
    numbers = (f"relative duality gap {cert.relative_gap:.2e}"
               if cert.relative_gap is not None else
               f"relative KKT residual {cert.relative_kkt_residual:.2e}")
    if cert.cone_violation is not None:
        numbers += f", cone violation {cert.cone_violation:.2e}"
    if status != OPTIMAL:
        return (f"{name} stopped with status {status!r} (its own limits or "
                f"criteria); cvxnn's certificate at the returned weights: "
                f"{numbers}.")
    if cert.optimality <= CERTIFIED_TOL and (cert.cone_violation is None or
                                             cert.cone_violation <= CERTIFIED_TOL):
        return ""
    return (f"{name} reports 'optimal', but cvxnn's certificate at the returned "
            f"weights has {numbers} (above {CERTIFIED_TOL:.0e}): the solver's own "
            "tolerances are looser here; fast_solve certifies to its tol.")
