r"""Primal-dual interior-point method for the ReLU program (squared, logistic).

The program, with the weights stacked as blocks ``u_b`` (b = (V or W, output k,
pattern i), ``B = 2 n_outputs P`` of them, sign ``+1`` for V and ``-1`` for
W), is a conic quadratic program:

.. math::
    \min\ \frac{1}{n}\sum_j \ell(A u, Y)_j + \lam \sum_b t_b
    \quad\text{s.t.}\quad s_b = C_{i(b)} u_b \ge 0,\ (t_b, u_b) \in Q^{d+1},

with ``C_i = diag(2 D_i - 1) X`` (the cone constraints) and the second-order
cones ``Q`` for group_l1 (l2 puts ``lam/2 ||u||^2`` in the objective instead,
and lam = 0 drops both). It is solved by Mehrotra's predictor-corrector
method with Nesterov-Todd scaling (:mod:`cvxnn_fast.conic`), from an
infeasible start, as in ECOS or Clarabel; the logistic loss enters through
its gradient and its (diagonal) curvature ``h`` at the current point, as in
a Newton method. What is specific here is the Newton system, never formed:

.. math::
    \big(H + \tfrac{1}{n} A^\top \mathrm{diag}(h) A\big)\,\Delta x = r, \qquad
    H = \mathrm{blockdiag}_b\big(X^\top \mathrm{diag}(z_b / s_b) X
        + W_b^{-2}\big).

``H`` has one (d+1) x (d+1) block per neuron (inverted through its Cholesky
factor, :mod:`cvxnn_fast._blocks`) and
``A^T diag(h) A`` has rank ``n``, so the Woodbury identity leaves one n x n
system per output, ``n I + h^(1/2) (sum_i D_i X (Q_{V,i} + Q_{W,i}) X^T D_i)
h^(1/2)`` with
``Q = H^{-1}`` restricted to u (a V block and its W block share ``D_i X`` up
to sign, so they are summed first). Forming it is one GEMM of
``n x n x (P d)`` per output, the cost of an iteration; the other products
are the masked operator of :mod:`cvxnn.operator`. The slacks' steps come
from the primal equations, which keeps the primal residuals exact to
rounding. One step costs about ``n_outputs (2 n^2 P d + n^3 / 3)`` flops;
:func:`unsupported` and :func:`estimated_flops` let ``fast_solve`` choose.

The iterate is judged by :func:`cvxnn.certificates.relu_certificate` with the
multipliers ``z`` of the cone constraints, like every other solution, once
the method's own gap estimate ``s^T z / |F|`` is within ``CHECK_FACTOR``
tol; where the raw iterate falls short, its group-scaling polish (the first-
order solvers' :func:`cvxnn_fast.polish.polish`, a few ms) is judged too
(:class:`Finisher`). The method stops when a certificate meets ``tol`` and
the cone violation ``cone_tol``. For group_l1, the neurons the barrier
leaves tiny are then set to exact zeros where the certificate still holds
(:func:`prune`).

Measured on the bench_fast ReLU problem (n = 500, d = 20, P = 100, lam =
1e-3, tol 1e-6): 33 iterations, ~1.3 s. Starting multipliers 1e-5 to 1e-2
(here 1/n) change the count by at most 2; Gondzio's centrality correctors on
the orthant (2 or 4 per iteration) cut it to 31 or 29 but not the time.
"""

import time

import numpy as np
import scipy.linalg as sla

from cvxnn import operator
from cvxnn.certificates import relu_certificate
from cvxnn.exceptions import INTERRUPTED, NumericalBreakdown
from cvxnn.solution import Solution
from cvxnn_fast import _blocks, conic, engine
from cvxnn_fast.polish import MAX_NNLS_ENTRIES, best_multipliers, polish

