"""Gate sampling and activation patterns.

A gate ``g`` (a vector in R^d) defines the activation pattern
``D = diag(1[X g > 0])``. Sampling many gates and keeping the distinct,
non-empty patterns gives the finite set of "data-local" linear models the
convex program sums over.
"""

import numpy as np

# Products X @ G are formed this many entries at a time (about 64 MB in float64).
_BLOCK_ENTRIES = 8_000_000


def standard_normal_gates(n_features, n_gates, random_state, dtype=np.float64):
    """Gates with i.i.d. standard normal entries, shape (n_features, n_gates).

    Sampled in float64 from ``random_state`` (a numpy Generator) and then cast,
    so float32 and float64 problems with one seed share their gates.
    """
    G = random_state.standard_normal((n_features, n_gates))
    return np.ascontiguousarray(G, dtype=dtype)


def raw_patterns(X, G):
    """The boolean matrix ``X @ G > 0`` of shape (n_samples, n_gates), in row blocks."""
    n = X.shape[0]
    out = np.empty((n, G.shape[1]), dtype=bool)
    step = max(1, _BLOCK_ENTRIES // max(1, G.shape[1]))
    for start in range(0, n, step):
        np.greater(X[start : start + step] @ G, 0, out=out[start : start + step])
    return out


def raw_input_gates(G, column_scale):
    """Gates ``G`` of the scaled data (``X / column_scale``, bias column
    included in the scales as 1) as gates of the raw inputs, as the trained
    network holds them: the patterns of standardized data are formed with
    these on the raw data, so that the network's gate test on the training
    data forms the same products. (BLAS may still sum them in another order
    for another number of columns, a one-neuron network's matrix-vector
    product say, so a row on a gate's hyperplane to rounding, as integer
    data and integer gates give, can still fall either way.)"""
    return np.ascontiguousarray(G / column_scale.astype(G.dtype)[:, None])


def tensor_patterns(T, G, dtype, bias=False):
    """``X @ G > 0`` formed where the PyTorch tensor ``T`` lives (a GPU, say).

    ``X`` is ``T`` (n, d, raw) with a column of ones appended when ``bias``,
    and ``G`` gates of it (standardized data: :func:`raw_input_gates`, as
    the network holds them); so ``X @ G = T @ G[:d] + G[d]``, in row blocks,
    in ``dtype`` (float32 or float64, the problem's). Only the boolean result
    (n x n_gates bytes) comes back to the host. Entries of ``X @ G`` within
    rounding of zero may come out the other way than in :func:`raw_patterns`
    (another summation order); the problem is whatever patterns it holds.
    Duck-typed: torch is not imported here.
    """
    d = T.shape[1]
    T = T.detach().float() if np.dtype(dtype) == np.float32 else T.detach().double()
    Wt = T.new_tensor(np.ascontiguousarray(G[:d]))
    offset = T.new_tensor(G[d]) if bias else None
    n = T.shape[0]
    out = np.empty((n, G.shape[1]), dtype=bool)
    step = max(1, _BLOCK_ENTRIES // max(1, G.shape[1]))
    for start in range(0, n, step):
        Z = T[start:start + step] @ Wt
        if offset is not None:
            Z += offset
        out[start:start + step] = (Z > 0).cpu().numpy()
    return out


def unique_patterns(D):
    """Indices of the columns of D kept: first occurrences, non-zero, in order.

    Columns are compared bit for bit (packed along samples), so the result is
    deterministic and independent of floating point.
    """
    packed = np.ascontiguousarray(np.packbits(D, axis=0).T)  # (n_gates, n_bytes)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return first[D[:, first].any(axis=0)]


def activation_patterns(X, G, D_all=None):
    """Distinct non-empty activation patterns of the gates G on the data X.

    Parameters
    ----------
    X : ndarray (n_samples, d)
    G : ndarray (d, n_gates)

    Returns
    -------
    D : bool ndarray (n_samples, P), ``D[j, i] = 1[X[j] @ G[:, i] > 0]``
    kept : int ndarray (P,), the column of G behind each kept pattern.

    ``D_all``, when given, is ``X @ G > 0`` already formed (by
    :func:`tensor_patterns`); only its deduplication is done here.
    """
    if D_all is None:
        D_all = raw_patterns(X, G)
    kept = unique_patterns(D_all)
    return np.ascontiguousarray(D_all[:, kept]), kept
