r"""Group-scaling polish: the best rescaling of each weight group of an iterate.

For a norm regularizer (group_l1, feature_group_l1, l1) the certificate of
:mod:`cvxnn.core.certificates` rescales the dual point by
``alpha = min(1, lam / R°(Z))``, ``Z`` the gradient of the (Lagrangian)
data fit. At a non-zero group ``x_g`` with residual
``r_g = Z_g + lam x_g / ||x_g||`` (zero at the optimum),

.. math:: \|Z_g\| = \lambda - \langle r_g, x_g / \|x_g\| \rangle + O(\|r_g\|^2),

so the relative gap is first order in the *radial* part of the residual,
which first-order methods reduce slowly (the gap lags the objective like
``sqrt(F - F*)``). Polishing minimizes the Lagrangian over one scale per
group, all other directions fixed:

.. math:: \Phi(s) = f\Big(\sum_g s_g B_g\Big) + \lambda \sum_g s_g \rho_g
          - \sum_g s_g \kappa_g, \qquad s \ge 0,

with ``B_g`` the predictions of group ``g`` alone, ``rho_g`` its norm
(``R(s x) = s R(x)`` for ``s >= 0``) and, for ReLU with multipliers ``mu``,
``kappa_g = <x_g, (C^T mu)_g>`` (0 for gated ReLU). At the minimizer every
radial residual vanishes and the gap becomes second order. Scaling keeps a
block in its cone (the cones are cones), so cone violations only scale.
Groups are the neurons ``(k, i)`` of each block (group_l1, l1) or the
features of each block (feature_group_l1). ``Phi`` is minimized by damped
Newton steps with backtracking, from ``s = 1``; the Hessian
``B^T (diag(w) - q q^T) B / n`` comes from the loss kernel
(:func:`cvxnn_fast.fista._fista.loss_hessian`); the scales stay in
``[0, MAX_SCALE]``.

The caller keeps the polished point only if its certificate (computed by
:mod:`cvxnn.core.certificates`, as for every backend) is better.

For ReLU the certificate also depends on the cone multipliers; those of
the augmented Lagrangian converge slowly once the primal point is accurate.
:func:`best_multipliers` computes, for the polished point, the multipliers
that make each neuron's dual residual smallest (one non-negative least
squares per neuron). The attempt uses them when the polished point meets the
cones and its gap is within ``REFINE_GAP`` times the tolerance
(docs/design/polish.md has the measurements).
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve
from scipy.optimize import nnls

from cvxnn.core import operator
from cvxnn.core.certificates import _data_gradient, certificate
from cvxnn_fast.fista import _fista

MAX_ENTRIES = 2**23  # largest n * n_outputs * groups formed densely (64 MiB)
MAX_GROUPS = 3000
NEWTON_STEPS = 6
MAX_SCALE = 2.0
DAMPING = 1e-12  # relative to the mean diagonal of the Hessian
# Newton on the scales ends once a step moves them by less than this
# (relative). A test on Phi's decrease (1e-15 relative, as before) resolves
# the scales to sqrt(eps) only: the stop fell a step earlier or later with
# the rounding of the sums, and the polished weights of one problem summed
# over two processes differed from one process's by 1.7e-7.
SCALE_TOL = 1e-12
# ReLU multiplier refinement: only where the polished gap is within REFINE_GAP
# times tol, and where the non-negative least squares problems (one d x n
# matrix per neuron) have at most MAX_NNLS_ENTRIES entries in all.
REFINE_GAP = 1e3
MAX_NNLS_ENTRIES = 2**24
NNLS_ROUNDS = 20  # working-set rounds of each neuron's NNLS


def group_axes(problem):
    """Axes of the weights (n_outputs, P, d) spanned by one scaled group, or None."""
    reg = problem.regularizer
    if problem.lam == 0 or not reg.is_norm:
        return None
    return (0, 1) if reg.name == "feature_group_l1" else (2,)


def _contributions(X, D, U, axes):
    """Predictions of each group of U alone, (n, n_outputs, groups)."""
    c, P, d = U.shape
    if axes == (2,):
        Z = operator.products(X, U) * D[:, None, :]
        B = np.zeros((X.shape[0], c, c, P))
        for k in range(c):
            B[:, k, k, :] = Z[:, k, :]
        return B.reshape(X.shape[0], c, c * P)
    inner = np.einsum("jp,kpf->jkf", D.astype(np.float64), U)  # D @ U[k, :, f]
    return inner * X[:, None, :]


def _block_groups(problem, X, U, axes, sign, multipliers):
    """(B, norms, kappa, mask) for the non-zero groups of one weight block.

    ``X`` is the problem's data in float64.
    """
    U = U.astype(np.float64)
    norms = np.sum(problem.regularizer.group_norms(U), axis=axes, keepdims=True)
    mask = norms.ravel() > 0
    B = sign * _contributions(X, problem.patterns, U, axes)[:, :, mask]
    kappa = np.zeros(int(mask.sum()))
    if multipliers is not None:
        CA = operator.cone_adjoint(X, problem.patterns,
                                   np.asarray(multipliers, np.float64))
        kappa = np.sum(U * CA, axis=axes, keepdims=True).ravel()[mask]
    return B, norms.ravel()[mask], kappa, norms.shape, mask


def _objective(problem, Yhat, s, norms, kappa):
    fit = problem.loss.value(Yhat, problem.y.astype(np.float64)) / problem.n_samples
    return fit + problem.lam * float(norms @ s) - float(kappa @ s)


def _hessian(problem, B, S):
    """B^T (diag(w) - q q^T) B / n for the loss Hessian at gradient S."""
    Y = np.ascontiguousarray(problem.y, np.float64)
    Wd, Q = np.empty_like(S), np.empty_like(S)
    _fista.loss_hessian(problem.loss.code, np.ascontiguousarray(S), Y, Wd, Q)
    H = sum((B[:, k, :] * Wd[:, k, None]).T @ B[:, k, :] for k in range(B.shape[1]))
    if np.any(Q):
        Qt = np.einsum("jk,jkg->jg", Q, B)
        H -= Qt.T @ Qt
    return H / problem.n_samples


def _newton_step(problem, B, s, Yhat, norms, kappa):
    """Damped (projected) Newton direction for Phi at s."""
    S = problem.loss.gradient(Yhat, problem.y.astype(np.float64))
    grad = np.einsum("jkg,jk->g", B, S) / problem.n_samples \
        + problem.lam * norms - kappa
    # Scales at a bound that the gradient pushes outwards stay there.
    free = ~(((s <= 0) & (grad > 0)) | ((s >= MAX_SCALE) & (grad < 0)))
    if not free.any():  # every scale held at its bound: s is the box's optimum
        return np.zeros_like(s)
    H = _hessian(problem, B[:, :, free], S)
    H[np.diag_indices_from(H)] += DAMPING * max(float(np.trace(H)) / len(H),
                                                np.finfo(float).tiny)
    delta = np.zeros_like(s)
    try:
        delta[free] = -cho_solve(cho_factor(H), grad[free])
    except np.linalg.LinAlgError:
        delta[free] = -solve(H, grad[free], assume_a="sym")
    return delta


def scales(problem, B, norms, kappa):
    """Damped Newton with backtracking on Phi over ``0 <= s <= MAX_SCALE``.

    Starts at s = 1 (the iterate itself); every accepted step decreases Phi.
    The box keeps far-from-optimal iterates (where the Lagrangian term can
    make Phi unbounded along a group) from being scaled without bound.
    """
    s = np.ones(B.shape[2])
    Yhat = B @ s
    phi = _objective(problem, Yhat, s, norms, kappa)
    for _ in range(NEWTON_STEPS):
        delta = _newton_step(problem, B, s, Yhat, norms, kappa)
        step = 1.0
        while step > 1e-6:
            trial = np.clip(s + step * delta, 0.0, MAX_SCALE)
            Yhat_trial = B @ trial
            phi_trial = _objective(problem, Yhat_trial, trial, norms, kappa)
            if phi_trial <= phi:
                break
            step /= 2
        else:
            break
        done = np.max(np.abs(trial - s)) <= SCALE_TOL * max(1.0, np.max(trial))
        s, Yhat, phi = trial, Yhat_trial, phi_trial
        if done:
            break
    return s


def polish(problem, blocks, multipliers=None):
    """The blocks with each group rescaled to minimize Phi (see the module).

    Parameters
    ----------
    problem : cvxnn.Problem
    blocks : dict of weight blocks (``U``; or ``V`` and ``W``).
    multipliers : ReLU cone multipliers ``(lam_V, lam_W)`` or None.

    Returns
    -------
    dict of polished blocks (the problem's dtype), or None where polishing
    does not apply (lam = 0, l2 or no regularizer, no non-zero group) or the
    dense contributions would exceed ``MAX_ENTRIES`` / ``MAX_GROUPS``.
    """
    axes = group_axes(problem)
    if axes is None:
        return None
    names = list(blocks)
    signs = {"U": 1.0, "V": 1.0, "W": -1.0}
    mults = dict(zip(("V", "W"), multipliers, strict=True)) if multipliers else {}
    n_groups = sum(int(np.count_nonzero(np.sum(problem.regularizer.group_norms(
        blocks[k]), axis=axes))) for k in names)
    if n_groups == 0 or n_groups > MAX_GROUPS or \
            problem.n_samples * problem.n_outputs * n_groups > MAX_ENTRIES:
        return None
    X = problem.X.astype(np.float64)
    parts = [_block_groups(problem, X, blocks[k], axes, signs[k], mults.get(k))
             for k in names]
    s = scales(problem, np.concatenate([p[0] for p in parts], axis=2),
               np.concatenate([p[1] for p in parts]),
               np.concatenate([p[2] for p in parts]))
    out, start = {}, 0
    for k, (*_, shape, mask) in zip(names, parts, strict=True):
        full = np.ones(mask.size)
        full[mask] = s[start:start + int(mask.sum())]
        start += int(mask.sum())
        out[k] = (blocks[k] * full.reshape(shape)).astype(problem.dtype)
    return out


def _nnls_columns(Ct, b, start, rounds=NNLS_ROUNDS):
    """``min ||Ct lam - b||`` over ``lam >= 0`` by NNLS on a working set of columns.

    The working set starts at ``start`` plus the columns most aligned with
    ``b``; after each solve, columns whose entry of ``Ct^T r`` (``r`` the
    residual, the negative gradient) is positive, i.e. that would lower the
    residual, join it, up to ``Ct.shape[0]`` per round. When none does, the
    solution is that of the full problem (its optimality conditions hold).
    A solve cut short by ``rounds`` is still non-negative, hence a valid
    (not the best) choice for the certificate. The cost is that of NNLS on a
    few times ``Ct.shape[0]`` columns instead of all of them.
    """
    d, n = Ct.shape
    work = np.zeros(n, bool)
    work[start] = True
    score = Ct.T @ b
    work[np.argsort(score)[-d:]] = True
    lam = np.zeros(n)
    for _ in range(rounds):
        cols = np.flatnonzero(work)
        lam[:] = 0.0
        try:
            lam[cols] = nnls(Ct[:, cols], b, maxiter=10 * cols.size)[0]
        except RuntimeError:  # no convergence: zero is still valid
            return np.zeros(n)
        score = Ct.T @ (b - Ct[:, cols] @ lam[cols])
        entering = np.flatnonzero((score > 1e-12 * max(1.0, float(np.abs(b).max())))
                                  & ~work)
        if entering.size == 0:
            break
        work[entering[np.argsort(score[entering])[-d:]]] = True
    return lam


def best_multipliers(problem, blocks, hint=None):
    r"""Cone multipliers making each neuron's dual residual smallest.

    With ``G = A^T S / n`` the data gradient at ``blocks`` (V, W) and
    ``C_i = diag(2 D_i - 1) X`` neuron i's cone map, the certificate's dual
    residual of neuron (k, i) is ``G_ki - C_i^T lam`` in V and
    ``-G_ki - C_i^T lam`` in W. Each column of multipliers solves
    ``min ||C_i^T lam -+ G_ki||, lam >= 0`` (non-negative least squares, by
    :func:`_nnls_columns` starting from the support of ``hint``, multipliers
    of the same shape, where given); the residual's norm is the distance from
    ``+-G_ki`` to the dual cone ``{C_i^T lam : lam >= 0}``. For group_l1 no
    other multipliers give this gradient a smaller dual norm (the
    certificate's rescaling, hence its gap, is the best this point allows);
    for the other norms the choice is valid but not necessarily best.

    Returns ``(lam_V, lam_W)``, each (n_samples, n_outputs, P).
    """
    X = problem.X.astype(np.float64)
    n, c, P = problem.n_samples, problem.n_outputs, problem.n_patterns
    _, _, G = _data_gradient(problem, problem.blocks(**blocks))
    G = G.astype(np.float64)
    signs = 2.0 * problem.patterns - 1.0
    out = (np.zeros((n, c, P)), np.zeros((n, c, P)))
    for i in range(P):
        Ct = np.ascontiguousarray((signs[:, i, None] * X).T)  # (d, n)
        for k in range(c):
            for b, (lam, sign) in enumerate(zip(out, (1.0, -1.0), strict=True)):
                start = (np.asarray(hint[b])[:, k, i] > 0 if hint is not None
                         else np.zeros(n, bool))
                lam[:, k, i] = _nnls_columns(Ct, sign * G[k, i], start)
    return tuple(m.astype(problem.dtype) for m in out)


class Polisher:
    """When the solvers polish their momentum point, and what it certified.

    Attempts start once the kernel's own certificate is below ``START`` and
    are then spaced by ``SPACING`` times the iterations done, and by at least
    ten times the polish's cost in iterations (counted in flops), so that
    polishing costs at most about a tenth of the solve. For ReLU, once an
    attempt comes close (its gap within ``REFINE_GAP`` tol and its cone
    violation within ``CLOSE_VIOLATION`` cone_tol) the spacing drops to
    ``CLOSE_SPACING``: what is left is the cone violation crossing cone_tol,
    which the refined multipliers then certify. The schedule depends on iteration
    counts only, so solves stay deterministic.
    """

    START = 1e-2
    SPACING = 0.1
    CLOSE_SPACING = 0.02
    CLOSE_VIOLATION = 10.0

    def __init__(self, problem, tol, cone_tol):
        self.problem, self.tol, self.cone_tol = problem, tol, cone_tol
        self.enabled = group_axes(problem) is not None
        self.next_iter = 0
        self.result = None  # (blocks, multipliers, certificate) once certified
        c, P, d = problem.weight_shape
        rows = c * P * len(problem.formulation.block_names)
        m, n = rows, problem.n_samples
        ratio = (n * c * m * m + m**3 / 3) / (4.0 * n * d * rows)
        self.min_spacing = max(10, int(np.ceil(10 * ratio)))
        self.refine = (problem.formulation.has_cones and
                       n * problem.X.shape[1] * rows <= MAX_NNLS_ENTRIES)

    def pause_at(self, max_iter):
        """The iteration at which the kernel should hand back control."""
        return min(max_iter, self.next_iter) if self.enabled else max_iter

    def attempt(self, it, optimality, blocks, multipliers=None):
        """Polish ``blocks`` at iteration ``it``; True when that certifies them."""
        self.next_iter = it + max(self.min_spacing, int(np.ceil(self.SPACING * it)))
        if not self.enabled or not optimality <= self.START:
            return False
        polished = polish(self.problem, blocks, multipliers)
        if polished is None:
            self.enabled = False
            return False
        extra = {} if multipliers is None else {"multipliers": multipliers}
        cert = certificate(self.problem, **polished, **extra)
        if not cert.satisfied(self.tol, self.cone_tol) and self._near(cert, 1.0):
            multipliers = best_multipliers(self.problem, polished, multipliers)
            cert = certificate(self.problem, **polished, multipliers=multipliers)
        if cert.satisfied(self.tol, self.cone_tol):
            self.result = (polished, multipliers, cert)
            return True
        if self._near(cert, self.CLOSE_VIOLATION):
            self.next_iter = it + max(self.min_spacing,
                                      int(np.ceil(self.CLOSE_SPACING * it)))
        return False

    def _near(self, cert, violation_factor):
        """ReLU: gap within REFINE_GAP tol, violation within the factor times
        cone_tol (1: worth refining the multipliers; CLOSE_VIOLATION: attempt
        more often)."""
        return (self.refine and cert.relative_gap is not None
                and cert.cone_violation <= violation_factor * self.cone_tol
                and cert.relative_gap <= REFINE_GAP * self.tol)
