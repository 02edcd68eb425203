r"""Train and validation metrics of a trained network.

For predictions ``Yhat`` and targets ``Y`` encoded like the problem's
(``+-1`` for logistic, one-hot for cross_entropy):

* ``loss``: :math:`\frac1n \sum_j \ell(\hat y_j, y_j)`, the data-fit term of
  the objective.
* ``accuracy`` (logistic, cross_entropy): the fraction of correct decisions
  (per entry for several logistic outputs).
* ``mse`` (squared): :math:`\frac{1}{n c} \sum_{j,k} (\hat y_{jk} - y_{jk})^2`.
"""

import numpy as np

from cvxnn.core.losses import label_array
from cvxnn.core.validation import check_y_shape


def _one_hot(Y):
    """Whether every row of ``Y`` is one-hot."""
    return bool(np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1))


def _encode_labels(problem, y, n_samples, name):
    """Cross-entropy targets on the training classes: labels or one-hot rows."""
    Y = check_y_shape(y, n_samples, name)
    if Y.shape[1] == 1:
        labels = label_array(Y[:, 0], name)
        if (labels.dtype.kind in "US") != (problem.classes.dtype.kind in "US"):
            kinds = ("strings", "numbers")
            raise ValueError(
                f"{name}: labels are {kinds[labels.dtype.kind not in 'US']} but the "
                f"training classes are {kinds[problem.classes.dtype.kind not in 'US']}"
                f" {problem.classes.tolist()}.")
        codes = np.searchsorted(problem.classes, labels)
        codes = np.clip(codes, 0, len(problem.classes) - 1)
        unknown = problem.classes[codes] != labels
        if np.any(unknown):
            raise ValueError(f"{name}: label {labels[unknown][0]!r} is not one of the "
                             f"training classes {problem.classes.tolist()}.")
        onehot = np.zeros((n_samples, len(problem.classes)), problem.dtype)
        onehot[np.arange(n_samples), codes] = 1
        return onehot
    if not _one_hot(Y):
        raise ValueError(f"{name}: 2-D cross_entropy targets must be one-hot rows.")
    return Y.astype(problem.dtype)


def encode_targets(problem, y, n_samples, name="y_val"):
    """New targets encoded like the problem's, shape (n_samples, n_outputs)."""
    if problem.loss.name == "cross_entropy":
        Y = _encode_labels(problem, y, n_samples, name)
    else:
        try:
            Y, _ = problem.loss.prepare_targets(y, n_samples, problem.dtype)
        except (TypeError, ValueError) as exc:  # its messages name "y"
            raise type(exc)(f"{name}: {str(exc).removeprefix('y: ')}") from None
    if Y.shape[1] != problem.n_outputs:
        raise ValueError(f"{name}: has {Y.shape[1]} output columns, the problem has "
                         f"{problem.n_outputs}.")
    return Y


def metrics(problem, Yhat, Y):
    """The metrics of the module docstring as a dict of floats.

    ``Yhat`` (n, n_outputs) predictions; ``Y`` targets encoded like the
    problem's, the same shape (:func:`encode_targets` encodes raw ones).
    """
    Yhat, Y = np.asarray(Yhat), np.asarray(Y)
    if Yhat.ndim != 2 or Yhat.shape[1] != problem.n_outputs:
        raise ValueError(f"Yhat: expected predictions of shape (n, "
                         f"{problem.n_outputs}), got {Yhat.shape}.")
    if Y.shape != Yhat.shape:
        raise ValueError(f"Y: expected encoded targets of Yhat's shape {Yhat.shape}, "
                         f"got {Y.shape}; encode raw targets with "
                         "cvxnn.metrics.encode_targets(problem, y, n).")
    if problem.loss.name == "logistic" and not np.all(np.abs(Y) == 1):
        raise ValueError("Y: logistic targets must be encoded as +-1 (see "
                         "cvxnn.metrics.encode_targets).")
    if problem.loss.name == "cross_entropy" and not _one_hot(Y):
        raise ValueError("Y: cross_entropy targets must be one-hot rows (see "
                         "cvxnn.metrics.encode_targets).")
    loss = problem.loss
    out = {"loss": loss.value(Yhat, Y) / Y.shape[0]}
    if loss.is_classification:
        classes = problem.classes
        out["accuracy"] = float(np.mean(loss.decision(Yhat, classes)
                                        == loss.decision(Y, classes)))
    else:
        out["mse"] = float(np.mean((Yhat - Y) ** 2))
    return out
