r"""Losses: functions of the predictions ``Yhat`` (n, n_outputs) and targets ``Y``.

Each loss knows its value, its gradient, its convex conjugate (for dual
points) and its CVXPY expression. All of them work on *sums over samples*;
the ``1/n`` of the objective is applied in exactly one place,
:func:`cvxnn.core.problem.Problem.objective` (and its mirror in the certificates).

Conventions, per sample ``j`` with prediction ``z`` and target ``y``:

* squared:        :math:`\ell(z) = \tfrac12 \|z - y\|_2^2`,
  :math:`\ell^*(s) = \tfrac12\|s\|^2 + \langle s, y\rangle`.
* logistic:       :math:`\ell(z) = \sum_k \log(1 + e^{-y_k z_k})`, ``y`` in {-1, +1};
  :math:`\ell^*(s) = \sum_k p_k\log p_k + (1-p_k)\log(1-p_k)` with
  :math:`p_k = -y_k s_k \in [0, 1]`.
* cross_entropy:  :math:`\ell(z) = \log\sum_k e^{z_k} - z_t` for the true class
  ``t`` (``y`` one-hot); :math:`\ell^*(s) = \sum_k q_k \log q_k` with
  :math:`q = s + y` in the probability simplex.
"""

import numbers

import numpy as np
from scipy.special import expit, logsumexp, softmax, xlogy

from cvxnn._optional import cvxpy as cp
from cvxnn.core.validation import as_float_array, check_finite, check_y_shape

# Slack allowed when checking that a dual point lies in a conjugate's domain.
_DOMAIN_SLACK = 1e-6


class Squared:
    """Squared loss: any real targets, one output per column of y."""

    name = "squared"
    code = 0
    is_classification = False

    def prepare_targets(self, y, n_samples, dtype):
        Y = check_y_shape(y, n_samples)
        Y = check_finite(as_float_array(Y, "y", dtype=dtype), "y")
        return Y, None

    def value(self, Yhat, Y):
        # Values and duals are summed in float64 whatever the data's dtype:
        # they are what a certificate compares.
        R = np.asarray(Yhat, dtype=np.float64) - Y
        return 0.5 * float(np.sum(R * R))

    def gradient(self, Yhat, Y):
        return Yhat - Y

    def conjugate(self, S, Y):
        S = np.asarray(S, dtype=np.float64)
        return 0.5 * float(np.sum(S * S)) + float(np.sum(S * Y))

    def curvature(self, Yhat, Y):
        """Second derivative in each prediction (the Hessian is diagonal): 1."""
        return np.ones_like(Yhat)

    def cvxpy(self, yhat, Y):
        return 0.5 * cp.sum_squares(yhat - Y)

    def decision(self, Yhat, classes):
        return Yhat


class Logistic:
    """Logistic loss: binary targets in {-1, +1} (or {0, 1}), one per column."""

    name = "logistic"
    code = 1
    is_classification = True

    def prepare_targets(self, y, n_samples, dtype):
        Y = check_y_shape(y, n_samples)
        if Y.dtype.kind not in "biuf":
            raise ValueError(
                "y: the logistic loss needs numeric binary labels in {-1, +1} or "
                f"{{0, 1}}, got dtype {Y.dtype}."
            )
        values = set(np.unique(Y).tolist())
        if values <= {-1, 1}:
            classes = np.array([-1, 1])
        elif values <= {0, 1}:
            classes = np.array([0, 1])
            Y = 2 * Y.astype(np.int64) - 1
        else:
            shown = sorted(values)[:6]
            raise ValueError(
                "y: the logistic loss needs binary labels in {-1, +1} or {0, 1}; "
                f"got values {shown}. For several classes use "
                "loss='cross_entropy'."
            )
        return np.ascontiguousarray(Y, dtype=dtype), classes

    def value(self, Yhat, Y):
        return float(np.sum(np.logaddexp(0.0, -Y * np.asarray(Yhat, np.float64))))

    def gradient(self, Yhat, Y):
        return -Y * expit(-Y * Yhat)

    def curvature(self, Yhat, Y):
        """Second derivative in each prediction (the Hessian is diagonal):
        ``sigma(y z) sigma(-y z)``."""
        p = expit(-Y * Yhat)
        return p * (1.0 - p)

    def conjugate(self, S, Y):
        p = -Y * np.asarray(S, dtype=np.float64)
        low, high = p.min(initial=0.0), p.max(initial=0.0)
        if low < -_DOMAIN_SLACK or high > 1 + _DOMAIN_SLACK:
            return np.inf
        p = np.clip(p, 0.0, 1.0)
        return float(np.sum(xlogy(p, p) + xlogy(1 - p, 1 - p)))

    def cvxpy(self, yhat, Y):
        return cp.sum(cp.logistic(-cp.multiply(Y, yhat)))

    def decision(self, Yhat, classes):
        return classes[(Yhat > 0).astype(np.int64)]

    def probabilities(self, Yhat):
        return expit(Yhat)