MAX_ITER = 200
STEP_FRACTION = 0.99
# Static regularization of the block Cholesky factors, relative to each
# block's largest diagonal entry; iterative refinement on the unregularized
# system removes its bias (NewtonSystem.solve).
REGULARIZATION = 1e-13
REFINE_MAX, REFINE_TOL = 4, 1e-14
REFINE_RELATIVE = 1e-6  # residual target relative to the gap estimate
# Stop when the certificate has not improved for STALL_ITER iterations after
# the gap estimate reached CHECK_FACTOR * tol (the best point is returned).
STALL_ITER = 5
# A polished point within RESCUE_FACTOR * tol gets NNLS-refitted multipliers.
RESCUE_FACTOR = 10.0
# Check the certificate once the method's own gap estimate s^T z / |F| is
# below CHECK_FACTOR * tol (the check costs about one operator application).
CHECK_FACTOR = 10.0
# A step shorter than this ends the solve (no progress).
MIN_STEP = 1e-10
PRUNE_THRESHOLDS = (np.inf, 1e-4, 1e-6, 1e-8)
LOSSES = ("squared", "logistic")  # a diagonal Hessian in the predictions
REGULARIZERS = ("group_l1", "l2", None)


def unsupported(problem):
    """Why this method cannot solve ``problem`` ("" when it can)."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if problem.formulation.name != "relu":
        return "the interior-point method solves the ReLU program only"
    if problem.loss.name not in LOSSES:
        return (f"the interior-point method supports loss in {LOSSES}, "
                f"not {problem.loss.name!r}")
    if reg not in REGULARIZERS:
        return (f"the interior-point method supports regularizer in "
                f"{REGULARIZERS}, not {reg!r}")
    return ""


def estimated_flops(problem):
    """Flops of one iteration (the Woodbury matrices and their factors)."""
    n = problem.n_samples
    c, P, d = problem.weight_shape
    return c * (2.0 * n * n * P * d + n**3 / 3.0) + 4.0 * c * P * n * d * d


class NewtonSystem:
    """The structured operators and the Newton system of one problem.

    Blocks are rows of ``u`` (B, d): V's ``n_outputs * P`` rows, then W's.
    """

    def __init__(self, problem):
        self.X = np.ascontiguousarray(problem.X, dtype=np.float64)
        self.D = problem.patterns
        self.Y = problem.y.astype(np.float64)
        self.n, self.d = self.X.shape
        self.c, self.P, _ = problem.weight_shape
        self.half = self.c * self.P
        self.lam = float(problem.lam)
        self.loss = problem.loss
        self.root_h = None  # sqrt of the loss curvature (None: squared, all 1)
        reg = problem.regularizer.name if problem.lam > 0 else None
        self.soc = reg == "group_l1"
        self.ridge = self.lam if reg == "l2" else 0.0
        self.offset = 1 if self.soc else 0  # column of t in a block's variables
        signs = (2.0 * self.D - 1.0).T  # (P, n)
        self.signs = np.ascontiguousarray(np.tile(signs, (2 * self.c, 1)))
        d = self.d
        self.outer = (self.X[:, :, None] * self.X[:, None, :]).reshape(self.n, d * d)
        self.mask = self.D[:, :, None].astype(np.float64)

    # The linear maps.
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

    def gradient(self, Yhat):
        """Data-fit gradient ``A^T grad loss / n`` per block, (B, d)."""
        return self.adjoint(self.loss.gradient(Yhat, self.Y)) / self.n

    def data_fit(self, Yhat):
        return self.loss.value(Yhat, self.Y) / self.n

    # The Newton system.
    def factor(self, w_lin, soc_block, Yhat):
        """Factor ``H + A^T diag(h) A / n`` for orthant weights z/s, SOC blocks
        W^{-2} and the loss curvature h at the predictions Yhat."""
        if self.loss.name != "squared":
            self.root_h = np.sqrt(self.loss.curvature(Yhat, self.Y))
        d, o = self.d, self.offset
        H = np.zeros((2 * self.half, d + o, d + o))
        H[:, o:, o:] = (w_lin @ self.outer).reshape(-1, d, d)
        if self.soc:
            H += soc_block
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
        K = M @ M.T
        K.flat[:: n + 1] += n
        return sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)

    def _apply_inverse_H(self, b):
        return conic.apply(self.Q, b)

    def _solve_once(self, b):
        o = self.offset
        y = self._apply_inverse_H(b)
        Ay = self.predict(y[:, o:])
        if self.root_h is not None:
            Ay *= self.root_h
        S = np.column_stack([sla.cho_solve(K, Ay[:, k], check_finite=False)
                             for k, K in enumerate(self.K)])
        if self.root_h is not None:
            S *= self.root_h
        correction = np.zeros_like(b)
        correction[:, o:] = self.adjoint(S)
        return y - self._apply_inverse_H(correction)

    def _matvec(self, x):
        o = self.offset
        out = conic.apply(self.H, x)
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
        1e12 and the rounds matter: the certificate's floor is the dual
        residual over lam (logistic, lam = 1e-3, tol 1e-8: one fixed round
        stalled at a relative gap of 1.2e-8, adaptive rounds reach 8e-9).
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



class Iterate:
    """Primal ``x`` (B, o + d) = ``[t_b, u_b]`` per block, slacks ``s`` and
    multipliers ``z`` of the orthant (B, n) and of the second-order cones
    (B, d + 1), whose points are the rows of x itself.
    """

    def __init__(self, system):
        B, n, d, o = 2 * system.half, system.n, system.d, system.offset
        self.x = np.zeros((B, o + d))
        # An infeasible start: unit slacks, multipliers on the scale of the
        # 1/n-scaled data fit.
        self.s_lin = np.ones((B, n))
        self.z_lin = np.full((B, n), 1.0 / n)
        self.s_soc = conic.soc_identity(B if system.soc else 0, o + d)
        self.z_soc = system.lam * self.s_soc
        self.degree = B * n + len(self.s_soc)

    def complementarity(self):
        return float(np.sum(self.s_lin * self.z_lin) + np.sum(self.s_soc * self.z_soc))

    def max_step(self, direction):
        dx, ds_lin, ds_soc, dz_lin, dz_soc = direction
        return min(conic.max_step_orthant(self.s_lin, ds_lin),
                   conic.max_step_orthant(self.z_lin, dz_lin),
                   conic.max_step_soc(self.s_soc, ds_soc),
                   conic.max_step_soc(self.z_soc, dz_soc))

    def move(self, direction, alpha):
        for value, delta in zip((self.x, self.s_lin, self.s_soc, self.z_lin,
                                 self.z_soc), direction, strict=True):
            value += alpha * delta
        conic.keep_interior(self.s_soc)
        conic.keep_interior(self.z_soc)


class Newton:
    """Residuals, scaling and directions at one iterate (one factorization)."""

    def __init__(self, system, it):
        self.system, self.it = system, it
        o = system.offset
        u = it.x[:, o:]
        self.Yhat = system.predict(u)
        r_x = np.zeros_like(it.x)
        r_x[:, o:] = (system.gradient(self.Yhat) + system.ridge * u
                      - system.cone_adjoint(it.z_lin))
        self.cones = system.cone(u)
        self.r_lin = it.s_lin - self.cones
        self.r_soc = it.s_soc - it.x if system.soc else it.s_soc
        if system.soc:
            r_x -= it.z_soc
            r_x[:, 0] += system.lam
        self.r_x = r_x
        self.mu = it.complementarity() / it.degree
        self.refine_tol = REFINE_TOL  # solve() accuracy; set per iteration

    def factor(self):
        it, system = self.it, self.system
        self.w = it.z_lin / it.s_lin
        self.root_w = np.sqrt(self.w)
        self.lam_lin = np.sqrt(it.s_lin * it.z_lin)
        soc_block = None
        if system.soc:
            self.scaling = conic.SOCScaling(it.s_soc, it.z_soc)
            self.lam_soc = self.scaling.lam
            soc_block = self.scaling.inverse_squared()
        system.factor(self.w, soc_block, self.Yhat)

    def direction(self, xi_lin, xi_soc):
        """Solve the Newton system whose scaled complementarity row is xi.

        Returns (dx, ds_lin, ds_soc, dz_lin, dz_soc); the slack steps come from
        the primal equations ``G dx + ds = -r_p``.
        """
        system, o = self.system, self.system.offset
        y_lin = self.w * self.r_lin + self.root_w * xi_lin
        b = -self.r_x
        b[:, o:] += system.cone_adjoint(y_lin)
        y_soc = np.zeros((0, o + system.d))
        if system.soc:
            y_soc = (self.scaling.apply_inverse_squared(self.r_soc)
                     + self.scaling.apply_inverse(xi_soc))
            b += y_soc
        dx = system.solve(b, self.refine_tol)
        G_lin = -system.cone(dx[:, o:])
        dz_lin = self.w * G_lin + y_lin
        ds_lin = -self.r_lin - G_lin
        if system.soc:
            dz_soc = y_soc - self.scaling.apply_inverse_squared(dx)
            ds_soc = dx - self.r_soc
        else:
            dz_soc = ds_soc = y_soc
        return dx, ds_lin, ds_soc, dz_lin, dz_soc

    def predictor_corrector(self):
        """Mehrotra's direction: affine step, centering, second-order correction."""
        it, system = self.it, self.system
        affine = self.direction(-self.lam_lin, -self.lam_soc if system.soc else None)
        alpha = min(1.0, it.max_step(affine))
        _, ds_lin, ds_soc, dz_lin, dz_soc = affine
        gap = (np.sum((it.s_lin + alpha * ds_lin) * (it.z_lin + alpha * dz_lin))
               + np.sum((it.s_soc + alpha * ds_soc) * (it.z_soc + alpha * dz_soc)))
        sigma = min(1.0, gap / (self.mu * it.degree)) ** 3
        target = sigma * self.mu
        rc_lin = (-self.lam_lin * self.lam_lin
                  - (ds_lin * self.root_w) * (dz_lin / self.root_w) + target)
        xi_soc = None
        if system.soc:
            e = conic.soc_identity(len(it.s_soc), system.d + 1)
            rc_soc = (-conic.soc_product(self.lam_soc, self.lam_soc)
                      - conic.soc_product(self.scaling.apply_inverse(ds_soc),
                                          self.scaling.apply(dz_soc))
                      + target * e)
            xi_soc = conic.soc_divide(self.lam_soc, rc_soc)
        return self.direction(rc_lin / self.lam_lin, xi_soc)


