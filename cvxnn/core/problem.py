r"""The convex training problem: data, patterns, loss, regularizer, formulation.

:func:`build_problem` validates its inputs, samples gates, computes the
distinct activation patterns and returns a :class:`Problem`. The objective

.. math:: F = \frac1n \sum_j \ell(\hat y_j, y_j) + \lambda\, R(\cdot)

is computed here, in :meth:`Problem.objective`, and nowhere else: every
backend's result goes through it (``R(U)`` for gated ReLU, ``R(V) + R(W)`` for
ReLU).
"""

from functools import wraps

import numpy as np

from cvxnn.core import backends, operator
from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.losses import LOSSES
from cvxnn.core.patterns import (
    activation_patterns,
    raw_input_gates,
    raw_patterns,
    standard_normal_gates,
    tensor_patterns,
)
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_finite,
    check_float_dtype,
    check_lam,
    check_positive_int,
    check_random_state,
    check_weights,
    check_X,
    is_tensor,
)

GRAM_ROWS = 8192  # rows per float64 block of X^T X (feature_spectrum)


def _per_data(method):
    """A read-only property computed once per data matrix: kept in the
    problem's ``data_cache``, the dict its cheap copies share."""
    name = method.__name__

    @wraps(method)
    def get(self):
        if name not in self.data_cache:
            self.data_cache[name] = method(self)
        return self.data_cache[name]

    return property(get)


