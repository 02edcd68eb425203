"""Restarted FISTA with backtracking line search: the engine of both solvers.

One compiled loop minimizes ``smooth(x) + lam * R(x)`` where the smooth part
is either

* ``GATED``: the data fit of gated ReLU, ``(1/n) sum_j loss(yhat_j)`` with
  ``yhat = rowsum(D * (X @ U^T))``; the cached products of a point are its
  predictions (n, c); or
* ``AUGMENTED``: the augmented Lagrangian of ReLU in x = [V; W] (2cP, d),
  ``(1/n) sum_j loss(yhat_j) + (1/2 rho) sum (max(0, lam_mult - rho c(x))^2
  - lam_mult^2)`` with cone values ``c(x) = (2 D - 1) * (X @ x^T)``; the cached
  products are the full ``X @ x^T`` (n, 2cP).

Products are linear in the point, so the momentum point's products are
combined from the two iterates' (``Z_y = Z_new + beta (Z_new - Z_x)``) and an
iteration costs two GEMMs: the adjoint at the momentum point and the forward
product at the candidate (plus one forward per backtrack).

Each call runs until convergence, ``max_iter``, a failure, or ``chunk_seconds``
of wall time, and returns a code; the Python driver then reports progress,
checks for Ctrl-C and calls again. All state lives in caller-owned arrays.
"""

import numpy as np

from cvxnn_fast.fista.preconditioner import work_size

from cython cimport floating
from libc.math cimport fabs, isfinite, sqrt
from libc.string cimport memcpy
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

from cvxnn.core._blas cimport dot
from cvxnn_fast.common._loss cimport bregman_sum, conjugate_sum, hessian_factors, loss_sum
from cvxnn_fast.fista._augmented cimport al_candidate, al_prepare
from cvxnn_fast.fista._feature cimport (
    feature_prox,
    spike_prox,
    spike_squared_distance,
    spike_step,
)
from cvxnn_fast.fista._metric cimport (
    metric_prox,
    metric_squared_distance,
    metric_step,
    output_scale,
)
from cvxnn.core._operator cimport adjoint, adjoint_block, forward_block, forward_rows
from cvxnn_fast.common._penalty cimport (
    FEATURE_GROUP_L1,
    L2,
    dual_norm,
    penalty_prox,
    penalty_value,
    residual_sq,
)

cdef double MIN_STEP_RATIO = 1e-12  # line search: least step / first step tried


cdef enum:
    # Kinds of smooth part.
    GATED = 0
    AUGMENTED = 1
    # Return codes.
    RUNNING = 0          # chunk time used up; call again
    CONVERGED = 1        # certificate <= tol (and cones <= cone_tol): answer is y
    INNER_CONVERGED = 2  # AUGMENTED: subproblem solved to inner_tol
    MAX_ITER = 3
    NOT_FINITE = -1      # objective or gradient became NaN/inf
    STEP_UNDERFLOW = -2  # line search could not find a decrease
    # Slots of the state vector.
    S_T = 0        # momentum parameter t
    S_STEP = 1     # step size
    S_ITER = 2     # iterations done (global)
    S_OBJ = 3      # objective at y (without the AL penalty)
    S_OPT = 4      # optimality at y
    S_VIOL = 5     # cone violation at y (AUGMENTED)
    S_INNER = 6    # subproblem residual at y (AUGMENTED)
    S_EVALUATED = 7  # 1: a chunk ended at y, evaluated (grad, S, Yhat, Z_y hold it)
    N_STATE = 8
    # Columns of the history.
    H_TIME = 0
    H_OBJ = 1
    H_OPT = 2
    H_STEP = 3
    H_VIOL = 4
    N_HISTORY = 5

# The same constants for the Python driver.
CONSTANTS = {
    "GATED": GATED, "AUGMENTED": AUGMENTED, "RUNNING": RUNNING,
    "CONVERGED": CONVERGED, "INNER_CONVERGED": INNER_CONVERGED,
    "MAX_ITER": MAX_ITER, "NOT_FINITE": NOT_FINITE,
    "STEP_UNDERFLOW": STEP_UNDERFLOW, "S_T": S_T, "S_STEP": S_STEP,
    "S_ITER": S_ITER, "S_OBJ": S_OBJ, "S_OPT": S_OPT, "S_VIOL": S_VIOL,
    "S_INNER": S_INNER, "S_EVALUATED": S_EVALUATED, "N_STATE": N_STATE, "H_TIME": H_TIME, "H_OBJ": H_OBJ,
    "H_OPT": H_OPT, "H_STEP": H_STEP, "H_VIOL": H_VIOL, "N_HISTORY": N_HISTORY,
}


