"""Independent NumPy evaluations of the objective of API.md.

Nothing here calls cvxnn: the tests compare cvxnn's losses, regularizers,
operator and objective against these direct transcriptions of the math.
"""

import numpy as np

# Tolerances of float computations, keyed by dtype.
TOL = {
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-10},
    np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5},
}


def tol(dtype):
    return TOL[np.dtype(dtype)]


def with_bias(X, bias):
    return np.hstack([X, np.ones((X.shape[0], 1))]) if bias else np.asarray(X)


def encode_targets(y, loss):
    """Targets as (n, n_outputs): reals, +-1 for logistic, one-hot for cross-entropy."""
    y = np.asarray(y)
    if loss == "squared":
        return y.reshape(y.shape[0], -1).astype(float)
    if loss == "logistic":
        Y = y.reshape(y.shape[0], -1).astype(float)
        return np.where(Y > 0, 1.0, -1.0)
    if y.ndim == 2:
        return y.astype(float)
    classes = sorted(set(y.tolist()))
    return np.array([[float(label == c) for c in classes] for label in y])


def loss_sum(Z, Y, loss):
    """Sum over samples of the per-sample loss of predictions Z, targets Y."""
    if loss == "squared":
        return 0.5 * np.sum((Z - Y) ** 2)
    if loss == "logistic":
        return np.sum(np.log1p(np.exp(-Y * Z)))
    return np.sum(np.log(np.sum(np.exp(Z), axis=1)) - np.sum(Y * Z, axis=1))


def penalty(U, regularizer):
    """R(U) for U of shape (n_outputs, P, d), written as plain loops/sums."""
    if regularizer is None:
        return 0.0
    if regularizer == "group_l1":
        return sum(np.sqrt(np.sum(U[k, i] ** 2)) for k in range(U.shape[0])
                   for i in range(U.shape[1]))
    if regularizer == "feature_group_l1":
        return sum(np.sqrt(np.sum(U[:, :, f] ** 2)) for f in range(U.shape[2]))
    if regularizer == "l1":
        return np.sum(np.abs(U))
    return 0.5 * np.sum(U**2)


def predict(X, D, U):
    """yhat[j, k] = sum_i D[j, i] X[j] @ U[k, i], by a loop over neurons."""
    out = np.zeros((X.shape[0], U.shape[0]))
    for k in range(U.shape[0]):
        for i in range(U.shape[1]):
            out[:, k] += D[:, i] * (X @ U[k, i])
    return out


def explicit_design(X, D):
    """The dense matrix [D_1 X, ..., D_P X] of shape (n, P * d)."""
    return np.hstack([D[:, [i]] * X for i in range(D.shape[1])])


def objective(X, y, gates, *, loss, regularizer, lam, bias, U=None, V=None, W=None):
    """The convex objective of API.md from raw data, computed from scratch."""
    Xb = with_bias(np.asarray(X, dtype=float), bias)
    D = Xb @ gates > 0
    Y = encode_targets(y, loss)
    blocks = [U] if U is not None else [V, W]
    U_model = U if U is not None else V - W
    data = loss_sum(predict(Xb, D, U_model), Y, loss) / Xb.shape[0]
    return data + lam * sum(penalty(B, regularizer) for B in blocks)


def cone_violation(X, D, B):
    """max(0, -(2 D_ji - 1) X_j @ B[k, i]) over j, k, i."""
    worst = 0.0
    for k in range(B.shape[0]):
        for i in range(B.shape[1]):
            s = (2.0 * D[:, i] - 1.0) * (X @ B[k, i])
            worst = max(worst, -s.min())
    return worst
