"""Solution statuses: CVXPY's strings, named once.

Every backend returns one of these in ``Solution.status``; code compares
against the names here, never against string literals.
"""

OPTIMAL = "optimal"
OPTIMAL_INACCURATE = "optimal_inaccurate"
USER_LIMIT = "user_limit"  # time limit, callback or Ctrl-C: the iterate is kept
SOLVER_ERROR = "solver_error"
INFEASIBLE = "infeasible"  # e.g. a decomposition that could not split a block

# Statuses that come with weights (the others have none).
WITH_WEIGHTS = frozenset({OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT, INFEASIBLE})

# The message a solver that caught Ctrl-C puts in its solution (status
# USER_LIMIT), so that callers such as regularization_path can stop too.
INTERRUPTED = "interrupted by the user (KeyboardInterrupt)"


def interrupted(solution):
    """Whether the fast solver caught a Ctrl-C during this solve."""
    return solution.status == USER_LIMIT and INTERRUPTED in solution.message

# Every status CVXPY's solvers return (cvxpy.settings.SOLUTION_PRESENT,
# INF_OR_UNB, ERROR), which the CVXPY backend passes on; named here so that
# model files are checked without importing cvxpy (tests compare the two).
CVXPY_STATUSES = frozenset({
    OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT, SOLVER_ERROR, INFEASIBLE,
    "infeasible_inaccurate", "unbounded", "unbounded_inaccurate",
    "infeasible_or_unbounded"})
