r"""Primal-dual interior-point method for both programs, every loss and penalty.

The program, with the weights stacked as blocks ``u_b`` (ReLU: b = (V or W,
output k, pattern i), ``B = 2 n_outputs P`` of them, sign ``+1`` for V and
``-1`` for W; gated ReLU: the ``n_outputs P`` blocks of U), is a conic
program with a smooth objective:

.. math::
    \min\ \frac{1}{n}\sum_j \ell(A u, Y)_j + \lam \sum_b t_b
    \quad\text{s.t.}\quad s_b = C_{i(b)} u_b \ge 0\ \text{(ReLU)},\
    (t_b, u_b) \in Q^{d+1},

with ``C_i = diag(2 D_i - 1) X`` (the cone constraints) and the second-order
cones ``Q`` for group_l1. The other penalties: l1 as orthant rows
``t_b - u_b >= 0, t_b + u_b >= 0`` (one t per entry), feature_group_l1 as
one second-order cone ``(t_f, U[:, :, f])`` per feature (and block V / W),
l2 as ``lam/2 ||u||^2`` in the objective; lam = 0 drops them (gated ReLU then
takes a proximal damping instead, :data:`newton_system.PROX`). It is solved by
Mehrotra's predictor-corrector method with Nesterov-Todd scaling
(:mod:`cvxnn_fast.interior.conic`), from an infeasible start, as in ECOS or Clarabel;
logistic and cross-entropy enter through their gradient and curvature at the
current point, as in a Newton method, with steps that move no prediction by
more than :data:`TRUST_REGION`. What is specific here is the Newton
system, never formed (:mod:`cvxnn_fast.interior.newton_system`): block diagonal plus
rank n, solved through one n x n Cholesky factor per output (cross-entropy:
one n c x n c), or, where P d is below n, one P d x P d factor per output in
weight space. One step costs :func:`estimated_flops`; :func:`unsupported`
and that estimate let ``fast_solve`` choose. Rank-deficient or (lam = 0)
badly scaled data are solved in other coordinates
(:mod:`cvxnn_fast.interior.reduction`).

Iterates are judged by :func:`cvxnn.core.certificates.certificate` (with the
multipliers ``z`` of the cone constraints for ReLU), like every other
solution, once the method's own gap estimate ``s^T z / |F|`` is within
``CHECK_FACTOR`` tol; where the raw iterate falls short, its group-scaling
polish (the first-order solvers' :func:`cvxnn_fast.common.polish.polish`, a few ms)
is judged too (:class:`Finisher`). The method stops when a certificate meets
``tol`` (and the cone violation ``cone_tol``). For the norm penalties, the
groups the barrier leaves tiny (group_l1: neurons, feature_group_l1: features,
l1: entries; the regularizer's own groups) are then set to exact zeros where
the certificate still holds (:func:`prune`).

Measurements and rejected variants: docs/design/interior-point.md.
"""

import time

import numpy as np

from cvxnn.core.certificates import certificate, has_duality_gap, relative_floor
from cvxnn.core.errors import NumericalBreakdown
from cvxnn.core.solution import Solution
from cvxnn.core.status import (
    INTERRUPTED,
    OPTIMAL,
    OPTIMAL_INACCURATE,
    SOLVER_ERROR,
    USER_LIMIT,
)
from cvxnn_fast.common.polish import Polisher, best_multipliers, polish
from cvxnn_fast.common.run import Result
from cvxnn_fast.interior import reduction
from cvxnn_fast.interior.newton_system import (
    REFINE_TOL,
    GatedSystem,
    ReluSystem,
    dense_capacitance,
    step_flops,
    use_weight_space,
)
from cvxnn_fast.interior.step import Iterate, Newton

