r"""The non-convex two-layer network behind a convex solution.

Gated network:  :math:`h(x) = \sum_m 1[x^\top g_m > 0]\,(x^\top W_{1,m})\, W_{2,:m}`.
ReLU network:   :math:`h(x) = \sum_m \max(x^\top W_{1,m}, 0)\, W_{2,:m}`.

Each non-zero block ``u = U[k, i]`` becomes one neuron with input weights
``u / sqrt(||u||)`` and output weight ``sqrt(||u||)`` on output k (a ``W``
block of a ReLU solution feeds its output with a minus sign). With the
group_l1 regularizer the network's weight-decay objective
``(1/n) sum loss + (lam/2)(||W1||_F^2 + ||W2||_F^2)`` then equals the convex
objective.

For a problem built with ``standardize=True`` (inputs divided column-wise by
``s = problem.input_scale``) the first layer and the gates are mapped back to
raw inputs, ``W1[:, f] / s_f`` and ``gates[f] / s_f``, so the network takes
raw data; the weight-decay identity then holds for ``W1 * s``.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cvxnn.core.patterns import raw_input_gates
from cvxnn.core.problem import check_problem
from cvxnn.core.validation import (
    as_float_array,
    check_bool,
    check_finite,
    check_real,
    check_weights,
)


@dataclass
class TwoLayerNetwork:
    """A two-layer network ``X -> W2 @ act(W1 @ x) + b2``.

    Attributes
    ----------
    W1 : (n_neurons, d) first-layer weights (d counts the bias column).
    W2 : (n_outputs, n_neurons) second-layer weights.
    gates : (d, n_neurons) gate vectors for a gated network, None for ReLU.
    bias : whether a column of ones is appended to the inputs.
    b2 : (n_outputs,) output bias, or None (zero). A convex solution's
        network has none; the regressors' networks add their intercept
        (the training targets' mean, which they fit around). It is not
        part of the weight decay.
    """

    W1: np.ndarray
    W2: np.ndarray
    gates: np.ndarray | None
    bias: bool
    b2: np.ndarray | None = None

    def __post_init__(self):
        """Check the arrays agree (names the field at fault)."""
        self.W1 = _matrix(self.W1, "W1")
        n_neurons, d = self.W1.shape
        self.W2 = _matrix(self.W2, "W2")
        if self.W2.shape[1] != n_neurons:
            raise ValueError(f"W2: expected {n_neurons} columns (one per neuron of "
                             f"W1), got shape {self.W2.shape}.")
        if self.gates is not None:
            self.gates = _matrix(self.gates, "gates")
            if self.gates.shape != (d, n_neurons):
                raise ValueError(f"gates: expected shape {(d, n_neurons)} (W1's d by "
                                 f"its neurons), got {self.gates.shape}.")
        if self.b2 is not None:
            self.b2 = check_finite(as_float_array(self.b2, "b2", dtype=self.W1.dtype),
                                   "b2")
            if self.b2.shape != (self.W2.shape[0],):
                raise ValueError(f"b2: expected shape ({self.W2.shape[0]},) (one "
                                 f"per output of W2), got {self.b2.shape}.")
        self.bias = check_bool(self.bias, "bias")
        if d < 1 + int(self.bias):
            raise ValueError(f"W1: {d} columns leave no input feature "
                             f"{'beside the bias ' if self.bias else ''}column.")

    @property
    def n_neurons(self):
        return self.W1.shape[0]

    @property
    def activation(self):
        return "gated_relu" if self.gates is not None else "relu"

    def _inputs(self, X):
        X = check_finite(as_float_array(X, "X", dtype=self.W1.dtype), "X")
        if X.ndim != 2 or X.shape[1] != self.W1.shape[1] - int(self.bias):
            raise ValueError(
                f"X: expected shape (n_samples, {self.W1.shape[1] - int(self.bias)}), "
                f"got {X.shape}."
            )
        if self.bias:
            X = np.hstack([X, np.ones((X.shape[0], 1), X.dtype)])
        return X

    def hidden(self, X):
        """Hidden activations (n_samples, n_neurons) on raw inputs X."""
        X = self._inputs(X)
        pre = X @ self.W1.T
        if self.gates is None:
            return np.maximum(pre, 0)
        return (X @ self.gates > 0) * pre

    def predict(self, X):
        """Network outputs (n_samples, n_outputs) on raw inputs (no bias column)."""
        out = self.hidden(X) @ self.W2.T
        return out if self.b2 is None else out + self.b2

    def weight_decay(self):
        """``0.5 * (||W1||_F^2 + ||W2||_F^2)``."""
        return 0.5 * float(np.sum(self.W1**2) + np.sum(self.W2**2))


def _matrix(A, name):
    """A finite 2-D float array (float32/float64 kept)."""
    if A is None:
        raise TypeError(f"{name}: expected a 2-D array, got None.")
    arr = check_finite(as_float_array(A, name), name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {arr.shape}.")
    return arr


def _neurons(U, sign, threshold):
    """(k, i, W1 rows, output weights) of the blocks of U with norm > threshold."""
    norms = np.linalg.norm(U, axis=2)
    k, i = np.nonzero(norms > threshold)
    scale = np.sqrt(norms[k, i])
    return k, i, U[k, i] / scale[:, None], sign * scale


def network_from_weights(problem, blocks, threshold=0.0):
    """Map convex weight blocks to a :class:`TwoLayerNetwork`.

    ``blocks`` holds ``U`` (gated ReLU) or ``V`` and ``W`` (ReLU). Blocks whose
    Euclidean norm is at most ``threshold`` (>= 0) are dropped.
    """
    if not hasattr(problem, "formulation") or not hasattr(problem, "weight_shape"):
        check_problem(problem)  # not problem-like: the Problem error (sharded
        # problems of the PyTorch backend pass: they have what a network needs)
    if not isinstance(blocks, Mapping):
        raise TypeError(f"blocks: expected a dict of weight blocks "
                        f"({', '.join(problem.formulation.block_names)}), got "
                        f"{type(blocks).__name__}.")
    unknown = sorted(set(blocks) - set(problem.formulation.block_names))
    if unknown:
        raise ValueError(f"blocks: {unknown[0]!r} is not a weight of the "
                         f"{problem.formulation.name} problem, which takes "
                         f"{', '.join(problem.formulation.block_names)}.")
    missing = [name for name in problem.formulation.block_names if name not in blocks]
    if missing:
        raise ValueError(f"{missing[0]}: required by the {problem.formulation.name} "
                         "problem.")
    blocks = {name: check_weights(blocks[name], name, problem.weight_shape,
                                  problem.dtype)
              for name in problem.formulation.block_names}
    threshold = check_real(threshold, "threshold", "a finite number >= 0",
                           lambda v: v >= 0)
    gated = not problem.formulation.has_cones
    parts = ([(blocks["U"], 1.0)] if gated
             else [(blocks["V"], 1.0), (blocks["W"], -1.0)])
    ks, iss, rows, outs = [], [], [], []
    for U, sign in parts:
        k, i, W1, w2 = _neurons(U, sign, threshold)
        ks.append(k)
        iss.append(i)
        rows.append(W1)
        outs.append(w2)
    k, i = np.concatenate(ks), np.concatenate(iss)
    W1 = np.concatenate(rows).astype(problem.dtype).reshape(-1, problem.n_features)
    W2 = np.zeros((problem.n_outputs, W1.shape[0]), problem.dtype)
    W2[k, np.arange(W1.shape[0])] = np.concatenate(outs)
    gates = np.ascontiguousarray(problem.gates[:, i]) if gated else None
    if problem.input_scale is not None:
        W1 = np.ascontiguousarray(W1 / problem.input_scale.astype(problem.dtype))
        gates = None if gates is None else raw_input_gates(gates, problem.input_scale)
    return TwoLayerNetwork(W1=W1, W2=W2, gates=gates, bias=problem.bias)