def _weights(problem, system, it):
    o, half = system.offset, system.half
    shape, dtype = problem.weight_shape, problem.dtype
    u = it.x[:, o:]
    blocks = {"V": u[:half].reshape(shape).astype(dtype),
              "W": u[half:].reshape(shape).astype(dtype)}
    n = system.n
    multipliers = tuple(np.ascontiguousarray(z.T.reshape(n, *shape[:2]), dtype=dtype)
                        for z in (it.z_lin[:half], it.z_lin[half:]))
    return blocks, multipliers


def _objective(system, newton, it):
    """F at the iterate, from the predictions the residuals needed."""
    u = it.x[:, system.offset:]
    value = system.data_fit(newton.Yhat)
    if system.soc:
        value += system.lam * float(np.sum(np.linalg.norm(u, axis=1)))
    return value + 0.5 * system.ridge * float(np.sum(u * u))


class History:
    """One row per iteration: time, objective, optimality, step, violation."""

    def __init__(self):
        self.rows = []

    def add(self, *row):
        self.rows.append(row)

    def as_dict(self):
        H = np.array(self.rows, dtype=float).reshape(-1, 5)
        names = ("time", "objective", "optimality", "step_size", "cone_violation")
        return {name: H[:, j].copy() for j, name in enumerate(names)}


