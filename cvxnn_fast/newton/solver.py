r"""Newton-CG for the gated ReLU program at large n (see docs/design/newton.md).

Each outer step, at weights U with predictions ``A U``:

1. gradient ``G = A^T grad loss / n`` (one adjoint product), the certificate
   of :mod:`cvxnn.core.certificates` (the same functions judge every
   backend), and the penalty's minimum-norm pseudo-gradient ``r``; the free
   groups are the nonzero ones and the zero ones whose gradient exceeds lam
   (the dual point screens the rest out of the step);
2. a Newton direction on the free groups: preconditioned CG on
   ``(H + lam d^2R(U)) Delta = -r`` with Hessian products of two masked
   GEMMs (:mod:`cvxnn_fast.newton.curvature`), the Kronecker preconditioner,
   and the forcing tolerance ``min(FORCING, sqrt(optimality))``;
3. a backtracking line search on the objective along the direction, groups
   that leave their orthant set to zero (group-wise OWL-QN), so that groups
   enter and leave the support; where it finds no decrease, one proximal
   gradient step instead.

A step shorter than ``SHORT_STEP`` is followed by one proximal gradient step.
Large n (``SAMPLE_MIN_N``): the same program on a row subsample warm-starts
the solve, and CG's Hessian products run on a row sample (the gradient, line
search and certificate on all rows).

Memory: a few arrays of the weights' size and of the predictions' size
(n, c), plus the operator's row-block scratch; never n x P d.

The products with the data come from ``ops``
(:class:`cvxnn_fast.newton.products.Products`: the host's compiled operator
by default; :mod:`cvxnn_fast.pytorch.newton` runs them on a PyTorch device).
"""

import warnings

import numpy as np

from cvxnn.core.certificates import _assemble
from cvxnn.core.errors import ConvergenceWarning, NumericalBreakdown
from cvxnn.core.status import (
    INTERRUPTED,
    OPTIMAL,
    OPTIMAL_INACCURATE,
    USER_LIMIT,
)
from cvxnn_fast.common.run import Result
from cvxnn_fast.newton.curvature import Penalty, loss_hessian
from cvxnn_fast.newton.products import Products

LOSSES = ("squared", "logistic", "cross_entropy")
REGULARIZERS = ("group_l1", "feature_group_l1", "l1", "l2", None)
# Inexact Newton: CG stops at relative residual min(FORCING, sqrt(optimality)),
# after at most CG_MAX_ITER products per step.
FORCING = 0.1
CG_MAX_ITER = 100
# Levenberg-Marquardt damping mu = rho * (mean diagonal of the preconditioner)
# added to the Hessian for the non-quadratic losses: rho starts at RHO_START,
# shrinks by 4 after a full step, grows by 4 after a step below 1/4.
RHO_START = 1e-2
RHO_MIN = 1e-6
# Non-quadratic losses from a cold start: R-FISTA runs until the relative
# gap is below SWITCH (or tol), then Newton-CG takes over from its iterate.
SWITCH = 3e-2
FIRST_MAX_ITER = 300
ARMIJO = 1e-4
# A Newton step shorter than this is followed by a proximal gradient step.
SHORT_STEP = 0.25
MAX_HALVINGS = 30
# Large n from a cold start: the same program on a seeded subsample of
# SAMPLE_FRACTION of the rows (n >= SAMPLE_MIN_N) is solved to SAMPLE_TOL first
# and warm-starts the full solve (docs/design/newton.md has the measurements).
SAMPLE_MIN_N = 100_000
SAMPLE_FRACTION = 0.1
SAMPLE_TOL = 1e-2
HESSIAN_FRACTION = 0.1
HESSIAN_ROWS_PER_WEIGHT = 20
# With ``stall=True`` (``method="auto"``) a solve whose optimality has not
# fallen by STALL_FACTOR over the last STALL_STEPS Newton steps ends with
# info["stalled"], and R-FISTA goes on from its iterate (docs/design/newton.md:
# on Fashion-MNIST features Newton-CG from zero makes little progress).
STALL_STEPS = 10
STALL_FACTOR = 0.5
# Any solve (``stall`` or not) whose best optimality has not improved for
# PLATEAU_STEPS steps is at the precision the dtype allows: it ends
# ``optimal_inaccurate`` with its best point (float32 at tol 1e-6: 10,000
# steps wandered from 6e-5 to 4e-2 in 8.6 s on a 25-row problem).
PLATEAU_STEPS = 50


