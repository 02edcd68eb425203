"""Driver of the compiled R-FISTA loop: workspace, chunks, progress, statuses."""

import time

import numpy as np

from cvxnn.core import operator
from cvxnn.core.certificates import (
    _gradient_scale,
    certificate,
    gap_floor,
    has_duality_gap,
)
from cvxnn.core.errors import NumericalBreakdown
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.solution import Solution
from cvxnn.core.status import (
    INTERRUPTED,
    OPTIMAL,
    OPTIMAL_INACCURATE,
    SOLVER_ERROR,
    USER_LIMIT,
)
from cvxnn_fast.common.polish import Polisher
from cvxnn_fast.common.run import Result
from cvxnn_fast.fista import _fista
from cvxnn_fast.fista import feature_metric as features
from cvxnn_fast.fista import preconditioner as metric

K = _fista.CONSTANTS
CHUNK_SECONDS = 0.25
# A run stopped on a limit returns its best-judged iterate where that judged
# below this fraction of the last one's optimality (and certifies better).
BEST_BY = 0.8
HISTORY_ROWS = 4096  # first allocation of the per-iteration history
# Line search: the step shrinks by BACKTRACK until the bound holds and grows by
# GROW after every iteration (docs/design/fista.md says why these values).
BACKTRACK = 0.5
GROW = 1.1
# Per-output steps (cross-entropy and logistic; docs/design/fista.md,
# "Per-output steps"): at most this ratio between two outputs' steps.
MAX_OUTPUT_SCALE = 10.0
SCALE_EVERY = 10  # iterations between updates (and at every restart)
# A converged gated run is confirmed by the returned weights' own certificate
# (the loop judges y through products it updates rather than recomputes, in
# the working dtype, and on X Q in the feature metric); where that misses
# tol, the run goes on to a tighter target of its own, at most this often.
CONFIRMATIONS = 3
# Largest second derivative of each loss (for the initial step size).
CURVATURE = {"squared": 1.0, "logistic": 0.25, "cross_entropy": 0.5}