def label_array(labels, name="y"):
    """Class labels as a numeric or string array; anything else is rejected."""
    if labels.dtype.kind == "O":
        if all(isinstance(v, str) for v in labels):
            return labels.astype(str)
        if all(isinstance(v, numbers.Real) for v in labels):
            return labels.astype(np.float64)
        raise TypeError(
            f"{name}: class labels must be all numbers or all strings (no None or "
            "mixed types)."
        )
    if labels.dtype.kind not in "biufUS":
        raise TypeError(f"{name}: class labels of dtype {labels.dtype} are not "
                        "supported.")
    return labels


class CrossEntropy:
    """Multinomial cross-entropy: labels (any values) or one-hot rows."""

    name = "cross_entropy"
    code = 2
    is_classification = True

    def prepare_targets(self, y, n_samples, dtype):
        Y = check_y_shape(y, n_samples)
        if Y.shape[1] == 1:
            labels = label_array(Y[:, 0])
            if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
                raise ValueError("y: contains NaN or inf labels.")
            if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
                raise ValueError(
                    "y: cross_entropy needs integer class labels (or one-hot rows); "
                    "got non-integer values."
                )
            classes, codes = np.unique(labels, return_inverse=True)
            if classes.size < 2:
                raise ValueError(
                    f"y: cross_entropy needs at least 2 classes, got {classes.size}."
                )
            onehot = np.zeros((n_samples, classes.size), dtype=dtype)
            onehot[np.arange(n_samples), codes.ravel()] = 1
            return onehot, classes
        if Y.dtype.kind not in "biuf" or not np.all((Y == 0) | (Y == 1)):
            raise ValueError(
                "y: a 2-D target for cross_entropy must be one-hot (entries 0/1)."
            )
        if not np.all(Y.sum(axis=1) == 1):
            raise ValueError(
                "y: each one-hot row for cross_entropy must contain exactly one 1."
            )
        return np.ascontiguousarray(Y, dtype=dtype), np.arange(Y.shape[1])

    def value(self, Yhat, Y):
        # Row by row as log sum_k exp(z_k - z_y), in float64: the sums of
        # logsumexp(z) and of z_y are large and nearly cancel where the fit is
        # good (float32, logits ~10, mean loss 0.01: 5e-4 relative error).
        Z = np.asarray(Yhat, dtype=np.float64)
        target = np.sum(Y * Z, axis=1, keepdims=True)
        return float(np.sum(logsumexp(Z - target, axis=1)))

    def gradient(self, Yhat, Y):
        return softmax(Yhat, axis=1) - Y

    def conjugate(self, S, Y):
        q = np.asarray(S, dtype=np.float64) + Y
        if q.min(initial=0.0) < -_DOMAIN_SLACK or np.any(
            np.abs(q.sum(axis=1) - 1) > _DOMAIN_SLACK * q.shape[1]
        ):
            return np.inf
        q = np.clip(q, 0.0, 1.0)
        return float(np.sum(xlogy(q, q)))

    def cvxpy(self, yhat, Y):
        return cp.sum(cp.log_sum_exp(yhat, axis=1)) - cp.sum(cp.multiply(Y, yhat))

    def decision(self, Yhat, classes):
        return classes[np.argmax(Yhat, axis=1)]

    def probabilities(self, Yhat):
        return softmax(Yhat, axis=1)


LOSSES = {loss.name: loss for loss in (Squared(), Logistic(), CrossEntropy())}
