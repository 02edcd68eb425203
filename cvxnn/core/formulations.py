r"""The two convex reformulations of two-layer ReLU training.

* **Gated ReLU** (:class:`GatedReLU`): one block of weights ``U``; the model
  is ``yhat = sum_i D_i X u_i`` and the program is unconstrained.
* **ReLU** (:class:`ReLU`): two blocks ``V, W`` with ``U = V - W``; each neuron
  must stay in the cone of its pattern,
  ``(2 D_i - I) X v_i >= 0`` and ``(2 D_i - I) X w_i >= 0``,
  so that ``D_i X v_i = max(X v_i, 0)`` and the model is a ReLU network.

A formulation owns the linear map from its weight blocks to predictions and,
for ReLU, the cone constraints; it knows nothing of losses or regularizers.
"""

import numpy as np

from cvxnn._optional import cvxpy as cp
from cvxnn.core import operator


class GatedReLU:
    """``min_U f(sum_i D_i X u_i) + lam R(U)``: unconstrained, one block."""

    name = "gated_relu"
    block_names = ("U",)
    has_cones = False  # no cone constraints, no multipliers

    def combine(self, blocks):
        """The prediction weights U from the weight blocks."""
        return blocks["U"]

    def cone_violation(self, problem, blocks):
        return None

    def cone_matrix(self, X, D):
        """No cone constraints: None."""
        return None

    def cvxpy(self, A, B, P, d, n_outputs, regularizer):
        """Variables, prediction expression, penalty expression, constraints."""
        U = cp.Variable((P * d, n_outputs), name="U")
        penalty = regularizer.cvxpy(cp.reshape(U, (d, n_outputs * P), order="F"))
        return {"U": U}, A @ U, penalty, []


class ReLU:
    """``min_{V,W} f(sum_i D_i X (v_i - w_i)) + lam (R(V) + R(W))`` subject to
    ``(2 D_i - I) X v_i >= 0`` and ``(2 D_i - I) X w_i >= 0``."""

    name = "relu"
    block_names = ("V", "W")
    has_cones = True  # cone constraints, priced by multipliers in certificates

    def combine(self, blocks):
        return blocks["V"] - blocks["W"]

    def cone_violation(self, problem, blocks):
        """Largest violation ``max(0, -(2 D_ji - 1) X_j @ v_{k,i})`` over V and W."""
        signs = 2.0 * problem.patterns[:, None, :] - 1.0
        worst = 0.0
        for name in self.block_names:
            Z = operator.products(problem.X, blocks[name]) * signs
            worst = max(worst, float(-np.min(Z, initial=0.0)))
        return worst

    def cone_matrix(self, X, D):
        """The explicit cone map (CSR, P n x P d); see :func:`operator.cone_matrix`."""
        return operator.cone_matrix(X, D)

    def cvxpy(self, A, B, P, d, n_outputs, regularizer):
        V = cp.Variable((P * d, n_outputs), name="V")
        W = cp.Variable((P * d, n_outputs), name="W")
        penalty = regularizer.cvxpy(
            cp.reshape(V, (d, n_outputs * P), order="F")
        ) + regularizer.cvxpy(cp.reshape(W, (d, n_outputs * P), order="F"))
        constraints = [B @ V >= 0, B @ W >= 0]
        return {"V": V, "W": W}, A @ (V - W), penalty, constraints


FORMULATIONS = {f.name: f for f in (GatedReLU(), ReLU())}
