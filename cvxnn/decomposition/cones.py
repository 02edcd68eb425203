r"""The activation cones of the ReLU program and what can be split into them.

Pattern ``i`` defines the polyhedral cone

.. math:: K_i = \{w \in \mathbb R^d : (2 D_i - I) X w \ge 0\},

the weights whose ReLU activation on the training data is exactly ``D_i``.
Write ``C_i = (2 D_i - I) X`` (the rows of ``X``, negated where the pattern
is off). A gated block ``u`` splits as ``u = v - w`` with ``v, w`` in ``K_i``
iff some ``w`` satisfies

.. math:: C_i w \ge b, \qquad b = \max(0, -C_i u)

(then ``v = u + w``). When ``K_i`` has an interior point ``e`` (``C_i e > 0``
on the non-zero rows of ``X``), ``K_i - K_i = \mathbb R^d`` and every ``u``
splits: ``w = t e`` for ``t`` large enough. The gate behind the pattern is
such a point unless a sample lies on (or numerically at) its hyperplane; the
cone is then checked with a least-distance program, which either finds an
interior point or proves that there is none: the cone is *degenerate*
(``K_i - K_i`` is a proper subspace of R^d), and only some ``u`` split.

Least-distance programs :math:`\min \|w\|_2` s.t. :math:`G w \ge h` are solved
exactly by :func:`least_distance`: non-negative least squares (Lawson &
Hanson, *Solving Least Squares Problems*, ch. 23, an active-set method that
also proves infeasibility) on a working set of constraints that grows until
the solution satisfies all of them.
"""

import numpy as np
from scipy.optimize import nnls

# A gate whose worst cosine with the constraint rows is at least this is used
# (rescaled) as its cone's repair direction; below it, a least-distance
# program gives a shorter one.
GATE_MARGIN = 1e-3
# Worst cosine above which the gate proves that its cone has an interior.
INTERIOR_MARGIN = 1e-12
# Relative size below which a row of X counts as zero.
ZERO_ROW = 1e-12
# Relative violation (normalised rows) accepted from the working-set LDP.
LDP_TOL = 1e-10
# Working-set LDP: rows kept between rounds, as a multiple of d + 1 (besides
# the active ones), and the rounds after which rows are only ever added.
KEEP_ROWS = 2
SHRINK_ROUNDS = 50


def row_norms(X):
    """Euclidean norms of the rows of X, with rows below ZERO_ROW set to 0."""
    norms = np.linalg.norm(X, axis=1)
    norms[norms <= ZERO_ROW * max(float(norms.max(initial=0.0)), 1e-300)] = 0.0
    return norms


def _ldp_nnls(G, h):
    """Lawson-Hanson LDP on all rows of (G, h): ``(w, active)``.

    ``w`` is None when the rows are infeasible; ``active`` marks the rows
    with a positive NNLS coefficient (the constraints that hold ``w``).
    """
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(E.shape[0])
    f[-1] = 1.0
    try:
        z, _ = nnls(E, f, maxiter=20 * E.shape[1] + 100)
    except RuntimeError as exc:  # the active-set iteration limit
        raise RuntimeError(f"least-distance program: NNLS stopped ({exc}); split "
                           "this problem with decompose(method='cvxpy').") from exc
    denominator = 1.0 - float(h @ z)  # = -r_{d+1}; 0 iff infeasible
    if denominator <= 1e-12:
        return None, z > 0
    return (G.T @ z) / denominator, z > 0


def _ldp_normalised(G, h):
    """LDP with unit rows and max(h) = 1, by a working set of rows.

    Each round solves the LDP on the working set, then keeps its active rows
    and the ``KEEP_ROWS (d + 1)`` rows closest to active, and adds the
    ``d + 1`` most violated rows. The kept active rows carry the round's
    optimum over, and an added violated row strictly raises it, so no working
    set repeats. Dropping the far rows keeps every NNLS small: at 60,000 rows
    and d = 101 this made a 500-neuron decomposition 3.3x faster (587 s to
    180 s) than keeping every row ever added.
    After ``SHRINK_ROUNDS`` rounds rows are only added (plain constraint
    generation, which ends in at most m / (d + 1) more rounds).
    """
    m, d = G.shape
    work = np.argsort(-h)[: min(m, 2 * (d + 1))]
    rounds = 0
    while True:
        rounds += 1
        w, active = _ldp_nnls(G[work], h[work])
        if w is None:  # a subset of the constraints is already infeasible
            return None
        slack = h - G @ w
        if slack.max() <= LDP_TOL * (1.0 + np.linalg.norm(w)):
            return w
        new = np.argsort(-slack)[: d + 1]
        new = np.setdiff1d(new[slack[new] > 0], work)
        if new.size == 0:  # rounding: nothing left to add
            return w
        if rounds < SHRINK_ROUNDS:
            near = work[np.argsort(-slack[work])[: KEEP_ROWS * (d + 1)]]
            work = np.union1d(np.union1d(work[active], near), new)
        else:
            work = np.union1d(work, new)


