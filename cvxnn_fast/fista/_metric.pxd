# The pattern-mean metric of gated ReLU's R-FISTA (see cvxnn_fast/metric.py).
#
# Weights are flat (c * P, d): block k (rows k * P .. k * P + P - 1) holds
# the P neurons of output k. The metric is M = I + beta * Pi, Pi the
# orthogonal projector onto the weights that repeat one vector across the P
# neurons of a block (Pi x = the block's row mean, copied to every row), so
#
#     ||x||_M^2 = ||x||^2 + beta * P * sum_k ||mean_k(x)||^2,
#     M^{-1} = I - beta / (1 + beta) * Pi.
#
# The prox of t * R in this metric couples a block's rows only through one
# d-vector m: x_i = prox_{tR}(z_i - beta * m) with m the root of
# F(m) = m - mean_i(x_i - z_i), found by damped (quasi-)Newton steps on
# F'(m) = I + (beta / P) * sum_i J_i (J_i the Jacobian of the row prox).

from cython cimport floating
from libc.math cimport fabs, sqrt

from cvxnn_fast.common._penalty cimport GROUP_L1, L1, L2, NONE
from cvxnn_fast.fista._feature cimport spike_squared_distance, spike_step

cdef enum:
    NEWTON_STEPS = 50
    HALVINGS = 30
    # Inexact Newton: CG to 1e-8 relative residual, at most CG_STEPS steps
    # (each two passes over the active rows).
    CG_STEPS = 20


cdef inline double output_scale(const double* scale, Py_ssize_t k) noexcept nogil:
    """Output k's step multiplier w_k (1 without per-output scales)."""
    return 1.0 if scale == NULL else scale[k]


cdef inline void metric_step(
    const floating* y, const floating* g, double step, double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* mean,  # scratch (d,)
    double* out,   # out: y - step * M^{-1} g, in float64 (see spike_step)
) noexcept nogil:
    """The feature metric's spike step with m = 1 (see _feature.pxd)."""
    spike_step(y, g, step, NULL, beta, c, P, d, scale, mean, out)


cdef inline double metric_squared_distance(
    const floating* x, const floating* y, double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* mean,  # scratch (d,)
) noexcept nogil:
    """||x - y||_M^2 (output k's block divided by w_k): the feature metric's
    spike norm with m = 1."""
    return spike_squared_distance(x, y, NULL, beta, c, P, d, scale, mean)


cdef inline int row_prox(
    int code, const double* z, const double* m, double beta, double t,
    Py_ssize_t d,
    double* x,       # out: prox_{tR}(z - beta m)
    double* diag,    # in/out (d,): += diagonal part of the prox's Jacobian
    double* weight,  # out (d,): sqrt(t/||w||) * w/||w|| (group_l1, active row)
) noexcept nogil:
    """One row's prox at the shifted point; returns 1 for an active group_l1
    row (whose Jacobian is ``s I + weight weight^T``), else 0."""
    cdef Py_ssize_t a
    cdef double norm = 0, s, w, root
    if code == GROUP_L1:
        for a in range(d):
            w = z[a] - beta * m[a]
            x[a] = w
            norm += w * w
        norm = sqrt(norm)
        if norm <= t:
            for a in range(d):
                x[a] = 0
            return 0
        s = 1.0 - t / norm
        root = sqrt(t / norm) / norm
        for a in range(d):
            weight[a] = root * x[a]
            x[a] *= s
            diag[a] += s
        return 1
    for a in range(d):
        w = z[a] - beta * m[a]
        if code == L1:
            s = fabs(w)
            if s > t:
                x[a] = (1.0 - t / s) * w
                diag[a] += 1.0
            else:
                x[a] = 0.0
        else:  # L2
            x[a] = w / (1.0 + t)
            diag[a] += 1.0 / (1.0 + t)
    return 0


cdef inline double evaluate(
    int code, const double* z, const double* m, double beta, double t,
    Py_ssize_t P, Py_ssize_t d,
    double* x,     # out (P, d): the rows' prox at m
    double* F,     # out (d,): F(m)
    double* diag,  # out (d,): diagonal part of sum_i J_i
    double* W,     # out (active, d): low-rank part of sum_i J_i (group_l1)
    Py_ssize_t* n_active,
) noexcept nogil:
    """F(m), the prox rows and the pieces of F'(m) in one pass; ||F||^2."""
    cdef Py_ssize_t i, a, active = 0
    cdef double total = 0
    for a in range(d):
        F[a] = 0
        diag[a] = 0
    for i in range(P):
        active += row_prox(code, z + i * d, m, beta, t, d, x + i * d, diag,
                           W + active * d)
        for a in range(d):
            F[a] += x[i * d + a] - z[i * d + a]
    for a in range(d):
        F[a] = m[a] - F[a] / P
        total += F[a] * F[a]
    n_active[0] = active
    return total


