"""cvxnn: two-layer ReLU networks trained to global optimality.

Build a convex reformulation with :func:`build_problem`, solve it with any
CVXPY solver (``problem.solve("CLARABEL")``) or with the compiled solvers of
:mod:`cvxnn_fast` (``problem.solve("fast")``), and read the trained network
from ``solution.network``. Or fit :class:`ConvexReLUClassifier` /
:class:`ConvexReLURegressor` like any scikit-learn estimator.

Layout: :mod:`cvxnn.core` is the maths (problem, losses, penalties,
formulations, operator, certificates, solution, network);
:mod:`cvxnn.solvers` the backend registry and the CVXPY backend;
:mod:`cvxnn.decomposition` turns gated solutions into ReLU networks; the
modules at this level (``path``, ``estimators``, ``io``, ``cli``, ``export``,
``plot``, ``progress``, ``metrics``) are the user layer.
"""

import sys

from cvxnn._version import __version__
from cvxnn.core import network
from cvxnn.core.certificates import Certificate, certificate, lam_max
from cvxnn.core.errors import ConvergenceWarning, NumericalBreakdown
from cvxnn.core.gates import conv_gates, gaussian_gates, sparse_gates, spectral_gates
from cvxnn.core.network import TwoLayerNetwork, network_from_weights
from cvxnn.core.problem import Problem, build_problem, relu_twin, with_lam
from cvxnn.core.solution import Solution
from cvxnn.decomposition import DecompositionReport, DecompositionWarning, decompose
from cvxnn.io import load, save
from cvxnn.path import RegularizationPath, lam_grid, regularization_path
from cvxnn.solvers import installed_solvers, solve

# ``cvxnn.network`` is a documented import path; the module lives in core.
sys.modules.setdefault("cvxnn.network", network)

# The estimators need scikit-learn (an optional dependency): imported on use.
_ESTIMATORS = ("ConvexReLUClassifier", "ConvexReLUClassifierCV", "ConvexReLURegressor",
               "ConvexReLURegressorCV")


def __getattr__(name):
    if name in _ESTIMATORS:
        from cvxnn import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module 'cvxnn' has no attribute {name!r}")


__all__ = [
    "Certificate",
    "ConvergenceWarning",
    "ConvexReLUClassifier",
    "ConvexReLUClassifierCV",
    "ConvexReLURegressor",
    "ConvexReLURegressorCV",
    "DecompositionReport",
    "DecompositionWarning",
    "NumericalBreakdown",
    "Problem",
    "RegularizationPath",
    "Solution",
    "TwoLayerNetwork",
    "__version__",
    "build_problem",
    "certificate",
    "conv_gates",
    "decompose",
    "gaussian_gates",
    "installed_solvers",
    "lam_grid",
    "lam_max",
    "load",
    "network_from_weights",
    "regularization_path",
    "relu_twin",
    "save",
    "solve",
    "sparse_gates",
    "spectral_gates",
    "with_lam",
]
