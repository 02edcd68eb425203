r"""The pattern-mean metric: R-FISTA for gated ReLU without its curvature spike.

Every pattern is on for about half the samples, so the weights that repeat one
vector ``v`` over all P neurons of an output predict
``sum_i D_i X v = diag(counts) X v`` with ``counts_j`` (the patterns on at
sample j) near ``P / 2``: along those d directions the data fit's curvature
is about P times that of all others, and plain proximal gradient takes steps
of ``1 / L`` with L set by this spike.

R-FISTA runs in the metric ``M = I + beta Pi`` instead, ``Pi`` the projector
onto those repeated weights (row means of each output's block, see
``_metric.pxd``): the step is ``y - t M^{-1} grad``, the line search bounds
the Bregman divergence by ``||x - y||_M^2 / (2 t)`` and the prox is taken in
M, which for group_l1, l1 and l2 couples the neurons of an output only
through one d-vector (diagonal quasi-Newton steps, inexact Newton by
matrix-free CG on the d x d system where they stall). Accelerated proximal
gradient in a fixed metric keeps its guarantees.

Only part of the spike lies exactly along the repeated weights, so a
larger ``beta`` stops helping beyond a few units; ``BETA`` is a constant,
applied where the spike is present (curvature along repeated weights >=
``MIN_RATIO`` times the largest off them). The prox in M costs a few passes
over the weights per line-search trial. Measurements: docs/design/fista.md.

Not applied to feature_group_l1 (its groups cross the neurons, so the prox in
M has no such form) or to the ReLU program (its augmented Lagrangian's
penalty curvature has no spike).
"""

import numpy as np

BETA = 5.0
# Curvature along repeated weights over the largest off them, below which
# there is no spike to remove.
MIN_RATIO = 1.5
REGULARIZERS = ("group_l1", "l1", "l2", None)


def applies(problem):
    """True when R-FISTA on this problem may use the metric."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    return (not problem.formulation.has_cones and reg in REGULARIZERS
            and problem.weight_shape[1] > 1)


def work_size(P, d):
    """Doubles of scratch the compiled prox in M needs (see _metric.pxd); its
    first d also serve the step and the norm."""
    return 3 * P * d + 8 * d + P


def block_mean(x, c):
    """Pi x: the mean over each output's neurons, repeated (x is (c * P, d))."""
    rows, d = x.shape
    mean = x.reshape(c, rows // c, d).mean(axis=1, keepdims=True)
    return np.broadcast_to(mean, (c, rows // c, d)).reshape(rows, d)


def spike_curvature(X, D):
    """Largest curvature of ``(1/m) ||A x||^2 / 2`` along repeated weights.

    ``A (1 (x) v) = diag(counts) X v`` and ``||1 (x) v||^2 = P ||v||^2``, so
    it is ``lambda_max(X^T diag(counts^2) X) / (m P)`` on the m rows given.
    """
    counts = D.sum(axis=1, dtype=np.float64)
    Xd = X.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        gram = Xd.T @ (counts[:, None] ** 2 * Xd)
    if not np.all(np.isfinite(gram)):
        return np.inf  # overflow: the caller reports it
    return float(np.linalg.eigvalsh(gram)[-1]) / (X.shape[0] * D.shape[1])
