r"""scikit-learn estimators that train two-layer ReLU networks to global optimality.

:class:`ConvexReLURegressor` and :class:`ConvexReLUClassifier` build the convex
program of :func:`cvxnn.build_problem` from ``(X, y)``, solve it and keep the
equivalent non-convex network for prediction. For a gated ReLU model the
network is

.. math:: h(x) = \sum_m 1[\tilde x^\top g_m > 0]\,(\tilde x^\top W_{1,m})\,W_{2,:m},

with :math:`\tilde x = (x, 1)` when ``bias=True``; for ReLU the gate is
replaced by :math:`\max(\tilde x^\top W_{1,m}, 0)`. The fitted objective is

.. math:: \frac1n \sum_j \ell(h(x_j), y_j) + \lambda R(U),

and ``certificate_`` bounds how far it is from the global minimum.

Gate families
-------------
The ``gates`` parameter names a family in :data:`GATE_FAMILIES` (``"gaussian"``
by default), or is a callable with the same signature, or a fixed
``(d, n_gates)`` array. A family is a function
``sampler(X, n_gates, random_state, **gate_options) -> (d, n_gates) array``
where ``X`` is the training data as the problem uses it (bias column appended
when ``bias=True``, so ``d = X.shape[1]``) and ``random_state`` a
``numpy.random.Generator``. New families plug in by name with
:func:`register_gate_family`. Built in: ``"gaussian"`` (dense i.i.d. normal,
the default), ``"sparse"`` (``order`` features per gate: interactions),
``"conv"`` (random image patches: pass the image shape), ``"spectral"``
(orthogonal frames in the data's whitened principal coordinates: the
choice for correlated features such as images or PCA outputs; see
:func:`cvxnn.spectral_gates`).

Choosing lam, and what you get
------------------------------
``ConvexReLUClassifierCV`` / ``ConvexReLURegressorCV`` choose lam on a
warm-started validation path and return the **certified optimum** at the
chosen lam. ``early_stopping=True`` in the plain estimators returns instead
the **iterate of best validation score** at the given lam, with its own
(usually unmet) certificate. The helpers live in :mod:`cvxnn.estimators.selection`.
"""

from cvxnn.estimators.base import (
    GATE_FAMILIES,
    default_solver,
    expected_failed_checks,
    fast_available,
    register_gate_family,
    resolve_solver,
)
from cvxnn.estimators.cv import ConvexReLUClassifierCV, ConvexReLURegressorCV
from cvxnn.estimators.models import ConvexReLUClassifier, ConvexReLURegressor

__all__ = ["GATE_FAMILIES", "ConvexReLUClassifier", "ConvexReLUClassifierCV",
           "ConvexReLURegressor", "ConvexReLURegressorCV", "default_solver",
           "expected_failed_checks", "fast_available", "register_gate_family",
           "resolve_solver"]
