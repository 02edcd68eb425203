r"""Rank-deficient data: solve in the column space of X.

With a constant column next to the bias, duplicated columns or more
features than samples, ``X`` has a null space. No loss term and no cone
constraint sees it, so without a penalty that does (lam = 0) the interior
point's blocks ``X^T diag(z / s) X`` are singular there and the method
stalls (a step of 1e-11 at a relative KKT residual of 5.8, campaign problem
79). For penalties invariant under rotations of the weights (none, l2,
group_l1) the program in ``X V_r`` (``V_r``: an orthonormal basis of the row
space of X, from its SVD) is the same program: predictions, cones and
penalty of ``u = V_r v`` equal those of ``v``, and the certificate's dual
point too (the data gradient lies in that row space). l1 and
feature_group_l1 are not rotation invariant; their barrier terms keep the
blocks definite, so they are solved as they are.
"""

import numpy as np

from cvxnn.core.problem import Problem

RANK_TOL = 1e-10  # singular values below this times the largest are null
INVARIANT = ("group_l1", "l2", None)


def column_space(problem):
    """(problem on ``X V_r``, ``V_r``) where X is rank-deficient and the
    penalty rotation invariant; else (problem, None)."""
    reg = problem.regularizer.name if problem.lam > 0 else None
    if reg not in INVARIANT:
        return problem, None
    X = np.asarray(problem.X, dtype=np.float64)
    _, sv, Vt = np.linalg.svd(X, full_matrices=False)
    rank = int(np.sum(sv > RANK_TOL * sv[0])) if sv.size and sv[0] > 0 else 0
    if rank == 0 or rank == X.shape[1]:
        return problem, None
    basis = Vt[:rank].T  # (d, r)
    reduced = Problem(np.ascontiguousarray(X @ basis, dtype=problem.dtype),
                      problem.y, problem.patterns,
                      np.ascontiguousarray(basis.T @ problem.gates),
                      problem.loss, problem.regularizer, problem.lam,
                      problem.formulation, problem.bias, problem.classes,
                      input_scale=problem.input_scale)
    return reduced, basis


def expand(blocks, basis, dtype):
    """Weights of the reduced problem (n_outputs, P, r) back to (.., d)."""
    if basis is None:
        return blocks
    return {k: np.ascontiguousarray(B @ basis.T, dtype=dtype)
            for k, B in blocks.items()}