cdef struct Setting:
    int kind, loss, reg, has_gap, reg_is_norm
    Py_ssize_t n, d, c, P, rows, n_halves, block
    double lam, rho, grad0, gap_floor, tol, inner_tol, cone_tol, backtrack, grow, slack
    double mult_sq  # AUGMENTED: sum of the squared multipliers
    double metric   # GATED: beta of the pattern-mean metric (0: Euclidean)
    double* metric_m  # GATED with metric: each output's prox shift m, (c, d)
    double* metric_work  # scratch of its prox, step and norm
    # GATED on X Q (the eigenbasis feature metric): M = (I + metric Pi) (x)
    # diag(feat), feat (d,); NULL: none. feat_roots (rows,): the group
    # prox's last roots; with the spike part (metric > 0) feat_shifts (c, d)
    # each output's last shift and feat_work its prox's scratch.
    const double* feat
    double* feat_roots
    double* feat_shifts
    double* feat_work
    # GATED in a metric: its gradient step, float64 whatever the dtype, the
    # prox's input (rows, d) (see spike_step in _feature.pxd).
    double* stepped
    # GATED, per_output: output k's step is w_k times the global one, i.e. the
    # metric (of the pattern mean, or Euclidean) divided by w_k on its block.
    bint per_output
    double* out_scale  # (c,) the w_k
    double max_scale   # largest w_k
    Py_ssize_t scale_every  # iterations between updates of the w_k


cdef double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef void model_forward(
    Setting* s, const floating* X, const unsigned char* D, const floating* x,
    floating* work,
    floating* Z,  # out: products of x
) noexcept nogil:
    if s.kind == GATED:
        forward_rows(X, D, s.n, s.d, s.P, x, s.c, work, s.block, Z)
    else:
        forward_block(X, s.n, s.d, x, s.rows, Z)


cdef double squared_sum(const floating* a, Py_ssize_t size) noexcept nogil:
    cdef double acc = 0
    cdef Py_ssize_t i
    for i in range(size):
        acc += <double> a[i] * a[i]
    return acc


cdef double at_point(
    Setting* s, const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] Y, const floating[:, ::1] mult,
    floating* Z_y, const floating* Z_new, const floating* Z_x, double beta,
    bint combine, floating[:, ::1] Yhat, floating[:, ::1] S,
    floating[:, ::1] work,
    floating[:, ::1] grad,  # out: gradient of the smooth part at y, (rows, d)
    double* data_fit,     # out: (1/n) sum loss
    double* violation,    # out: cone violation (AUGMENTED)
) noexcept nogil:
    """Value, loss gradient and gradient of the smooth part at the momentum point.

    With ``combine`` the products of y are first formed from those of the
    last two iterates, ``Z_y = Z_new + beta (Z_new - Z_x)``.
    """
    cdef Py_ssize_t j, size = s.rows * s.d
    cdef double inv_n = 1.0 / s.n, penalty
    cdef floating zero = 0
    if s.kind == GATED:
        if combine:
            combine_arrays(Z_y, Z_new, Z_x, beta, s.n * s.c)
        data_fit[0] = loss_sum(s.loss, Z_y, &Y[0, 0], s.n, s.c, &S[0, 0]) * inv_n
        violation[0] = 0
        adjoint(X, D, S, work, grad)
        for j in range(size):
            (&grad[0, 0])[j] *= inv_n
        return data_fit[0]
    penalty = al_prepare(s.loss, &D[0, 0], &Y[0, 0], &mult[0, 0], Z_new, Z_x, beta,
                         combine, s.n, s.c, s.P, s.rho, Z_y, &Yhat[0, 0], &S[0, 0],
                         &work[0, 0], data_fit, violation)
    data_fit[0] *= inv_n
    adjoint_block(&X[0, 0], s.n, s.d, &work[0, 0], s.rows, zero, &grad[0, 0])
    return data_fit[0] + (penalty - s.mult_sq) / (2.0 * s.rho)


cdef double bregman(
    Setting* s, const unsigned char[:, ::1] D, const floating[:, ::1] Y,
    const floating* Z_new, const floating* Z_y,
    const floating[:, ::1] mult, const floating[:, ::1] S_y,
    const floating[:, ::1] Yhat_y, floating[:, ::1] Yhat_new,
) noexcept nogil:
    """smooth(x_new) - smooth(y) - <grad(y), x_new - y>, from cached products."""
    if s.kind == GATED:
        return bregman_sum(s.loss, Z_new, Z_y, &S_y[0, 0], &Y[0, 0], s.n, s.c) / s.n
    return al_candidate(s.loss, &D[0, 0], &Y[0, 0], &mult[0, 0], Z_new, Z_y,
                        &Yhat_y[0, 0], &S_y[0, 0], s.n, s.c, s.P, s.rho,
                        &Yhat_new[0, 0])


