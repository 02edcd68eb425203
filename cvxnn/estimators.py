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
:func:`register_gate_family`. Built in: ``"gaussian"`` (dense i.i.d. normal,
the default), ``"sparse"`` (``order`` features per gate: interactions),
``"conv"`` (random image patches: pass the image shape), ``"spectral"``
(orthogonal frames in the data's whitened principal coordinates: the
choice for correlated features such as images or PCA outputs; see
:func:`cvxnn.spectral_gates`).

Choosing lam, and what you get
------------------------------
``ConvexReLUClassifierCV`` / ``ConvexReLURegressorCV`` choose lam on a
warm-started validation path and return the **certified optimum** at the
chosen lam. ``early_stopping=True`` in the plain estimators returns instead
the **iterate of best validation score** at the given lam, with its own
(usually unmet) certificate. The helpers live in :mod:`cvxnn.model_selection`.
"""

import numbers
import warnings

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

import cvxnn.model_selection as model_selection
from cvxnn.core import backends
from cvxnn.core.errors import ConvergenceWarning as SolverConvergenceWarning
from cvxnn.core.gates import conv_gates, sparse_gates, spectral_gates
from cvxnn.core.patterns import standard_normal_gates
from cvxnn.core.problem import _append_bias, build_problem
from cvxnn.core.solution import Solution
from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE
from cvxnn.core.validation import check_choice, check_positive_int, check_random_state

FLOAT_DTYPES = (np.float64, np.float32)


def _gaussian_family(X, n_gates, random_state):
    """i.i.d. standard normal gates, exactly those :func:`build_problem` samples."""
    return standard_normal_gates(X.shape[1], n_gates, random_state, X.dtype)


def _features(X, bias):
    """The raw features of X as the problem uses it (bias column removed)."""
    return X[:, :-1] if bias else X


def _sparse_family(X, n_gates, random_state, order=2, bias=True):
    """:func:`cvxnn.sparse_gates` with ``order`` features per gate."""
    return sparse_gates(X.shape[1] - bias, n_gates, order, bias=bias,
                        random_state=random_state, dtype=X.dtype)


def _conv_family(X, n_gates, random_state, *, height, width, channels=1,
                 kernel_size=3, layout="channels_last", bias=True):
    """:func:`cvxnn.conv_gates` on images of the given shape."""
    return conv_gates(height, width, channels, n_gates, kernel_size, layout=layout,
                      bias=bias, random_state=random_state, dtype=X.dtype)


def _spectral_family(X, n_gates, random_state, exponent=0.5, orthogonal=True,
                     bias=True):
    """:func:`cvxnn.spectral_gates` of the training data."""
    return spectral_gates(_features(X, bias), n_gates, exponent=exponent,
                          orthogonal=orthogonal, bias=bias,
                          random_state=random_state, dtype=X.dtype)


#: Gate families the estimators accept by name; see the module docstring.
#: ``sparse``, ``conv`` and ``spectral`` take their options (``order``; the
#: image shape; ``exponent``, ``orthogonal``) from ``gate_options`` and are
#: told ``bias`` by the estimator.
GATE_FAMILIES = {"gaussian": _gaussian_family, "sparse": _sparse_family,
                 "conv": _conv_family, "spectral": _spectral_family}
_TOLD_BIAS = ("sparse", "conv", "spectral")


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


def _check_fraction(value, name, upper=1.0):
    """A float in (0, upper), named in the error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not 0 < value < upper:
        bound = "1" if upper == 1.0 else "inf"
        raise ValueError(f"{name}: expected a number in (0, {bound}), got {value!r}.")
    return float(value)


