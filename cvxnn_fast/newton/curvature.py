r"""Second-order pieces of the Newton-CG method: the loss's Hessian in
prediction space, the penalty's curvature on the free groups, and the
Kronecker-factored preconditioner of the data term.

For the gated program ``f(U) = (1/n) sum_j loss(A U)_j`` the Hessian is
``H = (1/n) A^T W A`` with ``W`` the loss's per-sample Hessian (identity for
squared, ``diag(p (1 - p))`` for logistic, ``diag(p) - p p^T`` for
cross-entropy at ``p = softmax``). A product ``H V`` costs one forward and
one adjoint masked product (two GEMMs in row blocks), as one gradient does.

Preconditioner (per output k, K-FAC style): the block of neurons i, l is

.. math:: H_{k,il} = \frac1n \sum_j h_{jk} D_{ji} D_{jl}\, x_j x_j^T
          \approx C^{(k)}_{il}\, \Sigma,\qquad
          C^{(k)}_{il} = \frac1n\sum_j h_{jk} D_{ji} D_{jl},\
          \Sigma = \frac1n X^T X,

with ``h_{jk}`` the diagonal of the loss Hessian. ``C^{(k)} \otimes \Sigma
+ \delta I`` is inverted through the eigendecompositions of the P x P and
d x d factors: one application costs ``O(c (P^2 d + P d^2))``, nothing next
to a Hessian product. Both factors come from a seeded row subsample. Where
``Sigma`` or ``C`` is singular (a zero or duplicated column of X, duplicated
patterns) and the shift is zero, its eigenvalues are floored at
``EIGEN_FLOOR`` times the largest, so the preconditioner stays positive
definite.
"""

import numpy as np
from scipy.special import expit, softmax

# Rows of the subsample the preconditioner's factors are estimated on.
SUBSAMPLE_ROWS = 20_000
# The preconditioner's eigenvalues are at least this times the largest
# (sqrt of float64 eps): its condition number is at most 1 / EIGEN_FLOOR.
EIGEN_FLOOR = float(np.sqrt(np.finfo(np.float64).eps))


def loss_hessian(loss, Yhat, Y):
    """``(apply, diagonal)``: ``apply(Z)`` multiplies the per-sample loss
    Hessian into prediction directions Z (n, c); ``diagonal`` is its
    diagonal (n, c)."""
    if loss.name == "squared":
        return (lambda Z: Z), np.ones_like(Yhat)
    if loss.name == "logistic":
        p = expit(-Y * Yhat)
        h = p * (1.0 - p)
        return (lambda Z: h * Z), h
    if loss.name == "cross_entropy":
        p = softmax(Yhat, axis=1)

        def apply(Z):
            return p * (Z - np.sum(p * Z, axis=1, keepdims=True))
        return apply, p * (1.0 - p)
    raise ValueError(f"no Hessian for loss {loss.name!r}")


class Penalty:
    """The regularizer's pieces on groups: pseudo-gradient, curvature and
    the orthant projection of the group-wise OWL-QN step (see the design
    note). Norms (group_l1, feature_group_l1, l1) are nonsmooth at zero
    groups; l2 and no penalty are smooth."""

    def __init__(self, problem):
        self.reg, self.lam = problem.regularizer, problem.lam
        self.is_norm = bool(self.reg.is_norm) and self.lam > 0
        self.smooth_l2 = self.reg.name == "l2" and self.lam > 0
        self.axis = getattr(self.reg, "axis", None)

    def group_dot(self, A, B):
        if self.axis is None:
            return A * B
        return np.sum(A * B, axis=self.axis, keepdims=True)

    def norms(self, U):
        return self.reg.group_norms(U)

    def pseudo_gradient(self, G, U):
        """Minimum-norm element of ``G + lam dR(U)`` and the free mask
        (nonzero groups, and zero groups whose gradient exceeds lam)."""
        if not (self.is_norm or self.smooth_l2):
            return G.copy(), np.ones(U.shape, bool)
        r = self.reg.subgradient_residual(G, U, self.lam)
        if self.smooth_l2:
            return r, np.ones(U.shape, bool)
        free = np.broadcast_to(
            (self.norms(U) > 0) | (self.norms(r) > 0), U.shape)
        return r, np.ascontiguousarray(free)

    def curvature(self, U):
        """Function ``V -> lam d^2R(U) V`` on the free groups."""
        if self.smooth_l2:
            return lambda V: self.lam * V
        if not self.is_norm or self.axis is None:
            return lambda V: 0.0 * V
        norms = self.norms(U)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(norms > 0, 1.0 / norms, 0.0)
        unit = U * inv
        scale = self.lam * inv

        def apply(V):
            return scale * (V - unit * self.group_dot(unit, V))
        return apply

    def orthant(self, U, r):
        """Directions ``xi`` that trial groups must keep a positive inner
        product with (their sign pattern): ``U / |U|`` on nonzero groups,
        ``-r / |r|`` on entering ones."""
        if not self.is_norm:
            return None
        un, rn = self.norms(U), self.norms(r)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(un > 0, U / un, np.where(rn > 0, -r / rn, 0.0))

    def project(self, T, xi):
        """Zero the groups of T that left their orthant; (T, any zeroed)."""
        if xi is None:
            return T, False
        out = self.group_dot(T, xi) <= 0
        nonzero = self.norms(T) > 0
        drop = out & nonzero
        if not drop.any():
            return T, False
        return np.where(drop, 0.0, T).astype(T.dtype, copy=False), True


