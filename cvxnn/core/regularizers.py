r"""Regularizers R(U) of the weights ``U`` (n_outputs, P, d).

Each regularizer gives its value, the proximal operator of ``t * R``, its
CVXPY expression, and what the certificates need: the minimum-norm element of
``G + lam * dR(U)`` (the KKT residual) and the dual side
``inf_U <Z, U> + lam R(U)`` (minus the conjugate of ``lam R`` at ``-Z``).

* group_l1:          :math:`R(U) = \sum_{k,i} \|U_{k,i,:}\|_2` (one group per neuron)
* feature_group_l1:  :math:`R(U) = \sum_f \|U_{:,:,f}\|_2` (one group per feature)
* l1:                :math:`R(U) = \sum |U|` (groups of size one)
* l2:                :math:`R(U) = \tfrac12 \|U\|_F^2`
* none:              :math:`R(U) = 0`

The three norms share one implementation, :class:`GroupNorm`, that differs
only in the axes a group spans.
"""

import numpy as np

from cvxnn._optional import cvxpy as cp


class GroupNorm:
    """Sum of Euclidean norms of groups of U spanning ``axis``.

    ``axis=None`` makes every entry its own group (the l1 norm).
    """

    is_norm = True

    def __init__(self, name, code, axis, cvxpy_axis):
        self.name = name
        self.code = code
        self.axis = axis
        self.cvxpy_axis = cvxpy_axis

    def group_norms(self, U):
        if self.axis is None:
            return np.abs(U)
        return np.sqrt(np.sum(U * U, axis=self.axis, keepdims=True))

    def value(self, U):
        return float(np.sum(self.group_norms(U)))

    def dual_norm(self, Z):
        return float(np.max(self.group_norms(Z), initial=0.0))

    def prox(self, U, t):
        norms = self.group_norms(U)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > t, 1.0 - t / norms, 0.0)
        return (U * scale).astype(U.dtype, copy=False)

    def subgradient_residual(self, G, U, lam):
        """Minimum-norm element of ``G + lam * dR(U)``."""
        u_norms = self.group_norms(U)
        g_norms = self.group_norms(G)
        with np.errstate(divide="ignore", invalid="ignore"):
            on = G + lam * np.where(u_norms > 0, U / u_norms, 0.0)
            off = G * np.where(g_norms > lam, 1.0 - lam / g_norms, 0.0)
        return np.where(u_norms > 0, on, off)

    def dual_value(self, Z, lam):
        """``inf_U <Z, U> + lam R(U)``: 0 if dual_norm(Z) <= lam, else -inf."""
        return 0.0 if self.dual_norm(Z) <= lam * (1 + 1e-9) else -np.inf

    def cvxpy(self, Ucols):
        """Ucols is the (d, n_outputs * P) CVXPY matrix whose columns are neurons."""
        if self.cvxpy_axis is None:
            return cp.sum(cp.abs(Ucols))
        return cp.sum(cp.norm(Ucols, 2, axis=self.cvxpy_axis))


class SquaredL2:
    """Ridge penalty ``0.5 * ||U||_F^2``."""

    name = "l2"
    code = 3
    is_norm = False

    def value(self, U):
        return 0.5 * float(np.sum(U * U))

    def prox(self, U, t):
        return (U / (1.0 + t)).astype(U.dtype, copy=False)

    def subgradient_residual(self, G, U, lam):
        return G + lam * U

    def dual_value(self, Z, lam):
        """``inf_U <Z, U> + lam/2 ||U||^2 = -||Z||^2 / (2 lam)``."""
        if lam <= 0:
            return 0.0 if not np.any(Z) else -np.inf
        return -float(np.sum(Z * Z)) / (2.0 * lam)

    def cvxpy(self, Ucols):
        return 0.5 * cp.sum_squares(Ucols)


class NoRegularizer:
    """No penalty (also what any regularizer becomes with lam = 0)."""

    name = None
    code = 4
    is_norm = False

    def value(self, U):
        return 0.0

    def prox(self, U, t):
        return U

    def subgradient_residual(self, G, U, lam):
        return G

    def dual_value(self, Z, lam):
        return 0.0 if not np.any(Z) else -np.inf

    def cvxpy(self, Ucols):
        return cp.Constant(0.0)


REGULARIZERS = {
    "group_l1": GroupNorm("group_l1", 0, axis=2, cvxpy_axis=0),
    "feature_group_l1": GroupNorm("feature_group_l1", 1, axis=(0, 1), cvxpy_axis=1),
    "l1": GroupNorm("l1", 2, axis=None, cvxpy_axis=None),
    "l2": SquaredL2(),
    None: NoRegularizer(),
}
