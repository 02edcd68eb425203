r"""The Newton systems of the interior-point method, never formed.

Both formulations' systems are a block-diagonal matrix ``H`` (one block per
neuron: the barrier terms) plus the data fit's ``A^T diag(h) A / n`` (``h``:
the loss curvature in the predictions, 1 for squared), which has rank n. The
Woodbury identity leaves one n x n system per output,

.. math:: K = n I + h^{1/2} A Q A^\top h^{1/2}, \qquad Q = H^{-1},

whose Cholesky factor, with ``Q``, solves the system; iterative refinement
against the unregularized matrix removes the rounding (:meth:`_System.solve`).
What differs is ``H`` and how ``A Q A^T = sum_i D_i X Q_i X^T D_i`` is formed:

* ReLU (:class:`ReluSystem`): the cone constraints give each block
  ``X^T diag(z / s) X`` (one GEMM for all blocks), plus the second-order
  cone's ``W^{-2}``; blocks are inverted through their Cholesky factors
  (:mod:`cvxnn_fast.interior._blocks`), and ``A Q A^T`` is one GEMM of
  ``n x n x P d`` per output (V's and W's blocks of a pattern share
  ``D_i X`` up to sign, so their ``Q`` are summed first).
* gated ReLU (:class:`GatedSystem`): no cone constraints, so a block is the
  second-order cone's ``W^{-2}`` alone (group_l1) or ``lam I`` (l2), and
  its inverse's u-part is ``eta^2 (I + 2 w_1 w_1^T)``, a multiple of the
  identity plus rank one. Then

  .. math::
      A Q A^\top = (X X^\top) \circ (D\, \mathrm{diag}(\eta^2) D^\top)
          + V \mathrm{diag}(2 \eta^2) V^\top, \qquad v_i = D_i X w_{1,i},

  two GEMMs of ``n x n x P`` instead of ``n x n x P d``: d times cheaper.

Blocks are the rows of ``x`` (B, o + d): ``[t_b, u_b]`` with ``o = 1`` for
group_l1 (the cone's scalar), ``o = 0`` otherwise.
"""

import numpy as np
import scipy.linalg as sla

from cvxnn.core import operator
from cvxnn_fast.interior import _blocks, conic

# Static regularization of the ReLU block factors, relative to each block's
# largest diagonal entry (refinement removes its bias).
REGULARIZATION = 1e-13
REFINE_MAX, REFINE_TOL = 4, 1e-14


class _System:
    """What both systems share: data, loss terms, the Woodbury solve."""

    def __init__(self, problem, n_blocks):
        self.X = np.ascontiguousarray(problem.X, dtype=np.float64)
        self.D = problem.patterns
        self.Y = problem.y.astype(np.float64)
        self.n, self.d = self.X.shape
        self.c, self.P, _ = problem.weight_shape
        self.n_blocks = n_blocks
        self.lam = float(problem.lam)
        self.loss = problem.loss
        self.root_h = None  # sqrt of the loss curvature (None: squared, all 1)
        reg = problem.regularizer.name if problem.lam > 0 else None
        self.soc = reg == "group_l1"
        self.ridge = self.lam if reg == "l2" else 0.0
        self.offset = 1 if self.soc else 0  # column of t in a block's variables

    def gradient(self, Yhat):
        """Data-fit gradient ``A^T grad loss / n`` per block, (B, d)."""
        return self.adjoint(self.loss.gradient(Yhat, self.Y)) / self.n

    def data_fit(self, Yhat):
        return self.loss.value(Yhat, self.Y) / self.n

    def _curvature(self, Yhat):
        if self.loss.name != "squared":
            self.root_h = np.sqrt(self.loss.curvature(Yhat, self.Y))

    def _cholesky(self, K):
        K.flat[:: self.n + 1] += self.n
        return sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)

    def _solve_once(self, b):
        o = self.offset
        y = self._apply_Q(b)
        Ay = self.predict(y[:, o:])
        if self.root_h is not None:
            Ay *= self.root_h
        S = np.column_stack([sla.cho_solve(K, Ay[:, k], check_finite=False)
                             for k, K in enumerate(self.K)])
        if self.root_h is not None:
            S *= self.root_h
        correction = np.zeros_like(b)
        correction[:, o:] = self.adjoint(S)
        return y - self._apply_Q(correction)

    def _matvec(self, x):
        o = self.offset
        out = self._apply_H(x)
        Ax = self.predict(x[:, o:])
        if self.root_h is not None:
            Ax *= self.root_h**2
        out[:, o:] += self.adjoint(Ax) / self.n
        return out

    def solve(self, b, rtol=REFINE_TOL):
        """Solve the factored system for b (B, o + d): [t-part, u-part].

        Iterative refinement against the unregularized matrix, up to
        REFINE_MAX rounds, until the residual is below ``rtol ||b||`` or
        stops halving. Near the solution the system's condition number passes
        1e12 and the rounds matter.
        """
        x = self._solve_once(b)
        size, previous = np.linalg.norm(b), np.inf
        for _ in range(REFINE_MAX):
            r = b - self._matvec(x)
            residual = np.linalg.norm(r)
            if residual <= rtol * size or residual > 0.5 * previous:
                break
            x += self._solve_once(r)
            previous = residual
        return x