cdef double optimality(
    Setting* s, const floating[:, ::1] Y, const floating* S, const floating* grad,
    const floating* y, double objective,
) noexcept nogil:
    """|Relative duality gap| at y when a dual point is cheap, else relative
    KKT.

    Mirrors cvxnn.core.certificates (the reference): the dual point is the loss
    gradient S rescaled by alpha = min(1, lam / R°(grad)) for norms; for l2
    the dual adds -||grad||^2 / (2 lam).
    """
    cdef double alpha = 1.0, worst, dual, gap, kkt
    cdef Py_ssize_t size = s.rows * s.d
    if s.has_gap:
        if s.reg_is_norm:
            worst = dual_norm(s.reg, grad, s.rows, s.d, s.n_halves)
            if worst > s.lam:
                alpha = s.lam / worst
        dual = -conjugate_sum(s.loss, S, &Y[0, 0], s.n, s.c, alpha) / s.n
        if s.reg == L2:
            dual -= dot(<int> size, grad, grad) / (2.0 * s.lam)
        gap = fabs(objective - dual)  # below 0: cones violated (Certificate)
        return gap / (fabs(objective) if fabs(objective) > s.gap_floor
                      else s.gap_floor)
    kkt = sqrt(residual_sq(s.reg, grad, y, s.lam, s.rows, s.d, s.n_halves))
    return kkt / s.grad0


cdef void update_output_scale(
    Setting* s, const floating* S, const floating* Y,
    floating* Wd, floating* Q,  # scratch (n, c)
) noexcept nogil:
    """Per-output step multipliers from the loss curvature at the point whose
    loss gradient is S: ``w_k = sqrt(max_l h_l / h_k)`` (at most
    ``s.max_scale``), ``h_k`` output k's summed diagonal loss curvature
    ``sum_j (Wd - Q^2)_jk``.

    The output with the largest curvature keeps the global step; the others
    take longer ones (the square root of the ratio: measured faster than the
    ratio itself, docs/design/fista.md).
    """
    cdef Py_ssize_t j, k
    cdef double top = 0, h
    hessian_factors(s.loss, S, Y, s.n, s.c, Wd, Q)
    for k in range(s.c):
        h = 0
        for j in range(s.n):
            h += <double> Wd[j * s.c + k] - <double> Q[j * s.c + k] * Q[j * s.c + k]
        s.out_scale[k] = h
        if h > top:
            top = h
    for k in range(s.c):
        h = s.out_scale[k]
        if top <= 0:  # no curvature anywhere (or NaN): plain steps
            s.out_scale[k] = 1.0
        elif h * s.max_scale * s.max_scale <= top:
            s.out_scale[k] = s.max_scale
        else:
            s.out_scale[k] = sqrt(top / h)


cdef double squared_distance(
    const floating* a, const floating* b, Py_ssize_t size,
) noexcept nogil:
    cdef double acc = 0, delta
    cdef Py_ssize_t i
    for i in range(size):
        delta = <double> a[i] - b[i]
        acc += delta * delta
    return acc


cdef double restart_product(
    const floating* x, const floating* x_new, const floating* y, Py_ssize_t size,
) noexcept nogil:
    """<x_new - x, y - x_new>, summed term by term (no cancellation)."""
    cdef double acc = 0
    cdef Py_ssize_t i
    for i in range(size):
        acc += (<double> x_new[i] - x[i]) * (<double> y[i] - x_new[i])
    return acc


cdef void combine_arrays(
    floating* out, const floating* a, const floating* b, double beta, Py_ssize_t size,
) noexcept nogil:
    """out = a + beta * (a - b)."""
    cdef Py_ssize_t i
    for i in range(size):
        out[i] = a[i] + beta * (a[i] - b[i])


