r"""scikit-learn estimators that train two-layer ReLU networks to global optimality.

:class:`ConvexReLURegressor` and :class:`ConvexReLUClassifier` build the convex
program of :func:`cvxnn.build_problem` from ``(X, y)``, solve it and keep the
equivalent non-convex network for prediction. For a gated ReLU model the
network is

.. math:: h(x) = \sum_m 1[\tilde x^\top g_m > 0]\,(\tilde x^\top W_{1,m})\,W_{2,:m},

with :math:`\tilde x = (x, 1)` when ``bias=True``; for ReLU the gate is
replaced by :math:`\max(\tilde x^\top W_{1,m}, 0)`. The fitted objective is

.. math:: \frac1n \sum_j \ell(h(x_j), y_j) + \lambda R(U),

and ``certificate_`` bounds how far it is from the global minimum.

Gate families
-------------
The ``gates`` parameter names a family in :data:`GATE_FAMILIES` (``"gaussian"``
by default), or is a callable with the same signature, or a fixed
``(d, n_gates)`` array. A family is a function
``sampler(X, n_gates, random_state, **gate_options) -> (d, n_gates) array``
where ``X`` is the training data as the problem uses it (bias column appended
when ``bias=True``, so ``d = X.shape[1]``) and ``random_state`` a
``numpy.random.Generator``. New families plug in by name with
:func:`register_gate_family`.
"""

import numbers
import warnings

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from cvxnn.core import backends
from cvxnn.core.patterns import standard_normal_gates
from cvxnn.core.problem import _append_bias, build_problem
from cvxnn.core.status import OPTIMAL
from cvxnn.core.validation import check_choice, check_positive_int, check_random_state

FLOAT_DTYPES = (np.float64, np.float32)


def _gaussian_family(X, n_gates, random_state):
    """i.i.d. standard normal gates, exactly those :func:`build_problem` samples."""
    return standard_normal_gates(X.shape[1], n_gates, random_state, X.dtype)


#: Gate families the estimators accept by name; see the module docstring.
GATE_FAMILIES = {"gaussian": _gaussian_family}


