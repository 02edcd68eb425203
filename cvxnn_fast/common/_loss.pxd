# Losses for the compiled loops, mirroring cvxnn/losses.py (the reference).
#
# Codes: 0 squared, 1 logistic, 2 cross_entropy. All functions work on rows
# of (n, c) arrays and return sums over rows accumulated in double precision;
# the 1/n of the objective is applied by the caller.

from cython cimport floating
from libc.math cimport exp, expm1, log, log1p

cdef enum:
    SQUARED = 0
    LOGISTIC = 1
    CROSS_ENTROPY = 2


cdef inline double softplus(double z) noexcept nogil:
    """log(1 + exp(z)) without overflow."""
    if z > 0:
        return z + log1p(exp(-z))
    return log1p(exp(z))


cdef inline double sigmoid(double z) noexcept nogil:
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


cdef inline double xlogx(double x) noexcept nogil:
    return x * log(x) if x > 0 else 0.0


cdef inline double loss_sum(
    int code, const floating* Yhat, const floating* Y, Py_ssize_t n, Py_ssize_t c,
    floating* S,  # out: unscaled gradient d loss / d Yhat, skipped when NULL
) noexcept nogil:
    """Sum over the n rows of the loss; optionally its gradient."""
    cdef Py_ssize_t j, k
    cdef double total = 0, r, m, lse, yz
    cdef const floating* z
    cdef const floating* t
    for j in range(n):
        z = Yhat + j * c
        t = Y + j * c
        if code == SQUARED:
            for k in range(c):
                r = z[k] - t[k]
                total += 0.5 * r * r
                if S != NULL:
                    S[j * c + k] = r
        elif code == LOGISTIC:
            for k in range(c):
                yz = t[k] * z[k]
                total += softplus(-yz)
                if S != NULL:
                    S[j * c + k] = -t[k] * sigmoid(-yz)
        else:
            m = z[0]
            for k in range(1, c):
                if z[k] > m:
                    m = z[k]
            lse = 0
            for k in range(c):
                lse += exp(z[k] - m)
            lse = m + log(lse)
            for k in range(c):
                total -= t[k] * z[k]
                if S != NULL:
                    S[j * c + k] = exp(z[k] - lse) - t[k]
            total += lse
    return total


cdef inline double conjugate_sum(
    int code, const floating* S, const floating* Y, Py_ssize_t n, Py_ssize_t c,
    double alpha,
) noexcept nogil:
    """Sum over rows of loss*(alpha * s_j): the dual of the data fit.

    alpha in [0, 1] keeps alpha * S in the conjugate's domain for the
    gradients S of all three losses; tiny round-off outside it is clipped.
    """
    cdef Py_ssize_t j, k
    cdef double total = 0, s, p
    for j in range(n):
        for k in range(c):
            s = alpha * S[j * c + k]
            if code == SQUARED:
                total += 0.5 * s * s + s * Y[j * c + k]
            elif code == LOGISTIC:
                p = -Y[j * c + k] * s
                p = 0.0 if p < 0 else (1.0 if p > 1 else p)
                total += xlogx(p) + xlogx(1.0 - p)
            else:
                p = s + Y[j * c + k]
                total += xlogx(p if p > 0 else 0.0)
    return total


cdef inline double bregman_sum(
    int code, const floating* Z_new, const floating* Z_y, const floating* S_y,
    const floating* Y, Py_ssize_t n, Py_ssize_t c,
) noexcept nogil:
    """Sum over rows of loss(z_new) - loss(z_y) - <loss'(z_y), z_new - z_y>.

    Written so that nothing cancels: the line search compares it with
    ||x_new - y||^2 / (2 step) down to steps where both are ~1e-20, which a
    difference of two loss values (each ~1) cannot resolve. S_y holds
    loss'(z_y); for cross-entropy softmax(z_y) = S_y + Y.
    """
    cdef Py_ssize_t j, k
    cdef double total = 0, delta, u, du, sig, acc, lin, p
    for j in range(n):
        if code == SQUARED:
            for k in range(c):
                delta = Z_new[j * c + k] - Z_y[j * c + k]
                total += 0.5 * delta * delta
        elif code == LOGISTIC:
            for k in range(c):
                u = -Y[j * c + k] * Z_y[j * c + k]
                du = -Y[j * c + k] * (Z_new[j * c + k] - Z_y[j * c + k])
                sig = sigmoid(u)
                total += log1p(sig * expm1(du)) - sig * du
        else:
            acc = 0
            lin = 0
            for k in range(c):
                delta = Z_new[j * c + k] - Z_y[j * c + k]
                p = S_y[j * c + k] + Y[j * c + k]
                acc += p * expm1(delta)
                lin += p * delta
            total += log1p(acc) - lin
    return total


cdef inline void hessian_factors(
    int code, const floating* S, const floating* Y, Py_ssize_t n, Py_ssize_t c,
    floating* Wd,  # out: (n, c) diagonal part
    floating* Q,   # out: (n, c) rank-one part
) noexcept nogil:
    """Per-sample Hessian of the loss at the point whose gradient is S.

    The Hessian of row j is diag(Wd_j) - Q_j Q_j^T: squared 1 (Q = 0);
    logistic sigma (1 - sigma) with sigma = -y s (Q = 0); cross-entropy
    diag(p) - p p^T with p = softmax = s + y (Q = p).
    """
    cdef Py_ssize_t i
    cdef double sig
    for i in range(n * c):
        if code == SQUARED:
            Wd[i] = 1
            Q[i] = 0
        elif code == LOGISTIC:
            sig = -Y[i] * S[i]
            Wd[i] = sig * (1.0 - sig)
            Q[i] = 0
        else:
            Wd[i] = S[i] + Y[i]
            Q[i] = Wd[i]