MAX_ITER = 200
STEP_FRACTION = 0.99
REFINE_RELATIVE = 1e-6  # residual target relative to the gap estimate
# Stop when the certificate has not improved for STALL_ITER iterations after
# the gap estimate reached CHECK_FACTOR * tol (the best point is returned).
STALL_ITER = 5
# A polished point within RESCUE_FACTOR * tol gets NNLS-refitted multipliers.
RESCUE_FACTOR = 10.0
# Check the certificate once the method's own gap estimate s^T z / |F| is
# below CHECK_FACTOR * tol (the check costs about one operator application).
CHECK_FACTOR = 10.0
# A judged iterate that misses tol is polished once its certificate is below
# POLISH_PROGRESS times that of the last one polished: where the gap falls by
# a few percent a step (tiny lam, cross-entropy under the trust region), a
# polish every step cost 40% of a solve (17 polishes of 27 ms against 8 ms
# steps, docs/design/interior-point.md); where it falls fast, every step.
# The method's own gap estimate counts too: the raw certificate has a floor
# (see Finisher._polished), and where it sat there (5e-6, ReLU cross-entropy,
# 60 rows, the estimate falling 10x a step) it never halved, nothing was
# polished again and the solve stalled at tol 1e-7 / 1e-8, where a polish at
# the next step certifies 1.2e-9 (later iterates, nearer the boundary, no
# longer polish to it).
POLISH_PROGRESS = 0.5
# A step shorter than this ends the solve (no progress).
MIN_STEP = 1e-10
# Logistic and cross-entropy: no step moves a prediction by more than this
# (their curvature at the current point is the Newton model's; far steps
# made it diverge on badly scaled data, campaign problem 38).
TRUST_REGION = 2.0
PRUNE_THRESHOLDS = (np.inf, 1e-4, 1e-6, 1e-8)
PRUNE_COMPLETE, PRUNE_EXTRA = 1e-6, 3
LOSSES = ("squared", "logistic", "cross_entropy")
REGULARIZERS = ("group_l1", "feature_group_l1", "l1", "l2", None)


def unsupported(problem):
    """Why this method cannot solve ``problem`` ("" when it can)."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if problem.loss.name not in LOSSES:
        return (f"the interior-point method supports loss in {LOSSES}, "
                f"not {problem.loss.name!r}")
    if reg not in REGULARIZERS:
        return (f"the interior-point method supports regularizer in "
                f"{REGULARIZERS}, not {reg!r}")
    return ""


def estimated_flops(problem, weight_space=None):
    """Flops of one iteration (:func:`~cvxnn_fast.interior.newton_system.step_flops`):
    in weight space where that is cheaper
    (:func:`~cvxnn_fast.interior.newton_system.use_weight_space`), else the
    n x n Woodbury matrices and their factors. ``weight_space=False``: the
    n x n form's flops."""
    if weight_space is None:
        weight_space = use_weight_space(problem)
    return step_flops(problem, weight_space)


def estimated_entries(problem, weight_space=None):
    """Entries of one iteration's largest arrays: the Woodbury matrices (n x n
    per output; (n c)^2 for cross-entropy and feature_group_l1; P d x P d per
    output in weight space, (c P d)^2 for cross-entropy) and, for ReLU, the
    (2 c P, n) slacks of the cone constraints."""
    n = problem.n_samples
    c, P, d = problem.weight_shape
    relu = problem.formulation.has_cones
    if weight_space is None:
        weight_space = use_weight_space(problem)
    if weight_space:  # cross-entropy: one coupled (c P d) matrix
        matrices = (c * P * d) ** 2 if problem.loss.name == "cross_entropy" \
            else c * (P * d) ** 2
    elif dense_capacitance(problem):
        matrices = (n * c) ** 2
    else:
        matrices = c * n * n
    return matrices + (2 * c * P * n if relu else 0)


def _trust_step(system, dx):
    """Largest step whose predictions move by at most TRUST_REGION (losses
    other than squared, whose curvature model holds only nearby; inf for
    squared)."""
    if system.loss.name == "squared":
        return np.inf
    move = float(np.max(np.abs(system.predict(dx[:, system.offset:])), initial=0.0))
    return TRUST_REGION / move if move > 0 else np.inf


def _weights(problem, system, it):
    """(blocks, cone multipliers) of the iterate in the system's shapes."""
    o = system.offset
    shape, dtype = (system.c, system.P, system.d), problem.dtype
    u = it.x[:, o:]
    if not system.n_data_rows:  # gated ReLU
        return {"U": u.reshape(shape).astype(dtype)}, None
    half = system.half
    blocks = {"V": u[:half].reshape(shape).astype(dtype),
              "W": u[half:].reshape(shape).astype(dtype)}
    n = system.n
    z = it.z_lin[:, :n]
    multipliers = tuple(np.ascontiguousarray(m.T.reshape(n, *shape[:2]), dtype=dtype)
                        for m in (z[:half], z[half:]))
    return blocks, multipliers