class ReluSystem(_System):
    """Blocks: V's ``n_outputs * P`` rows, then W's; cone constraints per block."""

    def __init__(self, problem):
        c, P, _ = problem.weight_shape
        super().__init__(problem, 2 * c * P)
        self.half = c * P
        self.n_cone_rows = self.n  # cone constraints per block
        signs = (2.0 * self.D - 1.0).T  # (P, n)
        self.signs = np.ascontiguousarray(np.tile(signs, (2 * self.c, 1)))
        d = self.d
        self.outer = (self.X[:, :, None] * self.X[:, None, :]).reshape(self.n, d * d)
        self.mask = self.D[:, :, None].astype(np.float64)

    def predict(self, u):
        U = (u[: self.half] - u[self.half:]).reshape(self.c, self.P, self.d)
        return operator.predict(self.X, self.D, U)

    def adjoint(self, R):
        G = operator.adjoint(self.X, self.D, R).reshape(self.half, self.d)
        return np.concatenate([G, -G])

    def cone(self, u):
        return (u @ self.X.T) * self.signs

    def cone_adjoint(self, z):
        return (z * self.signs) @ self.X

    def factor(self, w_lin, scaling, Yhat):
        """Factor for orthant weights z/s, the cones' NT scaling (group_l1) and
        the loss curvature at the predictions Yhat."""
        self._curvature(Yhat)
        d, o = self.d, self.offset
        H = np.zeros((self.n_blocks, d + o, d + o))
        H[:, o:, o:] = (w_lin @ self.outer).reshape(-1, d, d)
        if self.soc:
            H += scaling.inverse_squared()
        if self.ridge:
            H[:, o:, o:] += self.ridge * np.eye(d)
        self.H = H
        reg = H.copy()
        diag = np.einsum("bii->bi", reg)
        diag += REGULARIZATION * diag.max(axis=1, keepdims=True) + 1e-300
        failed = _blocks.spd_inverse(reg)
        if failed >= 0:
            raise np.linalg.LinAlgError(
                f"block {failed} of the Newton system is not positive definite")
        self.Q = reg
        Q_uu = reg[:, o:, o:]
        R = np.linalg.cholesky(Q_uu[: self.half] + Q_uu[self.half:])
        self.K = [self._woodbury(R[k * self.P:(k + 1) * self.P], k)
                  for k in range(self.c)]

    def _woodbury(self, R, k):
        """Cholesky of ``n I + h^(1/2) sum_i D_i X R_i R_i^T X^T D_i h^(1/2)``
        for output k."""
        n, P, d = self.n, self.P, self.d
        M = (self.X @ R.transpose(1, 0, 2).reshape(d, P * d)).reshape(n, P, d)
        M *= (self.mask if self.root_h is None
              else self.mask * self.root_h[:, k, None, None])
        M = M.reshape(n, P * d)
        return self._cholesky(M @ M.T)

    def _apply_Q(self, b):
        return conic.apply(self.Q, b)

    def _apply_H(self, x):
        return conic.apply(self.H, x)


class GatedSystem(_System):
    """Blocks: the ``n_outputs * P`` rows of U; no cone constraints."""

    def __init__(self, problem):
        c, P, _ = problem.weight_shape
        super().__init__(problem, c * P)
        self.n_cone_rows = 0
        self.D_float = self.D.astype(np.float64)
        self.gram = self.X @ self.X.T
        self.scaling = None

    def predict(self, u):
        return operator.predict(self.X, self.D, u.reshape(self.c, self.P, self.d))

    def adjoint(self, R):
        return operator.adjoint(self.X, self.D, R).reshape(self.n_blocks, self.d)

    def cone(self, u):
        return np.zeros((len(u), 0))

    def cone_adjoint(self, z):
        return np.zeros((len(z), self.d))

    def factor(self, w_lin, scaling, Yhat):
        """Factor for the cones' NT scaling (group_l1) or the ridge (l2), and
        the loss curvature at the predictions Yhat (w_lin is empty)."""
        self._curvature(Yhat)
        self.scaling = scaling
        P = self.P
        if self.soc:
            eta2 = (scaling.eta**2).reshape(self.c, P)
            w1 = scaling.w[:, 1:].reshape(self.c, P, self.d)
        else:
            eta2 = np.full((self.c, P), 1.0 / self.ridge)
        self.K = []
        for k in range(self.c):
            # F @ F.T with one operand: NumPy hands it to SYRK (half a GEMM).
            F = self.D_float * np.sqrt(eta2[k])
            K = F @ F.T
            K *= self.gram
            if self.soc:
                F = (self.X @ w1[k].T) * self.D_float  # v_i = D_i X w_1,i
                F *= np.sqrt(2.0 * eta2[k])
                K += F @ F.T
            if self.root_h is not None:
                K *= self.root_h[:, k, None] * self.root_h[None, :, k]
            self.K.append(self._cholesky(K))

    def _apply_Q(self, b):
        if self.soc:
            return self.scaling.apply_squared(b)
        return b / self.ridge

    def _apply_H(self, x):
        if self.soc:
            return self.scaling.apply_inverse_squared(x)
        return self.ridge * x