def unsupported(problem):
    """Why this method cannot solve ``problem`` ("" when it can)."""
    if problem.formulation.name != "gated_relu":
        return (f"the Newton-CG method solves gated_relu only, not "
                f"{problem.formulation.name!r}")
    if problem.loss.name not in LOSSES:
        return (f"the Newton-CG method supports loss in {LOSSES}, not "
                f"{problem.loss.name!r}")
    if problem.regularizer.name not in REGULARIZERS:
        return (f"the Newton-CG method supports regularizer in {REGULARIZERS}, "
                f"not {problem.regularizer.name!r}")
    return ""


def preferred(problem):
    """Whether ``method="auto"`` takes this method: the regime where it was
    measured faster than R-FISTA (docs/design/newton.md): gated ReLU, squared
    loss, group_l1, and rows enough for the subsampled Hessian."""
    return (not unsupported(problem) and problem.loss.name == "squared"
            and problem.regularizer.name == "group_l1" and problem.lam > 0
            and _hessian_rows(problem) is not None)


class Point:
    """Weights with their predictions, gradient and certificate."""

    def __init__(self, problem, U, Yhat=None, ops=None):
        ops = ops or Products(problem)
        self.U = U
        if Yhat is None:
            Yhat = (ops.predict(U) if U.any()
                    else np.zeros(problem.y.shape, problem.dtype))
        self.Yhat = Yhat
        self.S = problem.loss.gradient(Yhat, problem.y).astype(problem.dtype)
        self.G = ops.adjoint(self.S)
        self.G /= problem.n_samples
        self.cert = _assemble(problem, {"U": U}, [self.G], self.S, None, Yhat=Yhat)
        if not np.isfinite(self.cert.objective):
            raise NumericalBreakdown(
                "fast_solve: the objective became NaN/inf in the Newton-CG "
                "method; check the data scaling (build_problem(..., "
                "standardize=True)) and lam.")

    @property
    def objective(self):
        return self.cert.objective

    @property
    def optimality(self):
        return self.cert.optimality


class Step:
    """The quadratic model at a point: Hessian products, preconditioner."""

    def __init__(self, problem, point, penalty, kron, rho, sample=None, ops=None):
        self.problem, self.penalty = problem, penalty
        self.ops = self.hops = ops or Products(problem)
        self.r, self.free = penalty.pseudo_gradient(point.G, point.U)
        self.h_apply, h = loss_hessian(problem.loss, point.Yhat, problem.y)
        # Subsampled Hessian: products on the rows of ``sample`` (rows, Problem,
        # its products).
        self.sample = sample
        self.hp = problem
        if sample is not None:
            rows, self.hp, self.hops = sample
            self.h_apply, _ = loss_hessian(problem.loss, point.Yhat[rows],
                                           self.hp.y)
        self.pen_curv = penalty.curvature(point.U)
        self.kron = kron
        self.mu = rho * kron.scale(h)
        kron.update(h, self.free.any(axis=2), _shift(penalty, point.U) + self.mu)
        self.products = 0

    def hessian(self, V):
        """``H V`` on the free groups: two masked GEMMs."""
        p = self.hp
        AV = self.hops.predict(V)
        HV = self.hops.adjoint(self.h_apply(AV).astype(p.dtype, copy=False))
        HV /= p.n_samples
        HV += self.pen_curv(V)
        if self.mu:
            HV += self.mu * V
        HV *= self.free
        self.products += 1
        return HV

    def precondition(self, R):
        return self.kron.apply(R) * self.free

    def direction(self, rtol, max_iter, out_of_time):
        """Preconditioned CG on ``H Delta = -r``: (Delta, iterations)."""
        return self._cg(rtol, max_iter, out_of_time)

    def _cg(self, rtol, max_iter, out_of_time):
        b = -self.r * self.free
        b_norm = float(np.linalg.norm(b))
        x = np.zeros_like(b)
        if b_norm == 0:
            return x, 0
        res = b.copy()
        z = self.precondition(res)
        p = z.copy()
        rz = float(np.vdot(res, z))
        for it in range(1, max_iter + 1):
            Hp = self.hessian(p)
            curv = float(np.vdot(p, Hp))
            if not curv > 0:
                return x, it
            alpha = rz / curv
            x += alpha * p
            res -= alpha * Hp
            if float(np.linalg.norm(res)) <= rtol * b_norm or out_of_time():
                return x, it
            z = self.precondition(res)
            rz_new = float(np.vdot(res, z))
            p *= rz_new / rz
            p += z
            rz = rz_new
        return x, max_iter