def register_gate_family(name, sampler):
    """Make a gate family available to the estimators as ``gates=name``.

    Parameters
    ----------
    name : str
        The name users pass as ``gates=``.
    sampler : callable
        ``sampler(X, n_gates, random_state, **gate_options)`` returning a
        ``(X.shape[1], n_gates)`` array, where ``X`` includes the bias column
        when ``bias=True`` and ``random_state`` is a numpy Generator.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty string, got {name!r}.")
    if not callable(sampler):
        raise TypeError(f"sampler: expected a callable, got {sampler!r}.")
    GATE_FAMILIES[name] = sampler


def fast_available():
    """Whether the compiled solver ``cvxnn_fast.fast_solve`` can be imported.

    Returns
    -------
    bool
    """
    return backends.available("fast")


def default_solver():
    """The solver ``solver="auto"`` resolves to.

    Returns
    -------
    str
        ``"fast"`` when :func:`fast_available`, else ``"CLARABEL"``. Change
        this one function to change the estimators' default.
    """
    return "fast" if fast_available() else "CLARABEL"


def resolve_solver(solver):
    """The solver name an estimator uses.

    Parameters
    ----------
    solver : str
        A solver name, or ``"auto"``.

    Returns
    -------
    str
        ``solver`` itself, or :func:`default_solver` for ``"auto"``.
    """
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name (str), got {solver!r}.")
    return default_solver() if solver == "auto" else solver


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}.")
    return bool(value)


def _check_dict(value, name):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name}: expected a dict or None, got {type(value).__name__}.")
    return dict(value)


def _sample_gates(gates, X, n_gates, random_state, options):
    """The (d, n_gates) gate array the problem is built with."""
    if isinstance(gates, str):
        sampler = GATE_FAMILIES[check_choice(gates, "gates", tuple(GATE_FAMILIES))]
    elif callable(gates):
        sampler = gates
    else:
        if options:
            raise ValueError("gate_options: only used with a gate family, not with "
                             "a fixed gate array.")
        return gates
    rng = check_random_state(random_state)
    return sampler(X, n_gates, rng, **options)


class _ConvexReLUBase(BaseEstimator):
    """Shared fitting logic; see the two public estimators."""

    def __init__(self, *, formulation="gated_relu", loss="squared",
                 regularizer="group_l1", lam=1e-3, n_gates=100, gates="gaussian",
                 gate_options=None, bias=True, solver="auto", solver_options=None,
                 progress=False, random_state=0, device=None):
        self.formulation = formulation
        self.loss = loss
        self.regularizer = regularizer
        self.lam = lam
        self.n_gates = n_gates
        self.gates = gates
        self.gate_options = gate_options
        self.bias = bias
        self.solver = solver
        self.solver_options = solver_options
        self.progress = progress
        self.random_state = random_state
        self.device = device

    def _check_params(self):
        check_positive_int(self.n_gates, "n_gates")
        _check_bool(self.bias, "bias")
        _check_bool(self.progress, "progress")
        if self.random_state is not None and not isinstance(
                self.random_state, (numbers.Integral, np.random.Generator)):
            raise TypeError("random_state: expected None, an int seed or a numpy "
                            f"Generator, got {self.random_state!r}.")
        options = _check_dict(self.solver_options, "solver_options")
        gate_options = _check_dict(self.gate_options, "gate_options")
        solver = resolve_solver(self.solver)
        if self.device is not None:
            if solver != "fast":
                raise ValueError(f"device: only solver='fast' runs on a device, "
                                 f"not {solver!r}.")
            options = {**options, "device": self.device}
        return solver, options, gate_options

    def _make_problem(self, X, Y, loss):
        """The convex program ``fit`` solves for validated data ``(X, Y)``."""
        _, _, gate_options = self._check_params()
        X_used = _append_bias(X) if self.bias else X
        G = _sample_gates(self.gates, X_used, self.n_gates, self.random_state,
                          gate_options)
        return build_problem(X, Y, formulation=self.formulation, loss=loss,
                             regularizer=self.regularizer, lam=self.lam, gates=G,
                             bias=self.bias)

    def _fit_problem(self, X, Y, loss):
        """Build the problem, solve it and set the fitted attributes."""
        solver, options, _ = self._check_params()
        problem = self._make_problem(X, Y, loss)
        solution = self._solve(problem, solver, options)
        self.problem_ = problem
        self.solution_ = solution
        self.network_ = solution.network
        self.certificate_ = solution.certificate
        self.n_iter_ = solution.n_iter
        self.n_active_ = int(self.network_.n_neurons)
        return self

    def _solve(self, problem, solver, options):
        if self.progress:
            from cvxnn.progress import solve_with_progress

            solution = solve_with_progress(problem, solver, **options)
        else:
            solution = problem.solve(solver, **options)
        if solution.U is None:
            raise RuntimeError(f"fit: the {solver} solver returned no weights "
                               f"({solution.status}): {solution.message}")
        if solution.status != OPTIMAL:
            warnings.warn(f"fit: the {solver} solver stopped with status "
                          f"{solution.status!r} ({solution.certificate.summary()}); "
                          "the model may not be the global optimum.",
                          ConvergenceWarning, stacklevel=3)
        return solution

    def _network_output(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOAT_DTYPES)
        return self.network_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    r"""Two-layer ReLU regression trained to global optimality (squared loss).

    Minimizes :math:`\frac1n\sum_j \tfrac12\|h(x_j) - y_j\|^2 + \lambda R(U)`
    over the convex reformulation; ``y`` may have several columns (one set of
    neurons per output).

    Parameters
    ----------
    formulation : {"gated_relu", "relu"}, default="gated_relu"
        Gated ReLU (unconstrained) or exact ReLU (cone constraints).
    loss : {"squared"}, default="squared"
        The only regression loss: :math:`\tfrac12\|\hat y - y\|^2` per sample.
    regularizer : {"group_l1", "feature_group_l1", "l2", "l1"} or None, \
