r"""R-FISTA on a device: the loop of ``cvxnn_fast/fista/_fista.pyx`` in PyTorch.

Same method as the compiled loop (gated ReLU; in the pattern-mean metric of
:mod:`cvxnn_fast.pytorch.metric` where the compiled loop uses it):

* the products (predictions) of the momentum point are combined from those
  of the last two iterates, ``Z_y = Z_new + beta (Z_new - Z_x)``, so an
  iteration costs two GEMM passes: the adjoint at y and the forward product
  at the candidate (plus one forward per backtrack);
* backtracking line search on ``bregman(x_new, y) <= ||x_new - y||_M^2 /
  (2 step) (1 + slack)``, step shrunk by ``BACKTRACK`` and grown by ``GROW``
  after every iteration;
* restart when ``<x_new - x, y - x_new> > 0``;
* cross-entropy and logistic: per-output steps (output k's metric divided
  by ``w_k``, :func:`cvxnn_fast.fista.solver.output_scales` of the outputs'
  loss curvature, all rows), updated every ``SCALE_EVERY`` iterations and at
  restarts, as the compiled loop; in the feature metric too where its
  pattern-mean part is off (its default);
* stopped on the certificate at y (relative duality gap where a dual point
  is cheap, else relative KKT residual), the point returned.

Every sum over samples goes through :class:`DeviceData` (an all-reduce when
the rows are sharded); weights, prox and every decision are replicated, so
all processes take the same steps. A stop asked for by the monitor (time
limit, callback) travels with the next iteration's all-reduce and ends the
run on every process at the same iteration.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from cvxnn.core.errors import NumericalBreakdown
from cvxnn.core.status import INTERRUPTED
from cvxnn_fast.fista.solver import (
    BACKTRACK,
    CHUNK_SECONDS,
    CURVATURE,
    GROW,
    SCALE_EVERY,
    K,
    output_scales,
    per_output_steps,
)
from cvxnn_fast.pytorch import losses, metric, penalties
from cvxnn_fast.pytorch.certificates import (
    at_point,
    dual_value,
    gap_floor,
    gradient_scale,
    relative_gap,
)
from cvxnn_fast.pytorch.device import cpu_threads
from cvxnn_fast.pytorch.feature_metric import choose as choose_feature_metric

SINGLE_THREAD_FLOPS = 2e7  # as cvxnn_fast.solve: per product, below: one thread
SLACK = 1e-6  # relative slack of the line search's bound (as the compiled loop)
MIN_STEP = 1e-30
MIN_STEP_RATIO = 1e-12  # line search: least step / first step tried (as compiled)
POWER_ITERATIONS = 3
# beta of the pattern-mean part of the feature metric by default: 0 (off), as
# its prox costs ~10 plain ones (docs/design/feature-metric.md); metric_beta=
# turns it on.
SPIKE_BETA = 0.0


@dataclass
class Run:
    """What a device run hands back; ``y`` is the answer (c P, d)."""

    code: int
    stop: str
    y: object
    n_iter: int
    optimality: float
    history: dict = field(default_factory=dict)
    last_finite: object = None
    metric_beta: float = 0.0
    feature_metric: bool = False
    # the best-judged iterate and its optimality (a stop on a limit may
    # return it: cvxnn_fast.pytorch.solver.best_of), None where y is it
    best: object = None
    best_optimality: float = math.inf


def start_curvature(spec, x0):
    """As :func:`cvxnn_fast.fista.solver.start_curvature`."""
    if spec.loss == "cross_entropy" and not bool(x0.any()):
        return min(CURVATURE["cross_entropy"], 1.0 / spec.n_outputs)
    return CURVATURE[spec.loss]


def initial_step(data, spec, x0, beta=0.0, fm=None):
    """1 / (power-iteration estimate of the smooth part's Lipschitz constant
    in the metric (``M = I + beta Pi``, or the feature metric ``fm``): the
    largest eigenvalue of ``M^{-1} H``), over all rows (sums over processes);
    seeded as the compiled driver."""
    c = data.n_outputs

    def inverse_metric(v):
        if fm is not None:
            return fm.inverse(v)
        return v - beta / (1.0 + beta) * metric.block_mean(v, c) if beta > 0 else v

    L = metric.largest_curvature(data, start_curvature(spec, x0), inverse_metric,
                                 POWER_ITERATIONS)
    if not math.isfinite(L):
        raise NumericalBreakdown(
            "fast_solve: the estimate of the gradient's Lipschitz constant overflows "
            f"({L!r}): the features are too large for this dtype; rescale them "
            "(build_problem(..., standardize=True)).")
    return 1.0 / L if L > 0 else 1.0


class _State:
    """Iterates, their products and the momentum of one run."""

    def __init__(self, data, spec, x0, metric_beta=0.0, fm=None):
        self.metric_beta = metric_beta  # of the pattern-mean metric (0: none)
        self.fm = fm  # the feature metric (None: none)
        # Per-output step multipliers (c,), float64 (None: off).
        self.scale = None
        if (fm is None or fm.beta == 0) and per_output_steps(spec.loss, spec.reg,
                                                             data.n_outputs):
            self.scale = data.torch.ones(data.n_outputs, dtype=data.torch.float64,
                                         device=data.device)
        self.m = data.torch.zeros((data.n_outputs, data.n_features),
                                  dtype=data.torch.float64, device=data.device)
        self.x = x0.clone()
        self.y = x0.clone()
        self.Z_x = (data.forward(x0) if bool(x0.any())
                    else data.zeros_like_predictions())
        self.Z_y = self.Z_x.clone()
        self.Z_new = None
        self.t, self.beta, self.it = 1.0, 0.0, 0
        self.pending = False
        self.combined = False  # Z_y combined from other products, not y's own

    def combine(self):
        """Products of y from those of the last two iterates (after a step)."""
        if self.pending:
            self.Z_y = self.Z_new + self.beta * (self.Z_new - self.Z_x)
            self.Z_x, self.pending, self.combined = self.Z_new, False, True

    def refresh(self, data):
        """y's own products in place of the combined ones, whose rounding in
        the working dtype (1e-7 relative in float32) is enough to pass a
        tight tol that y's certificate misses."""
        self.Z_y, self.combined = data.forward(self.y), False

    def rescale(self, data, spec, S):
        """Per-output step multipliers from the loss curvature at gradient S."""
        h = data.sum(losses.curvature_sums(spec.loss, S, data.Y))
        self.scale.copy_(data.torch.from_numpy(output_scales(h.cpu().numpy())))

    def advance(self, data, spec, S, x_new, Z_new):
        """Restart test, momentum, and y <- x_new + beta (x_new - x)."""
        step = x_new - self.x
        if float((step.double() * (self.y - x_new).double()).sum()) > 0:
            self.t, self.beta = 1.0, 0.0
            if self.scale is not None:  # no momentum to carry: the metric may change
                self.rescale(data, spec, S)
        else:
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.t * self.t))
            self.t, self.beta = t_next, (self.t - 1.0) / t_next
        self.y = x_new + self.beta * step
        self.x, self.Z_new = x_new, Z_new
        self.pending = True
        self.it += 1


