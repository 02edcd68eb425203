r"""The linear map from weights to predictions, implicit and explicit.

For weights ``U`` of shape (n_outputs, P, d) and patterns ``D`` (n, P),

.. math:: \hat y_{jk} = \sum_i D_{ji}\, x_j^\top u_{k,i},

i.e. ``yhat = rowsum(D * (X @ U_k^T))`` per output. :func:`predict` and
:func:`adjoint` apply it and its transpose through the compiled kernels of
:mod:`cvxnn.core._operator` (two GEMMs and masked sums, in row blocks).
:func:`design_matrix` and :func:`cone_matrix` build the explicit sparse
matrices, which only the CVXPY backend and the tests use.
"""

import numpy as np
import scipy.sparse as sp

from cvxnn.core import _operator

# Scratch of the row-blocked products, in bytes.
WORK_BYTES = 32 * 2**20


def block_rows(n_samples, width, itemsize):
    """Rows per block so that a (rows, width) scratch fits in WORK_BYTES."""
    return int(max(1, min(n_samples, WORK_BYTES // max(1, width * itemsize))))


def _work(X, width):
    return np.empty((block_rows(X.shape[0], width, X.itemsize), width), X.dtype)


def predict(X, D, U):
    """Predictions ``yhat[j, k] = sum_i D[j, i] X[j] @ U[k, i]``, (n, n_outputs)."""
    n_outputs, P, d = U.shape
    U_flat = np.ascontiguousarray(U, dtype=X.dtype).reshape(n_outputs * P, d)
    out = np.empty((X.shape[0], n_outputs), X.dtype)
    _operator.masked_forward(X, D.view(np.uint8), U_flat, _work(X, n_outputs * P), out)
    return out


def adjoint(X, D, S):
    """Adjoint applied to S (n, n_outputs): ``G[k, i] = sum_j D[j, i] S[j, k] X[j]``."""
    n_outputs, P, d = S.shape[1], D.shape[1], X.shape[1]
    S = np.ascontiguousarray(S, dtype=X.dtype)
    out = np.empty((n_outputs * P, d), X.dtype)
    _operator.masked_adjoint(X, D.view(np.uint8), S, _work(X, n_outputs * P), out)
    return out.reshape(n_outputs, P, d)


def products(X, U):
    """All inner products ``Z[j, k, i] = X[j] @ U[k, i]``, shape (n, n_outputs, P)."""
    n_outputs, P, d = U.shape
    return (X @ U.reshape(n_outputs * P, d).T).reshape(X.shape[0], n_outputs, P)


def cone_adjoint(X, D, Lam):
    """Adjoint of the cone map applied to multipliers Lam (n, n_outputs, P).

    ``C(U)[j, k, i] = (2 D[j, i] - 1) X[j] @ U[k, i]``; returns ``C^T Lam``
    with shape (n_outputs, P, d).
    """
    n, n_outputs, P = Lam.shape
    M = (Lam * (2.0 * D[:, None, :] - 1.0)).reshape(n, n_outputs * P)
    return (M.T @ X).reshape(n_outputs, P, X.shape[1])


def design_matrix(X, D):
    """Explicit ``A = [D_1 X, ..., D_P X]`` as CSR of shape (n, P * d).

    Column ``i * d + a`` holds ``D[:, i] * X[:, a]``, so ``A @ U[k].ravel()``
    equals ``predict(X, D, U)[:, k]``.
    """
    n, d = X.shape
    P = D.shape[1]
    rows, pats = np.nonzero(D)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(D.sum(axis=1) * d, out=indptr[1:])
    indices = (pats[:, None] * d + np.arange(d)).ravel()
    data = X[rows].ravel()
    return sp.csr_matrix((data, indices, indptr), shape=(n, P * d))


def cone_matrix(X, D):
    """Explicit cone map as CSR of shape (P * n, P * d).

    Row ``i * n + j`` is ``(2 D[j, i] - 1) X[j]`` placed on the columns of
    neuron i, so ``cone_matrix(X, D) @ U[k].ravel() >= 0`` are the cone
    constraints of output k.
    """
    n, d = X.shape
    P = D.shape[1]
    signs = 2.0 * D.T - 1.0  # (P, n)
    data = (signs[:, :, None] * X[None, :, :]).ravel()
    indices = np.broadcast_to(
        np.arange(P)[:, None, None] * d + np.arange(d)[None, None, :], (P, n, d)
    ).ravel()
    indptr = np.arange(P * n + 1, dtype=np.int64) * d
    return sp.csr_matrix((data, indices, indptr), shape=(P * n, P * d))