def _objective(system, newton, it):
    """F at the iterate, from the predictions the residuals needed."""
    u = it.x[:, system.offset:]
    value = system.data_fit(newton.Yhat)
    if system.soc:
        value += system.lam * float(np.sum(np.linalg.norm(u, axis=1)))
    if system.l1:
        value += system.lam * float(np.sum(np.abs(u)))
    if system.fgl1:
        value += system.lam * float(np.sum(np.linalg.norm(system.gather(u), axis=1)))
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
    """Run the method; returns an :class:`~cvxnn_fast.common.run.Result`.

    ``optimality`` in the history is the certificate's (relative duality gap,
    or KKT residual when lam = 0) once the method's own gap estimate
    ``s^T z / |F|`` is within ``CHECK_FACTOR * tol``, the estimate before.
    Rank-deficient or (lam = 0) badly scaled data are solved in other
    coordinates (:mod:`cvxnn_fast.interior.reduction`) where that is the same
    program; iterates are judged on ``problem`` itself.
    """
    work, T = reduction.transform(problem)
    return _solve(problem, work, tol, cone_tol, max_iter, monitor,
                  lambda b: reduction.expand(b, T, problem.dtype))


def _solve(original, problem, tol, cone_tol, max_iter, monitor, expand):
    relu = problem.formulation.has_cones
    system = ReluSystem(problem) if relu else GatedSystem(problem)
    it = Iterate(system)
    finisher = Finisher(original, system, tol, cone_tol, expand)
    history, alpha = History(), np.nan
    stop = ended = None
    limit = min(max_iter, MAX_ITER)
    k, optimality = 0, np.inf
    # Without a duality gap (lam = 0) the certificate is the KKT residual;
    # the gap estimate is taken relative to the data fit at zero, as an
    # interpolating fit drives F to 0 (campaign problem 109).
    # With one, its floor follows the data fit at zero as the certificate's
    # does (cvxnn.core.certificates.gap_floor).
    zero_fit = system.data_fit(np.zeros_like(system.Y))
    floor = relative_floor(zero_fit) if has_duality_gap(problem) \
        else max(zero_fit, 1e-12)
    try:
        for k in range(limit + 1):  # noqa: B007 (k is the iteration count after)
            newton = Newton(system, it)
            if not (np.isfinite(newton.mu) and np.all(np.isfinite(newton.r_x))):
                _breakdown(problem, system, it, monitor, k,
                           "the iterate became NaN/inf")
            objective = _objective(system, newton, it)
            violation = float(max(0.0, -np.min(newton.cones[:, :system.n_data_rows],
                                               initial=0.0)))
            optimality = newton.complementarity / max(abs(objective), floor)
            newton.refine_tol = max(REFINE_TOL, REFINE_RELATIVE * min(optimality, 1.0))
            objective, optimality, done, judged = finisher.judge(
                it, objective, optimality, violation)
            history.add(monitor.elapsed(), objective, optimality, alpha, violation)
            stop = monitor.check({"iteration": k, "time": monitor.elapsed(),
                                  "objective": objective, "optimality": optimality,
                                  "cone_violation": violation,
                                  "weights": _reported(judged, problem, system, it,
                                                       expand)})
            if done or stop or k == limit:
                break
            try:
                newton.factor()
                direction = newton.predictor_corrector()
            except np.linalg.LinAlgError as exc:
                ended = f"the Newton system became singular at iteration {k} ({exc})"
                break
            alpha = min(1.0, STEP_FRACTION * it.max_step(direction),
                        _trust_step(system, direction[0]))
            if alpha < MIN_STEP:
                ended = f"no progress at iteration {k} (step {alpha:.1e})"
                break
            it.move(direction, alpha)
    except KeyboardInterrupt:
        stop = INTERRUPTED
    if finisher.result or finisher.best:
        blocks, mults = finisher.result or finisher.best
    else:
        blocks, mults = _weights(problem, system, it)
        blocks = expand(blocks)
    cert = None
    if not finisher.result:  # the messages quote the returned weights
        cert = certificate(original, **blocks, multipliers=mults)
        if cert.satisfied(tol, cone_tol):
            finisher.result = (blocks, mults)  # they certify after all
        optimality = cert.optimality
    returned = "the best point judged" if finisher.best else "the last iterate"
    miss = f"optimality {optimality:.2e} > tol={tol:.1e}"
    if cert is not None and cert.optimality <= tol and cert.cone_violation is not None:
        miss = f"cone violation {cert.cone_violation:.2e} > cone_tol={cone_tol:.1e}"
    if finisher.result:
        status, message = OPTIMAL, None
    elif ended:
        status, message = OPTIMAL_INACCURATE, (
            f"{ended} with {miss}; returning {returned}.")
    elif finisher.stalled:
        status, message = OPTIMAL_INACCURATE, (
            f"the certificate stopped improving (iteration {k}) with {miss}: the "
            f"tolerances are likely below the precision reachable here; returning "
            f"{returned}.")
    elif stop:
        status, message = USER_LIMIT, (
            f"{stop} at iteration {k} (optimality {optimality:.2e}).")
    else:
        status, message = OPTIMAL_INACCURATE, (
            f"max_iter={k} reached with {miss}; returning {returned}.")
    return Result(status, message or "", blocks, k, history.as_dict(),
                         monitor.start, mults, {"method": "interior_point"}, cert)


