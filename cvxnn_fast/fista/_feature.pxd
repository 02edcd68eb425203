# The eigenbasis feature metric of gated ReLU's R-FISTA (see
# cvxnn_fast/fista/feature_metric.py and docs/design/feature-metric.md).
#
# The loop runs on X Q (Q the eigenvectors of X^T X / n) with weights flat
# (c * P, d); the metric is M = I (x) diag(m), one weight m_a per feature of
# the eigenbasis, the same for every row. Output k's block takes the step
# t * w_k (per-output scales; w_k = 1 without them), i.e. the metric M / w_k.
#
# * step and norm: spike_step and spike_squared_distance below, beta = 0
# * prox of t w_k R in M, row by row:
#   group_l1: w = 0 where ||m z|| <= t, else w = u m z / (1 + u m) with u > 0
#             the root of phi(u) = 1 / ||m z / (1 + u m)|| = 1 / t, which is
#             concave and increasing: Newton from the left increases
#             monotonically to the root; from the right (a warm start) the
#             first step lands left of it, clamped at 0;
#   l2:       w = m z / (m + t); none: the identity.

from cython cimport floating
from libc.math cimport fabs, sqrt

from cvxnn_fast.common._penalty cimport GROUP_L1, L2, NONE

cdef enum:
    FEATURE_NEWTON_STEPS = 60