class Problem:
    """A convex reformulation of two-layer ReLU training, ready to solve.

    Attributes
    ----------
    X : ndarray (n_samples, d), the data as used (bias column appended).
    y : ndarray (n_samples, n_outputs), targets as used (one-hot for
        cross_entropy, +-1 for logistic).
    patterns : bool ndarray (n_samples, P), the activation patterns D.
    gates : ndarray (d, P), the gate behind each kept pattern.
    loss, regularizer, formulation : the parts of the objective; ``.name``
        gives the string used to build the problem.
    lam : float, the regularization strength.
    bias : bool, whether a column of ones was appended to X.
    classes : ndarray or None, the label of each output for classification.
    input_scale : ndarray (d,) or None. With ``standardize=True`` the raw
        column ``f`` was divided by ``input_scale[f]`` (1 for the bias column),
        so ``X = X_raw / input_scale``; None when the data were not scaled.
    data_cache : dict of what is computed once from the data and not lam or
        the formulation (``gradient_at_zero``, ``feature_spectrum``); shared
        with the problem's cheap copies (:func:`replace_problem`).
    """

    def __init__(self, X, Y, patterns, gates, loss, regularizer, lam, formulation,
                 bias, classes, input_scale=None):
        self.X = X
        self.y = Y
        self.patterns = patterns
        self.gates = gates
        self.loss = loss
        self.regularizer = regularizer
        self.lam = lam
        self.formulation = formulation
        self.bias = bias
        self.classes = classes
        self.input_scale = input_scale
        self.data_cache = {}

    def __repr__(self):
        return (
            f"Problem(formulation={self.formulation.name!r}, loss={self.loss.name!r}, "
            f"regularizer={self.regularizer.name!r}, lam={self.lam:g}, "
            f"n_samples={self.n_samples}, d={self.n_features}, "
            f"n_patterns={self.n_patterns}, n_outputs={self.n_outputs}, "
            f"dtype={self.dtype.name})"
        )

    # --- sizes -----------------------------------------------------------
    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        """d, counting the bias column when there is one."""
        return self.X.shape[1]

    @property
    def n_patterns(self):
        return self.patterns.shape[1]

    @property
    def n_outputs(self):
        return self.y.shape[1]

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def weight_shape(self):
        return (self.n_outputs, self.n_patterns, self.n_features)

    # --- the objective -----------------------------------------------------
    def blocks(self, U=None, V=None, W=None):
        """Validate weights and return them as a dict of named blocks."""
        given = {"U": U, "V": V, "W": W}
        names = self.formulation.block_names
        extra = [k for k, v in given.items() if v is not None and k not in names]
        if extra:
            want = " and ".join(names)
            raise ValueError(
                f"{extra[0]}: not a weight of the {self.formulation.name} problem, "
                f"which takes {want}."
            )
        missing = [k for k in names if given[k] is None]
        if missing:
            raise ValueError(f"{missing[0]}: required by the {self.formulation.name} "
                             "problem.")
        return {k: check_weights(given[k], k, self.weight_shape, self.dtype)
                for k in names}

    def model_predict(self, blocks):
        """Convex model predictions on the training data, (n_samples, n_outputs)."""
        U = self.formulation.combine(blocks)
        return operator.predict(self.X, self.patterns, U)

    def data_fit(self, Yhat):
        """The loss term ``(1/n) sum_j loss(yhat_j, y_j)``: the one place of 1/n."""
        return self.loss.value(Yhat, self.y) / self.n_samples

    def penalty(self, blocks):
        """``lam * sum over blocks of R(block)`` (0 when lam is 0)."""
        if self.lam == 0:
            return 0.0
        return self.lam * sum(self.regularizer.value(B) for B in blocks.values())

    def objective(self, U=None, *, V=None, W=None):
        """The convex objective of API.md at the given weights.

        Gated ReLU takes ``U``; ReLU takes ``V=`` and ``W=`` (the cone
        constraints are not checked here: see the certificate).
        """
        blocks = self.blocks(U, V, W)
        return self.data_fit(self.model_predict(blocks)) + self.penalty(blocks)

    @_per_data
    def gradient_at_zero(self):
        """Gradient of the data-fit term at U = 0, shape (n_outputs, P, d)."""
        S = self.loss.gradient(np.zeros_like(self.y), self.y)
        return operator.adjoint(self.X, self.patterns, S) / self.n_samples

    @_per_data
    def zero_fit(self):
        """The data fit at U = 0, ``f(0)``: the scale of the objective that the
        relative gap's floor follows (:func:`cvxnn.core.certificates.gap_floor`)."""
        return float(self.data_fit(np.zeros_like(self.y)))

    @_per_data
    def feature_spectrum(self):
        """``(eigenvalues, Q)`` of ``X^T X / n_samples`` (ascending, clipped at
        0; eigenvectors in the columns of Q, C order), float64.

        Formed in row blocks of GRAM_ROWS (no float64 copy of X): n d^2 + d^3
        flops, once per data matrix.
        """
        X, d = self.X, self.n_features
        gram = np.zeros((d, d))
        for start in range(0, X.shape[0], GRAM_ROWS):
            block = X[start:start + GRAM_ROWS].astype(np.float64)
            gram += block.T @ block
        lam, Q = np.linalg.eigh(gram / max(X.shape[0], 1))
        return np.clip(lam, 0.0, None), np.ascontiguousarray(Q)

    # --- data -------------------------------------------------------------
    def prepare_X(self, X, name="X"):
        """New raw data as the problem uses it: validated, scaled, bias appended."""
        X = check_new_X(X, name)
        expected = self.n_features - int(self.bias)
        if X.shape[1] != expected:
            raise ValueError(
                f"{name}: has {X.shape[1]} features, the problem was built with "
                f"{expected}."
            )
        if self.input_scale is not None:
            X = X / self.input_scale[:expected]
        X = np.ascontiguousarray(X, dtype=self.dtype)
        return _append_bias(X) if self.bias else X

    # --- solving ----------------------------------------------------------
    def solve(self, solver="CLARABEL", **options):
        """Solve with a CVXPY solver (default CLARABEL) or ``solver="fast"``.

        Returns a :class:`cvxnn.core.solution.Solution`. Options are validated
        against the chosen solver's declared options.
        """
        return backends.solve(self, solver, **options)


def check_new_X(X, name):
    arr = as_float_array(X, name)
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"{name}: expected a 2-D array (n_samples, n_features) with at least one "
            f"row, got shape {arr.shape}."
        )
    return check_finite(arr, name)


def _append_bias(X):
    return np.ascontiguousarray(np.hstack([X, np.ones((X.shape[0], 1), X.dtype)]))


def column_scales(X):
    r"""Per-column scales :math:`s_f` that give the columns of ``X / s`` unit variance.

    :math:`s_f` is the standard deviation of column f. A constant column
    (standard deviation at rounding level, below ``n * eps * max |X_f|``) is
    scaled by its largest absolute value instead, so it becomes +-1 like a
    bias column; an all-zero column keeps scale 1. Columns are not centred:
    centring would change the model class when ``bias=False``, scaling does not
    (``x_f w_f = (x_f / s_f)(s_f w_f)``).
    """
    X64 = np.asarray(X, dtype=np.float64)
    std = X64.std(axis=0)
    top = np.abs(X64).max(axis=0)
    constant = std <= X64.shape[0] * np.finfo(X.dtype).eps * top
    scale = np.where(constant, top, std)
    return np.where(scale > 0, scale, 1.0)


