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

Where the data's weights are fewer than the samples (P d << n) the dense
blocks' systems (ReLU; gated ReLU with l1) are solved in weight space
instead (:func:`use_weight_space`): the same Woodbury identity with the
Cholesky root ``F`` of ``A^T diag(h) A / n`` (P d x P d, formed once for
squared loss) in place of ``h^{1/2} A / sqrt(n)``, so a step costs
``O(c (P d)^3)`` instead of ``O(c n^2 P d + c n^3)``, whatever n is.

Blocks are the rows of ``x`` (B, o + d): ``[t_b, u_b]`` with ``o = 1`` for
group_l1 (the cone's scalar), ``o = d`` for l1 (one t per entry), ``o = 0``
otherwise. Three cases leave that pattern:

* l1 and feature_group_l1 blocks are not a multiple of the identity plus
  rank one, so gated ReLU takes the dense-block path too (``_DenseGated``).
  l1's t is eliminated per entry before the factorization (a diagonal term,
  :meth:`_System.l1_diagonal`); feature_group_l1's cone scalars are
  eliminated too, leaving a diagonal term and one rank-one term per cone
  (``G``), which join the data fit's in one capacitance matrix
  ``[[K, U^T Q G], [G^T Q U, G^T Q G - I]]`` (LU-factored).
* Cross-entropy's Hessian in the predictions couples a sample's outputs:
  ``diag(p) - p p^T = L L^T`` with ``L = (I - p 1^T) diag(sqrt p)``, and the
  Woodbury matrix is one ``n c x n c`` matrix ``n I + L^T blockdiag(M_k) L``.