cdef inline double row_scale(const double* scale, Py_ssize_t row, Py_ssize_t P) noexcept nogil:
    """The step multiplier of a row's output (1 without per-output scales)."""
    return 1.0 if scale == NULL else scale[row // P]


cdef inline void feature_group_row(
    double* v, const double* m, double t, Py_ssize_t d,
    double* root,  # in/out: this row's u, the next call's start
) noexcept nogil:
    """One row's prox of ``t ||.||`` in diag(m), in place (see the header)."""
    cdef Py_ssize_t a, it
    cdef double mz, sq = 0, u, den, amp, norm2, slope, phi, du
    for a in range(d):
        mz = m[a] * v[a]
        sq += mz * mz
    if sq <= t * t:
        for a in range(d):
            v[a] = 0
        root[0] = 0
        return
    u = root[0] if root[0] > 0 else 0.0
    for it in range(FEATURE_NEWTON_STEPS):
        norm2 = 0
        slope = 0
        for a in range(d):
            den = 1.0 / (1.0 + u * m[a])
            amp = m[a] * v[a] * den
            amp *= amp
            norm2 += amp
            slope += amp * den * m[a]
        phi = 1.0 / sqrt(norm2)
        du = (1.0 / t - phi) / (slope * phi * phi * phi)
        u += du
        if u < 0:
            u = 0
        if fabs(du) <= 1e-14 * u:  # relative rounding of the root
            break
    root[0] = u
    for a in range(d):
        v[a] = u * m[a] * v[a] / (1.0 + u * m[a])


cdef inline void feature_prox(
    int code,
    double* z,      # in (rows, d): the step's point, float64; overwritten
    floating* out,  # out (rows, d): prox of t * R at z in M
    double t, const double* m,
    Py_ssize_t rows, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* roots,        # in/out (rows,): the group prox's last roots
) noexcept nogil:
    """out <- prox of t * R at z in M (output k's rows with t * w_k). Only the
    rotation-invariant penalties: group_l1, l2 and none. The point z is
    float64 (see spike_step)."""
    cdef Py_ssize_t r, a, o
    cdef double t_r
    if code != NONE and t != 0:
        for r in range(rows):
            t_r = t * row_scale(scale, r, P)
            o = r * d
            if code == GROUP_L1:
                feature_group_row(z + o, m, t_r, d, roots + r)
            elif code == L2:
                for a in range(d):
                    z[o + a] = m[a] * z[o + a] / (m[a] + t_r)
    for r in range(rows * d):
        out[r] = <floating> z[r]


# The spike part: M = (I + beta Pi) (x) diag(m) (beta 0: the metric above;
# m NULL: the pattern-mean metric of _metric.pxd), Pi the projector onto the
# weights that repeat one vector over an output's P neurons (as the
# pattern-mean metric of _metric.pxd). Per output, with s = mean_i(x_i - z_i):
#
# * step:  y - t w_k (g - beta / (1 + beta) mean_k(g)) / m
# * norm:  (1 / w_k) (sum_i ||x_i - y_i||_m^2 + beta P ||mean_k(x - y)||_m^2)
# * prox:  x_i = prox(z_i - beta s) with s the root of
#          F(s) = s - mean_i(x_i(s) - z_i), found by diagonal quasi-Newton
#          steps F / (1 + beta / P sum_i u_i m / (1 + u_i m)) with halvings
#          on ||F||^2, to ||F|| <= 1e-10 relative (l2: in closed form).

cdef enum:
    SHIFT_STEPS = 50
    SHIFT_HALVINGS = 30


cdef inline void spike_step(
    const floating* y, const floating* g, double step,
    const double* m,  # (d,), or NULL: ones (the pattern-mean metric of _metric.pxd)
    double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* mean,   # scratch (d,)
    double* out,    # out: y - step * w_k * M^{-1} g, in float64
) noexcept nogil:
    """The metric's gradient step, kept in float64 for the prox: rounded to a
    float32 iterate first, the prox's output carries that rounding into the
    momentum, which drifts from the optimum once steps are that small (an l1
    problem's certificate went from 1e-5 to 8e-2 in 3,000 iterations)."""
    cdef Py_ssize_t k, i, a, o
    cdef double t, coef = beta / (1.0 + beta)
    for k in range(c):
        t = step * (1.0 if scale == NULL else scale[k])
        for a in range(d):
            mean[a] = 0
        if beta > 0:  # the block mean (beta 0: the diagonal metric alone)
            for i in range(P):
                o = (k * P + i) * d
                for a in range(d):
                    mean[a] += g[o + a]
            for a in range(d):
                mean[a] /= P
        for i in range(P):
            o = (k * P + i) * d
            for a in range(d):
                out[o + a] = y[o + a] - t * (g[o + a] - coef * mean[a]) / (
                    1.0 if m == NULL else m[a])


cdef inline double spike_squared_distance(
    const floating* x, const floating* y,
    const double* m,  # (d,), or NULL: ones (the pattern-mean metric of _metric.pxd)
    double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* mean,  # scratch (d,)
) noexcept nogil:
    """||x - y||_M^2, output k's block divided by w_k."""
    cdef Py_ssize_t k, i, a, o
    cdef double total = 0, block, spike, delta, w
    for k in range(c):
        block = 0
        for a in range(d):
            mean[a] = 0
        for i in range(P):
            o = (k * P + i) * d
            for a in range(d):
                w = 1.0 if m == NULL else m[a]
                delta = <double> x[o + a] - y[o + a]
                block += w * delta * delta
                mean[a] += delta
        spike = 0
        if beta > 0:
            for a in range(d):
                spike += (1.0 if m == NULL else m[a]) * mean[a] * mean[a]
        total += (block + beta * spike / P) / (1.0 if scale == NULL else scale[k])
    return total


cdef inline double shifted_rows(
    const double* z, const double* s, const double* m, double beta, double t,
    Py_ssize_t P, Py_ssize_t d, double* roots,
    double* x,     # out (P, d): prox(z_i - beta s)
    double* F,     # out (d,): s - mean_i(x_i - z_i)
    double* diag,  # out (d,): sum_i u_i m / (1 + u_i m)
) noexcept nogil:
    """The group prox rows at shift s, F(s) and the diagonal of its
    Jacobian's prox part; returns ||F||^2."""
    cdef Py_ssize_t i, a, o
    cdef double u, total = 0
    for a in range(d):
        F[a] = 0
        diag[a] = 0
    for i in range(P):
        o = i * d
        for a in range(d):
            x[o + a] = z[o + a] - beta * s[a]
        feature_group_row(x + o, m, t, d, roots + i)
        u = roots[i]
        for a in range(d):
            F[a] += x[o + a] - z[o + a]
            diag[a] += u * m[a] / (1.0 + u * m[a])
    for a in range(d):
        F[a] = s[a] - F[a] / P
        total += F[a] * F[a]
    return total


cdef inline void spike_prox(
    int code,
    const double* v,  # (c P, d): the step's point, float64 (see spike_step)
    floating* out,    # out (c P, d): prox of t * R at v in M
    double t, const double* m, double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* roots,   # in/out (c P,): the group prox's last roots
    double* shifts,  # in/out (c, d): each output's shift, the next call's start
    double* work,    # scratch: 3 P d + 6 d doubles (spike_work_size)
) noexcept nogil:
    """out <- prox of t * R at v in M (output k with t * w_k)."""
    cdef Py_ssize_t k, i, a, it, half
    cdef double t_k, sq, sqt, alpha, floor
    cdef double *z = work
    cdef double *x = z + P * d
    cdef double *xt = x + P * d
    cdef double *F = xt + P * d
    cdef double *Ft = F + d
    cdef double *diag = Ft + d
    cdef double *diagt = diag + d
    cdef double *delta = diagt + d
    cdef double *trial = delta + d
    cdef double *s
    cdef double *swap
    cdef bint moved
    if code == NONE or t == 0:  # the identity, and F(s) = (1 + beta) s: s = 0
        for i in range(c * P * d):
            out[i] = <floating> v[i]
        return
    for k in range(c):
        t_k = t * (1.0 if scale == NULL else scale[k])
        s = shifts + k * d
        floor = 0
        for i in range(P * d):
            z[i] = v[k * P * d + i]
            floor += z[i] * z[i]
        if code == L2:  # linear: the shift in closed form
            for a in range(d):
                delta[a] = 0
                for i in range(P):
                    delta[a] += z[i * d + a]
                s[a] = -t_k * delta[a] / P / (m[a] + t_k + beta * m[a])
            for i in range(P):
                for a in range(d):
                    out[k * P * d + i * d + a] = m[a] * (z[i * d + a] - beta * s[a]) / (m[a] + t_k)
            continue
        floor = 1e-20 * (floor / P + 1e-300)  # ||F|| <= 1e-10 of the rows' size
        sq = shifted_rows(z, s, m, beta, t_k, P, d, roots + k * P, x, F, diag)
        for it in range(SHIFT_STEPS):
            if sq <= floor:
                break
            for a in range(d):
                delta[a] = F[a] / (1.0 + beta / P * diag[a])
            alpha = 1.0
            moved = False
            for half in range(SHIFT_HALVINGS):
                for a in range(d):
                    trial[a] = s[a] - alpha * delta[a]
                sqt = shifted_rows(z, trial, m, beta, t_k, P, d, roots + k * P, xt,
                                   Ft, diagt)
                if sqt < sq:
                    moved = True
                    break
                alpha *= 0.5
            if not moved:
                break
            for a in range(d):
                s[a] = trial[a]
            swap = x
            x = xt
            xt = swap
            swap = F
            F = Ft
            Ft = swap
            swap = diag
            diag = diagt
            diagt = swap
            sq = sqt
        for i in range(P * d):
            out[k * P * d + i] = <floating> x[i]
        # the buffers may have swapped: restore the layout for the next output
        x = z + P * d
        xt = x + P * d
        F = xt + P * d
        Ft = F + d
        diag = Ft + d
        diagt = diag + d
