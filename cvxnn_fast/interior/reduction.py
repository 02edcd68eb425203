r"""Badly conditioned data: solve in equilibrated, full-rank coordinates.

The method may work on ``X T`` instead of ``X`` (weights ``u = T v``,
predictions and cone constraints unchanged) where the map ``T`` leaves the
program the same; the solution is mapped back and judged on the original
problem (:class:`cvxnn_fast.interior.solver.Finisher`).

* **Rank** (none, l2, group_l1): with a constant column next to the bias,
  duplicated columns or more features than samples, ``X`` has a null space
  that no loss term or cone constraint sees. Without a penalty that does
  (lam = 0) the blocks ``X^T diag(z / s) X`` are singular there and the
  method stalled (a step of 1e-11 at a relative KKT residual of 5.8,
  campaign problem 79). ``T = V_r``, an orthonormal basis of the row space
  of X (SVD): penalties invariant under rotations see ``||V_r v|| = ||v||``.
  l1 and feature_group_l1 are not rotation invariant; their barrier terms
  keep the blocks definite, so they are solved as they are.
* **Column scales** (lam = 0 only): without a penalty any column scaling is
  the same program; columns are scaled to unit root-mean-square, which
  evens out data whose columns span 1e-3 to 1e3 (the Newton systems'
  conditioning, and the size of the proximal damping that gated ReLU
  without a penalty needs).
"""

import numpy as np

from cvxnn.core.problem import Problem

RANK_TOL = 1e-10  # singular values below this times the largest are null
INVARIANT = ("group_l1", "l2", None)


def _column_scales(X):
    rms = np.sqrt(np.mean(X * X, axis=0))
    return np.where(rms > 0, rms, 1.0)


def transform(problem):
    """(problem on ``X T``, ``T``) where that helps; else (problem, None)."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if reg not in INVARIANT:
        return problem, None
    X = np.asarray(problem.X, dtype=np.float64)
    d = X.shape[1]
    T = np.diag(1.0 / _column_scales(X)) if reg is None else np.eye(d)
    _, sv, Vt = np.linalg.svd(X @ T, full_matrices=False)
    rank = int(np.sum(sv > RANK_TOL * sv[0])) if sv.size and sv[0] > 0 else 0
    if 0 < rank < d:
        T = T @ Vt[:rank].T
    elif reg is not None:
        return problem, None
    work = Problem(np.ascontiguousarray(X @ T, dtype=problem.dtype),
                   problem.y, problem.patterns,
                   np.ascontiguousarray(np.linalg.pinv(T) @ problem.gates),
                   problem.loss, problem.regularizer, problem.lam,
                   problem.formulation, problem.bias, problem.classes,
                   input_scale=problem.input_scale)
    return work, T


def expand(blocks, T, dtype):
    """Weights of the transformed problem (n_outputs, P, r) back to (.., d)."""
    if T is None:
        return blocks
    return {k: np.ascontiguousarray(B @ T.T, dtype=dtype) for k, B in blocks.items()}