"""

import numpy as np
import scipy.linalg as sla

from cvxnn.core import operator
from cvxnn_fast.interior import _blocks, conic

# Static regularization of the ReLU block factors, relative to each block's
# largest diagonal entry (refinement removes its bias).
REGULARIZATION = 1e-13
REFINE_MAX, REFINE_TOL = 4, 1e-14
# Gated ReLU without a penalty has no barrier term in its blocks: their
# matrix is PROX I instead (a proximal, Levenberg-Marquardt damping of the
# Newton step; the data are equilibrated first, cvxnn_fast.interior.reduction).
PROX = 1e-8
# Row chunks of the blocks' outer products x_j x_j^T and of the weight-space
# Gram matrix hold at most this many entries (32 MB).
OUTER_MAX_ENTRIES = 2**22


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
        self.l1 = reg == "l1"  # |u_f| <= t_f as orthant rows t - u, t + u >= 0
        # feature_group_l1: one cone (t_f, u_{., f}) per feature (and, ReLU,
        # per block V / W); t is eliminated, leaving a diagonal term in the
        # blocks and one rank-one term per cone (``G``, in the Woodbury step).
        self.fgl1 = reg == "feature_group_l1"
        self.cones = self.soc or self.fgl1
        self.G = None  # (n_cones, B, d) rank-one terms of the fgl1 cones
        self.ridge = self.lam if reg == "l2" else 0.0
        gated = not problem.formulation.has_cones
        self.prox = PROX if gated and reg is None else 0.0
        # Columns of t in a block's variables: 1 (group_l1), d (l1), else 0.
        self.offset = 1 if self.soc else (self.d if self.l1 else 0)
        # Columns of t in the factored blocks: l1's t is eliminated first
        # (:meth:`solve`), leaving a diagonal term per entry.
        self.block_offset = 1 if self.soc else 0
        self.l1_w = None  # (w_minus, w_plus) orthant weights of the l1 rows
        # Cross-entropy couples the outputs of a sample: one (n c) system.
        self.coupled = problem.loss.name == "cross_entropy"
        self.dense_K = self.coupled or self.fgl1  # one (n c [+ cones]) factor
        self.root_L = None  # (n, c, c) roots of the cross-entropy Hessians
        self.n_data_rows = 0  # orthant rows of the data cones (ReLU: n)
        self.weight_space = False  # P d x P d solves (dense blocks only)

    @property
    def n_cone_rows(self):
        """Orthant rows per block: data cones, then the l1 rows."""
        return self.n_data_rows + (2 * self.d if self.l1 else 0)

    def gather(self, u):
        """The fgl1 cones' vector parts (n_cones, blocks per cone) of u (B, d):
        feature f of every block (ReLU: of V's blocks, then of W's)."""
        halves = 2 if self.n_blocks == 2 * self.c * self.P else 1
        return u.reshape(halves, -1, self.d).transpose(0, 2, 1).reshape(
            halves * self.d, -1)

    def scatter(self, v):
        """Transpose of :meth:`gather`: (n_cones, blocks per cone) -> (B, d)."""
        halves = len(v) // self.d
        return v.reshape(halves, self.d, -1).transpose(0, 2, 1).reshape(-1, self.d)

    def fgl1_terms(self, scaling):
        """(diagonal (B, d), rank-one columns G (n_cones, B, d)) of the fgl1
        cones' NT term with t eliminated: ``eta^-2 (I - 2 w1 w1^T /
        (2 w0^2 - 1))`` on each cone's entries."""
        eta2, w = scaling.eta**2, scaling.w
        diag = self.scatter(np.broadcast_to((1.0 / eta2)[:, None],
                                            (len(w), w.shape[1] - 1)))
        coef = np.sqrt(2.0 / (2.0 * w[:, 0] ** 2 - 1.0)) / np.sqrt(eta2)
        cols = coef[:, None] * w[:, 1:]
        G = np.zeros((len(w), self.n_blocks, self.d))
        for a in range(len(w)):
            one = np.zeros_like(cols)
            one[a] = cols[a]
            G[a] = self.scatter(one)
        return diag, G

    def l1_rows(self, x):
        """``[t - u, t + u]`` per block (B, 2d)."""
        d = self.d
        return np.concatenate([x[:, :d] - x[:, d:], x[:, :d] + x[:, d:]], axis=1)

    def l1_adjoint(self, z):
        """Transpose of :meth:`l1_rows`: (B, 2d) -> (B, 2d) = [t-part, u-part]."""
        d = self.d
        return np.concatenate([z[:, :d] + z[:, d:], z[:, d:] - z[:, :d]], axis=1)

    def l1_diagonal(self, w):
        """The l1 rows' term in the u-part once t is eliminated, (B, d).

        Per entry the rows ``t - u, t + u >= 0`` with weights ``w-, w+`` give
        ``[[w- + w+, w+ - w-], [w+ - w-, w- + w+]]`` in (t, u); its Schur
        complement on u is ``4 w- w+ / (w- + w+)``. Forming the 2 x 2 block
        instead loses everything to rounding once one weight is 1e30 times
        the other (an active entry late in a solve).
        """
        d = self.d
        self.l1_w = (w[:, :d], w[:, d:])
        w_minus, w_plus = self.l1_w
        return 4.0 * w_minus * w_plus / (w_minus + w_plus)

    def gradient(self, Yhat):
        """Data-fit gradient ``A^T grad loss / n`` per block, (B, d)."""
        return self.adjoint(self.loss.gradient(Yhat, self.Y)) / self.n

    def data_fit(self, Yhat):
        return self.loss.value(Yhat, self.Y) / self.n

    def _curvature(self, Yhat):
        """Loss curvature at Yhat: ``root_h`` (diagonal losses) or, for the
        dense capacitance, ``root_L[j] = (I - p 1^T) diag(q)``, a root of the
        sample's Hessian: ``q = sqrt(p)``, p the softmax of Yhat[j], for
        cross-entropy (``diag(p) - p p^T``); ``p = 0, q = sqrt(h)`` for a
        diagonal loss. ``root_pq`` keeps (p or None, q) for the capacitance."""
        if self.dense_K and not self.coupled:
            h = (np.ones_like(Yhat) if self.loss.name == "squared"
                 else self.loss.curvature(Yhat, self.Y))
            q = np.sqrt(h)
            self.root_pq = (None, q)
            self.root_L = q[:, :, None] * np.eye(self.c)
        elif self.coupled:
            p = self.loss.gradient(Yhat, self.Y) + self.Y
            q = np.sqrt(np.maximum(p, 0.0))
            L = -p[:, :, None] * q[:, None, :]
            idx = np.arange(self.c)
            L[:, idx, idx] += q
            self.root_pq = (p, q)
            self.root_L = L
        elif self.loss.name != "squared":
            self.root_h = np.sqrt(self.loss.curvature(Yhat, self.Y))

    def _dense_capacitance(self, M):
        """``L^T blockdiag(M) L`` as an (n, c, n, c) array, in O(n^2 c^2).

        Entry (j a, l b) is ``sum_k L[j,k,a] M_k[j,l] L[l,k,b]``; with
        ``L[j,k,a] = q_ja (delta_ka - p_jk)`` the sum over k is
        ``delta_ab M_a[j,l] - p_la M_a[j,l] - p_jb M_b[j,l] + S[j,l]``,
        ``S[j,l] = sum_k p_jk p_lk M_k[j,l]``: no term costs c^3 n^2, where
        summing the k products of outer roots did (20 s of a 20 s solve
        with 50 classes on 60 rows).
        """
        n, c = self.n, self.c
        p, q = self.root_pq
        Mt = np.stack(M, axis=1)  # (j, a, l) = M_a[j, l]
        if p is None:
            K = np.zeros((n, c, n, c))
        else:
            S = np.einsum("jk,lk,jkl->jl", p, p, Mt)
            PM = p[:, :, None] * Mt  # (j, b, l) = p_jb M_b[j, l]
            K = (S[:, None, :, None] - PM.transpose(0, 2, 1)[:, None, :, :]
                 - (Mt * p.T[None, :, :])[:, :, :, None])
        idx = np.arange(c)
        K[:, idx, :, idx] += Mt.transpose(1, 0, 2)
        K *= q[:, :, None, None]
        K *= q[None, None, :, :]
        return K

    def _factor_outputs(self, M):
        """Factors of ``n I + h^(1/2) M_k h^(1/2)`` per output, from the
        unscaled ``M_k = A_k Q A_k^T``; one ``(n c)`` factor for
        cross-entropy, ``n I + L^T blockdiag(M) L`` in (sample, output)
        order."""
        if not self.dense_K:
            if self.root_h is not None:
                for k, Mk in enumerate(M):
                    Mk *= self.root_h[:, k, None] * self.root_h[None, :, k]
            self.K = [self._cholesky(Mk) for Mk in M]
            return
        n, c = self.n, self.c
        K = self._dense_capacitance(M).reshape(n * c, n * c)
        K.flat[:: n * c + 1] += n
        if self.G is None:
            # n I + L^T M L is positive definite, but rounding in M (entries
            # up to 1e30 late in a solve) can make Cholesky fail: LU then.
            try:
                self.K = sla.cho_factor(K, lower=True, check_finite=False)
            except np.linalg.LinAlgError:
                self.K = sla.lu_factor(K, check_finite=False)
            return
        # Capacitance of H + A^T L L^T A / n - G G^T: [[K, U^T Q G],
        # [G^T Q U, G^T Q G - I]] with U^T v = L^T A v.
        m = len(self.G)
        QG = np.stack([self._apply_Q(g) for g in self.G])
        UQG = np.stack([self._scale_h(self.predict(q)).ravel() for q in QG], axis=1)
        GQG = np.einsum("abd,cbd->ac", self.G, QG) - np.eye(m)
        self.K = sla.lu_factor(np.block([[K, UQG], [UQG.T, GQG]]), check_finite=False)

    def _scale_h(self, R):
        """``h^(1/2) R`` per sample (``L^T R`` for cross-entropy)."""
        if self.dense_K:
            return np.einsum("jka,jk->ja", self.root_L, R)
        return R if self.root_h is None else R * self.root_h

    def _unscale_h(self, R):
        """``h^(1/2) R`` per sample (``L R`` for cross-entropy)."""
        if self.dense_K:
            return np.einsum("jka,ja->jk", self.root_L, R)
        return R if self.root_h is None else R * self.root_h

    def _cholesky(self, K):
        K.flat[:: self.n + 1] += self.n
        return sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)

    def _solve_once(self, b):
        if self.weight_space:
            return self._solve_weights(b)
        o = self.block_offset
        y = self._apply_Q(b)
        Ay = self._scale_h(self.predict(y[:, o:]))
        if self.G is not None:
            r = np.concatenate([Ay.ravel(), np.einsum("abd,bd->a", self.G, y)])
            S = sla.lu_solve(self.K, r, check_finite=False)
            S, low = S[: self.n * self.c].reshape(self.n, self.c), S[self.n * self.c:]
        elif self.coupled:
            solve = sla.cho_solve if len(self.K) == 2 and isinstance(
                self.K[1], bool) else sla.lu_solve
            S = solve(self.K, Ay.ravel(), check_finite=False).reshape(self.n, self.c)
        else:
            S = np.column_stack([sla.cho_solve(K, Ay[:, k], check_finite=False)
                                 for k, K in enumerate(self.K)])
        S = self._unscale_h(S)
        correction = np.zeros_like(b)
        correction[:, o:] = self.adjoint(S)
        if self.G is not None:
            correction += np.einsum("a,abd->bd", low, self.G)
        return y - self._apply_Q(correction)

    def _matvec(self, x):
        o = self.block_offset
        out = self._apply_H(x)
        Ax = self._unscale_h(self._scale_h(self.predict(x[:, o:])))
        out[:, o:] += self.adjoint(Ax) / self.n
        if self.G is not None:
            out -= np.einsum("a,abd->bd", np.einsum("abd,bd->a", self.G, x), self.G)
        return out

    def solve(self, b, rtol=REFINE_TOL):
        """Solve the factored system for b (B, offset + d); for l1, t is
        eliminated first: ``dt = (b_t - (w+ - w-) du) / (w- + w+)``."""
        if not self.l1:
            return self._solve_refined(b, rtol)
        d = self.d
        w_minus, w_plus = self.l1_w
        ratio = (w_plus - w_minus) / (w_plus + w_minus)
        b_t, b_u = b[:, :d], b[:, d:]
        du = self._solve_refined(b_u - ratio * b_t, rtol)
        return np.concatenate([(b_t / (w_plus + w_minus)) - ratio * du, du], axis=1)

    def _solve_refined(self, b, rtol):
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