class Workspace:
    """Every array the compiled loop touches, allocated once per solve."""

    def __init__(self, problem, kind, x0, max_iter, beta=0.0, per_output=False):
        n, c = problem.y.shape
        rows, d = x0.shape
        dtype = problem.dtype
        self.kind = kind
        self.x = np.array(x0, dtype=dtype, order="C")  # a copy: never the caller's
        self.y = self.x.copy()
        self.x_new = np.empty_like(self.x)
        self.grad = np.empty_like(self.x)
        self.Z_x = self.products(problem, self.x)
        self.Z_y = self.Z_x.copy()
        self.Z_new = np.empty_like(self.Z_x)
        self.S = np.empty((n, c), dtype)
        gated = kind == K["GATED"]
        # GATED: scratch of the per-output scales' loss curvature.
        self.Yhat = np.empty((n, c) if per_output or not gated else (1, 1), dtype)
        self.Yhat_new = np.empty_like(self.Yhat)
        self.work = np.empty(
            (operator.block_rows(n, rows, self.x.itemsize) if gated else n, rows),
            dtype)
        self.beta = beta  # of the pattern-mean metric (GATED; 0: Euclidean)
        self.metric_m = np.zeros((c, d))
        self.metric_work = np.empty(metric.work_size(rows // c, d))
        # GATED in a metric: its float64 gradient step (the prox's input).
        self.stepped = np.empty((rows, d) if gated and beta > 0 else (0, 0))
        # GATED on X Q (use_feature_metric): the feature metric's state;
        # empty: none.
        self.feat = self.feat_roots = self.feat_work = np.empty(0)
        self.feat_shifts = np.empty((0, 0))
        self.per_output = bool(per_output)
        self.out_scale = np.ones(c)
        self.state = np.zeros(K["N_STATE"])
        self.state[K["S_T"]] = 1.0
        self.max_iter = max_iter
        # When the driver last reported: a chunk gets the rest of
        # CHUNK_SECONDS, so that kernel calls cut short (a subproblem solved,
        # a polish pause) do not put the next report off.
        self.last_report = time.monotonic()
        # Rows grow by doubling (history_limit): max_iter may be huge.
        rows = min(max_iter + 1, HISTORY_ROWS)
        self.history = np.full((rows, K["N_HISTORY"]), np.nan)
        # GATED: the best-judged iterate seen at a chunk's end and its loop
        # optimality (every iteration where one takes longer than a chunk:
        # the large problems a time limit stops)
        self.best, self.best_opt = None, np.inf

    def note_best(self):
        """Keep y if its loop optimality is the best seen at a chunk's end.
        Where the dual point oscillates (raw pixels: the squared loss's gap
        0.1 at one iteration, 0.24 at the last) a stop on a limit can return
        the best-certified iterate rather than the last (:func:`solve_gated`)."""
        opt = self.state[K["S_OPT"]]
        if self.kind == K["GATED"] and self.state[K["S_EVALUATED"]] > 0 \
                and opt < self.best_opt:
            if self.best is None:
                self.best = np.empty_like(self.y)
            self.best[...] = self.y
            self.best_opt = opt

    def use_feature_metric(self, m, c):
        """Run in the feature metric of weights m (d,): the group prox's
        roots (rows,), the spike part's shifts (c, d) and scratch."""
        rows, d = self.x.shape
        self.feat, self.feat_roots = m, np.zeros(rows)
        self.feat_shifts = np.zeros((c, d))
        self.feat_work = np.empty(_fista.spike_work_size(rows // c, d))
        if self.stepped.size < self.x.size:
            self.stepped = np.empty(self.x.shape)

    def history_limit(self, pause):
        """The iteration the kernel may run to: ``pause``, or the last row of
        the history, which doubles first when the iterate has reached it."""
        it, rows = int(self.state[K["S_ITER"]]), self.history.shape[0]
        if it >= rows - 1 and rows < self.max_iter + 1:
            grown = np.full((min(self.max_iter + 1, 2 * rows), K["N_HISTORY"]),
                            np.nan)
            grown[:rows] = self.history
            self.history = grown
        return min(pause, self.history.shape[0] - 1)

    def products(self, problem, x):
        """Cached products of a point: predictions (gated) or X @ x^T (ReLU);
        zeros without a product for the zero start (a full GEMM otherwise:
        0.12 s on Fashion-MNIST)."""
        gated = self.kind == K["GATED"]
        if not x.any():
            return np.zeros((problem.n_samples,
                             problem.n_outputs if gated else x.shape[0]), problem.dtype)
        if gated:
            c, P, d = problem.weight_shape
            return operator.predict(problem.X, problem.patterns, x.reshape(c, P, d))
        return np.ascontiguousarray(problem.X @ x.T)

    def restart_at_y(self):
        """Make y the current iterate and drop the momentum."""
        self.x[...] = self.y
        self.Z_x[...] = self.Z_y
        self.state[K["S_T"]] = 1.0
        self.state[K["S_EVALUATED"]] = 0.0  # the caller changed the subproblem

    def record_polished(self, cert, elapsed):
        """Make the last history row (and the state) describe a polished point."""
        it = int(self.state[K["S_ITER"]])
        row = self.history[it]
        row[K["H_TIME"]], row[K["H_OBJ"]] = elapsed, cert.objective
        row[K["H_OPT"]] = cert.optimality
        row[K["H_VIOL"]] = cert.cone_violation or 0.0
        self.state[K["S_OBJ"]], self.state[K["S_OPT"]] = cert.objective, cert.optimality
        self.state[K["S_VIOL"]] = cert.cone_violation or 0.0

    def history_dict(self, relu):
        it = int(self.state[K["S_ITER"]]) + 1
        # A run stopped between two iterations has not written row `it` yet.
        if it > 0 and np.isnan(self.history[it - 1, K["H_TIME"]]):
            it -= 1
        H = self.history[:it]
        out = {"time": H[:, K["H_TIME"]].copy(), "objective": H[:, K["H_OBJ"]].copy(),
               "optimality": H[:, K["H_OPT"]].copy(),
               "step_size": H[:, K["H_STEP"]].copy()}
        if relu:
            out["cone_violation"] = H[:, K["H_VIOL"]].copy()
        return out


def _subsample(problem, max_rows):
    """(X, D, n / rows) on at most ``max_rows`` seeded rows."""
    X, D, n = problem.X, problem.patterns, problem.n_samples
    if n > max_rows:
        rows = np.sort(np.random.default_rng(0).choice(n, max_rows, replace=False))
        X, D = np.ascontiguousarray(X[rows]), np.ascontiguousarray(D[rows])
    return X, D, n / X.shape[0]


def _largest_curvature(problem, x_shape, relu, rho, transform=None,
                       power_iterations=3, max_rows=4096, curvature=None):
    """Power iterations on ``T H`` (``T = transform``, identity if None).

    H is the Hessian bound of the smooth part: ``(1/n) A^T A`` times
    ``curvature`` (default: the loss's largest, :data:`CURVATURE`), plus
    ``rho X^T X`` per neuron for the augmented Lagrangian. On more than
    ``max_rows`` samples they run on a seeded row subsample, whose
    ``(1/m) A_S^T A_S`` estimates ``(1/n) A^T A``; the line search corrects
    what the estimate misses.
    """
    c, P, d = problem.weight_shape
    if curvature is None:
        curvature = CURVATURE[problem.loss.name]
    X, D, scale = _subsample(problem, max_rows)
    r = np.random.default_rng(0).standard_normal(x_shape).astype(problem.dtype)
    if transform is not None:
        r = transform(r)
    L = 1.0
    for _ in range(power_iterations):
        norm = np.linalg.norm(r)
        if norm == 0:  # the operator vanishes on r (e.g. all-zero data)
            return 0.0
        with np.errstate(invalid="ignore"):  # inf / inf: reported below
            r /= norm
        U = r[: c * P] - r[c * P:] if relu else r
        S = operator.predict(X, D, U.reshape(c, P, d))
        G = operator.adjoint(X, D, S).reshape(c * P, d)
        Hr = curvature / X.shape[0] * (
            np.vstack([G, -G]) if relu else G)
        if relu and rho:
            Hr = Hr + rho * scale * ((X @ r.T).T @ X)
        if transform is not None:
            Hr = transform(Hr)
        L = float(np.linalg.norm(Hr))
        r = Hr
    return L


def start_curvature(problem, x0):
    """Largest second derivative of the loss at the start ``x0``, where it is
    smaller than the global :data:`CURVATURE` and known in closed form.

    Cross-entropy at the zero start predicts uniform probabilities: the
    Hessian per sample is ``(I - 1 1^T / c) / c``, whose largest eigenvalue is
    ``1/c`` (c classes) against the global 1/2. The first step is then c/2
    times longer; the line search backtracks where the curvature grows
    later. On Fashion-MNIST (10 classes, P=100) the initial step was ~7x too
    short, and this reaches the same test accuracy ~1 s earlier. Elsewhere
    (other losses, warm starts, two classes) it is the global bound.
    """
    if problem.loss.name == "cross_entropy" and not np.any(x0):
        return min(CURVATURE["cross_entropy"], 1.0 / problem.n_outputs)
    return CURVATURE[problem.loss.name]


def initial_step(problem, x_shape, relu, rho, beta=0.0, curvature=None, feat=None):
    """1 / (estimate of the Lipschitz constant of the smooth part's gradient),
    in the pattern-mean metric ``M = I + beta Pi`` when ``beta > 0``
    (:mod:`cvxnn_fast.fista.preconditioner`), or in the feature metric
    ``(I + beta Pi) (x) diag(feat)`` where ``feat`` (d,) is given (the problem
    then on ``X Q``): the largest eigenvalue of ``M^{-1} H``; ``curvature`` as in
    :func:`_largest_curvature`."""
    c = problem.weight_shape[0]

    def inverse_metric(v):
        if beta > 0:
            v = v - beta / (1.0 + beta) * metric.block_mean(v, c)
        return v if feat is None else (v / feat).astype(v.dtype)

    L = _largest_curvature(problem, x_shape, relu, rho,
                           inverse_metric if beta > 0 or feat is not None else None,
                           curvature=curvature)
    if not np.isfinite(L):
        raise NumericalBreakdown(
            "fast_solve: the estimate of the gradient's Lipschitz constant overflows "
            f"({L!r}): the features are too large for {problem.dtype.name}; rescale "
            "them (build_problem(..., standardize=True)).")
    return 1.0 / L if L > 0 else 1.0


def metric_beta(problem, max_rows=4096):
    """beta of the pattern-mean metric for a gated problem (0: none).

    :data:`metric.BETA` where the curvature along repeated weights (exact,
    :func:`metric.spike_curvature`) exceeds the power-iteration estimate of
    the largest curvature off them by :data:`metric.MIN_RATIO`, else 0.
    """
    if not metric.applies(problem):
        return 0.0
    c, P, d = problem.weight_shape
    X, D, _ = _subsample(problem, max_rows)
    spike = CURVATURE[problem.loss.name] * metric.spike_curvature(X, D)

    def off_spike(v):
        return v - metric.block_mean(v, c)

    rest = _largest_curvature(problem, (c * P, d), False, 0.0, off_spike,
                              power_iterations=5, max_rows=max_rows)
    if not (np.isfinite(spike) and np.isfinite(rest)) or rest <= 0:
        return 0.0
    return metric.BETA if spike >= metric.MIN_RATIO * rest else 0.0


def report(monitor, state, kind, weights):
    """Hand one progress record of the kernel's state to ``monitor``; return a
    reason to stop ("" to go on). ``weights()`` gives a copy of the iterate."""
    info = {"iteration": int(state[K["S_ITER"]]), "time": monitor.elapsed(),
            "objective": state[K["S_OBJ"]], "optimality": state[K["S_OPT"]],
            "weights": weights}
    if kind == K["AUGMENTED"]:
        info["cone_violation"] = state[K["S_VIOL"]]
    return monitor.check(info)


def settings(problem):
    """Codes and flags the kernel needs, from the problem's parts."""
    reg = problem.regularizer
    return {"loss": problem.loss.code,
            "reg": reg.code if problem.lam > 0 else REGULARIZERS[None].code,
            "reg_is_norm": int(reg.is_norm), "has_gap": int(has_duality_gap(problem)),
            "lam": problem.lam}


def run(problem, ws, monitor, *, tol, max_iter, mult, rho=0.0, inner_tol=0.0,
        cone_tol=np.inf, polisher, polish_args, blocks_of):
    """Call the compiled loop chunk by chunk; return (code, reason to stop).

    The loop also pauses at the :class:`~cvxnn_fast.common.polish.Polisher`'s
    iterations; ``polish_args(ws)`` gives the (blocks, multipliers) to polish.
    ``blocks_of(ws.y)`` is the iterate the user's callback can ask for.
    A polish that certifies ends the run with ``CONVERGED`` (the polished
    point is in ``polisher.result``).
    """
    st = settings(problem)
    grad0, floor = _gradient_scale(problem), gap_floor(problem)
    slack = 1e-6  # relative slack of the line search's bound
    while True:
        pause = polisher.pause_at(max_iter)
        limit = ws.history_limit(pause)
        code = _fista.run(
            ws.kind, st["loss"], st["reg"], st["reg_is_norm"], st["has_gap"],
            st["lam"], rho, grad0, floor, tol, inner_tol, cone_tol,
            BACKTRACK, GROW, slack,
            ws.beta, ws.metric_m, ws.metric_work, ws.feat, ws.feat_roots,
            ws.feat_shifts, ws.feat_work, ws.stepped, int(ws.per_output),
            MAX_OUTPUT_SCALE, SCALE_EVERY, ws.out_scale, problem.X,
            problem.patterns.view(np.uint8),
            problem.y, mult, ws.x, ws.y,
            ws.x_new, ws.grad, ws.Z_x, ws.Z_y, ws.Z_new, ws.Yhat, ws.Yhat_new, ws.S,
            ws.work, ws.state, ws.history, limit,
            max(0.0, CHUNK_SECONDS - (time.monotonic() - ws.last_report)),
            monitor.start)
        it = int(ws.state[K["S_ITER"]])
        ws.note_best()
        if code == K["MAX_ITER"] and it < max_iter:
            code = K["RUNNING"]
            if it >= pause and polisher.attempt(it, ws.state[K["S_OPT"]],
                                                *polish_args(ws)):
                code = K["CONVERGED"]
                ws.record_polished(polisher.result[2], monitor.elapsed())
        if code == K["INNER_CONVERGED"]:
            # y moved to the subproblem's solution after its numbers were
            # taken: the next chunk evaluates and reports it
            return code, ""
        weights = (_copies(polisher.result[0]) if polisher.result is not None
                   else lambda: blocks_of(ws.y))
        stop = report(monitor, ws.state, ws.kind, weights)
        ws.last_report = time.monotonic()
        if code != K["RUNNING"] or stop:
            return code, stop


def _copies(blocks):
    """The callback's ``weights``: copies of fixed blocks."""
    return lambda: {name: B.copy() for name, B in blocks.items()}


# A line search that stalls above this optimality is not stopped by rounding.
SCALE_BLAME = 1e-2


def describe(code, stop, state, tol, optimality=None, returned="the last iterate",
             cone=None):
    """(status, message) for a finished run; the messages quote
    ``optimality`` where given (the returned weights' certificate), else the
    loop's own, and say which point is ``returned``. ``cone``: (cone
    violation, cone_tol) of a ReLU run, named where the violation, not the
    optimality, is what misses."""
    it = int(state[K["S_ITER"]])
    opt = state[K["S_OPT"]] if optimality is None else optimality
    if code == K["CONVERGED"]:  # a stop asked at the last report comes too late
        return OPTIMAL, ""
    if stop:
        also = "" if returned == "the last iterate" else f"; returning {returned}"
        return USER_LIMIT, f"{stop} at iteration {it} (optimality {opt:.2e}){also}."
    miss = f"optimality {opt:.2e} > tol={tol:.1e}"
    if cone is not None and opt <= tol and cone[0] > cone[1]:
        miss = f"cone violation {cone[0]:.2e} > cone_tol={cone[1]:.1e}"
    if code == K["MAX_ITER"]:
        return OPTIMAL_INACCURATE, (
            f"max_iter={it} reached with {miss}; returning {returned}.")
    if code == K["STEP_UNDERFLOW"] and opt > SCALE_BLAME:
        return OPTIMAL_INACCURATE, (
            f"the line search found no decrease at iteration {it} with optimality "
            f"still {opt:.2e}, far above rounding in either dtype: the data's "
            f"scale is the likely cause (features or targets of very different "
            f"magnitudes); standardize=True or rescaled data may help; returning "
            f"{returned}.")
    if code == K["STEP_UNDERFLOW"]:
        return OPTIMAL_INACCURATE, (
            f"the line search found no decrease at iteration {it} (optimality "
            f"{opt:.2e}): tol={tol:.1e} is likely below the precision reachable "
            f"in this dtype; returning {returned}.")
    raise AssertionError(f"unexpected kernel code {code}")


def breakdown(problem, ws, blocks_of, start, cause=None):
    """Raise NumericalBreakdown carrying the last finite iterate."""
    it = int(ws.state[K["S_ITER"]])
    cause = cause or nonfinite_cause(it, float(ws.state[K["S_OBJ"]]))
    last = None
    if np.all(np.isfinite(ws.x)):
        last = Solution.from_weights(problem, status=SOLVER_ERROR, solver="fast",
                                     solve_time=time.monotonic() - start,
                                     n_iter=it, **blocks_of(ws.x))
    raise NumericalBreakdown(
        f"fast_solve: {cause}; check the data scaling (build_problem(..., "
        "standardize=True)) and lam. The last iterate with finite weights is in "
        "the exception's .solution.", last)


def nonfinite_cause(it, last_objective=None):
    """Where a run's objective or gradient stopped being finite: at the start
    (a warm start whose weights overflow the loss, or data that do), or at
    iteration ``it`` after ``last_objective`` (the last finite one)."""
    if it == 0:
        return ("the objective or its gradient is NaN/inf at the starting point "
                "(a warm start with huge weights, or data that overflow)")
    return (f"the objective or its gradient became NaN/inf at iteration {it}"
            + ("" if last_objective is None else
               f" (the last finite objective {last_objective:.6g})"))


def check_finite_run(problem, ws, code, blocks_of, start):
    """Turn a NaN/inf in the objective or the gradient into NumericalBreakdown."""
    it = int(ws.state[K["S_ITER"]])
    if code == K["NOT_FINITE"]:
        breakdown(problem, ws, blocks_of, start)
    if code == K["STEP_UNDERFLOW"] and not np.all(np.isfinite(ws.grad)):
        breakdown(problem, ws, blocks_of, start,
                  f"the gradient overflowed at iteration {it}")


def per_output_steps(loss, reg, n_outputs):
    """True where R-FISTA takes per-output steps: cross-entropy and logistic
    (the losses whose outputs' curvatures differ; squared loss has the same
    curvature 1 for all) with several outputs and a penalty whose prox is
    separable over the outputs (``reg`` the name, None for no penalty)."""
    return (loss in ("cross_entropy", "logistic") and n_outputs > 1
            and reg != "feature_group_l1")


def per_output_applies(problem):
    """:func:`per_output_steps` for a problem."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    return per_output_steps(problem.loss.name, reg, problem.n_outputs)


def output_scales(curvature, max_scale=MAX_OUTPUT_SCALE):
    """Per-output step multipliers from the outputs' summed loss curvature
    (c,), as the compiled kernel's ``update_output_scale``:
    ``sqrt(max h / h_k)``, at most ``max_scale``; ones where no output has
    curvature."""
    h = np.asarray(curvature, dtype=np.float64)
    top = h.max() if h.size else 0.0
    if not top > 0:
        return np.ones_like(h)
    with np.errstate(divide="ignore"):
        return np.where(h * max_scale * max_scale <= top, max_scale,
                        np.sqrt(top / np.maximum(h, np.finfo(float).tiny)))


def solve_gated(problem, U0, tol, max_iter, monitor, beta=None, step=None,
                per_output=None, feature_metric=None):
    """R-FISTA on the gated ReLU program.

    ``beta`` (of the pattern-mean metric) and ``step`` (the first step size),
    when given, replace their estimates: a path hands over those of the
    previous lam's solve (see ``fast_solve``). ``per_output`` (default
    :func:`per_output_applies`) turns the per-output steps on or off.
    ``feature_metric``: run on ``X Q`` in the eigenbasis feature metric of
    :mod:`cvxnn_fast.fista.feature_metric` (None: its rule; False: never;
    True: wherever the penalty allows); there the pattern-mean metric becomes
    its spike part, ``M = (I + beta Pi) (x) diag(m)`` with ``beta`` (default
    :func:`feature_metric.spike_beta`).
    Callbacks, the polish and the result see weights in the original basis.
    """
    c, P, d = problem.weight_shape
    if per_output is None:
        per_output = per_output_applies(problem)
    fm = features.choose(problem, feature_metric)
    work, x0 = problem, U0.reshape(c * P, d)
    if fm is not None:
        work, x0 = fm.rotated(problem), fm.to_basis(x0)
        beta = features.spike_beta(problem) if beta is None else beta
    ws = Workspace(work, K["GATED"], x0, max_iter,
                   metric_beta(problem) if beta is None else beta, per_output)
    if fm is not None:
        ws.use_feature_metric(fm.m, c)
    ws.state[K["S_STEP"]] = (
        initial_step(work, ws.x.shape, False, 0.0, ws.beta,
                     start_curvature(problem, U0), None if fm is None else fm.m)
        if step is None else step)
    dummy = np.zeros((1, 1), problem.dtype)

    def blocks_of(x):
        U = x if fm is None else fm.from_basis(x)
        return {"U": U.reshape(c, P, d).copy()}

    polisher = Polisher(problem, tol, np.inf)
    # the loop's target; (certificate, blocks) of the best miss and of the
    # last check (None once the loop moved on from it)
    target, confirmed, checked = tol, None, None
    try:
        for _ in range(CONFIRMATIONS + 1):
            checked = None
            code, stop = run(work, ws, monitor, tol=target, max_iter=max_iter,
                             mult=dummy, polisher=polisher, blocks_of=blocks_of,
                             polish_args=lambda ws: (blocks_of(ws.y), None))
            if code != K["CONVERGED"] or stop or polisher.result is not None:
                break
            blocks = blocks_of(ws.y)
            checked = (certificate(problem, **blocks), blocks)
            found = checked[0].optimality
            if found <= tol:
                break
            if confirmed is None or found < confirmed[0].optimality:
                confirmed = checked
            target *= min(0.5, tol / found)
    except KeyboardInterrupt:
        code, stop = K["RUNNING"], INTERRUPTED
    check_finite_run(problem, ws, code, blocks_of, monitor.start)
    quoted, returned = None, "the last iterate"  # unless it chased a tighter target
    if polisher.result:
        blocks, _, cert = polisher.result
    else:
        cert, blocks = checked or (None, blocks_of(ws.y))
        if confirmed is not None:
            cert = cert or certificate(problem, **blocks)
            if cert.optimality > confirmed[0].optimality:  # no better point found
                (cert, blocks), returned = confirmed, "the best point it confirmed"
            quoted = cert.optimality
        if code != K["CONVERGED"] and ws.best_opt < BEST_BY * ws.state[K["S_OPT"]]:
            # stopped on a limit where an earlier iterate judged clearly better
            best = blocks_of(ws.best)
            cert = cert or certificate(problem, **blocks)
            best_cert = certificate(problem, **best)
            if best_cert.optimality < cert.optimality:
                cert, blocks = best_cert, best
                returned = "the best-certified iterate it saw"
            quoted = cert.optimality
    status, message = describe(code, stop, ws.state, tol, quoted, returned)
    return Result(status, message, blocks, int(ws.state[K["S_ITER"]]),
                  ws.history_dict(False), monitor.start, certificate=cert,
                  info={"polished": polisher.result is not None,
                        "metric_beta": ws.beta, "feature_metric": fm is not None},
                  stop=stop)
