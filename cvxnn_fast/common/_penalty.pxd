# Regularizers for the compiled loops, mirroring cvxnn/regularizers.py.
#
# Codes: 0 group_l1 (rows), 1 feature_group_l1 (columns, per half),
# 2 l1, 3 l2, 4 none. Weights are flat (R, d) arrays made of n_halves
# stacked halves (1 for gated ReLU's U, 2 for ReLU's V and W); a
# feature group never spans two halves.

from cython cimport floating
from libc.math cimport fabs, sqrt
from libc.stdlib cimport calloc, free

cdef enum:
    GROUP_L1 = 0
    FEATURE_GROUP_L1 = 1
    L1 = 2
    L2 = 3
    NONE = 4


cdef inline double row_norm(const floating* x, Py_ssize_t d) noexcept nogil:
    cdef double acc = 0
    cdef Py_ssize_t a
    for a in range(d):
        acc += <double> x[a] * x[a]
    return sqrt(acc)


cdef inline double* column_norms(
    const floating* x, Py_ssize_t rows, Py_ssize_t d,
) noexcept nogil:
    """Euclidean norms of the d columns of a (rows, d) block; caller frees."""
    cdef double* out = <double*> calloc(d, sizeof(double))
    cdef Py_ssize_t r, a
    for r in range(rows):
        for a in range(d):
            out[a] += <double> x[r * d + a] * x[r * d + a]
    for a in range(d):
        out[a] = sqrt(out[a])
    return out


cdef inline double penalty_value(
    int code, const floating* x, Py_ssize_t R, Py_ssize_t d, Py_ssize_t n_halves,
) noexcept nogil:
    """R(x), summed over halves."""
    cdef double total = 0
    cdef Py_ssize_t r, a, h, half = R // n_halves
    cdef double* norms
    if code == GROUP_L1:
        for r in range(R):
            total += row_norm(x + r * d, d)
    elif code == FEATURE_GROUP_L1:
        for h in range(n_halves):
            norms = column_norms(x + h * half * d, half, d)
            for a in range(d):
                total += norms[a]
            free(norms)
    elif code == L1:
        for r in range(R * d):
            total += fabs(x[r])
    elif code == L2:
        for r in range(R * d):
            total += 0.5 * x[r] * x[r]
    return total


cdef inline double shrink(double norm, double t) noexcept nogil:
    return 1.0 - t / norm if norm > t else 0.0


cdef inline void penalty_prox(
    int code, const floating* v, double t, Py_ssize_t R, Py_ssize_t d,
    Py_ssize_t n_halves,
    floating* out,  # out: prox of t * R at v; may alias v (in place)
) noexcept nogil:
    cdef Py_ssize_t r, a, h, half = R // n_halves
    cdef double s
    cdef double* norms
    if code == GROUP_L1:
        for r in range(R):
            s = shrink(row_norm(v + r * d, d), t)
            for a in range(d):
                out[r * d + a] = s * v[r * d + a]
    elif code == FEATURE_GROUP_L1:
        for h in range(n_halves):
            norms = column_norms(v + h * half * d, half, d)
            for a in range(d):
                norms[a] = shrink(norms[a], t)
            for r in range(h * half, (h + 1) * half):
                for a in range(d):
                    out[r * d + a] = norms[a] * v[r * d + a]
            free(norms)
    elif code == L1:
        for r in range(R * d):
            s = fabs(v[r])
            out[r] = (1.0 - t / s) * v[r] if s > t else 0.0
    elif code == L2:
        for r in range(R * d):
            out[r] = v[r] / (1.0 + t)
    else:
        for r in range(R * d):
            out[r] = v[r]


cdef inline double dual_norm(
    int code, const floating* g, Py_ssize_t R, Py_ssize_t d, Py_ssize_t n_halves,
) noexcept nogil:
    """Dual norm of a norm regularizer (codes 0-2), max over halves."""
    cdef double worst = 0, s
    cdef Py_ssize_t r, a, h, half = R // n_halves
    cdef double* norms
    if code == GROUP_L1:
        for r in range(R):
            s = row_norm(g + r * d, d)
            worst = s if s > worst else worst
    elif code == FEATURE_GROUP_L1:
        for h in range(n_halves):
            norms = column_norms(g + h * half * d, half, d)
            for a in range(d):
                worst = norms[a] if norms[a] > worst else worst
            free(norms)
    else:
        for r in range(R * d):
            s = fabs(g[r])
            worst = s if s > worst else worst
    return worst


cdef inline double group_residual_sq(
    const floating* g, const floating* x, double lam, Py_ssize_t count,
    Py_ssize_t stride, double x_norm, double g_norm,
) noexcept nogil:
    """||min-norm element of g + lam d||.||(x)||^2 for one group of `count` entries."""
    cdef double acc = 0, r, excess
    cdef Py_ssize_t a
    if x_norm > 0:
        for a in range(count):
            r = g[a * stride] + lam * x[a * stride] / x_norm
            acc += r * r
        return acc
    excess = g_norm - lam
    return excess * excess if excess > 0 else 0.0


cdef inline double residual_sq(
    int code, const floating* g, const floating* x, double lam, Py_ssize_t R,
    Py_ssize_t d, Py_ssize_t n_halves,
) noexcept nogil:
    """Squared norm of the minimum-norm element of g + lam dR(x)."""
    cdef double total = 0, r
    cdef Py_ssize_t i, a, h, half = R // n_halves
    cdef double* xn
    cdef double* gn
    if lam == 0 or code == NONE:
        for i in range(R * d):
            total += <double> g[i] * g[i]
    elif code == GROUP_L1:
        for i in range(R):
            total += group_residual_sq(g + i * d, x + i * d, lam, d, 1,
                                       row_norm(x + i * d, d), row_norm(g + i * d, d))
    elif code == FEATURE_GROUP_L1:
        for h in range(n_halves):
            xn = column_norms(x + h * half * d, half, d)
            gn = column_norms(g + h * half * d, half, d)
            for a in range(d):
                total += group_residual_sq(g + h * half * d + a, x + h * half * d + a,
                                           lam, half, d, xn[a], gn[a])
            free(xn)
            free(gn)
    elif code == L1:
        for i in range(R * d):
            total += group_residual_sq(g + i, x + i, lam, 1, 1, fabs(x[i]), fabs(g[i]))
    else:
        for i in range(R * d):
            r = g[i] + lam * x[i]
            total += r * r
    return total
