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
from cvxnn_fast.solve import choose_method, fast_solve


def _solve(problem, _name, **options):
    return fast_solve(problem, **options)


def _warm_start_helps(problem, options):
    # The interior-point method starts from its own interior point; a warm
    # start would switch it to a first-order method.
    return choose_method(problem, options.get("method", "auto")) != "interior_point"


register_backend("fast", _solve, warm_start_helps=_warm_start_helps)

__all__ = ["choose_method", "fast_solve"]