def _shift(penalty, U):
    """The preconditioner's shift: the penalty's typical curvature."""
    if penalty.smooth_l2:
        return np.full(U.shape[0], penalty.lam)
    if penalty.is_norm and penalty.axis is not None:
        norms = penalty.norms(U)
        nz = norms[norms > 0]
        if nz.size:
            return np.full(U.shape[0], penalty.lam / float(np.median(nz)))
    return np.zeros(U.shape[0])


def _damping(rho, alpha):
    """The next damping factor after a step of length alpha."""
    if rho == 0.0:
        return 0.0
    if alpha >= 1.0:
        return max(rho / 4.0, RHO_MIN)
    return rho * 4.0 if alpha < 0.25 else rho


def _line_search(problem, point, step, delta, ops):
    """Backtracking along ``delta`` with the orthant projection; the accepted
    Point and step length, or (None, 0) when no decrease is found or the
    step cannot move U: ``delta`` zero or not finite, or a trial point equal
    to U (the step below U's rounding, or nonzero only on zero groups that
    leave their orthant, which no shorter step changes)."""
    if not (np.all(np.isfinite(delta)) and delta.any()):
        return None, 0.0
    pen = step.penalty
    xi = pen.orthant(point.U, step.r)
    F0 = point.objective
    slack = 4 * np.finfo(problem.dtype).eps * abs(F0)
    alpha = 1.0
    for _ in range(MAX_HALVINGS):
        T, _ = pen.project(point.U + alpha * delta, xi)
        T = T.astype(problem.dtype, copy=False)
        if np.array_equal(T, point.U):
            return None, 0.0
        # Fresh products, one GEMM per trial: predictions updated as
        # Yhat + alpha A delta drift by rounding, and the method then
        # minimizes (and reports) the drifted objective (float32, 10,000
        # steps: the message said 2.2e-5, the weights had 4.2e-2).
        Yt = ops.predict(T)
        Ft = problem.data_fit(Yt) + problem.penalty({"U": T})
        bound = F0 + ARMIJO * float(np.vdot(step.r, T - point.U))
        if np.isfinite(Ft) and Ft <= bound + slack:
            return Point(problem, T, Yt, ops), alpha
        alpha *= 0.5
    return None, 0.0


def _prox_step(problem, point, t, ops):
    """One proximal gradient step with backtracking from step t; (Point, t)."""
    reg, lam = problem.regularizer, problem.lam
    f0 = problem.data_fit(point.Yhat)
    for _ in range(MAX_HALVINGS):
        T = (point.U - t * point.G).astype(problem.dtype)
        if lam > 0:
            T = reg.prox(T, t * lam)
        Yt = ops.predict(T)
        diff = T - point.U
        bound = f0 + float(np.vdot(point.G, diff)) + float(np.vdot(diff, diff)) / (
            2 * t)
        if problem.data_fit(Yt) <= bound * (1 + 1e-12):
            return Point(problem, T, Yt, ops), t
        t *= 0.5
    return None, t


def _record(history, it, monitor, point, alpha, cg):
    history["time"].append(monitor.elapsed())
    history["objective"].append(point.objective)
    history["optimality"].append(point.optimality)
    history["step_size"].append(alpha)
    history["cg_iterations"].append(cg)
    info = {"iteration": it, "time": history["time"][-1],
            "objective": point.objective, "optimality": point.optimality,
            "weights": lambda: {"U": point.U.copy()}}
    return monitor.check(info)


def _converged(problem, point, tol, ops):
    """(point, whether it meets tol). Points carry fresh products of their
    weights (see _line_search: accumulated ones had drifted, float32,
    n = 20,000: 1.2e-7 on them, 2.4e-6 on fresh ones)."""
    return point, point.optimality is not None and point.optimality <= tol