def _sample_gates(gates, X, n_gates, random_state, options, bias):
    """The (d, n_gates) gate array the problem is built with."""
    if isinstance(gates, str):
        sampler = GATE_FAMILIES[check_choice(gates, "gates", tuple(GATE_FAMILIES))]
        if gates in _TOLD_BIAS:
            options = {**options, "bias": bias}
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
                 regularizer="group_l1", lam=1e-3, n_gates=16, gates="gaussian",
                 gate_options=None, bias=True, whiten=False, tol=1e-3, solver="auto",
                 solver_options=None, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, progress=False, random_state=0, device=None):
        self.formulation = formulation
        self.loss = loss
        self.regularizer = regularizer
        self.lam = lam
        self.n_gates = n_gates
        self.gates = gates
        self.gate_options = gate_options
        self.bias = bias
        self.whiten = whiten
        self.tol = tol
        self.solver = solver
        self.solver_options = solver_options
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.progress = progress
        self.random_state = random_state
        self.device = device

    def _check_params(self):
        check_positive_int(self.n_gates, "n_gates")
        _check_bool(self.bias, "bias")
        _check_bool(self.progress, "progress")
        if _check_bool(self.whiten, "whiten") and not self.bias:
            raise ValueError("whiten: centring needs bias=True.")
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
        if solver == "fast":
            options.setdefault("tol", _check_fraction(self.tol, "tol", upper=np.inf))
        return solver, options, gate_options

    def _draw_gates(self, X):
        """The (d, n_gates) gates of the family for validated data ``X``."""
        _, _, gate_options = self._check_params()
        X_used = _append_bias(X) if self.bias else X
        return _sample_gates(self.gates, X_used, self.n_gates, self.random_state,
                             gate_options, self.bias)

    def _make_problem(self, X, Y, loss):
        """The convex program ``fit`` solves for validated data ``(X, Y)``."""
        return self._build(X, Y, loss, self.lam)[0]

    def _build(self, X, Y, loss, lam, whitening=None, gates=None):
        """The convex program for validated data ``(X, Y)`` and its whitening.

        ``gates`` (drawn on ``X`` when None) and ``whitening`` (a
        :class:`cvxnn.model_selection.Whitening`, fitted on ``X`` when None
        and ``whiten``) can be shared between problems. Returns
        ``(problem, whitening)``; with ``whiten`` the problem holds the
        whitened data and the gates carried to it, else whitening is None.
        """
        G = self._draw_gates(X) if gates is None else gates
        if not self.whiten:
            whitening = None
        else:
            whitening = whitening or model_selection.Whitening(X)
            X, G = whitening.transform(X), whitening.gates(np.asarray(G, np.float64))
        problem = build_problem(X, Y, formulation=self.formulation, loss=loss,
                                regularizer=self.regularizer, lam=lam, gates=G,
                                bias=self.bias)
        return problem, whitening

    def _fit_problem(self, X, Y, loss):
        """Build the problem, solve it and set the fitted attributes."""
        solver, options, _ = self._check_params()
        if _check_bool(self.early_stopping, "early_stopping"):
            return self._set_solution(*self._fit_early_stopping(X, Y, loss, solver,
                                                                options))
        problem, whitening = self._build(X, Y, loss, self.lam)
        return self._set_solution(problem, self._solve(problem, solver, options),
                                  whitening)

    def _set_solution(self, problem, solution, whitening=None):
        self.problem_ = problem
        self.solution_ = solution
        for name in ("whiten_mean_", "whiten_components_"):
            self.__dict__.pop(name, None)
        if whitening is not None:
            self.whiten_mean_, self.whiten_components_ = whitening.mean, whitening.A
        self._set_network()
        self.certificate_ = solution.certificate
        self.n_iter_ = solution.n_iter
        self.n_active_ = int(self.network_.n_neurons)
        return self

    def _set_network(self):
        """``network_``: the solution's network as a function of the raw inputs."""
        network = self.solution_.network
        if hasattr(self, "whiten_components_"):
            network = model_selection.network_on_inputs(
                network, self.whiten_mean_, self.whiten_components_)
        self.network_ = network

    def _fit_early_stopping(self, X, Y, loss, solver, options):
        """Solve on ``1 - validation_fraction`` of the rows; keep the iterate of
        best validation score (see the class docstrings)."""
        if solver != "fast":
            raise ValueError(f"early_stopping: needs solver='fast' (its callback "
                             f"sees the iterates), got solver={solver!r}.")
        fraction = _check_fraction(self.validation_fraction, "validation_fraction")
        patience = check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        ((train, val),) = model_selection.validation_splits(
            X.shape[0], fraction, self._split_labels(Y), self.random_state)
        problem, whitening = self._build(X[train], Y[train], loss, self.lam)
        X_val = X[val] if whitening is None else whitening.transform(X[val])
        tracker = model_selection.BestIterate(problem, X_val, Y[val],
                                              self._score_outputs, patience)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverConvergenceWarning)  # stopped early
            solution = problem.solve(solver, callback=tracker, **options)
        if solution.U is None:
            raise RuntimeError(f"fit: the {solver} solver returned no weights "
                               f"({solution.status}): {solution.message}")
        if tracker.offer(solution.blocks) < tracker.best_score:
            solution = Solution.from_weights(
                problem, status=OPTIMAL_INACCURATE, solver=solution.solver,
                solve_time=solution.solve_time, n_iter=solution.n_iter,
                message="early stopping: the iterate of best validation score",
                **tracker.best_blocks)
        return problem, solution, whitening

    def _fit_cv(self, X, Y, loss):
        """Choose lam on a warm-started path (see the CV estimators); refit."""
        solver, options, _ = self._check_params()
        n_lams = check_positive_int(self.n_lams, "n_lams")
        ratio = _check_fraction(self.lam_ratio, "lam_ratio")
        patience = check_positive_int(self.patience, "patience")
        path_tol = _check_fraction(self.path_tol, "path_tol", upper=np.inf)
        splits = model_selection.validation_splits(
            X.shape[0], self.cv, self._split_labels(Y), self.random_state)
        # One whitening (unsupervised, on all rows) and one gate draw for every
        # split and the refit, so that the refit can start from a path solution.
        whitening = model_selection.Whitening(X) if self.whiten else None
        gates = self._draw_gates(X)
        problems, held_out = [], []
        for train, val in splits:
            problem, _ = self._build(X[train], Y[train], loss, 1.0, whitening,
                                            gates)
            problems.append(problem)
            held_out.append((X[val] if whitening is None
                             else whitening.transform(X[val]), Y[val]))
        lams, scores, best, start = model_selection.select_lam(
            problems, held_out, self._score_outputs, solver, options, n_lams=n_lams,
            ratio=ratio, patience=patience,
            path_tol=path_tol if solver == "fast" else None)
        self.lams_, self.scores_, self.lam_ = lams, scores, float(lams[best])
        problem, _ = self._build(X, Y, loss, self.lam_, whitening, gates)
        if start is not None and backends.warm_start_helps(problem, solver, options):
            options["warm_start"] = model_selection.transfer_weights(start, problem)
        return self._set_solution(problem, self._solve(problem, solver, options),
                                  whitening)


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
    n_gates : int >= 1, default=16
        Gates to sample; the distinct activation patterns they induce are kept
        (one neuron per pattern and output). 16 was as accurate as 32, 50
        and 100 on scikit-learn's datasets and the fastest (see
        docs/design/defaults.md); images want more (100 on Fashion-MNIST).
    gates : str, callable or array (d, n_gates), default="gaussian"
        A gate family by name (see :data:`GATE_FAMILIES`), a sampler with the
        same signature, or fixed gate vectors (d counts the bias column).
    gate_options : dict or None, default=None
        Keyword arguments for the gate family.
    bias : bool, default=True
        Append a column of ones to X (neurons with a bias term).
    whiten : bool, default=False
        Solve in the whitened principal coordinates of the training data
        (:class:`cvxnn.model_selection.Whitening`): better conditioned, so
        the fast solver needs fewer iterations. The gates are drawn on the
        data as given and carried into those coordinates (the same
        hyperplanes), and ``network_`` is rewritten as a function of the
        raw inputs; ``problem_`` and ``solution_`` hold the whitened
        problem. The regularizer then acts on the whitened weights, so the
        model differs from the unwhitened one.
    tol : float > 0, default=1e-3
        Target relative duality gap of the fast solver (unless
        ``solver_options`` sets ``tol``); CVXPY solvers use their own
        tolerances.
    solver : str, default="auto"
        ``"fast"`` (compiled solvers), any installed CVXPY solver such as
        ``"CLARABEL"``, or ``"auto"``: fast when built, else CLARABEL.
    solver_options : dict or None, default=None
        Keyword options of the solver (e.g. ``{"max_iter": 30}`` for fast).
    device : None, str or torch.device, default=None
        With the fast solver: ``"cuda"``, ``"cuda:1"``, ``"cpu"`` run R-FISTA
        on that PyTorch device (``fast_solve(..., device=)``); None runs the
        compiled solvers.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for
        classifiers), solve on the rest with the fast solver, score the
        iterate on the held-out rows between the solver's compiled chunks
        (about every 0.25 s) and stop after ``n_iter_no_change`` scores
        without improvement. **You then get the iterate of best validation
        score, not the certified optimum at lam**: ``certificate_`` is the
        certificate of that iterate (its duality gap says how far from the
        optimum it is) and ``solution_.status`` is ``"optimal_inaccurate"``
        when it is not the solver's last iterate. A solve that converges
        before the first check returns the certified optimum as usual.
    validation_fraction : float in (0, 1), default=0.1
        Rows held out for early stopping.
    n_iter_no_change : int >= 1, default=10
        Validation checks without improvement before early stopping.
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
    whiten_mean_, whiten_components_ : ndarray
        With ``whiten``: the map ``z = (x - whiten_mean_) @ whiten_components_``.
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

    def _split_labels(self, Y):
        """Labels to stratify validation splits by: none for regression."""
        return None

    def _score_outputs(self, Z, Y):
        """R^2 of network outputs ``Z`` (n, n_outputs) against targets ``Y``."""
        return float(r2_score(Y, Z[:, 0] if Y.ndim == 1 else Z))

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
    formulation, regularizer, lam, n_gates, gates, gate_options, bias, whiten, \
