"""Seeded data for the tests: small problems that CLARABEL solves in milliseconds."""

import numpy as np
import pytest

LOSSES = ("squared", "logistic", "cross_entropy")
REGULARIZERS = ("group_l1", "feature_group_l1", "l2", "l1", None)
FORMULATIONS = ("gated_relu", "relu")


def make_targets(rng, X, loss, n_outputs):
    """Targets that depend on X (so the fit is not trivial), per loss.

    ``n_outputs`` is the number of columns for squared/logistic and the
    number of classes for cross_entropy.
    """
    n = X.shape[0]
    signal = np.tanh(X @ rng.standard_normal((X.shape[1], n_outputs)))
    noisy = signal + 0.3 * rng.standard_normal((n, n_outputs))
    if loss == "squared":
        return noisy[:, 0] if n_outputs == 1 else noisy
    if loss == "logistic":
        labels = np.where(noisy > 0, 1, -1)
        return labels[:, 0] if n_outputs == 1 else labels
    labels = np.argmax(noisy, axis=1)
    labels[:n_outputs] = np.arange(n_outputs)  # every class present
    return labels


# (loss, penalty) of the solves in the eigenbasis feature metric's tests
METRIC_CASES = [("squared", "group_l1"), ("logistic", "group_l1"),
                ("cross_entropy", "group_l1"), ("squared", "l2"),
                ("cross_entropy", "l2")]


def correlated(loss, n_samples=200, n_features=20, n_outputs=3, seed=0,
               dtype=np.float64):
    """Features with covariance spread over four decades (the eigenbasis
    feature metric's case), and targets for ``loss``."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_features, n_features)) * np.logspace(0, -2, n_features)
    X = (rng.standard_normal((n_samples, n_features)) @ A.T + 0.3).astype(dtype)
    return X, make_targets(rng, X, loss, n_outputs)


def direct_group_prox(z, m, t):
    """argmin t ||w|| + 0.5 sum m (w - z)^2 by BFGS on a smoothed norm, then
    the better of that and 0 (an independent check of the metric proxes)."""
    from scipy.optimize import minimize

    def f(w):
        return t * np.sqrt(w @ w + 1e-30) + 0.5 * np.sum(m * (w - z) ** 2)

    w = minimize(f, z * m / (m + t), method="BFGS", options={"gtol": 1e-14}).x
    return w if f(w) < f(np.zeros_like(z)) else np.zeros_like(z)


def make_data(loss="squared", n_samples=30, n_features=3, n_outputs=1, seed=0,
              dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    return X, make_targets(rng, X, loss, n_outputs)


@pytest.fixture
def data():
    """Factory of seeded (X, y): ``data(loss, n_samples, n_features, n_outputs)``."""
    return make_data


@pytest.fixture
def regression():
    return make_data("squared", n_samples=30, n_features=3, seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