default="group_l1"
        ``group_l1`` is the convex image of weight decay (neuron sparsity).
    lam : float >= 0, default=1e-3
        Regularization strength :math:`\lambda`.
    n_gates : int >= 1, default=100
        Gates to sample; the distinct activation patterns they induce are kept.
    gates : str, callable or array (d, n_gates), default="gaussian"
        A gate family by name (see :data:`GATE_FAMILIES`), a sampler with the
        same signature, or fixed gate vectors (d counts the bias column).
    gate_options : dict or None, default=None
        Keyword arguments for the gate family.
    bias : bool, default=True
        Append a column of ones to X (neurons with a bias term).
    solver : str, default="auto"
        ``"fast"`` (compiled solvers), any installed CVXPY solver such as
        ``"CLARABEL"``, or ``"auto"``: fast when built, else CLARABEL.
    solver_options : dict or None, default=None
        Keyword options of the solver (e.g. ``{"tol": 1e-6}`` for fast).
    device : None, str or torch.device, default=None
        With the fast solver: ``"cuda"``, ``"cuda:1"``, ``"cpu"`` run R-FISTA
        on that PyTorch device (``fast_solve(..., device=)``); None runs the
        compiled solvers.
    progress : bool, default=False
        Show a tqdm progress bar with objective and certificate while solving.
    random_state : None, int or numpy Generator, default=0
        Seeds the gate sampling.

    Attributes
    ----------
    problem_ : cvxnn.Problem
        The convex program that was solved.
    solution_ : cvxnn.Solution
        Weights, status, solver and timing of the solve.
    network_ : cvxnn.TwoLayerNetwork
        The equivalent non-convex network; used by :meth:`predict`.
    certificate_ : cvxnn.Certificate
        Duality gap / KKT residual (and cone violation for ReLU).
    n_active_ : int
        Neurons of the network (non-zero weight blocks).
    n_iter_ : int or None
        Solver iterations, when the solver reports them.
    n_features_in_ : int
        Features seen in fit; ``feature_names_in_`` for DataFrames.
    """

    def fit(self, X, y):
        """Fit the network to ``X`` (n_samples, n_features) and ``y``.

        Parameters
        ----------
        X : array-like (n_samples, n_features), float32 kept, else float64.
        y : array-like (n_samples,) or (n_samples, n_outputs).

        Returns
        -------
        self
        """
        return self._fit_problem(*self._prepare(X, y))

    def _prepare(self, X, y):
        """Validated ``(X, Y, loss)``; sets ``n_features_in_``."""
        X, y = validate_data(self, X, y, dtype=FLOAT_DTYPES, y_numeric=True,
                             multi_output=True, ensure_min_samples=2)
        check_choice(self.loss, "loss", ("squared",))
        self._y_1d = y.ndim == 1
        return X, y.astype(X.dtype, copy=False), "squared"

    def predict(self, X):
        """Network predictions: (n_samples,) if y was 1-D, else (n_samples, n_outputs).

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        Y = self._network_output(X)
        return Y[:, 0] if self._y_1d else Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_CLASSIFIER_LOSSES = ("auto", "logistic", "cross_entropy", "squared")