tol, solver, solver_options, device, early_stopping, validation_fraction, \
n_iter_no_change, progress, random_state
        As for :class:`ConvexReLURegressor`.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The class labels.
    loss_ : str
        The loss that was used (``"auto"`` resolved).
    problem_, solution_, network_, certificate_, n_active_, n_iter_, \
n_features_in_, whiten_mean_, whiten_components_
        As for :class:`ConvexReLURegressor`.
    """

    def __init__(self, *, formulation="gated_relu", loss="auto",
                 regularizer="group_l1", lam=1e-3, n_gates=16, gates="gaussian",
                 gate_options=None, bias=True, whiten=False, tol=1e-3, solver="auto",
                 solver_options=None, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, progress=False, random_state=0, device=None):
        super().__init__(formulation=formulation, loss=loss, regularizer=regularizer,
                         lam=lam, n_gates=n_gates, gates=gates,
                         gate_options=gate_options, bias=bias, whiten=whiten, tol=tol,
                         solver=solver, solver_options=solver_options,
                         early_stopping=early_stopping,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, progress=progress,
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

    def _split_labels(self, Y):
        """Class codes of targets in the loss's encoding (see :meth:`_targets`)."""
        if Y.ndim == 2:
            return np.argmax(Y, axis=1)
        return (Y > 0).astype(np.intp) if self.loss_ == "squared" else Y

    def _score_outputs(self, Z, Y):
        """Accuracy of network outputs ``Z`` against targets ``Y``."""
        if Z.shape[1] == 1:
            predicted = (Z[:, 0] > 0).astype(np.intp)
        else:
            predicted = np.argmax(Z, axis=1)
        return float(np.mean(predicted == self._split_labels(Y)))

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