def solve(problem, tol, cone_tol, max_iter, monitor):
    """Run the method; returns an :class:`engine.Result`.

    ``optimality`` in the history is the certificate's (relative duality gap,
    or KKT residual when lam = 0) once the method's own gap estimate
    ``s^T z / |F|`` is within ``CHECK_FACTOR * tol``, the estimate before.
    """
    system = NewtonSystem(problem)
    it = Iterate(system)
    finisher = Finisher(problem, system, tol, cone_tol)
    history, alpha = History(), np.nan
    status = message = stop = None
    limit = min(max_iter, MAX_ITER)
    k, optimality = 0, np.inf
    try:
        for k in range(limit + 1):  # noqa: B007 (k is the iteration count after)
            newton = Newton(system, it)
            if not (np.isfinite(newton.mu) and np.all(np.isfinite(newton.r_x))):
                _breakdown(problem, system, it, monitor, k,
                           "the iterate became NaN/inf")
            objective = _objective(system, newton, it)
            violation = float(max(0.0, -np.min(newton.cones)))
            optimality = it.complementarity() / max(abs(objective), 1e-12)
            newton.refine_tol = max(REFINE_TOL, REFINE_RELATIVE * min(optimality, 1.0))
            objective, optimality, done = finisher.judge(it, objective, optimality,
                                                         violation)
            history.add(monitor.elapsed(), objective, optimality, alpha, violation)
            stop = monitor.check({"iteration": k, "time": monitor.elapsed(),
                                  "objective": objective, "optimality": optimality,
                                  "cone_violation": violation})
            if done or stop or k == limit:
                break
            try:
                newton.factor()
                direction = newton.predictor_corrector()
            except np.linalg.LinAlgError as exc:
                status, message = "optimal_inaccurate", (
                    f"the Newton system became singular at iteration {k} ({exc}) "
                    f"with optimality {optimality:.2e} > tol={tol:.1e}; returning "
                    "the last iterate.")
                break
            alpha = min(1.0, STEP_FRACTION * it.max_step(direction))
            if alpha < MIN_STEP:
                status, message = "optimal_inaccurate", (
                    f"no progress at iteration {k} (step {alpha:.1e}) with "
                    f"optimality {optimality:.2e} > tol={tol:.1e}; returning the "
                    "last iterate.")
                break
            it.move(direction, alpha)
    except KeyboardInterrupt:
        stop = INTERRUPTED
    if finisher.result:
        status, message = "optimal", None
    elif finisher.stalled:
        status, message = "optimal_inaccurate", (
            f"the certificate stopped improving at {finisher.best_optimality:.2e} "
            f"> tol={tol:.1e} (iteration {k}): tol is likely below the precision "
            "reachable here; returning the best point.")
    elif stop:
        status, message = "user_limit", (
            f"{stop} at iteration {k} (optimality {optimality:.2e}).")
    elif status is None:
        status, message = "optimal_inaccurate", (
            f"max_iter={k} reached with optimality {optimality:.2e} > "
            f"tol={tol:.1e}; returning the last iterate.")
    blocks, mults = finisher.result or finisher.best or _weights(problem, system, it)
    return engine.Result(status, message or "", blocks, k, history.as_dict(),
                         monitor.start, mults, {"method": "interior_point"})


