# Fused passes of the augmented Lagrangian (ReLU), one sweep over the rows each.
#
# The cached products of a point x = [V; W] (2cP, d) are Z = X @ x^T
# (n, 2cP): column k * P + i is neuron i of output k in V, column
# cP + k * P + i the same neuron in W. With s_ji = 2 D_ji - 1 the cone
# values are c = s * Z, and with multipliers m >= 0 and penalty rho the
# shifted multipliers a = m - rho c give
#
#     penalty  = (1/2 rho) sum (max(0, a)^2 - m^2)
#     violation = max(0, max(-c))
#     gradient weights  M = +-D * S / n - s * max(0, a)   (grad = M^T X)
#
# where S is the loss gradient of the predictions yhat = rowsum(D (Z_V - Z_W)).
# Everything is row-wise, so each pass reads each row of Z once while it is
# in cache: the momentum combination, predictions, loss, penalty and
# gradient weights of the momentum point in one pass (al_prepare), the
# predictions and the Bregman divergence of a line-search candidate in
# another (al_candidate).

from cython cimport floating
from libc.math cimport fabs

from cvxnn_fast.common._loss cimport bregman_sum, loss_sum


cdef inline void al_combine_row(
    floating* z, const floating* z_new, const floating* z_x, double beta,
    Py_ssize_t width,
) noexcept nogil:
    """z = z_new + beta (z_new - z_x): products of the momentum point."""
    cdef Py_ssize_t col
    for col in range(width):
        z[col] = z_new[col] + beta * (z_new[col] - z_x[col])


cdef inline void al_predict_row(
    const floating* z, const unsigned char* mask, Py_ssize_t c, Py_ssize_t P,
    floating* yhat,  # out: (c,)
) noexcept nogil:
    """yhat[k] = sum_i D_i (z_V[k, i] - z_W[k, i]) for one sample."""
    cdef Py_ssize_t k, i
    cdef const floating* zv
    cdef const floating* zw
    cdef double acc
    for k in range(c):
        zv = z + k * P
        zw = z + (c + k) * P
        acc = 0
        for i in range(P):
            acc += mask[i] * (zv[i] - zw[i])
        yhat[k] = acc


cdef inline double al_prepare(
    int loss, const unsigned char* D, const floating* Y, const floating* mult,
    const floating* Z_new, const floating* Z_x, double beta, bint combine,
    Py_ssize_t n, Py_ssize_t c, Py_ssize_t P, double rho,
    floating* Z,     # in, or out (Z_new + beta (Z_new - Z_x)) when combine
    floating* Yhat,  # out: (n, c) predictions
    floating* S,     # out: (n, c) unscaled loss gradient
    floating* M,     # out: (n, 2cP) gradient weights, grad = M^T X
    double* fit,     # out: sum over rows of the loss (unscaled)
    double* violation,  # out: max(0, max(-c))
) noexcept nogil:
    """One pass at the momentum point; returns sum max(0, m - rho c)^2."""
    cdef Py_ssize_t j, b, k, i, width = 2 * c * P
    cdef double total = 0, fit_sum = 0, worst = 0, inv_n = 1.0 / n
    cdef double base, sg, cval, a, ap
    cdef const unsigned char* mask
    cdef floating* z
    cdef floating* m_out
    cdef const floating* m_in
    for j in range(n):
        z = Z + j * width
        mask = D + j * P
        if combine:
            al_combine_row(z, Z_new + j * width, Z_x + j * width, beta, width)
        al_predict_row(z, mask, c, P, Yhat + j * c)
        fit_sum += loss_sum(loss, Yhat + j * c, Y + j * c, 1, c, S + j * c)
        for b in range(2 * c):
            k = b if b < c else b - c
            base = S[j * c + k] * inv_n
            if b >= c:
                base = -base
            m_in = mult + j * width + b * P
            m_out = M + j * width + b * P
            for i in range(P):
                sg = 2.0 * mask[i] - 1.0
                a = m_in[i] - rho * sg * z[b * P + i]
                ap = 0.5 * (a + fabs(a))  # max(a, 0), exact and branch-free
                total += ap * ap
                m_out[i] = mask[i] * base - sg * ap
            # The largest -c, in its own loop: a max does not vectorize.
            for i in range(P):
                cval = (1.0 - 2.0 * mask[i]) * z[b * P + i]
                worst = cval if cval > worst else worst
    fit[0] = fit_sum
    violation[0] = worst
    return total


cdef inline double al_candidate(
    int loss, const unsigned char* D, const floating* Y, const floating* mult,
    const floating* Z_new, const floating* Z, const floating* Yhat,
    const floating* S, Py_ssize_t n, Py_ssize_t c, Py_ssize_t P, double rho,
    floating* Yhat_new,  # out: (n, c) predictions at the candidate
) noexcept nogil:
    """Bregman divergence of the smooth part from the momentum point (Z) to a
    candidate (Z_new), without cancellation.

    The loss part is the loss's own Bregman divergence (bregman_sum) of the
    predictions. Per penalty entry h(c) = max(0, m - rho c)^2 / (2 rho), with
    a = m - rho c_y, dd = rho (c_new - c_y) and b = a - dd, the divergence
    times 2 rho is (b+ - a+)^2 + 2 a+ b-, a sum of non-negative terms: dd^2
    when a, b > 0, a (2 dd - a) when a > 0 >= b, b^2 when b > 0 >= a.
    """
    cdef Py_ssize_t j, b, i, col, width = 2 * c * P
    cdef double loss_part = 0, total = 0, sg, a, dd, b_, a_neg, b_neg, q
    cdef const unsigned char* mask
    cdef const floating* zn
    cdef const floating* zy
    cdef const floating* m
    for j in range(n):
        zn = Z_new + j * width
        zy = Z + j * width
        m = mult + j * width
        mask = D + j * P
        al_predict_row(zn, mask, c, P, Yhat_new + j * c)
        loss_part += bregman_sum(loss, Yhat_new + j * c, Yhat + j * c, S + j * c,
                                 Y + j * c, 1, c)
        for b in range(2 * c):
            for i in range(P):
                col = b * P + i
                sg = 2.0 * mask[i] - 1.0
                a = m[col] - rho * sg * zy[col]
                dd = rho * sg * (zn[col] - zy[col])
                b_ = a - dd
                # (max(b, 0) - max(a, 0))^2 + 2 max(a, 0) max(-b, 0), with the
                # difference formed as min(a, 0) - min(b, 0) - dd: exact when
                # a, b > 0 and branch-free.
                a_neg = 0.5 * (a - fabs(a))  # min(a, 0), exact and branch-free
                b_neg = 0.5 * (b_ - fabs(b_))
                q = a_neg - b_neg - dd
                total += q * q - 2.0 * (a - a_neg) * b_neg
    return loss_part / n + total / (2.0 * rho)