_CV_DOC = r"""
    lam is chosen by validation on a warm-started regularization path:

    1. the rows are split by ``cv`` (a fraction: one shuffled validation
       split; an int: that many folds), stratified for classifiers;
    2. on every split, the problem is solved down the geometric grid of
       ``n_lams`` values from ``lam_max`` (:func:`cvxnn.lam_max`, the largest
       over the splits) to ``lam_ratio * lam_max``, each solve warm-started
       from the previous one at the loose tolerance ``path_tol`` and scored
       on the held-out rows (%s);
    3. the path stops once the mean score has not improved for ``patience``
       lams; ``lam_`` is the lam of best score (the largest among ties);
    4. the model is refitted on all rows at ``lam_`` to ``tol``: the
       returned model is the certified optimum at ``lam_`` (``certificate_``).

    Parameters
    ----------
    cv : float in (0, 1) or int >= 2, default=0.2
        Validation fraction, or number of folds.
    n_lams : int >= 1, default=%d
        Length of the lam grid (the path usually stops earlier).
    lam_ratio : float in (0, 1), default=%g
        Smallest lam of the grid over lam_max.
    patience : int >= 1, default=%d
        Lams without improvement of the validation score before the path stops.
    path_tol : float > 0, default=%g
        Tolerance of the fast solver along the path (the refit uses ``tol``).
    %s
        As for the plain estimator (no ``lam``; no early stopping).

    Attributes
    ----------
    lam_ : float
        The chosen lam.
    lams_ : ndarray
        The lams solved along the path, decreasing.
    scores_ : ndarray
        Their mean validation scores.
    %s
        As for the plain estimator, for the refit at ``lam_``.
"""
_CV_DEFAULTS = {"cv": 0.2, "n_lams": 10, "lam_ratio": 1e-3, "patience": 2,
                "path_tol": 1e-2}