class Finisher:
    """Judges iterates by the certificate once the method's own gap estimate
    is within ``CHECK_FACTOR * tol``; prunes the certified point; keeps the
    best judged point and gives up after STALL_ITER judged iterations
    without improvement (``stalled``)."""

    def __init__(self, problem, system, tol, cone_tol):
        self.problem, self.system = problem, system
        self.tol, self.cone_tol = tol, cone_tol
        self.result = self.best = None
        self.best_optimality, self.stalled, self.since_best = np.inf, False, 0

    def judge(self, it, objective, optimality, violation):
        """(objective, optimality, done) for the iterate."""
        if optimality > CHECK_FACTOR * self.tol or violation > self.cone_tol:
            return objective, optimality, False
        problem = self.problem
        blocks, mults = _weights(problem, self.system, it)
        cert = relu_certificate(problem, **blocks, multipliers=mults)
        if not cert.satisfied(self.tol, self.cone_tol):
            blocks, mults, cert = self._polished(blocks, mults, cert)
        if cert.satisfied(self.tol, self.cone_tol):
            if self.system.soc:
                blocks = prune(problem, blocks, mults, self.tol, self.cone_tol)
            self.result = (blocks, mults)
            return cert.objective, cert.optimality, True
        self.since_best += 1
        if cert.optimality < self.best_optimality and cert.satisfied(np.inf,
                                                                     self.cone_tol):
            self.best, self.best_optimality = (blocks, mults), cert.optimality
            self.since_best = 0
        self.stalled = self.since_best >= STALL_ITER
        return cert.objective, cert.optimality, self.stalled

    def _polished(self, blocks, mults, cert):
        """The point after the solvers' group-scaling polish (each neuron's
        scale set optimally, :func:`cvxnn_fast.polish.polish`; a few ms), with
        NNLS-refitted multipliers where it comes within RESCUE_FACTOR tol, if
        that certifies better; else the point as it was.

        The raw iterate's certificate has a floor: its dual residual over lam
        (logistic, lam = 1e-3: ~6e-11 / 1e-3, a relative gap stuck at
        1.5e-8); the polished one reaches 6e-12 there.
        """
        problem = self.problem
        polished = polish(problem, blocks, mults)
        if polished is None:
            return blocks, mults, cert
        better = relu_certificate(problem, **polished, multipliers=mults)
        n, (c, P, d) = problem.n_samples, problem.weight_shape
        if (not better.satisfied(self.tol, self.cone_tol)
                and better.optimality <= RESCUE_FACTOR * self.tol
                and n * d * 2 * c * P <= MAX_NNLS_ENTRIES):
            refit = best_multipliers(problem, polished, hint=mults)
            refit_cert = relu_certificate(problem, **polished, multipliers=refit)
            if refit_cert.optimality < better.optimality:
                mults, better = refit, refit_cert
        if better.satisfied(self.tol, self.cone_tol) or (
                better.satisfied(np.inf, self.cone_tol)
                and better.optimality < cert.optimality):
            return polished, mults, better
        return blocks, mults, cert


