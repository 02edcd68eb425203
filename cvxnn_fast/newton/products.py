r"""Where Newton-CG's products with the data run: the host (NumPy) default.

The method's expensive work is its products with ``A = [D_1 X, ..., D_P X]``:
``predict(U) = A U`` (n, c) and ``adjoint(S) = A^T S`` (c, P, d), two masked
GEMMs over row blocks each. The solver takes them from an object with the
interface of :class:`Products`; everything else it does is weights-sized or
prediction-sized NumPy on the host. :class:`Products` runs them through
:mod:`cvxnn.core.operator` (the compiled kernels);
:class:`cvxnn_fast.pytorch.newton.DeviceProducts` runs them on a PyTorch
device. Both also say how to solve on a subset of the rows (the subsampled
Hessian and the subsample warm start) and which first-order method starts
the non-quadratic losses.
"""

import numpy as np

from cvxnn.core import operator
from cvxnn.core.problem import Problem
from cvxnn_fast.fista import solver as fista
from cvxnn_fast.newton.curvature import Kronecker


class Products:
    """The data products of ``problem`` on the host, in its dtype.

    Where the rows are sharded over processes
    (:class:`cvxnn_fast.pytorch.newton.ShardedProducts`) the object also sums
    the preconditioner's factors over them, makes every stop decision a
    common one (:meth:`agree`, :meth:`agree_stop`), and samples each
    process's rows (:meth:`sample`).
    """

    def __init__(self, problem):
        self.problem = problem

    def kronecker(self, problem):
        """The Kronecker preconditioner's factors for ``problem``'s rows."""
        return Kronecker(problem.X, problem.patterns)

    def agree(self, flag):
        """``flag`` as every process sees it (any process's True)."""
        return flag

    def agree_stop(self, stop):
        """A stop (a message, or None) that every process takes together."""
        return stop

    def predict(self, U):
        """``A U``: predictions (n, c) of weights U (c, P, d)."""
        return operator.predict(self.problem.X, self.problem.patterns, U)

    def adjoint(self, S):
        """``A^T S``: (c, P, d) for S (n, c) (not divided by n)."""
        return operator.adjoint(self.problem.X, self.problem.patterns, S)

    def sample(self, problem, fraction, random_state):
        """(rows, the program on them, their products): a seeded ``fraction``
        of ``problem``'s rows (the subsample warm start, the subsampled
        Hessian)."""
        rows, sub = sample_rows(problem, fraction, random_state)
        return rows, sub, self.rows(rows, sub)

    def rows(self, rows, sub):
        """The products of ``sub``: the problem on ``rows`` (sorted indices)."""
        return Products(sub)

    def first_order(self, problem, U0, tol, max_iter, monitor):
        """R-FISTA on ``problem`` (this object's) from U0: a Result."""
        return fista.solve_gated(problem, U0, tol, max_iter, monitor)


def sample_rows(problem, fraction, random_state):
    """(rows, the same program on them): a seeded ``fraction`` of the rows,
    sorted, with the same gates."""
    n = problem.n_samples
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(n, max(int(fraction * n), 1), replace=False))
    return rows, Problem(np.ascontiguousarray(problem.X[rows]), problem.y[rows],
                         np.ascontiguousarray(problem.patterns[rows]), problem.gates,
                         problem.loss, problem.regularizer, problem.lam,
                         problem.formulation, problem.bias, problem.classes)
