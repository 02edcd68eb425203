r"""The eigenbasis feature metric of R-FISTA: basis, weights and the rule.

Group norms ``||u_i||`` (and ``||U||^2``) do not change under an orthogonal
change of feature basis, nor do the patterns, the objective and the
certificate. With ``Sigma = X^T X / n = Q diag(lam_j) Q^T`` R-FISTA runs on
``X Q`` with weights ``W = U Q`` in the metric ``M = I (x) diag(m)``,
``m_j = lam_j + delta``, ``delta = DAMPING * mean(lam)``: the diagonal of the
Hessian's average block in its eigenbasis, damped. On correlated features
(raw pixels: ``max(m) / min(m)`` in the hundreds) the Euclidean metric's step
is set by the top eigenvalue and R-FISTA crawls along the rest; measurements
in docs/design/feature-metric.md.

The compiled loop's step, norm and prox in M are in ``_feature.pxd``; the
PyTorch loop's in :mod:`cvxnn_fast.pytorch.feature_metric`, which takes the
rule and its constants from here. Only for the rotation-invariant penalties
(group_l1, l2, none).
"""

import math

import numpy as np

from cvxnn.core.problem import Problem
from cvxnn_fast.fista import preconditioner

REGULARIZERS = ("group_l1", "l2", None)
MIN_FEATURES = 16  # below: the Euclidean metric (products are cheap anyway)
MIN_SPREAD = 4.0  # max(m) / min(m) = 1 + lam_max / mean(lam) below this: Sigma ~ c I
# Cross-entropy and logistic: their Hessian weighs samples unequally, which
# Sigma fits less well, and on moderately correlated features the
# pattern-mean metric (which the feature metric replaces) took fewer
# iterations (docs/design/feature-metric.md, (d)).
MIN_SPREAD_WEIGHTED = 50.0
DAMPING = 1.0  # delta = DAMPING * mean(lam_j) (measured: 1e-4 .. 10)
# beta of the spike part, M = (I + beta Pi) (x) diag(m), where the
# pattern-mean metric applies (the compiled loop; the PyTorch loop's is its
# SPIKE_BETA).
SPIKE_BETA = 5.0


def weights(lam, damping=None):
    """The metric's weights ``m = lam + damping * mean(lam)`` (float64) for
    the eigenvalues ``lam`` of ``Sigma``."""
    damping = DAMPING if damping is None else damping
    return lam + damping * max(float(lam.mean()), np.finfo(float).tiny)


def basis(gram, damping=None):
    """``(Q, m)`` from ``Sigma = X^T X / n`` (d, d): eigenvectors (C order)
    and the metric's weights (:func:`weights`), float64."""
    lam, Q = np.linalg.eigh(np.asarray(gram, dtype=np.float64))
    return np.ascontiguousarray(Q), weights(np.clip(lam, 0.0, None), damping)


def considered(reg, n_features, feature_metric=None):
    """Whether to look at the spectrum at all: ``feature_metric`` False never;
    only the rotation-invariant ``reg`` (a name, None for no penalty); with
    the rule (None) at least MIN_FEATURES features."""
    if feature_metric is False or reg not in REGULARIZERS:
        return False
    return feature_metric is True or n_features >= MIN_FEATURES


def wanted(m, loss, feature_metric=None):
    """Whether weights ``m`` call for the metric: forced (True), or a finite
    spread ``max(m) / min(m)`` of at least MIN_SPREAD (squared ``loss``) or
    MIN_SPREAD_WEIGHTED (the others)."""
    if feature_metric is True:
        return True
    spread = float(m.max() / m.min()) if m.min() > 0 else math.inf
    least = MIN_SPREAD if loss == "squared" else MIN_SPREAD_WEIGHTED
    return math.isfinite(spread) and spread >= least


def spike_beta(problem):
    """beta of the spike part for a problem run in the feature metric:
    SPIKE_BETA where the pattern-mean metric applies (several neurons, a
    penalty it supports), else 0."""
    return SPIKE_BETA if preconditioner.applies(problem) else 0.0


class FeatureMetric:
    """Basis ``Q`` (d, d) and weights ``m`` (d,) of the metric, float64."""

    def __init__(self, Q, m):
        self.Q, self.m = Q, m

    def rotated(self, problem):
        """The problem with X replaced by ``X Q`` (a copy in its dtype; the
        patterns, targets and penalty are shared)."""
        Q = self.Q.astype(problem.dtype)
        XQ = np.ascontiguousarray(problem.X @ Q)
        return Problem(XQ, problem.y, problem.patterns, Q.T @ problem.gates,
                       problem.loss, problem.regularizer, problem.lam,
                       problem.formulation, problem.bias, problem.classes,
                       problem.input_scale)

    def to_basis(self, U):
        """``U Q`` (rows of U in the eigenbasis), in U's dtype."""
        return (np.asarray(U, dtype=np.float64) @ self.Q).astype(U.dtype)

    def from_basis(self, W):
        """``W Q^T``, in W's dtype."""
        return (np.asarray(W, dtype=np.float64) @ self.Q.T).astype(W.dtype)


def choose(problem, feature_metric=None):
    """The FeatureMetric for a gated problem's R-FISTA, or None (the
    Euclidean or pattern-mean metric). ``feature_metric`` None: the rule
    (:func:`considered`, :func:`wanted`); False: never; True: wherever the
    penalty allows."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if not considered(reg, problem.n_features, feature_metric):
        return None
    lam, Q = problem.feature_spectrum  # computed once per data matrix
    m = weights(lam)
    return FeatureMetric(Q, m) if wanted(m, problem.loss.name, feature_metric) else None