def prune(problem, blocks, multipliers, tol, cone_tol):
    """Set to exactly zero the neurons an interior point leaves tiny.

    An interior-point iterate never has zero blocks; for group_l1 the inactive
    neurons end with norms near the barrier's scale. Blocks whose norm is below
    ``threshold * max norm`` are zeroed (all of them first), for the largest
    threshold in PRUNE_THRESHOLDS whose pruned point still meets the
    certificate. Where none does, the blocks stay as they are: zeroing
    changes the residual, the certificate's dual point, and on the bench_fast
    problem zeroing the 52 blocks below 1e-6 of the largest (they sum to
    ~5e-5 of lam's weight) raised the relative gap from 5e-7 to 3e-4;
    re-fitted multipliers (:func:`cvxnn_fast.polish.best_multipliers`), the
    group-scaling polish of the pruned point and two more iterations did not
    recover it.
    """
    norms = {k: np.linalg.norm(B, axis=2) for k, B in blocks.items()}
    top = max(float(v.max(initial=0.0)) for v in norms.values())
    for threshold in PRUNE_THRESHOLDS:
        small = {k: v <= threshold * top for k, v in norms.items()}
        pruned = {k: np.where(small[k][..., None], 0, B) for k, B in blocks.items()}
        cert = relu_certificate(problem, **pruned, multipliers=multipliers)
        if cert.satisfied(tol, cone_tol):
            return pruned
    return blocks


def _breakdown(problem, system, it, monitor, k, cause):
    raise NumericalBreakdown(
        f"fast_solve (interior point): {cause} at iteration {k}; check the data "
        "scaling (build_problem(..., standardize=True)) and lam.",
        None if not np.all(np.isfinite(it.x)) else Solution.from_weights(
            problem, status="solver_error", solver="fast",
            solve_time=time.monotonic() - monitor.start, n_iter=k,
            **_weights(problem, system, it)[0]))
