r"""The smallest ``lam`` whose solution is zero, for the ReLU program.

With ``G = grad f(0)`` (the data-fit gradient at zero, shape
(n_outputs, P, d)) and the cone map ``C(V)[j, k, i] = (2 D_ji - 1) X_j v_{k,i}``,
``V = W = 0`` solves the ReLU program iff there are multipliers
``Lambda, M >= 0`` with

.. math:: R^\circ(G - C^\top \Lambda) \le \lambda, \qquad
          R^\circ(-G - C^\top M) \le \lambda

(stationarity of the Lagrangian at zero, ``R°`` the dual norm). Hence

.. math:: \lambda_{\max} = \max_{\sigma = \pm 1}\ \min_{\Lambda \ge 0}
          R^\circ(\sigma G - C^\top \Lambda),

which is never above the gated ReLU value ``R°(G)`` (take ``Lambda = 0``).

* group_l1: ``R°`` is the largest block norm and the block ``(k, i)`` only
  sees its own multipliers, so each term is a non-negative least-squares
  problem :math:`\min_{\lambda \ge 0} \|\sigma g_{k,i} - X^\top (s_i \circ
  \lambda)\|_2` (``s_i = 2 D_i - 1``), solved exactly by
  :func:`scipy.optimize.nnls` (``method="nnls"``).
* l1 and feature_group_l1 (and group_l1 with ``method="cvxpy"``): one conic
  program per sign with CVXPY.
"""

import numpy as np
from scipy.optimize import nnls

from cvxnn._optional import cvxpy as cp
from cvxnn.core.cvxpy_solvers import check_solver
from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE
from cvxnn.core.validation import check_choice

METHODS = ("auto", "nnls", "cvxpy")


def _check_norm(problem):
    reg = problem.regularizer
    if not reg.is_norm:
        raise ValueError(
            f"regularizer: lam_max exists only for norms (group_l1, "
            f"feature_group_l1, l1), not {reg.name!r}."
        )
    return reg


def _nnls_lam_max(problem):
    """Group_l1: the largest NNLS residual over blocks and both signs.

    A block's residual is at most ``||g_{k,i}||`` (take lambda = 0), so blocks
    are visited by decreasing gradient norm and the scan stops once no block
    left can beat the largest residual found.
    """
    X = problem.X.astype(np.float64)
    G = problem.gradient_at_zero.astype(np.float64)
    norms = np.linalg.norm(G, axis=2)
    worst = 0.0
    for flat in np.argsort(-norms, axis=None):
        k, i = np.unravel_index(flat, norms.shape)
        if norms[k, i] <= worst:
            break
        A = ((2.0 * problem.patterns[:, i] - 1.0)[:, None] * X).T  # (d, n)
        for sign in (1.0, -1.0):
            worst = max(worst, nnls(A, sign * G[k, i], maxiter=20 * A.shape[1])[1])
    return float(worst)


def _dual_norm_expression(name, Z):
    """R°(Z) for Z (n_outputs * P, d) as a CVXPY expression (rows are neurons)."""
    if name == "group_l1":
        return cp.max(cp.norm(Z, 2, axis=1))
    if name == "feature_group_l1":
        return cp.max(cp.norm(Z, 2, axis=0))
    return cp.max(cp.abs(Z))


def _cvxpy_lam_max(problem, solver, options):
    """The two conic programs ``min_{Lambda >= 0} R°(sigma G - C^T Lambda)``."""
    X = problem.X.astype(np.float64)
    c, P, d = problem.weight_shape
    G = problem.gradient_at_zero.astype(np.float64).reshape(c * P, d)
    S = np.tile(2.0 * problem.patterns - 1.0, (1, c))  # (n, c * P), column k * P + i
    values = []
    for sign in (1.0, -1.0):
        Lam = cp.Variable((problem.n_samples, c * P), nonneg=True)
        Z = sign * G - cp.multiply(S, Lam).T @ X
        program = cp.Problem(cp.Minimize(
            _dual_norm_expression(problem.regularizer.name, Z)))
        program.solve(solver=solver, **options)
        if program.status not in (OPTIMAL, OPTIMAL_INACCURATE):
            raise RuntimeError(f"lam_max: {solver} returned status "
                               f"{program.status!r} on the multiplier program.")
        values.append(float(program.value))
    return max(values)


def relu_lam_max(problem, method="auto", solver="CLARABEL", **options):
    """Smallest lam for which V = W = 0 solves the ReLU program.

    Parameters
    ----------
    problem : a relu :class:`~cvxnn.core.problem.Problem` (the formulation is not
        checked: the value is that of the ReLU program on the problem's data
        and patterns).
    method : ``"auto"`` (NNLS for group_l1, CVXPY otherwise), ``"nnls"``
        (group_l1 only) or ``"cvxpy"``.
    solver : CVXPY solver for the conic programs; ``**options`` go to it.

    Returns
    -------
    float
    """
    reg = _check_norm(problem)
    check_choice(method, "method", METHODS)
    if method == "nnls" and reg.name != "group_l1":
        raise ValueError(f"method: 'nnls' computes lam_max for group_l1 only, not "
                         f"{reg.name!r}; use 'cvxpy' or 'auto'.")
    if method == "cvxpy" or (method == "auto" and reg.name != "group_l1"):
        return _cvxpy_lam_max(problem, check_solver(solver, options), options)
    return _nnls_lam_max(problem)
