"""cvxnn: two-layer ReLU networks trained to global optimality.

Build a convex reformulation with :func:`build_problem`, solve it with any
CVXPY solver (``problem.solve("CLARABEL")``) or with the compiled solvers of
:mod:`cvxnn_fast` (``problem.solve("fast")``), and read the trained network
from ``solution.network``.
"""

from cvxnn.certificates import Certificate, certificate, lam_max
from cvxnn.network import TwoLayerNetwork, network_from_weights
from cvxnn.problem import Problem, build_problem
from cvxnn.solution import Solution
from cvxnn.solvers import installed_solvers, solve

__version__ = "0.1.0"

__all__ = [
    "Certificate",
    "Problem",
    "Solution",
    "TwoLayerNetwork",
    "build_problem",
    "certificate",
    "installed_solvers",
    "lam_max",
    "network_from_weights",
    "solve",
]