cdef inline void newton_direction(
    const double* F, const double* diag, const double* W, Py_ssize_t active,
    Py_ssize_t d, double coef,
    double* delta,  # out: F'(m)^{-1} F
    double* cg,     # scratch: 4 d + active doubles
) noexcept nogil:
    """Solve ``(I + coef (diag + W^T W)) delta = F`` by Jacobi-preconditioned
    conjugate gradients, matrix-free (W is (active, d) row-major).

    The matrix is the identity plus a small positive part, so CG converges
    in a few steps; no BLAS call, whose threads would cost more than the
    solve on these d x d systems.
    """
    cdef double* r = cg
    cdef double* p = cg + d
    cdef double* q = cg + 2 * d
    cdef double* prec = cg + 3 * d
    cdef double* tmp = cg + 4 * d
    cdef Py_ssize_t a, i, it
    cdef double rz, rz_new, alpha, pq, r0 = 0, rr, acc
    for a in range(d):
        prec[a] = 1.0 + coef * diag[a]
    for i in range(active):
        for a in range(d):
            prec[a] += coef * W[i * d + a] * W[i * d + a]
    rz = 0
    for a in range(d):
        delta[a] = 0
        r[a] = F[a]
        p[a] = r[a] / prec[a]
        rz += r[a] * p[a]
        r0 += r[a] * r[a]
    for it in range(CG_STEPS):
        # q = (I + coef diag) p + coef W^T (W p)
        for i in range(active):
            acc = 0
            for a in range(d):
                acc += W[i * d + a] * p[a]
            tmp[i] = coef * acc
        pq = 0
        for a in range(d):
            q[a] = (1.0 + coef * diag[a]) * p[a]
        for i in range(active):
            for a in range(d):
                q[a] += tmp[i] * W[i * d + a]
        for a in range(d):
            pq += p[a] * q[a]
        if pq <= 0:
            break
        alpha = rz / pq
        rr = 0
        rz_new = 0
        for a in range(d):
            delta[a] += alpha * p[a]
            r[a] -= alpha * q[a]
            rr += r[a] * r[a]
            rz_new += r[a] * r[a] / prec[a]
        if rr <= 1e-16 * r0:
            break
        for a in range(d):
            p[a] = r[a] / prec[a] + rz_new / rz * p[a]
        rz = rz_new


cdef inline Py_ssize_t metric_prox(
    int code,
    const double* v,  # (c P, d): the step's point, float64 (see spike_step)
    floating* out,    # out (c P, d): prox of t * R at v in M
    double t, double beta,
    Py_ssize_t c, Py_ssize_t P, Py_ssize_t d,
    const double* scale,  # (c,) per-output step multipliers w_k, or NULL
    double* m_state,  # in/out (c, d): each block's m, the next call's start
    double* work,     # scratch: 3 P d + 8 d + P doubles (metric.work_size)
) noexcept nogil:
    """out <- prox of t * R at v in the metric M, block by block
    (block k with t * w_k: the metric ``M / w_k``); returns the Newton steps
    taken.

    The scratch is the caller's: a malloc of its ~3 P d doubles per call is
    an mmap/munmap pair (with page faults and TLB shootdowns on the core
    running BLAS threads), which cost more than the prox itself.
    """
    cdef Py_ssize_t k, i, a, it, half, active, steps = 0
    cdef bint full
    cdef double alpha, norm_sq, new_sq, tiny, coef = beta / P, t_k
    cdef double *z, *x, *W, *cg, *diag, *F, *delta, *trial, *m
    if code == NONE or t == 0:  # the identity, and F(m) = (1 + beta) m: m = 0
        for i in range(c * P * d):
            out[i] = <floating> v[i]
        return 0
    z = work
    x = z + P * d
    W = x + P * d
    cg = W + P * d
    diag = cg + 4 * d + P
    F = diag + d
    delta = F + d
    trial = delta + d
    for k in range(c):
        m = m_state + k * d
        t_k = t * output_scale(scale, k)
        tiny = 0
        for i in range(P * d):
            z[i] = v[k * P * d + i]
            tiny += z[i] * z[i]
        # Stop when ||F|| is at rounding level of the rows' size.
        tiny = 1e-26 * (tiny / P + 1e-300)
        norm_sq = evaluate(code, z, m, beta, t_k, P, d, x, F, diag, W, &active)
        full = False
        for it in range(NEWTON_STEPS):
            if norm_sq <= tiny:
                break
            steps += 1
            if full:
                newton_direction(F, diag, W, active, d, coef, delta, cg)
            else:
                # The diagonal of F'(m) only: W^T W is small next to it
                # unless rows sit near their threshold (then switch to Newton).
                for a in range(d):
                    delta[a] = F[a] / (1.0 + coef * diag[a])
            alpha = 1.0
            for half in range(HALVINGS):
                for a in range(d):
                    trial[a] = m[a] - alpha * delta[a]
                new_sq = evaluate(code, z, trial, beta, t_k, P, d, x, F, diag, W,
                                  &active)
                if new_sq < norm_sq:
                    break
                alpha *= 0.5
            else:
                # No decrease: m is at rounding level; x holds a rejected
                # trial, so take the prox at m again.
                evaluate(code, z, m, beta, t_k, P, d, x, F, diag, W, &active)
                break
            # A diagonal step that shrinks ||F||^2 less than 100x: Newton next.
            full = full or new_sq > 1e-2 * norm_sq
            for a in range(d):
                m[a] = trial[a]
            norm_sq = new_sq
        for i in range(P * d):
            out[k * P * d + i] = <floating> x[i]
    return steps
