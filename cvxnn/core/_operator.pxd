from cython cimport floating

cdef void forward(
    const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] U, Py_ssize_t n_outputs,
    floating[:, ::1] work, floating[:, ::1] out,
) noexcept nogil

cdef void adjoint(
    const floating[:, ::1] X, const unsigned char[:, ::1] D,
    const floating[:, ::1] S,
    floating[:, ::1] work, floating[:, ::1] out,
) noexcept nogil

cdef void forward_block(
    const floating* Xb, Py_ssize_t rows, Py_ssize_t d,
    const floating* U, Py_ssize_t cp, floating* Z,
) noexcept nogil

cdef void adjoint_block(
    const floating* Xb, Py_ssize_t rows, Py_ssize_t d,
    const floating* M, Py_ssize_t cp, floating beta, floating* G,
) noexcept nogil

cdef void forward_rows(
    const floating* X, const unsigned char* D, Py_ssize_t n, Py_ssize_t d,
    Py_ssize_t P, const floating* U, Py_ssize_t n_outputs,
    floating* work, Py_ssize_t block, floating* out,
) noexcept nogil