def dense_capacitance(problem):
    """Whether the n-space system is one ``(n c)`` factor rather than one
    ``n x n`` per output: cross-entropy couples a sample's outputs, and
    feature_group_l1's cones (one per feature, across outputs) sit in it."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    return problem.loss.name == "cross_entropy" or reg == "feature_group_l1"


def use_weight_space(problem):
    """Whether the system is solved in weight space (dense blocks): no
    feature_group_l1 cones, and fewer flops per step than the n-space
    Woodbury matrices (:func:`step_flops`). Cross-entropy couples the
    outputs there too: one factor of size ``c P d`` instead of ``n c``."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if reg == "feature_group_l1":
        return False
    return step_flops(problem, True) < step_flops(problem, False)


def step_flops(problem, weight_space):
    """Flops of one step: the n x n Woodbury matrices and their factors
    (cross-entropy and feature_group_l1: one (n c) factor,
    :func:`dense_capacitance`; gated ReLU without dense blocks: two
    n x n x P products, :class:`GatedSystem`), or in weight space
    ``I + F S F^T`` and its factor per output plus ``N`` and its root F
    (formed once for squared loss: counted as a tenth); ReLU adds the blocks
    ``X^T diag(z / s) X``."""
    n = problem.n_samples
    c, P, d = problem.weight_shape
    relu = problem.formulation.has_cones
    if not weight_space:
        factor = ((n * c) ** 3 if dense_capacitance(problem) else c * n**3) / 3.0
        dense = relu or (problem.lam > 0 and problem.regularizer.name
                         in ("l1", "feature_group_l1"))
        if not dense:
            return c * 4.0 * n * n * P + factor + 4.0 * c * P * n * d
        return c * 2.0 * n * n * P * d + factor + 4.0 * c * P * n * d * d
    blocks = 4.0 * c * P * n * d * d if relu else 0.0
    m = P * d
    if problem.loss.name == "cross_entropy":  # one coupled root and factor
        M = c * m  # N by syrk, its pivoted Cholesky root, C = (FL)(FL)^T, factor
        return n * c * M * M + 8.0 * M**3 / 3.0 + 2.0 * M * M * d + blocks
    gram = (n * m * m + m**3 / 3.0) * (0.1 if problem.loss.name == "squared" else c)
    return c * (4.0 * m**3 / 3.0 + 2.0 * m * m * d) + gram + blocks


