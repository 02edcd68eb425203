"""The implicit operator of the convex program, as level-3 BLAS plus masked sums.

With U stored flat as ``(n_outputs * P, d)`` (row ``k * P + i`` is neuron i of
output k), the prediction and its adjoint are

    forward:  yhat[j, k]      = sum_i D[j, i] * (X[j] @ U[k * P + i])
    adjoint:  G[k * P + i, :] = sum_j D[j, i] * S[j, k] * X[j]

Both run over blocks of ``block_rows`` samples so that the product
``X_block @ U.T`` (block_rows x n_outputs * P) is the only large temporary:
the design ``[D_1 X, ..., D_P X]`` is never formed.
"""

from cython cimport floating

from cvxnn.core._blas cimport gemm


cdef void forward_block(
    const floating* Xb, Py_ssize_t rows, Py_ssize_t d,
    const floating* U, Py_ssize_t cp,
    floating* Z,  # out: (rows, cp) row-major, Z = Xb @ U.T
) noexcept nogil:
    # Row-major Z^T (cp x rows, column-major) = U (d x cp col-major)^T @ Xb^T.
    cdef floating one = 1, zero = 0
    gemm(transa=c'T', transb=c'N', m=<int> cp, n=<int> rows, k=<int> d,
         alpha=one, A=U, lda=<int> d, B=Xb, ldb=<int> d,
         beta=zero, C=Z, ldc=<int> cp)


cdef void adjoint_block(
    const floating* Xb, Py_ssize_t rows, Py_ssize_t d,
    const floating* M, Py_ssize_t cp, floating beta,
    floating* G,  # out: (cp, d) row-major, G = beta G + M.T @ Xb
) noexcept nogil:
    # Row-major G^T (d x cp, column-major) = Xb^T (d x rows) @ M (rows x cp).
    cdef floating one = 1
    gemm(transa=c'N', transb=c'T', m=<int> d, n=<int> cp, k=<int> rows,
         alpha=one, A=Xb, lda=<int> d, B=M, ldb=<int> cp,
         beta=beta, C=G, ldc=<int> d)


cdef void masked_rowsum(
    const floating* Z, const unsigned char* D, Py_ssize_t rows,
    Py_ssize_t n_outputs, Py_ssize_t P,
    floating* out,  # out: (rows, n_outputs)
) noexcept nogil:
    cdef Py_ssize_t j, k, i
    cdef floating acc
    cdef const floating* z
    cdef const unsigned char* mask
    for j in range(rows):
        mask = D + j * P
        for k in range(n_outputs):
            z = Z + (j * n_outputs + k) * P
            acc = 0
            for i in range(P):
                acc += mask[i] * z[i]
            out[j * n_outputs + k] = acc


cdef void masked_outer(
    const floating* S, const unsigned char* D, Py_ssize_t rows,
    Py_ssize_t n_outputs, Py_ssize_t P,
    floating* M,  # out: (rows, n_outputs * P), M[j, k*P+i] = D[j,i] S[j,k]
) noexcept nogil:
    cdef Py_ssize_t j, k, i
    cdef floating s
    cdef const unsigned char* mask
    cdef floating* m
    for j in range(rows):
        mask = D + j * P
        for k in range(n_outputs):
            s = S[j * n_outputs + k]
            m = M + (j * n_outputs + k) * P
            for i in range(P):
                m[i] = mask[i] * s


cdef void forward_rows(
    const floating* X, const unsigned char* D, Py_ssize_t n, Py_ssize_t d,
    Py_ssize_t P, const floating* U, Py_ssize_t n_outputs,
    floating* work, Py_ssize_t block,
    floating* out,  # out: (n, n_outputs)
) noexcept nogil:
    """The forward map over blocks of ``block`` rows (work: block x n_outputs P)."""
    cdef Py_ssize_t start = 0, rows
    while start < n:
        rows = min(block, n - start)
        forward_block(X + start * d, rows, d, U, n_outputs * P, work)
        masked_rowsum(work, D + start * P, rows, n_outputs, P, out + start * n_outputs)
        start += rows


cdef void forward(
    const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] U, Py_ssize_t n_outputs,
    floating[:, ::1] work, floating[:, ::1] out,
) noexcept nogil:
    forward_rows(&X[0, 0], &D[0, 0], X.shape[0], X.shape[1], D.shape[1], &U[0, 0],
                 n_outputs, &work[0, 0], work.shape[0], &out[0, 0])


cdef void adjoint(
    const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] S,
    floating[:, ::1] work, floating[:, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], P = D.shape[1]
    cdef Py_ssize_t n_outputs = S.shape[1], block = work.shape[0], start = 0, rows
    cdef floating beta = 0
    while start < n:
        rows = min(block, n - start)
        masked_outer(&S[start, 0], &D[start, 0], rows, n_outputs, P, &work[0, 0])
        adjoint_block(&X[start, 0], rows, d, &work[0, 0], n_outputs * P, beta,
                      &out[0, 0])
        beta = 1
        start += rows


def masked_forward(
    const floating[:, ::1] X,
    const unsigned char[:, ::1] D,
    const floating[:, ::1] U,
    floating[:, ::1] work,
    floating[:, ::1] out,
):
    """out[j, k] = sum_i D[j, i] * (X[j] @ U[k * P + i]).

    Parameters
    ----------
    X : (n, d) C-contiguous.
    D : (n, P) uint8 patterns.
    U : (n_outputs * P, d) flat weights.
    work : (block_rows, n_outputs * P) scratch; its row count sets the block.
    out : (n, n_outputs), overwritten.
    """
    cdef Py_ssize_t n_outputs = out.shape[1]
    with nogil:
        forward(X, D, U, n_outputs, work, out)


def masked_adjoint(
    const floating[:, ::1] X,
    const unsigned char[:, ::1] D,
    const floating[:, ::1] S,
    floating[:, ::1] work,
    floating[:, ::1] out,
):
    """out[k * P + i] = sum_j D[j, i] * S[j, k] * X[j].

    Parameters
    ----------
    X : (n, d) C-contiguous.
    D : (n, P) uint8 patterns.
    S : (n, n_outputs) dual / residual variables.
    work : (block_rows, n_outputs * P) scratch; its row count sets the block.
    out : (n_outputs * P, d), overwritten.
    """
    with nogil:
        adjoint(X, D, S, work, out)