def _check_gates(gates, d, dtype, bias):
    G = as_float_array(gates, "gates", dtype=dtype)
    if G.ndim != 2 or G.shape[0] != d or G.shape[1] < 1:
        extra = " (n_features + 1 for the bias)" if bias else ""
        raise ValueError(
            f"gates: expected shape (d, n_gates) with d = {d}{extra} and "
            f"n_gates >= 1, got {G.shape}."
        )
    return check_finite(G, "gates")


def build_problem(X, y, formulation="gated_relu", loss="squared",
                  regularizer="group_l1", lam=1e-3, n_gates=100, gates=None,
                  bias=False, random_state=0, standardize=False):
    """Build the convex program of a two-layer ReLU network.

    Parameters
    ----------
    X : array (n_samples, n_features), float32 or float64 (kept), else float64.
    y : array (n_samples,) or (n_samples, n_outputs). Real values for
        ``"squared"``; {-1, +1} or {0, 1} for ``"logistic"``; class labels or
        one-hot rows for ``"cross_entropy"``.
    formulation : ``"gated_relu"`` or ``"relu"``.
    loss : ``"squared"``, ``"logistic"`` or ``"cross_entropy"``.
    regularizer : ``"group_l1"``, ``"feature_group_l1"``, ``"l2"``, ``"l1"`` or None.
    lam : float >= 0, regularization strength.
    n_gates : int >= 1, Gaussian gates to sample (ignored when ``gates`` is given).
    gates : optional array (d, n_gates) of gate vectors, d counting the bias.
    bias : bool, append a column of ones to X.
    random_state : None, int or numpy Generator, seeds the gate sampling.
    standardize : bool, divide each column of X by its standard deviation
        (:func:`column_scales`; no centring, the bias column is not scaled)
        before sampling gates. The program is then solved in the scaled space
        (the regularizer acts on the scaled weights), ``problem.X`` is the
        scaled data and ``problem.input_scale`` holds the scales. User ``gates``
        are given for the raw data and scaled with it, so they produce the
        same patterns. The trained network is mapped back: ``sol.predict``
        and ``sol.network`` take raw inputs.

    Returns
    -------
    Problem

    Notes
    -----
    Constant, duplicate and all-zero columns are legal data: they only make
    some weights redundant or inactive, which every regularizer handles (the
    minimizer of the penalized problem stays finite). Data that are zero
    everywhere (with ``bias=False``) are rejected, as no gate can activate
    any sample. Sparse matrices and masked arrays with masked entries are
    rejected with a TypeError; call ``.toarray()`` or fill them first.
    """
    formulation = FORMULATIONS[check_choice(formulation, "formulation",
                                            tuple(FORMULATIONS))]
    loss = LOSSES[check_choice(loss, "loss", tuple(LOSSES))]
    regularizer = REGULARIZERS[check_choice(regularizer, "regularizer",
                                            tuple(REGULARIZERS))]
    lam = check_lam(lam)
    bias = check_bool(bias, "bias")
    standardize = check_bool(standardize, "standardize")
    tensor = X if is_tensor(X) else None  # patterns are formed where it lives
    X = check_X(X)
    Y, classes = loss.prepare_targets(y, X.shape[0], X.dtype)
    if not bias and not X.any():
        raise ValueError("X: every entry is zero, so no gate can activate any "
                         "sample; use bias=True or check the data.")
    if gates is None:
        n_gates = check_positive_int(n_gates, "n_gates")
        rng = check_random_state(random_state)
    else:
        gates = _check_gates(gates, X.shape[1] + bias, X.dtype, bias)
    raw, (X, scale) = X, _data_as_used(X, bias, standardize)
    if gates is None:
        try:
            G = standard_normal_gates(X.shape[1], n_gates, rng, X.dtype)
        except MemoryError as exc:
            raise MemoryError(f"n_gates: {n_gates:,} gates of {X.shape[1]} features "
                              f"do not fit in memory ({exc}).") from None
    else:  # raw-space gates give the same patterns on the scaled data
        G = gates if scale is None else np.ascontiguousarray(
            gates * scale[:, None], dtype=X.dtype)
    # standardized: the gates as the trained network holds them, on the raw
    # inputs, as it tests them
    raw_gates = G if scale is None else raw_input_gates(G, scale)
    try:
        if tensor is not None:
            D_all = tensor_patterns(tensor, raw_gates, X.dtype, bias)
        elif scale is not None:
            D_all = raw_patterns(_append_bias(raw) if bias else raw, raw_gates)
        else:
            D_all = None
        D, kept = activation_patterns(X, G, D_all)
    except MemoryError as exc:
        raise MemoryError(
            f"{'n_gates' if gates is None else 'gates'}: the patterns of "
            f"{G.shape[1]} gates on {X.shape[0]} samples ({G.shape[1] * X.shape[0]:,} "
            f"bytes, and products of X.dtype's size) do not fit in memory; use "
            f"fewer gates ({exc}).") from None
    if D.shape[1] == 0:
        raise ValueError(
            "gates: no gate activates any sample (every pattern X @ g > 0 is empty); "
            "use more gates or check the data."
        )
    return Problem(X, Y, D, np.ascontiguousarray(G[:, kept]), loss, regularizer, lam,
                   formulation, bias, classes, input_scale=scale)


