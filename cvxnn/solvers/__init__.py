"""Solver dispatch: ``"fast"`` goes to :mod:`cvxnn_fast`, anything else to CVXPY."""

from cvxnn.solvers.cvxpy_backend import installed_solvers, solve_cvxpy

__all__ = ["installed_solvers", "solve", "solve_cvxpy"]


def solve(problem, solver="CLARABEL", **options):
    """Solve ``problem`` with the named solver; see :meth:`Problem.solve`."""
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name (str), got {solver!r}.")
    if solver.lower() == "fast":
        from cvxnn_fast import fast_solve

        return fast_solve(problem, **options)
    return solve_cvxpy(problem, solver, **options)
