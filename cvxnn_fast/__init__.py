"""Compiled solvers for the convex programs built by :mod:`cvxnn`.

``fast_solve(problem, ...)`` picks a method (``choose_method``) and runs it:

* :mod:`cvxnn_fast.fista`: restarted FISTA, gated ReLU at any n;
* :mod:`cvxnn_fast.augmented`: the augmented Lagrangian, ReLU at any n;
* :mod:`cvxnn_fast.interior`: the structured interior-point method, small n;
* :mod:`cvxnn_fast.common`: run monitor, result and finishing step they share.

Importing this package registers it as the ``"fast"`` backend of
``Problem.solve``. It depends on :mod:`cvxnn`, never the reverse.
"""

from cvxnn.solvers import register_backend
from cvxnn_fast.solve import DEFAULT_TOL, choose_method, fast_solve


def _solve(problem, _name, **options):
    return fast_solve(problem, **options)


# At this tolerance or looser, a first-order method warm-started from a nearby
# solution (a path's previous lam) takes a few iterations, while the interior
# point needs its ~5-10 Newton steps from any start: measured on
# scikit-learn's diabetes and linnerud, the warm-started path was 7-10x
# faster (docs/design/defaults.md).
LOOSE_TOL = 1e-3


def _warm_start_helps(problem, options):
    # The interior-point method starts from its own interior point; a warm
    # start switches "auto" to a first-order method, which pays at loose
    # tolerances only.
    method = options.get("method", "auto")
    if options.get("device") is not None or choose_method(problem, method) != \
            "interior_point":
        return True  # a device runs first-order methods (or Newton-CG) only
    if method == "auto" and not problem.formulation.has_cones:
        return True  # auto's bounded R-FISTA before the interior point takes it
    return method == "auto" and options.get("tol", DEFAULT_TOL) >= LOOSE_TOL


register_backend("fast", _solve, warm_start_helps=_warm_start_helps)

__all__ = ["choose_method", "fast_solve"]