def least_distance(G, h):
    r"""Minimum-norm ``w`` with ``G w >= h``, or None when there is none.

    Lawson & Hanson's reduction: with ``E = [G^T; h^T]`` and
    ``f = (0, ..., 0, 1)``, solve the NNLS problem
    :math:`\min_{z \ge 0} \|E z - f\|`; with residual ``r = E z - f`` the
    program is infeasible iff ``r = 0``, and otherwise
    ``w = -r_{1..d} / r_{d+1}``. Rows of G are normalised first (zero rows
    make the program infeasible iff their ``h`` is positive, and are dropped
    otherwise), ``h`` is scaled to unit maximum (the program is homogeneous in
    it), and the NNLS runs on a working set of rows, enlarged by the most
    violated ones until all hold to a relative 1e-10. Numerically, a program
    whose solution is longer than about 1e6 (in the units of unit rows and
    ``max(h) = 1``) is reported infeasible: ``1 - h^T z = 1 / (1 + ||w||^2)``
    falls below 1e-12.

    Parameters
    ----------
    G : ndarray (m, d)
    h : ndarray (m,)

    Returns
    -------
    w : ndarray (d,) or None
    """
    norms = row_norms(G)
    zero = norms == 0
    if np.any(h[zero] > 0):
        return None
    G, h = G[~zero] / norms[~zero, None], h[~zero] / norms[~zero]
    scale = float(np.max(h, initial=0.0))
    if scale <= 0:
        return np.zeros(G.shape[1])
    w = _ldp_normalised(G, h / scale)
    return None if w is None else w * scale


class Cones:
    """The cones of some patterns of a problem, with interior directions.

    Parameters
    ----------
    problem : Problem (its X, patterns and gates are used, in float64).
    patterns : int array, the patterns of interest.

    Attributes
    ----------
    X, norms : data in float64 and its row norms (:func:`row_norms`).
    margins : (len(patterns),) worst cosine between each gate and the rows of
        its cone's ``C_i`` (non-zero rows only).
    degenerate : (len(patterns),) bool, True where the cone has an empty
        interior.
    """

    def __init__(self, problem, patterns):
        self.X = problem.X.astype(np.float64)
        self.norms = row_norms(self.X)
        self.patterns = np.asarray(patterns)
        self.signs = 2.0 * problem.patterns[:, self.patterns] - 1.0
        self.gates = problem.gates[:, self.patterns].astype(np.float64)
        self.margins = self._gate_margins()
        self._directions = {}
        self.degenerate = np.array([self.margins[m] <= INTERIOR_MARGIN
                                    and self.direction(m) is None
                                    for m in range(len(self.patterns))], dtype=bool)

    def _gate_margins(self):
        nonzero = self.norms > 0
        if not np.any(nonzero) or self.gates.shape[1] == 0:
            return np.ones(self.gates.shape[1])
        cos = (self.signs[nonzero] * (self.X[nonzero] @ self.gates)
               / self.norms[nonzero, None] / np.linalg.norm(self.gates, axis=0))
        return cos.min(axis=0)

    def direction(self, m):
        r"""``e`` with ``s_j x_j^T e >= ||x_j||`` on non-zero rows, or None.

        The rescaled gate when its margin is at least :data:`GATE_MARGIN`,
        else the minimum-norm such point (a least-distance program); None
        when the cone ``m`` has an empty interior.
        """
        if m not in self._directions:
            gate, margin = self.gates[:, m], self.margins[m]
            if margin >= GATE_MARGIN:
                e = gate / (margin * np.linalg.norm(gate))
            else:
                nonzero = self.norms > 0
                C = self.signs[nonzero, m, None] * self.X[nonzero]
                e = least_distance(C, self.norms[nonzero])
            self._directions[m] = e
        return self._directions[m]


def split_violation(X, signs, U, W, norms):
    r"""Per block, the largest scaled violation of ``w`` and ``u + w`` in the cone.

    ``signs`` (n, M), ``U`` and ``W`` (M, d). Returns
    :math:`\max_j \max(0, -s_j x_j^T w, -s_j x_j^T (u + w)) / \|x_j\|` over
    the non-zero rows, shape (M,).
    """
    CW = signs * (X @ W.T)
    CV = CW + signs * (X @ U.T)
    nonzero = norms > 0
    worst = np.maximum(0.0, -np.minimum(CW, CV))[nonzero] / norms[nonzero, None]
    return worst.max(axis=0, initial=0.0)


def repair(cones, block_cone, U, W):
    r"""Move each ``w`` along its cone's interior direction until it splits ``u``.

    With ``t`` the scaled violation of :func:`split_violation` and ``e`` the
    interior direction of the block's cone (``s_j x_j^T e >= ||x_j||``),
    ``w + t e`` and ``u + w + t e`` both lie in the cone (up to rounding).
    Blocks on degenerate cones are left unchanged.

    Parameters
    ----------
    cones : :class:`Cones`.
    block_cone : int array (M,), the index into ``cones`` of each block.
    U, W : ndarrays (M, d).

    Returns
    -------
    W : ndarray (M, d), the repaired blocks (a new array).
    """
    signs = cones.signs[:, block_cone]
    t = split_violation(cones.X, signs, U, W, cones.norms)
    W = W.copy()
    for m in np.flatnonzero(t > 0):
        e = cones.direction(block_cone[m])
        if e is not None:
            W[m] += t[m] * e
    return W