def line_search(data, spec, st, S, G, step):
    """(x_new, Z_new, step) satisfying the quadratic upper bound; None when the
    step underflows, or falls MIN_STEP_RATIO below the first one tried (there
    rounding decides the test: no decrease is left in this dtype)."""
    floor = step * MIN_STEP_RATIO
    while step > MIN_STEP and step >= floor:
        x_new = _candidate(data, spec, st, G, step)
        Z_new = data.forward(x_new)
        local = losses.bregman_sum(spec.loss, Z_new, st.Z_y, S, data.Y)
        div = data.sum_scalars(local)[0] / data.n_samples
        if st.fm is not None:
            quad = st.fm.squared_distance(x_new, st.y, st.scale)
        else:  # M = I where metric_beta is 0
            quad = metric.squared_distance(x_new, st.y, st.metric_beta,
                                           data.n_outputs, st.scale)
        if math.isfinite(div) and div <= quad / (2 * step) * (1 + SLACK):
            return x_new, Z_new, step
        step *= BACKTRACK
    return None


def _candidate(data, spec, st, G, step):
    """The proximal gradient step from y: in the metric M where it is on
    (its step in float64, the prox's result in the working dtype)."""
    dtype = st.y.dtype
    if st.fm is not None:
        return st.fm.prox(spec.reg, st.fm.step(st.y, G, step, st.scale),
                          step * spec.lam, st.scale, dtype=dtype)
    c, beta = data.n_outputs, st.metric_beta
    if beta > 0:
        return metric.prox(spec.reg, metric.step(st.y, G, step, beta, c, st.scale),
                           step * spec.lam, beta, c, st.m, st.scale, dtype=dtype)
    if st.scale is None:
        return penalties.prox(spec.reg, st.y - step * G, step * spec.lam)
    t = step * metric.per_row(st.scale, st.y.shape[0])
    return penalties.prox(spec.reg, metric.step(st.y, G, step, 0.0, c, st.scale),
                          t * spec.lam).to(dtype)


