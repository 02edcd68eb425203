"""Restarted FISTA (R-FISTA) in a preconditioning metric.

``solver.solve`` runs it on the gated ReLU program; the same compiled loop
(``_fista.pyx``) is the inner solver of :mod:`cvxnn_fast.augmented`.
``preconditioner`` holds the pattern-mean metric, ``feature_metric`` the
eigenbasis feature metric of correlated features (rule, basis, rotation).
"""