cdef double line_search(
    Setting* s, const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] Y, const floating[:, ::1] mult,
    const floating[:, ::1] y, const floating[:, ::1] grad,
    const floating* Z_y, const floating[:, ::1] S_y,
    const floating[:, ::1] Yhat_y, floating[:, ::1] Yhat_new,
    floating[:, ::1] x_new, floating* Z_new, floating[:, ::1] work,
    double* step,
) noexcept nogil:
    """Backtrack until the quadratic upper bound holds; returns the step or -1.

    The test is ``bregman(x_new, y) <= ||x_new - y||^2 / (2 step)``, the
    quadratic upper bound with f(y) and <grad, x_new - y> moved to the left
    and computed without cancellation (see bregman_sum). With the
    pattern-mean metric (``s.metric > 0``) or the feature metric (``s.feat``)
    the step, the prox and the norm are those of M (see _metric.pxd,
    _feature.pxd). With per-output scales (``s.per_output``)
    output k's block takes the step ``step * w_k`` and its norm is divided by
    ``w_k``: the metric ``M / w_k`` on that block.
    """
    cdef Py_ssize_t i, k, block, size = s.rows * s.d
    cdef double quad, part, delta, div, w
    cdef const floating* py = &y[0, 0]
    cdef const floating* pg = &grad[0, 0]
    cdef floating* px = &x_new[0, 0]
    cdef const double* scale = s.out_scale if s.per_output else NULL
    # Without per-output scales the whole point is one block.
    cdef Py_ssize_t blocks = s.c if s.per_output else 1
    # A step MIN_STEP_RATIO below the one tried first means rounding, not
    # curvature, decides the test (x_new == y passes it): no decrease left.
    cdef double floor = step[0] * MIN_STEP_RATIO
    block = size // blocks
    while step[0] > 1e-30 and step[0] >= floor:
        if s.feat != NULL:
            spike_step(py, pg, step[0], s.feat, s.metric, s.c, s.P, s.d, scale,
                       s.feat_work, s.stepped)
            if s.metric > 0:
                spike_prox(s.reg, s.stepped, px, step[0] * s.lam, s.feat, s.metric,
                           s.c, s.P, s.d, scale, s.feat_roots, s.feat_shifts,
                           s.feat_work)
            else:
                feature_prox(s.reg, s.stepped, px, step[0] * s.lam, s.feat, s.rows,
                             s.P, s.d, scale, s.feat_roots)
        elif s.metric > 0:
            metric_step(py, pg, step[0], s.metric, s.c, s.P, s.d, scale,
                        s.metric_work, s.stepped)
            metric_prox(s.reg, s.stepped, px, step[0] * s.lam, s.metric, s.c, s.P,
                        s.d, scale, s.metric_m, s.metric_work)
        else:
            for k in range(blocks):
                w = step[0] * output_scale(scale, k)
                for i in range(k * block, (k + 1) * block):
                    px[i] = py[i] - w * pg[i]
                penalty_prox(s.reg, px + k * block, w * s.lam, block // s.d, s.d,
                             s.n_halves, px + k * block)
        model_forward(s, &X[0, 0], &D[0, 0], px, &work[0, 0], Z_new)
        div = bregman(s, D, Y, Z_new, Z_y, mult, S_y, Yhat_y, Yhat_new)
        if s.feat != NULL:
            quad = spike_squared_distance(px, py, s.feat, s.metric, s.c, s.P, s.d,
                                          scale, s.feat_work)
        elif s.metric > 0:
            quad = metric_squared_distance(px, py, s.metric, s.c, s.P, s.d, scale,
                                           s.metric_work)
        else:
            quad = 0
            for k in range(blocks):
                part = 0
                for i in range(k * block, (k + 1) * block):
                    delta = px[i] - py[i]
                    part += delta * delta
                quad += part / output_scale(scale, k)
        if isfinite(div) and div <= quad / (2 * step[0]) * (1 + s.slack):
            return step[0]
        step[0] *= s.backtrack
    return -1