def optimality(data, spec, S, G, y, objective, scale):
    """Relative gap at y where a dual point is cheap, else relative KKT;
    ``scale``: the gap's floor (:func:`gap_floor`) or the KKT residual's
    normalization (:func:`gradient_scale`)."""
    if spec.has_gap:
        return relative_gap(objective, dual_value(data, spec, S, G), scale)
    return math.sqrt(penalties.residual_sq(spec.reg, G, y, spec.lam)) / scale


def _report(monitor, st, objective, opt, weights):
    info = {"iteration": st.it, "time": monitor.elapsed(), "objective": objective,
            "optimality": opt, "weights": weights}
    return monitor.check(info)


def solve(data, spec, x0, tol, max_iter, monitor, weights_of, metric_beta=None,
          polish=None, feature_metric=None):
    """Run R-FISTA from x0 (c P, d) on the device; return a :class:`Run`.

    ``weights_of(y)`` gives the callback's copy of an iterate. ``metric_beta``:
    beta of the pattern-mean metric (None: :func:`metric.beta`'s rule; 0:
    the Euclidean metric). ``polish(it, optimality, y)``, where given, is
    asked at every iteration before the step; ``(objective, optimality,
    weights)`` of a polished point that certified (the caller keeps the
    point; ``weights()`` gives the callback its copy) ends the run as
    converged, with that point's numbers in the last history row and report. A
    KeyboardInterrupt ends a single-process run with the last iterate; a
    sharded run lets it through (the other processes cannot be told).
    ``feature_metric``: run in the eigenbasis feature metric of
    :mod:`cvxnn_fast.pytorch.feature_metric` (None: its rule; False: never;
    True: wherever the regularizer allows); there the pattern-mean metric
    is off. The Run's iterates are in the original basis.
    """
    flops = 2.0 * data.X.shape[0] * data.n_features * data.weight_rows
    with cpu_threads(data.device, flops, SINGLE_THREAD_FLOPS):
        fm = choose_feature_metric(data, spec, feature_metric)
        if fm is None:
            if metric_beta is None:
                metric_beta = metric.beta(data, spec)
            return _solve(data, spec, x0, tol, max_iter, monitor, weights_of,
                          metric_beta, polish)
        fm.beta = spike_beta(data, spec) if metric_beta is None else metric_beta
        return _in_basis(fm, data, spec, x0, tol, max_iter, monitor, weights_of,
                         polish)


def spike_beta(data, spec):
    """beta of the pattern-mean part of the feature metric: SPIKE_BETA where
    the pattern-mean metric applies."""
    return SPIKE_BETA if metric.applies(spec, data.n_patterns) else 0.0


def _in_basis(fm, data, spec, x0, tol, max_iter, monitor, weights_of, polish):
    """R-FISTA on ``X Q`` from ``x0 Q`` in the feature metric; hooks and the
    returned iterates see weights in the original basis."""
    back = fm.from_basis
    hook = None if polish is None else (lambda it, opt, y: polish(it, opt, back(y)))
    run = _solve(fm.rotated(data), spec, fm.to_basis(x0), tol, max_iter, monitor,
                 lambda y: weights_of(back(y)), fm.beta, hook, fm)
    run.y = back(run.y)
    run.best = None if run.best is None else back(run.best)
    run.last_finite = None if run.last_finite is None else back(run.last_finite)
    run.feature_metric = True
    return run