def _stalled(history):
    """Whether the optimality fell by less than STALL_FACTOR over the last
    STALL_STEPS steps."""
    opt = history["optimality"]
    return (len(opt) > STALL_STEPS and opt[-1] is not None
            and opt[-1 - STALL_STEPS] is not None
            and opt[-1] > STALL_FACTOR * opt[-1 - STALL_STEPS])


def _why_stuck(problem, point, tol):
    """Why Newton-CG made no progress: the dtype's precision where the
    certificate is near it, else the method (a singular Hessian where the
    rows are fewer than the weights: an l1 problem of 8 rows and 65 weights
    stalled at 1.8e-3 where R-FISTA and the interior point certify)."""
    if point.optimality is None or \
            point.optimality <= np.sqrt(np.finfo(problem.dtype).eps):
        return f"tol={tol:.1e} is likely below the precision reachable in this dtype"
    return ("Newton-CG makes no progress here (method='fista' or 'auto' may "
            "do better)")


def _iterate(problem, point, tol, max_iter, monitor, history, counts, ops,
             stall=False):
    """The Newton loop; returns (point, status, message). With ``stall``, a
    stalled solve ends (``counts["stalled"]``; see STALL_STEPS)."""
    penalty, kron = Penalty(problem), ops.kronecker(problem)
    sample = _hessian_sample(problem, ops)
    t_prox = 1.0
    rho = 0.0 if problem.loss.name == "squared" else RHO_START

    def out_of_time():
        return ops.agree(monitor.time_limit is not None
                         and monitor.elapsed() >= monitor.time_limit)

    stop = ops.agree_stop(_record(history, 0, monitor, point, 0.0, 0))
    best = (point.optimality if point.optimality is not None else np.inf, 0, point)
    for it in range(1, max_iter + 1):
        point, done = _converged(problem, point, tol, ops)
        if done:
            return point, OPTIMAL, ""
        if stop:
            return point, USER_LIMIT, (
                f"{stop} at iteration {it - 1} (optimality "
                f"{point.optimality:.2e}).")
        step = Step(problem, point, penalty, kron, rho, sample, ops)
        rtol = min(FORCING, np.sqrt(max(point.optimality or 1.0, 1e-12)))
        delta, cg = step.direction(rtol, CG_MAX_ITER, out_of_time)
        new, alpha = _line_search(problem, point, step, delta, ops)
        if new is None or alpha < SHORT_STEP:
            # Groups crossing zero cut the Newton step short: a proximal
            # gradient step (from the Newton point, if any) moves them.
            cleaned, t_prox = _prox_step(problem, new or point, t_prox, ops)
            t_prox *= 2.0
            new = cleaned or new
        rho = _damping(rho, alpha)
        counts["cg"] += cg
        counts["products"] += step.products
        if new is None:
            return point, OPTIMAL_INACCURATE, (
                f"no decrease found at iteration {it} (optimality "
                f"{point.optimality:.2e}): {_why_stuck(problem, point, tol)}; "
                "returning the last iterate.")
        point = counts["point"] = new
        stop = ops.agree_stop(_record(history, it, monitor, point, alpha, cg))
        if point.optimality is not None and point.optimality < best[0]:
            best = (point.optimality, it, point)
        elif not stop and it - best[1] >= PLATEAU_STEPS:
            point = counts["point"] = best[2]
            return point, OPTIMAL_INACCURATE, (
                f"the certificate stopped improving at {point.optimality:.2e} > "
                f"tol={tol:.1e} (iteration {best[1]}; {PLATEAU_STEPS} steps "
                f"without a better one): {_why_stuck(problem, point, tol)}; "
                "returning the best point.")
        if stall and not stop and _stalled(history):
            counts["stalled"] = True
            return point, OPTIMAL_INACCURATE, (
                f"stalled at iteration {it} (optimality {point.optimality:.2e}, "
                f"{history['optimality'][-1 - STALL_STEPS]:.2e} "
                f"{STALL_STEPS} steps before).")
    point, done = _converged(problem, point, tol, ops)
    if done:
        return point, OPTIMAL, ""
    if stop:
        return point, USER_LIMIT, f"{stop} at iteration {max_iter}."
    return point, OPTIMAL_INACCURATE, (
        f"max_iter={max_iter} reached with optimality {point.optimality:.2e} > "
        f"tol={tol:.1e}; returning the last iterate.")