def run(
    int kind, int loss, int reg, int reg_is_norm, int has_gap, double lam,
    double rho, double grad0, double gap_floor, double tol, double inner_tol,
    double cone_tol,
    double backtrack, double grow, double slack, double metric,
    double[:, ::1] metric_m,  # in/out (c, d): prox shifts of the metric
    double[::1] metric_work,  # scratch of the metric's prox (metric.work_size)
    const double[::1] feat,   # (d,) the feature metric's m, or empty: none
    double[::1] feat_roots,   # in/out (rows,): its group prox's last roots
    double[:, ::1] feat_shifts,  # in/out (c, d): its spike part's shifts
    double[::1] feat_work,    # scratch of the spike part (spike_work_size)
    double[:, ::1] stepped,   # scratch (rows, d) in a metric: its float64 step
    int per_output, double max_scale, Py_ssize_t scale_every,
    double[::1] out_scale,    # in/out (c,): per-output step multipliers
    const floating[:, ::1] X,
    const unsigned char[:, ::1] D,
    const floating[:, ::1] Y,
    const floating[:, ::1] mult,
    floating[:, ::1] x,       # current iterate
    floating[:, ::1] y,       # momentum point (the answer on CONVERGED)
    floating[:, ::1] x_new,   # scratch: candidate
    floating[:, ::1] grad,    # out: gradient of the smooth part at y
    floating[:, ::1] Z_x,     # products of x
    floating[:, ::1] Z_y,     # products of y
    floating[:, ::1] Z_new,   # scratch: products of the candidate
    floating[:, ::1] Yhat,    # scratch (n, c), AUGMENTED: predictions at y;
                              # GATED with per_output: loss curvature
    floating[:, ::1] Yhat_new,  # scratch (n, c), AUGMENTED: at the candidate
    floating[:, ::1] S,       # out: unscaled loss gradient at y, (n, c)
    floating[:, ::1] work,    # scratch: GEMM blocks (GATED) or (n, 2cP) (AUGMENTED)
    double[::1] state,        # in/out: see S_* slots
    double[:, ::1] history,   # out: one row per iteration, see H_* columns
    Py_ssize_t max_iter, double chunk_seconds, double start_time,
):
    """Run R-FISTA iterations; return a code (module constants).

    The products of x and of the candidate swap buffers instead of being
    copied; Z_x holds those of x again on return. A chunk that ends on time
    ends at an evaluated y (its numbers in ``state``, what a report pairs
    with the weights at y) and sets ``state[S_EVALUATED]``: the next call
    resumes with y's step instead of evaluating y again.
    """
    cdef Setting s
    s.kind = kind
    s.loss = loss
    s.reg = reg
    s.reg_is_norm = reg_is_norm
    s.has_gap = has_gap
    s.n = X.shape[0]
    s.d = X.shape[1]
    s.c = Y.shape[1]
    s.P = D.shape[1]
    s.rows = x.shape[0]
    s.block = work.shape[0]
    s.n_halves = 1 if kind == GATED else 2
    s.lam = lam
    s.rho = rho
    s.grad0 = grad0
    s.gap_floor = gap_floor  # cvxnn.core.certificates.gap_floor
    s.tol = tol
    s.inner_tol = inner_tol
    s.cone_tol = cone_tol
    s.backtrack = backtrack
    s.grow = grow
    s.slack = slack
    s.metric = metric if kind == GATED and reg != FEATURE_GROUP_L1 else 0.0
    s.metric_m = &metric_m[0, 0]
    s.metric_work = &metric_work[0]
    s.feat = NULL
    s.feat_roots = NULL
    if kind == GATED and feat.shape[0] == s.d and feat_roots.shape[0] >= s.rows:
        s.feat = &feat[0]
        s.feat_roots = &feat_roots[0]
        s.feat_shifts = &feat_shifts[0, 0]
        s.feat_work = &feat_work[0]
        if feat_shifts.shape[0] * feat_shifts.shape[1] < s.c * s.d or \
                feat_work.shape[0] < spike_work_size(s.P, s.d):
            s.metric = 0.0  # no room for the spike part's state
    s.stepped = NULL
    if s.feat != NULL or s.metric > 0:
        if stepped.shape[0] * stepped.shape[1] < x.shape[0] * x.shape[1]:
            raise ValueError("stepped: needs the iterate's shape in a metric")
        s.stepped = &stepped[0, 0]
    # (the curvature scratch must hold (n, c): Yhat and Yhat_new)
    s.per_output = per_output and kind == GATED and reg != FEATURE_GROUP_L1 \
        and s.c > 1 and Yhat.shape[0] * Yhat.shape[1] >= s.n * s.c \
        and Yhat_new.shape[0] * Yhat_new.shape[1] >= s.n * s.c \
        and out_scale.shape[0] >= s.c
    s.out_scale = &out_scale[0]
    s.max_scale = max_scale
    s.scale_every = scale_every
    cdef int code = RUNNING
    cdef Py_ssize_t size = s.rows * s.d, it = <Py_ssize_t> state[S_ITER]
    cdef Py_ssize_t z_size = Z_x.shape[0] * Z_x.shape[1]
    cdef double t = state[S_T], step = state[S_STEP], t_next, beta = 0.0
    cdef double f_y, fit, viol, objective, opt, chunk_start
    cdef floating* z_x = &Z_x[0, 0]
    cdef floating* z_y = &Z_y[0, 0]
    cdef floating* z_new = &Z_new[0, 0]
    cdef floating* swap
    cdef bint pending = False  # y moved; Z_y still to be combined
    cdef bint resume = state[S_EVALUATED] > 0
    state[S_EVALUATED] = 0
    with nogil:
        chunk_start = now()
        s.mult_sq = squared_sum(&mult[0, 0], mult.shape[0] * mult.shape[1]) \
            if kind == AUGMENTED else 0.0
        while True:
            if resume:  # y was evaluated by the last chunk: its numbers
                objective = state[S_OBJ]
                opt = state[S_OPT]
                viol = state[S_VIOL]
            else:
                f_y = at_point(&s, X, D, Y, mult, z_y, z_new, z_x, beta, pending,
                               Yhat, S, work, grad, &fit, &viol)
                if pending:
                    swap = z_x
                    z_x = z_new
                    z_new = swap
                    pending = False
                if not isfinite(f_y):
                    code = NOT_FINITE
                    break
                objective = fit + lam * penalty_value(reg, &y[0, 0], s.rows, s.d,
                                                      s.n_halves)
                opt = optimality(&s, Y, &S[0, 0], &grad[0, 0], &y[0, 0], objective)
                history[it, H_TIME] = now() - start_time
                history[it, H_OBJ] = objective
                history[it, H_OPT] = opt
                history[it, H_STEP] = step
                history[it, H_VIOL] = viol
                state[S_OBJ] = objective
                state[S_OPT] = opt
                state[S_VIOL] = viol
                if not isfinite(opt) or not isfinite(objective):
                    code = NOT_FINITE
                    break
            if opt <= tol and (kind == GATED or viol <= cone_tol):
                code = CONVERGED
                break
            if it >= max_iter:
                code = MAX_ITER
                state[S_EVALUATED] = 1
                break
            if not resume and now() - chunk_start > chunk_seconds:
                state[S_EVALUATED] = 1  # end the chunk at y, evaluated
                break
            resume = False
            if s.per_output and it % s.scale_every == 0:
                update_output_scale(&s, &S[0, 0], &Y[0, 0], &Yhat[0, 0],
                                    &Yhat_new[0, 0])
            if line_search(&s, X, D, Y, mult, y, grad, z_y, S, Yhat, Yhat_new,
                           x_new, z_new, work, &step) < 0:
                code = STEP_UNDERFLOW
                break
            if kind == AUGMENTED:
                # Subproblem test on the gradient mapping ||y - x_new|| / step,
                # which (unlike the minimum-norm subgradient at y) is continuous
                # where blocks vanish. On success x_new becomes the iterate.
                state[S_INNER] = sqrt(squared_distance(&x_new[0, 0], &y[0, 0], size)) \
                    / step / grad0
                if state[S_INNER] <= inner_tol:
                    memcpy(&y[0, 0], &x_new[0, 0], size * sizeof(floating))
                    memcpy(z_y, z_new, z_size * sizeof(floating))
                    it += 1
                    code = INNER_CONVERGED
                    break
            # Restart when the step x_new - x and the gradient mapping y - x_new
            # make an acute angle (the momentum points uphill).
            beta = 0.0
            if restart_product(&x[0, 0], &x_new[0, 0], &y[0, 0], size) > 0:
                t = 1.0
                if s.per_output:  # no momentum to carry: the metric may change
                    update_output_scale(&s, &S[0, 0], &Y[0, 0], &Yhat[0, 0],
                                        &Yhat_new[0, 0])
            else:
                t_next = 0.5 * (1.0 + sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_next
                t = t_next
            combine_arrays(&y[0, 0], &x_new[0, 0], &x[0, 0], beta, size)
            memcpy(&x[0, 0], &x_new[0, 0], size * sizeof(floating))
            pending = True
            step *= grow
            it += 1
        if z_x != &Z_x[0, 0]:
            memcpy(&Z_x[0, 0], z_x, z_size * sizeof(floating))
    state[S_T] = t
    state[S_STEP] = step
    state[S_ITER] = it
    return code


# --- Python entry points to the inline kernels, for the tests ----------------

def loss_and_gradient(int loss, const floating[:, ::1] Yhat,
                      const floating[:, ::1] Y, floating[:, ::1] S):
    """Sum of the loss over rows; the unscaled gradient into S (out)."""
    return loss_sum(loss, &Yhat[0, 0], &Y[0, 0], Yhat.shape[0], Yhat.shape[1], &S[0, 0])


def loss_conjugate(int loss, const floating[:, ::1] S, const floating[:, ::1] Y,
                   double alpha):
    """Sum over rows of loss*(alpha * S)."""
    return conjugate_sum(loss, &S[0, 0], &Y[0, 0], S.shape[0], S.shape[1], alpha)


def loss_bregman(int loss, const floating[:, ::1] Z_new, const floating[:, ::1] Z_y,
                 const floating[:, ::1] S_y, const floating[:, ::1] Y):
    """Sum over rows of the loss's Bregman divergence between Z_new and Z_y."""
    return bregman_sum(loss, &Z_new[0, 0], &Z_y[0, 0], &S_y[0, 0], &Y[0, 0],
                       Z_new.shape[0], Z_new.shape[1])


def regularizer_value(int reg, const floating[:, ::1] x, Py_ssize_t n_halves):
    return penalty_value(reg, &x[0, 0], x.shape[0], x.shape[1], n_halves)


def regularizer_prox(int reg, const floating[:, ::1] v, double t, Py_ssize_t n_halves,
                     floating[:, ::1] out):
    """out = prox of t * R at v."""
    penalty_prox(reg, &v[0, 0], t, v.shape[0], v.shape[1], n_halves, &out[0, 0])


cdef const double* scale_pointer(object scale):
    """The data of a (c,) float64 array of per-output multipliers, or NULL."""
    cdef const double[::1] view
    if scale is None:
        return NULL
    view = scale
    return &view[0]


def metric_proximal(int reg, floating[:, ::1] v, double t, double beta,
                    Py_ssize_t c, double[:, ::1] m, scale=None):
    """v <- prox of t * R at v in the pattern-mean metric (in place), divided
    by ``scale[k]`` on output k's block where given; m (c, d) holds the
    shifts (start and result). Returns the Newton steps taken."""
    cdef Py_ssize_t P = v.shape[0] // c, d = v.shape[1]
    cdef double[::1] work = np.empty(work_size(P, d))
    cdef double[:, ::1] z = np.array(v, dtype=np.float64)
    return metric_prox(reg, &z[0, 0], &v[0, 0], t, beta, c, P, d,
                       scale_pointer(scale), &m[0, 0], &work[0])


def metric_distance(const floating[:, ::1] x, const floating[:, ::1] y, double beta,
                    Py_ssize_t c, scale=None):
    """||x - y||_M^2 (output k's block divided by ``scale[k]`` where given)."""
    cdef double[::1] mean = np.empty(x.shape[1])
    return metric_squared_distance(&x[0, 0], &y[0, 0], beta, c, x.shape[0] // c,
                                   x.shape[1], scale_pointer(scale), &mean[0])


def metric_gradient_step(const floating[:, ::1] y, const floating[:, ::1] g,
                         double step, double beta, Py_ssize_t c,
                         floating[:, ::1] out, scale=None):
    """out = y - step * M^{-1} g (times ``scale[k]`` on output k's block),
    rounded to out's dtype; returns the float64 step."""
    cdef double[::1] mean = np.empty(y.shape[1])
    cdef double[:, ::1] z = np.empty((y.shape[0], y.shape[1]))
    metric_step(&y[0, 0], &g[0, 0], step, beta, c, y.shape[0] // c, y.shape[1],
                scale_pointer(scale), &mean[0], &z[0, 0])
    np.asarray(out)[...] = z
    return np.asarray(z)


def feature_proximal(int reg, floating[:, ::1] v, double t, const double[::1] m,
                     Py_ssize_t c, scale=None, roots=None):
    """v <- prox of t * R at v in the feature metric diag(m) (in place), with
    ``t * scale[k]`` on output k's rows where given; ``roots`` (rows,), where
    given, is the group prox's start and receives its roots."""
    cdef double[::1] start = np.zeros(v.shape[0]) if roots is None else roots
    cdef double[:, ::1] z = np.array(v, dtype=np.float64)
    feature_prox(reg, &z[0, 0], &v[0, 0], t, &m[0], v.shape[0], v.shape[0] // c,
                 v.shape[1],
                 scale_pointer(scale), &start[0])


def spike_work_size(Py_ssize_t P, Py_ssize_t d):
    """Doubles of scratch the feature metric's step, norm and spike prox need."""
    return 3 * P * d + 6 * d


def spike_proximal(int reg, floating[:, ::1] v, double t, const double[::1] m,
                   double beta, Py_ssize_t c, scale=None):
    """v <- prox of t * R at v in ``(I + beta Pi) (x) diag(m)`` (in place), with
    ``t * scale[k]`` on output k's rows where given; returns the shifts (c, d)."""
    cdef Py_ssize_t P = v.shape[0] // c, d = v.shape[1]
    cdef double[::1] roots = np.zeros(v.shape[0])
    cdef double[:, ::1] shifts = np.zeros((c, d))
    cdef double[::1] work = np.empty(spike_work_size(P, d))
    cdef double[:, ::1] z = np.array(v, dtype=np.float64)
    spike_prox(reg, &z[0, 0], &v[0, 0], t, &m[0], beta, c, P, d, scale_pointer(scale),
               &roots[0], &shifts[0, 0], &work[0])
    return np.asarray(shifts)


def spike_distance(const floating[:, ::1] x, const floating[:, ::1] y,
                   const double[::1] m, double beta, Py_ssize_t c, scale=None):
    """||x - y||_M^2 in ``(I + beta Pi) (x) diag(m)``, output k's block divided
    by ``scale[k]``."""
    cdef double[::1] mean = np.empty(x.shape[1])
    return spike_squared_distance(&x[0, 0], &y[0, 0], &m[0], beta, c,
                                  x.shape[0] // c, x.shape[1], scale_pointer(scale),
                                  &mean[0])


def spike_gradient_step(const floating[:, ::1] y, const floating[:, ::1] g,
                        double step, const double[::1] m, double beta, Py_ssize_t c,
                        floating[:, ::1] out, scale=None):
    """out = y - step * M^{-1} g (times ``scale[k]`` on output k's block),
    rounded to out's dtype; returns the float64 step."""
    cdef double[::1] mean = np.empty(y.shape[1])
    cdef double[:, ::1] z = np.empty((y.shape[0], y.shape[1]))
    spike_step(&y[0, 0], &g[0, 0], step, &m[0], beta, c, y.shape[0] // c,
               y.shape[1], scale_pointer(scale), &mean[0], &z[0, 0])
    np.asarray(out)[...] = z
    return np.asarray(z)


def feature_distance(const floating[:, ::1] x, const floating[:, ::1] y,
                     const double[::1] m, Py_ssize_t c, scale=None):
    """||x - y||_M^2 in diag(m), output k's rows divided by ``scale[k]``."""
    return spike_distance(x, y, m, 0.0, c, scale)


def feature_gradient_step(const floating[:, ::1] y, const floating[:, ::1] g,
                          double step, const double[::1] m, Py_ssize_t c,
                          floating[:, ::1] out, scale=None):
    """out = y - step * g / m (times ``scale[k]`` on output k's rows),
    rounded to out's dtype; returns the float64 step."""
    return spike_gradient_step(y, g, step, m, 0.0, c, out, scale)


def regularizer_dual_norm(int reg, const floating[:, ::1] g, Py_ssize_t n_halves):
    return dual_norm(reg, &g[0, 0], g.shape[0], g.shape[1], n_halves)


def regularizer_residual(int reg, const floating[:, ::1] g, const floating[:, ::1] x,
                         double lam, Py_ssize_t n_halves):
    """Squared norm of the minimum-norm element of g + lam dR(x)."""
    return residual_sq(reg, &g[0, 0], &x[0, 0], lam, g.shape[0], g.shape[1], n_halves)


def augmented_prepare(
    int loss, const unsigned char[:, ::1] D, const floating[:, ::1] Y,
    const floating[:, ::1] mult, floating[:, ::1] Z, const floating[:, ::1] Z_new,
    const floating[:, ::1] Z_x, double beta, bint combine, double rho,
    floating[:, ::1] Yhat, floating[:, ::1] S, floating[:, ::1] M,
):
    """The fused pass at a point: (loss sum, sum max(0, m - rho c)^2, violation).

    Fills Yhat, S, M (and Z = Z_new + beta (Z_new - Z_x) when combine).
    """
    cdef double fit, violation, total
    cdef Py_ssize_t n = Y.shape[0], c = Y.shape[1], P = D.shape[1]
    total = al_prepare(loss, &D[0, 0], &Y[0, 0], &mult[0, 0], &Z_new[0, 0],
                       &Z_x[0, 0], beta, combine, n, c, P, rho, &Z[0, 0], &Yhat[0, 0],
                       &S[0, 0], &M[0, 0], &fit, &violation)
    return fit, total, violation


def augmented_candidate(
    int loss, const unsigned char[:, ::1] D, const floating[:, ::1] Y,
    const floating[:, ::1] mult, const floating[:, ::1] Z_new,
    const floating[:, ::1] Z, const floating[:, ::1] Yhat, const floating[:, ::1] S,
    double rho, floating[:, ::1] Yhat_new,
):
    """Bregman divergence of the smooth AL part from Z to Z_new (fills Yhat_new)."""
    cdef Py_ssize_t n = Y.shape[0], c = Y.shape[1], P = D.shape[1]
    return al_candidate(loss, &D[0, 0], &Y[0, 0], &mult[0, 0], &Z_new[0, 0], &Z[0, 0],
                        &Yhat[0, 0], &S[0, 0], n, c, P, rho, &Yhat_new[0, 0])


def loss_hessian(int loss, const floating[:, ::1] S, const floating[:, ::1] Y,
                 floating[:, ::1] Wd, floating[:, ::1] Q):
    """Per-row loss Hessians diag(Wd_j) - Q_j Q_j^T at gradient S (fills Wd, Q)."""
    hessian_factors(loss, &S[0, 0], &Y[0, 0], S.shape[0], S.shape[1], &Wd[0, 0],
                    &Q[0, 0])