def _block_right(M, R, P, d):
    """``M @ blockdiag(R_1, ..., R_P)`` for M (m, P d) and R (P, d, d)."""
    m = M.shape[0]
    out = np.matmul(M.reshape(m, P, d).transpose(1, 0, 2), R)  # (P, m, d)
    return np.ascontiguousarray(out.transpose(1, 0, 2).reshape(m, P * d))


def _invert_blocks(H):
    """Inverses of the SPD blocks H (B, m, m), statically regularized."""
    Q = H.copy()
    diag = np.einsum("bii->bi", Q)
    diag += REGULARIZATION * diag.max(axis=1, keepdims=True) + 1e-300
    failed = _blocks.spd_inverse(Q)
    if failed >= 0:
        raise np.linalg.LinAlgError(
            f"block {failed} of the Newton system is not positive definite")
    return Q


class _DenseBlocks(_System):
    """Dense (o + d) blocks ``H``, inverted one by one; then either ``A Q A^T``
    as one GEMM of ``n x n x P d`` per output from the roots of the u-parts
    of Q (the n x n Woodbury matrix), or, where the weights are fewer than
    the samples, the same solve in weight space (:meth:`_factor_weights`)."""

    def _init_dense(self, problem):
        self.mask = self.D[:, :, None].astype(np.float64)
        self.weight_space = use_weight_space(problem)
        self.data_root = None  # F^T F = A^T A / n (squared loss: for all steps)
        if self.weight_space or self.n * self.d * self.d > OUTER_MAX_ENTRIES:
            self.outer = None
        else:
            self.outer = (self.X[:, :, None] * self.X[:, None, :]).reshape(
                self.n, self.d * self.d)

    def _cone_blocks(self, w):
        """``X^T diag(w_b) X`` per block b for row weights w (B, n): one GEMM,
        over row chunks where the (n, d^2) outer products would be large."""
        d = self.d
        if self.outer is not None:
            return (w @ self.outer).reshape(-1, d, d)
        out = np.zeros((len(w), d * d))
        step = max(1, OUTER_MAX_ENTRIES // (d * d))
        for lo in range(0, self.n, step):
            Xc = self.X[lo:lo + step]
            outer = (Xc[:, :, None] * Xc[:, None, :]).reshape(len(Xc), d * d)
            out += w[:, lo:lo + step] @ outer
        return out.reshape(-1, d, d)

    def _block_hessian(self, w_lin, scaling):
        d, o = self.d, self.block_offset
        H = np.zeros((self.n_blocks, d + o, d + o))
        if self.n_data_rows:
            H[:, o:, o:] = self._cone_blocks(w_lin[:, :self.n_data_rows])
        if self.l1:
            idx = np.arange(d)
            H[:, idx, idx] += self.l1_diagonal(w_lin[:, self.n_data_rows:])
        if self.soc:
            H += scaling.inverse_squared()
        if self.fgl1:
            diag, self.G = self.fgl1_terms(scaling)
            idx = np.arange(d)
            H[:, idx, idx] += diag
        if self.ridge or self.prox:
            H[:, o:, o:] += (self.ridge + self.prox) * np.eye(d)
        return H

    def _factor_blocks(self, w_lin, scaling, Yhat, Q_uu_of):
        self._curvature(Yhat)
        self.H = self._block_hessian(w_lin, scaling)
        self.Q = _invert_blocks(self.H)
        o = self.block_offset
        R = np.linalg.cholesky(Q_uu_of(self.Q[:, o:, o:]))
        if self.weight_space:
            self._factor_weights(R)
            return
        self._factor_outputs([self._gram(R[k * self.P:(k + 1) * self.P])
                              for k in range(self.c)])

    # Weight space. With ``E`` taking a point's blocks to the data's weights
    # (ReLU: u_V - u_W; gated: u), the data term is ``E^T N E`` with
    # ``N_k = A_k^T diag(h_k) A_k / n = F_k^T F_k`` (P d x P d per output, F_k
    # its Cholesky root), and ``S = E Q E^T = L L^T`` is block diagonal (L:
    # the blocks' roots R). Then
    #   (H + E^T N E)^-1 = Q - Q E^T F^T (I + F S F^T)^-1 F E Q,
    # the n x n Woodbury solve with F in place of h^(1/2) A / sqrt(n): one
    # Cholesky factor of size P d per output. (Expanding (N^-1 + S)^-1 by
    # Woodbury instead, N - N L (I + L^T N L)^-1 L^T N, is cheaper but
    # cancels once S reaches 1e20 late in a solve: residuals of 1e9 on a
    # lam = 0 ReLU problem.)

    def _data_roots(self):
        """``F_k`` (c, P d, P d) with ``F_k^T F_k = N_k`` (+ a relative
        1e-13 on the diagonal, which refinement removes); squared loss: one
        for all outputs, formed once."""
        if self.root_h is None and self.data_root is not None:
            return self.data_root
        n, P, d = self.n, self.P, self.d
        outputs = 1 if self.root_h is None else self.c
        N = np.zeros((outputs, P * d, P * d))
        step = max(1, OUTER_MAX_ENTRIES // (P * d))
        for lo in range(0, n, step):
            F = (self.mask[lo:lo + step] * self.X[lo:lo + step, None, :]).reshape(
                -1, P * d)
            for k in range(outputs):
                Fk = F if self.root_h is None else F * self.root_h[lo:lo + step, k,
                                                                    None]
                N[k] += Fk.T @ Fk
        N /= n
        roots = np.empty_like(N)
        for k in range(outputs):
            diag = np.einsum("ii->i", N[k])
            diag += REGULARIZATION * diag.max(initial=0.0) + 1e-300
            roots[k] = sla.cholesky(N[k], lower=False, check_finite=False)
        if self.root_h is None:
            roots = np.broadcast_to(roots, (self.c, P * d, P * d))
            self.data_root = roots
        return roots

    def _coupled_root(self):
        """Cross-entropy: ``F`` (r, c P d) with ``F^T F = N = A^T
        blockdiag(H_j) A / n``, the outputs coupled by each sample's Hessian
        ``H_j = L_j L_j^T`` (``root_L``). N is summed from the rows
        ``L_j^T A_j`` by rank-k updates over row chunks (BLAS syrk) and
        rooted by a pivoted Cholesky factorization, which stops at N's
        numerical rank r (N is singular: a shift of all outputs leaves
        cross-entropy unchanged); any root serves, as ``I + F S F^T`` stays
        positive definite. A QR of the stacked rows, its running triangle
        re-factored with each chunk, ran at 10-20x these flops on
        n = 2,000, c P d = 2,000 (90 s against 4.4 s;
        docs/design/interior-point.md)."""
        n, P, d, c = self.n, self.P, self.d, self.c
        m = P * d
        N = np.zeros((c * m, c * m), order="F")
        syrk = sla.get_blas_funcs("syrk", (N,))
        pstrf = sla.get_lapack_funcs("pstrf", (N,))
        step = max(1, OUTER_MAX_ENTRIES // (c * c * m))
        for lo in range(0, n, step):
            Phi = (self.mask[lo:lo + step] * self.X[lo:lo + step, None, :]).reshape(
                -1, m)
            # rows (j, a), columns (b, i): L[j, b, a] Phi[j, i]
            B = self.root_L[lo:lo + step].transpose(0, 2, 1)[:, :, :, None] \
                * Phi[:, None, None, :]
            # N += B^T B (upper triangle), B^T Fortran-ordered without a copy
            N = syrk(1.0 / n, B.reshape(-1, c * m).T, beta=1.0, c=N, trans=0,
                     lower=0, overwrite_c=True)
        U, piv, rank, info = pstrf(N, lower=0, overwrite_a=True)
        if info < 0:
            raise ValueError(f"pstrf: argument {-info} is invalid")
        rows = max(rank, 1)
        F = np.zeros((rows, c * m))
        F[:, piv - 1] = np.triu(U[:rows])
        return F

    def _factor_weights(self, R):
        """Factors ``I + (F L)(F L)^T`` per output (one coupled factor for
        cross-entropy) for the block roots R (c P, d, d)."""
        P, d = self.P, self.d
        if self.coupled:
            self.F = self._coupled_root()
            FL = _block_right(self.F, R, self.c * P, d)
            C = FL @ FL.T
            C.flat[:: C.shape[0] + 1] += 1.0
            self.K = sla.cho_factor(C, lower=True, overwrite_a=True,
                                    check_finite=False)
            return
        self.F = self._data_roots()
        self.K = []
        for k in range(self.c):
            FL = _block_right(self.F[k], R[k * P:(k + 1) * P], P, d)
            C = FL @ FL.T
            C.flat[:: P * d + 1] += 1.0
            self.K.append(sla.cho_factor(C, lower=True, overwrite_a=True,
                                         check_finite=False))

    def _solve_weights(self, b):
        """The weight-space Woodbury solve of ``_solve_once``."""
        o, d = self.block_offset, self.d
        y = self._apply_Q(b)
        g = self.data_weights(y[:, o:]).reshape(self.c, -1)
        if self.coupled:
            s = sla.cho_solve(self.K, self.F @ g.ravel(), check_finite=False)
            t = (self.F.T @ s).reshape(g.shape)
        else:
            t = np.empty_like(g)
            for k in range(self.c):
                s = sla.cho_solve(self.K[k], self.F[k] @ g[k], check_finite=False)
                t[k] = self.F[k].T @ s
        correction = np.zeros_like(b)
        correction[:, o:] = self.data_weights_adjoint(t.reshape(-1, d))
        return y - self._apply_Q(correction)

    def _gram(self, R):
        """``sum_i D_i X R_i R_i^T X^T D_i`` for one output's roots R (P, d, d)."""
        n, P, d = self.n, self.P, self.d
        M = (self.X @ R.transpose(1, 0, 2).reshape(d, P * d)).reshape(n, P, d)
        M *= self.mask
        M = M.reshape(n, P * d)
        return M @ M.T

    def _apply_Q(self, b):
        return conic.apply(self.Q, b)

    def _apply_H(self, x):
        return conic.apply(self.H, x)


class ReluSystem(_DenseBlocks):
    """Blocks: V's ``n_outputs * P`` rows, then W's; cone constraints per block."""

    def __init__(self, problem):
        c, P, _ = problem.weight_shape
        super().__init__(problem, 2 * c * P)
        self.half = c * P
        self.n_data_rows = self.n  # cone constraints per block
        signs = (2.0 * self.D - 1.0).T  # (P, n)
        self.signs = np.ascontiguousarray(np.tile(signs, (2 * self.c, 1)))
        self._init_dense(problem)

    def data_weights(self, u):
        """``E u``: the data's weights (c P, d) of blocks u (B, d): V - W."""
        return u[: self.half] - u[self.half:]

    def data_weights_adjoint(self, g):
        return np.concatenate([g, -g])

    def predict(self, u):
        U = (u[: self.half] - u[self.half:]).reshape(self.c, self.P, self.d)
        return operator.predict(self.X, self.D, U)

    def adjoint(self, R):
        G = operator.adjoint(self.X, self.D, R).reshape(self.half, self.d)
        return np.concatenate([G, -G])

    def cone(self, x):
        """Orthant rows of blocks x (B, o + d): data cones, then l1 rows."""
        rows = (x[:, self.offset:] @ self.X.T) * self.signs
        return np.concatenate([rows, self.l1_rows(x)], axis=1) if self.l1 else rows

    def cone_adjoint(self, z):
        """Transpose of :meth:`cone`, (B, o + d)."""
        out = np.zeros((len(z), self.offset + self.d))
        out[:, self.offset:] = (z[:, :self.n] * self.signs) @ self.X
        if self.l1:
            out += self.l1_adjoint(z[:, self.n:])
        return out

    def factor(self, w_lin, scaling, Yhat):
        """Factor for orthant weights z/s, the cones' NT scaling (group_l1) and
        the loss curvature at the predictions Yhat. V's and W's blocks of a
        pattern share ``D_i X`` up to sign, so their Q are summed first."""
        self._factor_blocks(w_lin, scaling, Yhat,
                            lambda Q: Q[: self.half] + Q[self.half:])


class _DenseGated(_DenseBlocks):
    """Gated ReLU with l1 or feature_group_l1 (their blocks are not a
    multiple of the identity plus rank one), or solved in weight space:
    the dense-block path."""

    def __init__(self, problem):
        c, P, _ = problem.weight_shape
        super().__init__(problem, c * P)
        self._init_dense(problem)

    def data_weights(self, u):
        return u

    def data_weights_adjoint(self, g):
        return g

    def predict(self, u):
        return operator.predict(self.X, self.D, u.reshape(self.c, self.P, self.d))

    def adjoint(self, R):
        return operator.adjoint(self.X, self.D, R).reshape(self.n_blocks, self.d)

    def cone(self, x):
        return self.l1_rows(x) if self.l1 else np.zeros((len(x), 0))

    def cone_adjoint(self, z):
        return (self.l1_adjoint(z) if self.l1
                else np.zeros((len(z), self.offset + self.d)))

    def factor(self, w_lin, scaling, Yhat):
        self._factor_blocks(w_lin, scaling, Yhat, lambda Q: Q)


class GatedSystem(_System):
    """Blocks: the ``n_outputs * P`` rows of U; no cone constraints."""

    def __new__(cls, problem):
        dense = problem.lam > 0 and problem.regularizer.name in (
            "l1", "feature_group_l1")
        if cls is GatedSystem and (dense or use_weight_space(problem)):
            return _DenseGated(problem)
        return super().__new__(cls)

    def __init__(self, problem):
        c, P, _ = problem.weight_shape
        super().__init__(problem, c * P)
        self.D_float = self.D.astype(np.float64)
        self.gram = self.X @ self.X.T
        self.scaling = None

    def predict(self, u):
        return operator.predict(self.X, self.D, u.reshape(self.c, self.P, self.d))

    def adjoint(self, R):
        return operator.adjoint(self.X, self.D, R).reshape(self.n_blocks, self.d)

    def cone(self, x):
        return np.zeros((len(x), 0))

    def cone_adjoint(self, z):
        return np.zeros((len(z), self.offset + self.d))

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
            eta2 = np.full((self.c, P), 1.0 / (self.ridge + self.prox))
        M = []
        for k in range(self.c):
            # F @ F.T with one operand: NumPy hands it to SYRK (half a GEMM).
            F = self.D_float * np.sqrt(eta2[k])
            K = F @ F.T
            K *= self.gram
            if self.soc:
                F = (self.X @ w1[k].T) * self.D_float  # v_i = D_i X w_1,i
                F *= np.sqrt(2.0 * eta2[k])
                K += F @ F.T
            M.append(K)
        self._factor_outputs(M)

    def _apply_Q(self, b):
        if self.soc:
            return self.scaling.apply_squared(b)
        return b / (self.ridge + self.prox)

    def _apply_H(self, x):
        if self.soc:
            return self.scaling.apply_inverse_squared(x)
        return (self.ridge + self.prox) * x