def _hessian_rows(problem):
    """Rows of the subsampled Hessian at large n, else None."""
    n = problem.n_samples
    _, P, d = problem.weight_shape
    rows = max(HESSIAN_FRACTION * n, HESSIAN_ROWS_PER_WEIGHT * P * d)
    return None if n < SAMPLE_MIN_N or rows > n / 4 else rows


def _hessian_sample(problem, ops):
    """(rows, the program on them, their products) for a subsampled Hessian
    at large n, else None."""
    rows = _hessian_rows(problem)
    if rows is None:
        return None
    return ops.sample(problem, rows / problem.n_samples, random_state=1)


def _sample_start(problem, tol, max_iter, monitor, ops, stall=False):
    """Warm start: this method on a row subsample to ``max(tol, SAMPLE_TOL)``;
    (its weights, whether the time limit or the callback stopped it, whether
    it stalled)."""
    _, sub, sub_ops = ops.sample(problem, SAMPLE_FRACTION, random_state=0)
    U0 = np.zeros(problem.weight_shape, problem.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = solve_gated(sub, U0, max(tol, SAMPLE_TOL), max_iter, monitor,
                             sub_ops, stall)
    monitor.next_phase()
    return (result.blocks["U"], result.status == USER_LIMIT,
            bool(result.info.get("stalled")))


def _counts(cg=0, products=0, first_order=0, stalled=False):
    """The info a Newton-CG Result carries, whichever way it ends."""
    return {"cg_iterations": cg, "hessian_products": products,
            "first_order_iterations": first_order, "stalled": bool(stalled)}


def solve_gated(problem, U0, tol, max_iter, monitor, ops=None, stall=False):
    """Newton-CG on the gated ReLU program from U0 (see the module docstring);
    the products with the data from ``ops`` (default: the host's). With
    ``stall``, a solve that stalls (here or in its subsample start) ends with
    ``info["stalled"]`` (see STALL_STEPS)."""
    ops = ops or Products(problem)
    history = {k: [] for k in ("time", "objective", "optimality", "step_size",
                               "cg_iterations")}
    U0 = np.ascontiguousarray(U0, problem.dtype)
    first = None
    if problem.n_samples >= SAMPLE_MIN_N and not U0.any():
        U0, stopped, stalled = _sample_start(problem, tol, max_iter, monitor, ops,
                                             stall)
        if stopped or stalled:  # time limit, callback or Ctrl-C; or stalled
            status, message = ((USER_LIMIT, "stopped during the subsample warm start.")
                               if stopped else (OPTIMAL_INACCURATE,
                                                "stalled in the subsample warm start."))
            return Result(status, message, {"U": U0}, 0,
                          {k: np.zeros(0) for k in history}, monitor.start,
                          info=_counts(stalled=stalled and not stopped))
    if problem.loss.name != "squared" and not U0.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            first = ops.first_order(problem, U0, max(tol, SWITCH),
                                    min(max_iter, FIRST_MAX_ITER), monitor)
        if first.status == OPTIMAL and first.stop and tol < SWITCH:
            # converged to SWITCH as the stop came: the stop still ends the solve
            first.status, first.message = USER_LIMIT, (
                f"{first.stop} at iteration {first.n_iter}, at the end of the "
                "first-order phase.")
        if first.status == USER_LIMIT or (first.status == OPTIMAL and tol >= SWITCH):
            first.info.update(_counts(first_order=first.n_iter))
            return first
        U0 = first.blocks["U"]
        monitor.next_phase()
    point = Point(problem, U0, ops=ops)
    counts = {"cg": 0, "products": 0, "point": point}
    try:
        point, status, message = _iterate(problem, point, tol, max_iter, monitor,
                                          history, counts, ops, stall)
    except KeyboardInterrupt:
        point, status, message = counts["point"], USER_LIMIT, INTERRUPTED
    n_iter = max(len(history["time"]) - 1, 0)
    history = {k: np.asarray(v) for k, v in history.items()}
    info = _counts(counts["cg"], counts["products"],
                   0 if first is None else first.n_iter, counts.get("stalled"))
    if first is not None:
        history = {k: np.concatenate([first.history.get(k, np.zeros(
            first.n_iter + 1)), v]) for k, v in history.items()}
    return Result(status, message, {"U": point.U.copy()}, n_iter, history,
                  monitor.start, info=info)