def _solve(data, spec, x0, tol, max_iter, monitor, weights_of, metric_beta, polish,
           fm=None):
    step = initial_step(data, spec, x0, metric_beta, fm)
    scale = gap_floor(data, spec) if spec.has_gap else gradient_scale(data, spec)
    st = _State(data, spec, x0, metric_beta, fm)
    rows, asked, last_report = [], "", time.monotonic()
    code, stop, opt, polished = K["RUNNING"], "", math.inf, None
    best, best_opt = None, math.inf  # as the compiled driver's note_best

    def judge():
        fit, S, G, (flag,) = at_point(data, spec, st.Z_y, (1.0 if asked else 0.0,))
        objective = fit + spec.lam * penalties.value(spec.reg, st.y)
        opt = (optimality(data, spec, S, G, st.y, objective, scale)
               if math.isfinite(objective) else math.nan)
        return S, G, flag, objective, opt

    try:
        while True:
            st.combine()
            S, G, flag, objective, opt = judge()
            if opt <= tol and st.combined:  # converged: judged on y's own products
                st.refresh(data)
                S, G, flag, objective, opt = judge()
            if not math.isfinite(objective):
                code = K["NOT_FINITE"]
                break
            if opt < best_opt:  # one buffer, copied into (no allocation per step)
                best = st.y.clone() if best is None else best.copy_(st.y)
                best_opt = opt
            rows.append((monitor.elapsed(), objective, opt, step))
            if not math.isfinite(opt):
                code = K["NOT_FINITE"]
                break
            if flag > 0:
                stop = data.stop_reason(asked)
                break
            if opt <= tol:
                code = K["CONVERGED"]
                break
            if st.it >= max_iter:
                code = K["MAX_ITER"]
                break
            if time.monotonic() - last_report >= CHUNK_SECONDS:
                # numbers and weights() of the same point, y before its step
                last_report = time.monotonic()
                asked = asked or _report(monitor, st, objective, opt,
                                         lambda: weights_of(st.y))
            if st.scale is not None and st.it % SCALE_EVERY == 0:
                st.rescale(data, spec, S)
            polished = polish(st.it, opt, st.y) if polish is not None else None
            if polished:
                code = K["CONVERGED"]
                objective, opt, _ = polished
                rows[-1] = (monitor.elapsed(), objective, opt, step)
                break
            found = line_search(data, spec, st, S, G, step)
            if found is None:
                code = K["STEP_UNDERFLOW"]
                break
            x_new, Z_new, step = found
            st.advance(data, spec, S, x_new, Z_new)
            step *= GROW
    except KeyboardInterrupt:
        if data.sharded:
            raise
        code, stop = K["RUNNING"], INTERRUPTED
    if code in (K["CONVERGED"], K["MAX_ITER"], K["STEP_UNDERFLOW"]) and not stop:
        weights = polished[2] if polished else (lambda: weights_of(st.y))
        try:
            final = _report(monitor, st, rows[-1][1], opt, weights)
        except KeyboardInterrupt:  # in the last callback: as in the loop
            if data.sharded:
                raise
            final, code = INTERRUPTED, K["RUNNING"]
        if data.sum_scalars(1.0 if final else 0.0)[0] > 0:
            stop = data.stop_reason(final)
    if code == K["STEP_UNDERFLOW"] and not bool(data.torch.isfinite(G).all()):
        code = K["NOT_FINITE"]
    return Run(code, stop, st.y, st.it, opt, _history(rows),
               st.x if bool(data.torch.isfinite(st.x).all()) else None, metric_beta,
               best=best, best_optimality=best_opt)


def _history(rows):
    H = np.array(rows, dtype=float).reshape(-1, 4)
    return {"time": H[:, 0].copy(), "objective": H[:, 1].copy(),
            "optimality": H[:, 2].copy(), "step_size": H[:, 3].copy()}
