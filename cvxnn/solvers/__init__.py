"""Solver backends: the registry's public face and the CVXPY backend.

``solve(problem, solver)`` dispatches through :mod:`cvxnn.core.backends`.
Importing this package registers the CVXPY backend for every CVXPY solver
name; :mod:`cvxnn_fast` registers ``"fast"`` itself.
"""

from cvxnn.core.backends import available, register_backend, registered, solve
from cvxnn.core.cvxpy_solvers import installed_solvers
from cvxnn.solvers.cvxpy_backend import solve_cvxpy

register_backend("cvxpy", solve_cvxpy, fallback=True)

__all__ = ["available", "installed_solvers", "register_backend", "registered", "solve",
           "solve_cvxpy"]