def _cv_doc(score, params, attributes):
    d = _CV_DEFAULTS
    return _CV_DOC % (score, d["n_lams"], d["lam_ratio"], d["patience"],
                      d["path_tol"], params, attributes)


class ConvexReLURegressorCV(ConvexReLURegressor):
    __doc__ = ("Two-layer ReLU regression trained to global optimality, lam "
               "chosen by validation.\n" + _cv_doc(
                   "R^2", "formulation, loss, regularizer, n_gates, gates, "
                   "gate_options, bias, whiten, tol, solver, solver_options, "
                   "progress, random_state, device",
                   "problem_, solution_, network_, certificate_, n_active_, "
                   "n_iter_, n_features_in_"))

    def __init__(self, *, cv=0.2, n_lams=10, lam_ratio=1e-3, patience=2,
                 path_tol=1e-2, formulation="gated_relu", loss="squared",
                 regularizer="group_l1", n_gates=16, gates="gaussian",
                 gate_options=None, bias=True, whiten=False, tol=1e-3, solver="auto",
                 solver_options=None, progress=False, random_state=0, device=None):
        self.cv = cv
        self.n_lams = n_lams
        self.lam_ratio = lam_ratio
        self.patience = patience
        self.path_tol = path_tol
        self.formulation = formulation
        self.loss = loss
        self.regularizer = regularizer
        self.n_gates = n_gates
        self.gates = gates
        self.gate_options = gate_options
        self.bias = bias
        self.whiten = whiten
        self.tol = tol
        self.solver = solver
        self.solver_options = solver_options
        self.progress = progress
        self.random_state = random_state
        self.device = device

    def fit(self, X, y):
        """Choose lam on a validated path, then refit (see the class docstring).

        Parameters
        ----------
        X : array-like (n_samples, n_features), float32 kept, else float64.
        y : array-like (n_samples,) or (n_samples, n_outputs).

        Returns
        -------
        self
        """
        return self._fit_cv(*self._prepare(X, y))


class ConvexReLUClassifierCV(ConvexReLUClassifier):
    __doc__ = ("Two-layer ReLU classifier trained to global optimality, lam "
               "chosen by validation.\n" + _cv_doc(
                   "accuracy", "formulation, loss, regularizer, n_gates, gates, "
                   "gate_options, bias, whiten, tol, solver, solver_options, "
                   "progress, random_state, device",
                   "classes_, loss_, problem_, solution_, network_, certificate_, "
                   "n_active_, n_iter_, n_features_in_"))

    def __init__(self, *, cv=0.2, n_lams=10, lam_ratio=1e-3, patience=2,
                 path_tol=1e-2, formulation="gated_relu", loss="auto",
                 regularizer="group_l1", n_gates=16, gates="gaussian",
                 gate_options=None, bias=True, whiten=False, tol=1e-3, solver="auto",
                 solver_options=None, progress=False, random_state=0, device=None):
        ConvexReLURegressorCV.__init__(
            self, cv=cv, n_lams=n_lams, lam_ratio=lam_ratio, patience=patience,
            path_tol=path_tol, formulation=formulation, loss=loss,
            regularizer=regularizer, n_gates=n_gates, gates=gates,
            gate_options=gate_options, bias=bias, whiten=whiten, tol=tol,
            solver=solver, solver_options=solver_options, progress=progress,
            random_state=random_state, device=device)

    def fit(self, X, y):
        """Choose lam on a validated path, then refit (see the class docstring).

        Parameters
        ----------
        X : array-like (n_samples, n_features), float32 kept, else float64.
        y : array-like (n_samples,) of class labels (at least two classes).

        Returns
        -------
        self
        """
        return self._fit_cv(*self._prepare(X, y))


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
