"""cvxnn: two-layer ReLU networks trained to global optimality.

Build a convex reformulation with :func:`build_problem`, solve it with any
CVXPY solver (``problem.solve("CLARABEL")``) or with the compiled solvers of
:mod:`cvxnn_fast` (``problem.solve("fast")``), and read the trained network
from ``solution.network``.
"""

from cvxnn.certificates import Certificate, certificate, lam_max
from cvxnn.decomposition import DecompositionReport, DecompositionWarning, decompose
from cvxnn.gates import conv_gates, gaussian_gates, sparse_gates
from cvxnn.network import TwoLayerNetwork, network_from_weights
from cvxnn.path import RegularizationPath, lam_grid, regularization_path
from cvxnn.problem import Problem, build_problem
from cvxnn.solution import Solution
from cvxnn.solvers import installed_solvers, solve
from cvxnn.variants import relu_twin, with_lam

__version__ = "0.1.0"

__all__ = [
    "Certificate",
    "DecompositionReport",
    "DecompositionWarning",
    "Problem",
    "RegularizationPath",
    "Solution",
    "TwoLayerNetwork",
    "build_problem",
    "certificate",
    "conv_gates",
    "decompose",
    "gaussian_gates",
    "installed_solvers",
    "lam_grid",
    "lam_max",
    "network_from_weights",
    "regularization_path",
    "relu_twin",
    "solve",
    "sparse_gates",
    "with_lam",
]