def _data_as_used(X, bias, standardize):
    """X scaled (when standardize) and with the bias column; the scales or None."""
    scale = None
    if standardize:
        scale = np.append(column_scales(X), [1.0] * bias)
        X = np.ascontiguousarray(X / scale[:X.shape[1]], dtype=X.dtype)
    return (_append_bias(X) if bias else X), scale


# --- cheap copies ----------------------------------------------------------
# A regularization path solves the same problem for many lam, and the cone
# decomposition needs the ReLU program on the gated program's data and
# patterns. The copies below share X, y, patterns, gates and column scales
# with the original (not copied: do not modify them in place), and its
# data_cache: what either computes from the data (gradient_at_zero,
# feature_spectrum) depends on neither lam nor the formulation.


def same_array(a, b):
    """Whether two of the problems' arrays (or None) are the same object or
    equal entrywise: copies share them, a rebuilt problem has equal ones."""
    if a is b:
        return True
    if a is None or b is None:
        return False
    return a.shape == b.shape and np.array_equal(a, b)


def check_problem(problem, name="problem"):
    if not isinstance(problem, Problem):
        raise TypeError(
            f"{name}: expected a cvxnn Problem (from cvxnn.build_problem), got "
            f"{type(problem).__name__}."
        )
    return problem


def replace_problem(problem, *, lam=None, formulation=None):
    """A copy of ``problem`` with ``lam`` and/or ``formulation`` replaced.

    Parameters
    ----------
    problem : Problem
    lam : float >= 0 or None (keep).
    formulation : ``"gated_relu"``, ``"relu"`` or None (keep).

    Returns
    -------
    Problem sharing the data, patterns, gates and column scales of ``problem``.
    """
    check_problem(problem)
    lam = problem.lam if lam is None else check_lam(lam)
    form = problem.formulation
    if formulation is not None:
        form = FORMULATIONS[check_choice(formulation, "formulation",
                                         tuple(FORMULATIONS))]
    new = Problem(problem.X, problem.y, problem.patterns, problem.gates,
                  problem.loss, problem.regularizer, lam, form, problem.bias,
                  problem.classes, problem.input_scale)
    new.data_cache = problem.data_cache
    return new


def with_dtype(problem, dtype):
    """``problem`` with its data (X, y, gates) in ``dtype`` (float32 or
    float64) and the same patterns, lam and formulation; ``problem`` itself
    when it is in ``dtype`` already. The copy has its own ``data_cache``."""
    check_problem(problem)
    dtype = check_float_dtype(dtype)
    if dtype == problem.dtype:
        return problem
    return Problem(np.ascontiguousarray(problem.X, dtype),
                   np.ascontiguousarray(problem.y, dtype), problem.patterns,
                   np.ascontiguousarray(problem.gates, dtype), problem.loss,
                   problem.regularizer, problem.lam, problem.formulation,
                   problem.bias, problem.classes, problem.input_scale)


def with_lam(problem, lam):
    """``problem`` with its regularization strength replaced by ``lam``."""
    return replace_problem(problem, lam=lam)


def relu_twin(problem):
    """The ReLU program on the data, patterns and gates of ``problem``."""
    return replace_problem(problem, formulation="relu")


def gated_twin(problem):
    """The gated ReLU program on the data, patterns and gates of ``problem``."""
    return replace_problem(problem, formulation="gated_relu")