def inverse_eigenvalues(denom):
    """Inverses of the preconditioner's eigenvalues ``a_i b_j + delta``
    (P, d), each floored at ``EIGEN_FLOOR`` times the largest (all ones where
    all are zero); cost O(P d). A floor, not a pseudo-inverse: CG needs a
    positive definite preconditioner, and the floor changes only the null
    directions of a singular ``C (x) Sigma``, where ``1 / 0`` would be."""
    top = float(denom.max()) if denom.size else 0.0
    if not top > 0:
        return np.ones_like(denom)
    return 1.0 / np.maximum(denom, EIGEN_FLOOR * top)


class Kronecker:
    """Inverse of ``C^{(k)} \\otimes Sigma + delta I`` per output, restricted
    to the neurons free in that output (see the module docstring)."""

    def __init__(self, X, D, random_state=0, rows=SUBSAMPLE_ROWS):
        n = X.shape[0]
        if n > rows:
            rng = np.random.default_rng(random_state)
            self.rows = np.sort(rng.choice(n, rows, replace=False))
            Xs, Ds = X[self.rows], D[self.rows]
        else:
            self.rows, Xs, Ds = None, X, D
        Xs = np.asarray(Xs, np.float64)
        self.D = np.asarray(Ds, np.float64)
        # Rows of the subsample over all processes (sharded subclass: summed).
        self.m = self._sum(np.array(float(Xs.shape[0])))
        self.b, self.Qs = np.linalg.eigh(self._sum(Xs.T @ Xs) / self.m)
        self.b = np.maximum(self.b, 0.0)
        self.factors = []

    def _sum(self, array):
        """Sum over the processes holding the rows (here: one)."""
        return array

    def scale(self, h):
        """Mean diagonal entry of the preconditioner's data term."""
        hs = h if self.rows is None else h[self.rows]
        diag_c = float(self._sum(np.sum(hs.mean(axis=1) * self.D.mean(axis=1)))
                       / self.m)
        return diag_c * float(np.mean(self.b))

    def update(self, h, free_neurons, delta):
        """Factor the preconditioner for loss-Hessian diagonal ``h`` (n, c),
        free neurons (c, P) bool and shifts ``delta`` (c,)."""
        hs = h if self.rows is None else h[self.rows]
        self.factors = []
        for k in range(h.shape[1]):
            idx = np.flatnonzero(free_neurons[k])
            Dk = self.D[:, idx]
            C = self._sum((Dk * hs[:, k:k + 1]).T @ Dk) / self.m
            a, Qc = np.linalg.eigh(C)
            a = np.maximum(a, 0.0)
            denom = np.outer(a, self.b) + delta[k]
            self.factors.append((idx, Qc, inverse_eigenvalues(denom)))

    def apply(self, R):
        """Preconditioned residual ``M^{-1} R`` for R (c, P, d)."""
        out = np.zeros(R.shape, np.float64)
        for k, (idx, Qc, inv) in enumerate(self.factors):
            if idx.size == 0:
                continue
            T = Qc.T @ (R[k, idx].astype(np.float64) @ self.Qs)
            out[k, idx] = Qc @ (T * inv) @ self.Qs.T
        return out.astype(R.dtype, copy=False)
