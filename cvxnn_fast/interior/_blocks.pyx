# cython: language_level=3
"""Batched dense kernels of the interior-point method: SPD block inverses.

The interior-point method (:mod:`cvxnn_fast.interior.solver`) works in float64 for
every problem dtype: its Newton systems' condition numbers grow past 1e10
near the solution, beyond float32. So this kernel is float64 only.

NumPy's batched ``inv`` treats each block as a general matrix (an LU per
block, ~25 ms for 200 blocks of 66 x 66 here); a Cholesky factorization and
its inverse (LAPACK ``dpotrf`` + ``dpotri``) cost half the flops and run in
one nogil loop.
"""

from scipy.linalg.cython_lapack cimport dpotrf, dpotri


def spd_inverse(double[:, :, ::1] H):
    """Replace each symmetric positive definite block ``H[b]`` by its inverse.

    Returns -1 when every block factored, else the index of the first block
    that is not numerically positive definite (its contents are then
    undefined).

    Row-major blocks are the column-major storage of their transposes; for a
    symmetric block both are the same matrix, so LAPACK's "L" triangle is the
    row-major upper one, which is mirrored into the lower after the inverse.
    """
    cdef Py_ssize_t n_blocks = H.shape[0], b, i, j
    cdef int m = <int> H.shape[1], info = 0
    cdef char lower = b"L"
    cdef int failed = -1
    cdef double* block
    with nogil:
        for b in range(n_blocks):
            block = &H[b, 0, 0]
            dpotrf(&lower, &m, block, &m, &info)
            if info == 0:
                dpotri(&lower, &m, block, &m, &info)
            if info != 0:
                failed = <int> b
                break
            for i in range(m):
                for j in range(i):
                    H[b, i, j] = H[b, j, i]
    return failed


def orthant_step(const double[:, ::1] x, const double[:, ::1] dx):
    """Largest alpha with ``x + alpha dx >= 0`` (inf when dx >= 0), one pass.

    The interior-point method calls it four times per step on (blocks, n)
    arrays; NumPy's masked version made three temporaries of that size.
    """
    cdef Py_ssize_t i, j
    cdef double best = float("inf"), ratio
    with nogil:
        for i in range(x.shape[0]):
            for j in range(x.shape[1]):
                if dx[i, j] < 0:
                    ratio = -x[i, j] / dx[i, j]
                    if ratio < best:
                        best = ratio
    return best
