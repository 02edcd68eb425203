# The eigenbasis feature metric of gated ReLU's R-FISTA (see
# cvxnn_fast/fista/feature_metric.py and docs/design/feature-metric.md).
#
# The loop runs on X Q (Q the eigenvectors of X^T X / n) with weights flat
# (c * P, d); the metric is M = I (x) diag(m), one weight m_a per feature of
# the eigenbasis, the same for every row. Output k's block takes the step
# t * w_k (per-output scales; w_k = 1 without them), i.e. the metric M / w_k.
#
# * step:     out = y - t w_k g / m
# * norm:     ||x - y||_M^2 = sum_k (1 / w_k) sum_{rows of k, a} m_a (x - y)^2
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


cdef inline void feature_step(
    const floating* y, const floating* g, double step, const double* m,
    Py_ssize_t rows, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    floating* out,  # out: y - step * w_k * g / m
) noexcept nogil:
    cdef Py_ssize_t r, a, o
    cdef double t
    for r in range(rows):
        t = step * row_scale(scale, r, P)
        o = r * d
        for a in range(d):
            out[o + a] = y[o + a] - t * g[o + a] / m[a]


cdef inline double feature_squared_distance(
    const floating* x, const floating* y, const double* m,
    Py_ssize_t rows, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
) noexcept nogil:
    """||x - y||_M^2, output k's rows divided by w_k."""
    cdef Py_ssize_t r, a, o
    cdef double total = 0, row, delta
    for r in range(rows):
        o = r * d
        row = 0
        for a in range(d):
            delta = <double> x[o + a] - y[o + a]
            row += m[a] * delta * delta
        total += row / row_scale(scale, r, P)
    return total


cdef inline void feature_group_row(
    floating* v, const double* m, double t, Py_ssize_t d,
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
    int code, floating* v, double t, const double* m,
    Py_ssize_t rows, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* roots,        # in/out (rows,): the group prox's last roots
) noexcept nogil:
    """v <- prox of t * R at v in M (output k's rows with t * w_k), in place.
    Only the rotation-invariant penalties: group_l1, l2 and none."""
    cdef Py_ssize_t r, a, o
    cdef double t_r
    if code == NONE or t == 0:
        return
    for r in range(rows):
        t_r = t * row_scale(scale, r, P)
        o = r * d
        if code == GROUP_L1:
            feature_group_row(v + o, m, t_r, d, roots + r)
        elif code == L2:
            for a in range(d):
                v[o + a] = m[a] * v[o + a] / (m[a] + t_r)
