# The one door to BLAS: fused-type wrappers over scipy.linalg.cython_blas.
#
# Arrays in cvxnn are C-contiguous (row-major). BLAS is column-major, so a
# row-major (m, n) array is the column-major (n, m) array of its transpose;
# the callers document the transposition they rely on at each call.

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm, ddot, sdot


cdef inline void gemm(
    char transa, char transb, int m, int n, int k,
    floating alpha, const floating* A, int lda,
    const floating* B, int ldb,
    floating beta, floating* C, int ldc,
) noexcept nogil:
    """C <- alpha op(A) op(B) + beta C, column-major, op(A) is m x k."""
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*> A, &lda,
              <float*> B, &ldb, &beta, C, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*> A, &lda,
              <double*> B, &ldb, &beta, C, &ldc)


cdef inline floating dot(int n, const floating* x, const floating* y) noexcept nogil:
    """Inner product of two contiguous vectors of length n."""
    cdef int one = 1
    if floating is float:
        return sdot(&n, <float*> x, &one, <float*> y, &one)
    else:
        return ddot(&n, <double*> x, &one, <double*> y, &one)