def _has_probabilities(estimator):
    return estimator.loss != "squared"


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    r"""Two-layer ReLU classifier trained to global optimality.

    Labels of any type are encoded as ``classes_``. With ``loss="logistic"``
    (binary) the network has one output :math:`z` and
    :math:`P(y = \text{classes\_}[1]) = \sigma(z)`; with ``"cross_entropy"``
    one output per class and probabilities :math:`\mathrm{softmax}(z)`; with
    ``"squared"`` the targets are coded :math:`\pm 1` (one column per class
    when there are more than two) and there is no ``predict_proba``.

    Parameters
    ----------
    loss : {"auto", "logistic", "cross_entropy", "squared"}, default="auto"
        ``"auto"`` is logistic for two classes and cross_entropy for more.
    formulation, regularizer, lam, n_gates, gates, gate_options, bias, solver, \
solver_options, progress, random_state
        As for :class:`ConvexReLURegressor`.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The class labels.
    loss_ : str
        The loss that was used (``"auto"`` resolved).
    problem_, solution_, network_, certificate_, n_active_, n_iter_, \
n_features_in_
        As for :class:`ConvexReLURegressor`.
    """

    def __init__(self, *, formulation="gated_relu", loss="auto",
                 regularizer="group_l1", lam=1e-3, n_gates=100, gates="gaussian",
                 gate_options=None, bias=True, solver="auto", solver_options=None,
                 progress=False, random_state=0, device=None):
        super().__init__(formulation=formulation, loss=loss, regularizer=regularizer,
                         lam=lam, n_gates=n_gates, gates=gates,
                         gate_options=gate_options, bias=bias, solver=solver,
                         solver_options=solver_options, progress=progress,
                         random_state=random_state, device=device)

    def fit(self, X, y):
        """Fit the classifier to ``X`` (n_samples, n_features) and labels ``y``.

        Parameters
        ----------
        X : array-like (n_samples, n_features), float32 kept, else float64.
        y : array-like (n_samples,) of class labels (at least two classes).

        Returns
        -------
        self
        """
        return self._fit_problem(*self._prepare(X, y))

    def _prepare(self, X, y):
        """Validated ``(X, targets, loss)``; sets ``classes_`` and ``loss_``."""
        X, y = validate_data(self, X, y, dtype=FLOAT_DTYPES, ensure_min_samples=2)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_classes = self.classes_.size
        if n_classes < 2:
            raise ValueError(f"y: a classifier needs at least 2 classes; got "
                             f"{n_classes} class ({self.classes_[0]!r}).")
        self.loss_ = self._resolve_loss(n_classes)
        return X, self._targets(codes, n_classes, X.dtype), self.loss_

    def _resolve_loss(self, n_classes):
        loss = check_choice(self.loss, "loss", _CLASSIFIER_LOSSES)
        if loss == "auto":
            return "logistic" if n_classes == 2 else "cross_entropy"
        if loss == "logistic" and n_classes > 2:
            raise ValueError(f"loss: 'logistic' is binary but y has {n_classes} "
                             "classes; use 'cross_entropy' or 'auto'.")
        return loss

    def _targets(self, codes, n_classes, dtype):
        """Targets in the encoding the loss expects (see the class docstring)."""
        if self.loss_ != "squared":
            return codes
        if n_classes == 2:
            return (2.0 * codes - 1.0).astype(dtype)
        Y = -np.ones((codes.size, n_classes), dtype)
        Y[np.arange(codes.size), codes] = 1.0
        return Y

    def decision_function(self, X):
        """Network outputs: (n_samples,) for two classes (positive means
        ``classes_[1]``), else (n_samples, n_classes).

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        Z = self._network_output(X)
        if self.classes_.size > 2:
            return Z
        return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z[:, 0]

    def predict(self, X):
        """Predicted class labels, shape (n_samples,).

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(np.intp)]
        return self.classes_[np.argmax(scores, axis=1)]

    @available_if(_has_probabilities)
    def predict_log_proba(self, X):
        """Log class probabilities (n_samples, n_classes), computed stably.

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        Z = self._network_output(X)
        if Z.shape[1] == 1:
            return np.column_stack([log_expit(-Z[:, 0]), log_expit(Z[:, 0])])
        return log_softmax(Z, axis=1)

    @available_if(_has_probabilities)
    def predict_proba(self, X):
        r"""Class probabilities (n_samples, n_classes): :math:`\sigma(z)` or
        :math:`\mathrm{softmax}(z)` of the network outputs.

        Parameters
        ----------
        X : array-like (n_samples, n_features)

        Returns
        -------
        ndarray
        """
        Z = self._network_output(X)
        if Z.shape[1] == 1:
            p = expit(Z[:, 0])
            return np.column_stack([1.0 - p, p])
        return softmax(Z, axis=1)


def expected_failed_checks(estimator):
    """scikit-learn estimator checks that cannot apply, with the reason.

    Pass as ``expected_failed_checks`` to
    :func:`sklearn.utils.estimator_checks.parametrize_with_checks` or
    :func:`~sklearn.utils.estimator_checks.check_estimator`. Every check of
    scikit-learn 1.9 passes for both estimators and every formulation and
    loss, so the dict is empty; a check that cannot apply to some
    configuration would be listed here as ``{check name: reason}``.
    """
    return {}