def _reported(judged, problem, system, it, expand):
    """The callback's ``weights``: the point the report's numbers are of (the
    finisher's polished or pruned one where it judged), as a fresh copy."""
    if judged is not None:
        return lambda: {name: B.copy() for name, B in judged.items()}
    return lambda: expand(_weights(problem, system, it)[0])


class Finisher:
    """Judges iterates by the certificate once the method's own gap estimate
    is within ``CHECK_FACTOR * tol``; prunes the certified point; keeps the
    best judged point and gives up after STALL_ITER judged iterations
    without improvement (``stalled``)."""

    def __init__(self, problem, system, tol, cone_tol, expand):
        self.problem, self.system, self.expand = problem, system, expand
        self.tol, self.cone_tol = tol, cone_tol
        self.result = self.best = None
        self.best_optimality, self.stalled, self.since_best = np.inf, False, 0
        self.extra = 0  # certified iterations so far
        # certificate and gap estimate of the last iterate polished
        self.last_polished = self.last_estimate = np.inf
        # ReLU, and small enough for per-neuron NNLS (the solvers' rule).
        self.refit = Polisher(problem, tol, cone_tol).refine

    def judge(self, it, objective, optimality, violation):
        """(objective, optimality, done, judged) for the iterate: judged is
        the point whose certificate gave the numbers (None: not judged, the
        method's own estimate)."""
        if optimality > CHECK_FACTOR * self.tol or violation > self.cone_tol:
            return objective, optimality, False, None
        problem = self.problem
        blocks, mults = _weights(problem, self.system, it)
        blocks = self.expand(blocks)
        if not all(np.all(np.isfinite(B)) for B in blocks.values()):
            raise NumericalBreakdown(
                f"fast_solve (interior point): the weights overflow {problem.dtype} "
                "when carried back to the problem's coordinates; check the data "
                "scaling (build_problem(..., standardize=True)).", None)
        cert = certificate(problem, **blocks, multipliers=mults)
        if not cert.satisfied(self.tol, self.cone_tol) and (
                cert.optimality <= POLISH_PROGRESS * self.last_polished
                or optimality <= POLISH_PROGRESS * self.last_estimate):
            self.last_polished, self.last_estimate = cert.optimality, optimality
            blocks, mults, cert = self._polished(blocks, mults, cert)
        if cert.satisfied(self.tol, self.cone_tol):
            complete = True
            if _has_groups(problem):
                blocks, complete = prune(problem, blocks, mults, self.tol,
                                         self.cone_tol)
                cert = certificate(problem, **blocks, multipliers=mults)
            self.result = (blocks, mults)
            self.extra += 1
            gated = not problem.formulation.has_cones
            return (cert.objective, cert.optimality,
                    complete or not gated or self.extra > PRUNE_EXTRA, blocks)
        self.since_best += 1
        if cert.optimality < self.best_optimality and cert.satisfied(np.inf,
                                                                     self.cone_tol):
            self.best, self.best_optimality = (blocks, mults), cert.optimality
            self.since_best = 0
        self.stalled = self.since_best >= STALL_ITER
        return cert.objective, cert.optimality, self.stalled, blocks

    def _polished(self, blocks, mults, cert):
        """The point after the solvers' group-scaling polish (each neuron's
        scale set optimally, :func:`cvxnn_fast.common.polish.polish`; a few ms), with
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
        better = certificate(problem, **polished, multipliers=mults)
        if (self.refit and not better.satisfied(self.tol, self.cone_tol)
                and better.optimality <= RESCUE_FACTOR * self.tol):
            refit = best_multipliers(problem, polished, hint=mults)
            refit_cert = certificate(problem, **polished, multipliers=refit)
            if refit_cert.optimality < better.optimality:
                mults, better = refit, refit_cert
        if better.satisfied(self.tol, self.cone_tol) or (
                better.satisfied(np.inf, self.cone_tol)
                and better.optimality < cert.optimality):
            return polished, mults, better
        return blocks, mults, cert


def _has_groups(problem):
    """Whether the penalty is a sum of group norms (group_l1, feature_group_l1,
    l1) with lam > 0, the programs whose solutions have exact-zero groups."""
    return problem.lam > 0 and problem.regularizer.is_norm


def _group_norms(problem, blocks):
    """Each block's group norms under the problem's penalty
    (:meth:`~cvxnn.core.regularizers.GroupNorm.group_norms`), shaped to
    broadcast against the block: (c, P, 1) for group_l1, (1, 1, d) for
    feature_group_l1, (c, P, d) for l1. Cost: one pass over the weights."""
    return {k: problem.regularizer.group_norms(B) for k, B in blocks.items()}


def prune(problem, blocks, multipliers, tol, cone_tol):
    """Set to exactly zero the groups an interior point leaves tiny.

    An interior-point iterate never has zero groups; the inactive groups of a
    norm penalty (:func:`_group_norms`: neurons, features or entries) end with
    norms near the barrier's scale. Groups whose norm is below
    ``threshold * max norm`` are zeroed (all of them first), for the largest
    threshold in PRUNE_THRESHOLDS whose pruned point still meets the
    certificate. Returns (blocks, complete): complete when no non-zero group
    below ``PRUNE_COMPLETE`` times the largest is left. Cost: one certificate
    per threshold tried.

    Zeroing changes the residual, the certificate's dual point, so ReLU
    solutions may keep tiny groups; gated ReLU solutions get up to
    PRUNE_EXTRA more iterations (:class:`Finisher`) to clear theirs
    (docs/design/interior-point.md).
    """
    norms = _group_norms(problem, blocks)
    top = max(float(v.max(initial=0.0)) for v in norms.values())
    for threshold in PRUNE_THRESHOLDS:
        small = {k: v <= threshold * top for k, v in norms.items()}
        pruned = {k: np.where(small[k], 0, B) for k, B in blocks.items()}
        cert = certificate(problem, **pruned, multipliers=multipliers)
        if cert.satisfied(tol, cone_tol):
            blocks = pruned
            norms = {k: np.where(small[k], 0.0, v) for k, v in norms.items()}
            break
    tiny = any(np.any((v > 0) & (v <= PRUNE_COMPLETE * top)) for v in norms.values())
    return blocks, not tiny


def _breakdown(problem, system, it, monitor, k, cause):
    raise NumericalBreakdown(
        f"fast_solve (interior point): {cause} at iteration {k}; check the data "
        "scaling (build_problem(..., standardize=True)) and lam.",
        None if not np.all(np.isfinite(it.x)) else Solution.from_weights(
            problem, status=SOLVER_ERROR, solver="fast",
            solve_time=time.monotonic() - monitor.start, n_iter=k,
            **_weights(problem, system, it)[0]))
