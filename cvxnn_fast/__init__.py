"""Compiled solvers for the convex programs built by :mod:`cvxnn`.

``fast_solve(problem, ...)`` picks a method (``choose_method``) and runs it:

* :mod:`cvxnn_fast.fista`: restarted FISTA, gated ReLU at any n;
* :mod:`cvxnn_fast.augmented`: the augmented Lagrangian, ReLU at any n;
* :mod:`cvxnn_fast.interior`: the structured interior-point method, small n;
* :mod:`cvxnn_fast.common`: run monitor, result and finishing step they share.

Importing this package registers it as the ``"fast"`` backend of
``Problem.solve``. It depends on :mod:`cvxnn`, never the reverse.
"""

import inspect

import numpy as np

from cvxnn.core.certificates import has_duality_gap
from cvxnn.solvers import register_backend
from cvxnn_fast.solve import DEFAULT_TOL, FLOAT32_TOL, choose_method, fast_solve


def _solve(problem, _name, **options):
    return fast_solve(problem, **options)


def _warm_start_helps(problem, options):
    # The interior-point method starts from its own interior point. Gated
    # ReLU: auto runs a bounded R-FISTA from the warm start first, which
    # certifies a path's neighbouring lam in a few iterations (diabetes CV
    # 0.46 s -> 0.06 s). ReLU: the augmented Lagrangian from a warm start
    # rarely certified within its budget, so the interior point ran after
    # it anyway: cold interior points were faster on every CV fit measured
    # (breast cancer 2.84 s -> 1.77 s; docs/design/defaults.md). Gated
    # ReLU without a duality gap goes to the interior point warm or cold
    # (choose_method).
    method = options.get("method", "auto")
    if options.get("device") is not None or choose_method(problem, method) != \
            "interior_point":
        return True  # a device runs first-order methods (or Newton-CG) only
    return (method == "auto" and not problem.formulation.has_cones
            and has_duality_gap(problem))


# A loose solve of float64 data iterates in float32 (fast_solve's dtype; its
# weights certified in float64) where R-FISTA alone runs it: tol at least
# FLOAT32_TOL (float32's reach is ~1e-5), gated ReLU, no device, no dtype
# given, data below FLOAT32_RANGE, and a method choice of R-FISTA (the
# interior point's normal equations and Newton-CG are left in float64).
# Digits CV fit 0.50 s -> 0.33 s; raw Fashion-MNIST default fit 370 s ->
# 187 s (docs/design/defaults.md).
FLOAT32_RANGE = 1e15


def _working_dtype(problem, options):
    if (problem.dtype != np.float64 or problem.formulation.has_cones
            or options.get("device") is not None or options.get("dtype") is not None
            or options.get("tol", DEFAULT_TOL) < FLOAT32_TOL):
        return None
    try:
        if choose_method(problem, options.get("method", "auto")) != "fista":
            return None
    except ValueError:  # the solve will say why
        return None
    largest = max(float(np.max(np.abs(problem.X))), float(np.max(np.abs(problem.y))))
    return "float32" if largest < FLOAT32_RANGE else None


register_backend("fast", _solve, warm_start_helps=_warm_start_helps,
                 working_dtype=_working_dtype,
                 options=set(inspect.signature(fast_solve).parameters) - {"problem"})

__all__ = ["choose_method", "fast_solve"]
