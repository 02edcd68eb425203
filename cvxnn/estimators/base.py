"""What both estimators share: gate families, solver choice, argument checks,
and the fit/predict machinery of :class:`_ConvexReLUBase`."""

import dataclasses
import numbers
import pickle
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

import cvxnn.estimators.selection as model_selection
from cvxnn.core import backends
from cvxnn.core.errors import ConvergenceWarning as SolverConvergenceWarning
from cvxnn.core.gates import conv_gates, sparse_gates, spectral_gates
from cvxnn.core.patterns import standard_normal_gates
from cvxnn.core.problem import _append_bias, build_problem, with_dtype
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.solution import Solution
from cvxnn.core.status import INTERRUPTED, OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT
from cvxnn.core.validation import (
    check_bool,
    check_device_name,
    check_positive_int,
    check_random_state,
)

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
    height, width, channels = (check_positive_int(v, name) for v, name in (
        (height, "height"), (width, "width"), (channels, "channels")))
    features = X.shape[1] - bias
    if height * width * channels != features:
        raise ValueError(f"height x width x channels: images of {height} x {width} "
                         f"x {channels} = {height * width * channels} features, but "
                         f"X has {features}.")
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
BUILTIN_FAMILIES = tuple(GATE_FAMILIES)

#: The regularizers with a lam_max, where the CV estimators' paths start.
PATH_REGULARIZERS = tuple(name for name, reg in REGULARIZERS.items() if reg.is_norm)


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
    if name in BUILTIN_FAMILIES:
        # a replaced built-in would not travel to joblib's workers, which
        # would sample the original (a grid search scored another family)
        raise ValueError(f"name: {name!r} is a built-in family; register yours "
                         "under another name.")
    if not callable(sampler):
        raise TypeError(f"sampler: expected a callable, got {sampler!r}.")
    GATE_FAMILIES[name] = sampler


def _sampler_bytes(sampler):
    """A gate family's sampler pickled (by cloudpickle where installed), or
    None where it cannot be."""
    try:
        import cloudpickle as dumper
    except ImportError:
        dumper = pickle
    try:
        return dumper.dumps(sampler)
    except Exception:  # noqa: BLE001  (a closure over a queue: RuntimeError, ...)
        return None


def _check_family(name):
    """``name`` if it is a gate family, else a ValueError naming ``gates``."""
    if isinstance(name, str) and name in GATE_FAMILIES:
        return name
    raise ValueError(
        f"gates: unknown value {name!r}; expected one of "
        f"{', '.join(map(repr, GATE_FAMILIES))} (register_gate_family adds "
        "families; a pickled estimator carries its own family to other "
        "processes, such as joblib's workers, where they can rebuild its "
        "sampler; a grid search that sets gates= in its workers takes the "
        "sampler itself, gates=[sampler], or a family registered where the "
        "workers import).")


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


def _sample_gates(gates, X, n_gates, random_state, options, bias, sampler=None):
    """The (d, n_gates) gate array the problem is built with; ``sampler``:
    the named family's, where the estimator carries its own."""
    if isinstance(gates, str):
        sampler = sampler or GATE_FAMILIES[_check_family(gates)]
        if gates in _TOLD_BIAS:
            if "bias" in options:
                raise ValueError(f"gate_options: 'bias' of gates={gates!r} is the "
                                 "estimator's bias parameter; set that instead.")
            options = {**options, "bias": bias}
    elif callable(gates):
        sampler = gates
    else:
        if gates is None:
            raise TypeError("gates: expected a family name, a callable or an array "
                            "(d, n_gates), got None.")
        if options:
            raise ValueError("gate_options: only used with a gate family, not with "
                             "a fixed gate array.")
        return gates
    rng = check_random_state(random_state)
    try:
        G = sampler(X, n_gates, rng, **options)
    except (TypeError, ValueError) as exc:
        if not isinstance(gates, str):  # the user's callable: its own errors
            raise
        # A family's errors name its keyword arguments: name the option.
        raise type(exc)(f"gate_options: for gates={gates!r}: {exc}") from exc
    if G is None:
        raise TypeError("gates: the sampler returned None; expected an array "
                        "(d, n_gates).")
    return G


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

    def __getstate__(self):
        # A family added by register_gate_family travels with the estimator,
        # so that a joblib worker (n_jobs > 1), which starts without the
        # parent's registrations, or a later process unpickling it, has it.
        # Only the estimator's own family: carrying every registered one
        # made a gaussian estimator's pickle 16 MB where an unrelated family
        # held an array. The sampler travels as bytes of its own
        # (cloudpickle's where it is installed, which carries a lambda or a
        # __main__ function by value; pickle's by reference otherwise, and
        # none where that fails), so that a process that cannot rebuild it
        # still loads the estimator: a fitted one predicts without its family
        # (it was unloadable), a refit names the unknown family.
        # (the inherited state may be the instance's own __dict__: copied)
        sampler = self._family_sampler()
        state = {k: v for k, v in super().__getstate__().items()
                 if k != "_carried_family"}
        if sampler is not None and self.gates not in BUILTIN_FAMILIES:
            blob = _sampler_bytes(sampler)
            if blob is not None:
                state = {**state, "_gate_family": blob}
        return state

    def __setstate__(self, state):
        # The carried sampler is this estimator's family: kept on the
        # instance, which samples with it (a joblib worker reused from an
        # earlier search held the name's previous sampler and scored it),
        # and registered only where this process has none under the name (a
        # load or deepcopy does not replace the user's registration). One that
        # does not unpickle is left out with a warning: the estimator still
        # loads and predicts; a refit names the family.
        blob = state.pop("_gate_family", None)
        name, sampler = state.get("gates"), None
        if blob is not None:
            try:  # a pickle written before the bytes format holds the sampler
                sampler = blob if callable(blob) else pickle.loads(blob)
            except Exception as exc:  # noqa: BLE001  (whatever unpickling raises)
                warnings.warn(f"gates: the sampler of the family {name!r} could "
                              f"not be rebuilt in this process ({exc!r}); the "
                              "estimator predicts, a refit needs the family "
                              "registered.", stacklevel=2)
        super().__setstate__(state)
        if sampler is not None:
            self._carried_family = (name, sampler)
            GATE_FAMILIES.setdefault(name, sampler)

    def _family_sampler(self):
        """The sampler of the family named by ``gates``: the one this
        estimator carried in (see ``__setstate__``), else the registered
        one; None for other ``gates``."""
        if not isinstance(self.gates, str):
            return None
        carried = getattr(self, "_carried_family", None)
        if carried is not None and carried[0] == self.gates:
            return carried[1]
        return GATE_FAMILIES.get(self.gates)

    def _check_params(self):
        check_positive_int(self.n_gates, "n_gates")
        check_bool(self.bias, "bias")
        check_bool(self.progress, "progress")
        if check_bool(self.whiten, "whiten") and not self.bias:
            raise ValueError("whiten: centring needs bias=True.")
        if self.random_state is not None and not isinstance(
                self.random_state, (numbers.Integral, np.random.Generator)):
            raise TypeError("random_state: expected None, an int seed or a numpy "
                            f"Generator, got {self.random_state!r}.")
        options = _check_dict(self.solver_options, "solver_options")
        gate_options = _check_dict(self.gate_options, "gate_options")
        solver = resolve_solver(self.solver)
        # checked whatever the solver (CVXPY's use their own tolerances)
        tol = _check_fraction(self.tol, "tol", upper=np.inf)
        if check_device_name(self.device) is not None:
            if solver != "fast":
                raise ValueError(f"device: only solver='fast' runs on a device, "
                                 f"not {solver!r}.")
            if "device" in options:
                raise ValueError("device: given both as the estimator's parameter "
                                 "and in solver_options; give it once.")
            options = {**options, "device": self.device}
        if solver == "fast":
            options.setdefault("tol", tol)
        return solver, options, gate_options

    def _check_settings(self, n_samples, n_classes=None):
        """Every check ``fit`` runs on the settings alone, also for those a fit
        may not use (``validation_fraction`` without early stopping): model
        files are checked with it on save and load. ``solver="auto"`` counts
        as ``"fast"`` (what it is where the compiled solvers are built), so
        validity does not depend on the machine: a device is checked by its
        form, not for being on this machine, and a CVXPY solver name not at
        all (which are installed is known only where they run).
        ``n_samples``: the rows fitted (the CV splits need them);
        ``n_classes``: a classifier's. Raises what ``fit`` would."""
        probe = type(self)(**self.get_params(deep=False))
        if isinstance(probe.solver, str) and probe.solver == "auto":
            probe.solver = "fast"
        _, _, gate_options = probe._check_params()
        if isinstance(probe.gates, str):
            _check_family(probe.gates)
            check_random_state(probe.random_state)
        elif not callable(probe.gates):  # a fixed array: no gate_options
            _sample_gates(probe.gates, None, probe.n_gates, probe.random_state,
                          gate_options, probe.bias)
        if n_classes is not None:
            probe._resolve_loss(n_classes)
        if "n_lams" in probe.get_params(deep=False):  # the CV estimators' path
            if probe.regularizer not in PATH_REGULARIZERS:
                raise ValueError(
                    f"regularizer: the CV estimators walk lam down from lam_max, "
                    f"which exists only for the norms {PATH_REGULARIZERS}, not "
                    f"{probe.regularizer!r}; use the plain estimator with a fixed "
                    "lam.")
            check_positive_int(probe.n_lams, "n_lams")
            _check_fraction(probe.lam_ratio, "lam_ratio")
            check_positive_int(probe.patience, "patience")
            _check_fraction(probe.path_tol, "path_tol", upper=np.inf)
            model_selection.validation_splits(n_samples, probe.cv)
        else:
            check_bool(probe.early_stopping, "early_stopping")
            _check_fraction(probe.validation_fraction, "validation_fraction")
            check_positive_int(probe.n_iter_no_change, "n_iter_no_change")

    def _draw_gates(self, X):
        """The (d, n_gates) gates of the family for validated data ``X``."""
        _, _, gate_options = self._check_params()
        X_used = _append_bias(X) if self.bias else X
        return _sample_gates(self.gates, X_used, self.n_gates, self.random_state,
                             gate_options, self.bias, self._family_sampler())

    def _target_offset(self, Y):
        """What the targets are fitted around (the regressors' intercept, the
        mean of ``Y``), or None: the classifiers fit their labels as they are."""
        return None

    def _make_problem(self, X, Y, loss):
        """The convex program ``fit`` solves for validated data ``(X, Y)``."""
        return self._build(X, Y, loss, self.lam)[0]

    def _build(self, X, Y, loss, lam, whitening=None, gates=None):
        """The convex program for validated data ``(X, Y)`` and its whitening.

        ``gates`` (drawn on ``X`` when None) and ``whitening`` (a
        :class:`cvxnn.estimators.selection.Whitening`, fitted on ``X`` when None
        and ``whiten``) can be shared between problems. Returns
        ``(problem, whitening, offset)``; with ``whiten`` the problem holds the
        whitened data and the gates carried to it, else whitening is None;
        the problem's targets are ``Y - offset`` (:meth:`_target_offset`).
        """
        G = self._draw_gates(X) if gates is None else gates
        offset = self._target_offset(Y)
        Y = _shifted(Y, offset)
        if not self.whiten:
            whitening = None
        else:
            whitening = whitening or model_selection.Whitening(X)
            X, G = whitening.transform(X), whitening.gates(np.asarray(G, np.float64))
        problem = build_problem(X, Y, formulation=self.formulation, loss=loss,
                                regularizer=self.regularizer, lam=lam, gates=G,
                                bias=self.bias)
        return problem, whitening, offset

    def _fit_problem(self, X, Y, loss):
        """Build the problem, solve it and set the fitted attributes."""
        self._check_settings(X.shape[0])
        solver, options, _ = self._check_params()
        # option names at fit, not in _check_params: a model file's settings do
        # not depend on which backends this machine has
        backends.check_option_names(solver, options, "solver_options")
        if check_bool(self.early_stopping, "early_stopping"):
            return self._set_solution(*self._fit_early_stopping(X, Y, loss, solver,
                                                                options))
        problem, whitening, offset = self._build(X, Y, loss, self.lam)
        return self._set_solution(problem, self._solve(problem, solver, options),
                                  whitening, offset)

    def _set_solution(self, problem, solution, whitening=None, intercept=None):
        self.problem_ = problem
        self.solution_ = solution
        for name in ("whiten_mean_", "whiten_components_", "intercept_"):
            self.__dict__.pop(name, None)
        if whitening is not None:
            self.whiten_mean_, self.whiten_components_ = whitening.mean, whitening.A
        if intercept is not None:
            self.intercept_ = intercept
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
        if getattr(self, "intercept_", None) is not None:
            network = dataclasses.replace(network, b2=self.intercept_)
        self.network_ = network

    def _fit_early_stopping(self, X, Y, loss, solver, options):
        """Solve on ``1 - validation_fraction`` of the rows; keep the iterate of
        best validation score (see the class docstrings)."""
        if solver != "fast":
            raise ValueError(f"early_stopping: needs solver='fast' (its callback "
                             f"sees the iterates), got solver={solver!r}.")
        if "callback" in options:
            raise ValueError("solver_options: 'callback' cannot be given with "
                             "early_stopping=True, which watches the iterates "
                             "through the solver's callback itself.")
        fraction = _check_fraction(self.validation_fraction, "validation_fraction")
        patience = check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        ((train, val),) = model_selection.validation_splits(
            X.shape[0], fraction, self._split_labels(Y), self.random_state,
            name="validation_fraction")
        problem, whitening, offset = self._build(X[train], Y[train], loss, self.lam)
        X_val = X[val] if whitening is None else whitening.transform(X[val])
        tracker = model_selection.BestIterate(problem, X_val, _shifted(Y[val], offset),
                                              self._score_outputs, patience)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SolverConvergenceWarning)  # stopped early
            solution = problem.solve(solver, callback=tracker,
                                     **_with_working_dtype(problem, solver, options))
        if solution.U is None:
            raise RuntimeError(f"fit: the {solver} solver returned no weights "
                               f"({solution.status}): {solution.message}")
        if tracker.offer(solution.blocks) < tracker.best_score:
            solution = Solution.from_weights(
                problem, status=OPTIMAL_INACCURATE, solver=solution.solver,
                solve_time=solution.solve_time, n_iter=solution.n_iter,
                message="early stopping: the iterate of best validation score",
                info=dict(solution.info), **tracker.best_blocks)
        return problem, solution, whitening, offset

    def _fit_cv(self, X, Y, loss):
        """Choose lam on a warm-started path (see the CV estimators); refit."""
        self._check_settings(X.shape[0])
        solver, options, _ = self._check_params()
        backends.check_option_names(solver, options, "solver_options")
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
        path_options = {**options, "tol": path_tol} if solver == "fast" else options
        problems, held_out, offsets = [], [], []
        for train, val in splits:
            problem, _, offset = self._build(X[train], Y[train], loss, 1.0,
                                             whitening, gates)
            # the loose path in the backend's cheaper dtype (float32: the
            # digits CV fit 0.50 s -> 0.38 s), on copies with the same patterns
            dtype = backends.working_dtype(problem, solver, path_options)
            problems.append(problem if dtype is None else with_dtype(problem, dtype))
            # the fold's targets around its training rows' intercept, as
            # the fold's model predicts them
            offsets.append(offset)
            held_out.append((X[val] if whitening is None
                             else whitening.transform(X[val]),
                             _shifted(Y[val], offset)))
        lams, scores, best, start, interrupted = model_selection.select_lam(
            problems, held_out, self._score_outputs, solver, options, n_lams=n_lams,
            ratio=ratio, patience=patience,
            path_tol=path_tol if solver == "fast" else None)
        self.lams_, self.scores_, self.lam_ = lams, scores, float(lams[best])
        problem, _, intercept = self._build(X, Y, loss, self.lam_, whitening, gates)
        if interrupted:  # the first split's solution, fit around its rows' mean
            return self._set_solution(problem, self._unrefitted(
                problem, start, solver, len(lams)), whitening, offsets[0])
        if start is not None and backends.warm_start_helps(problem, solver, options):
            options["warm_start"] = model_selection.transfer_weights(start, problem)
            options.update(model_selection.step_hint(start, options))
        return self._set_solution(problem, self._solve(problem, solver, options),
                                  whitening, intercept)


    def _unrefitted(self, problem, start, solver, n_scored):
        """After Ctrl-C on the path: the path's solution at ``lam_`` carried
        to all rows (zero at lam_max), not refitted; status user_limit."""
        names = problem.formulation.block_names
        if start is None:
            weights = [np.zeros(problem.weight_shape, problem.dtype) for _ in names]
        else:
            moved = model_selection.transfer_weights(start, problem)
            weights = moved if isinstance(moved, tuple) else (moved,)
        message = (f"{INTERRUPTED} on the lam path after {n_scored} lams: lam_ is "
                   "the best of those; the model is the path's solution at lam_ on "
                   "the training split, not refitted on all rows.")
        warnings.warn(f"fit: {message}", ConvergenceWarning, stacklevel=4)
        return Solution.from_weights(problem, status=USER_LIMIT, solver=solver,
                                     solve_time=0.0, message=message,
                                     **dict(zip(names, weights, strict=True)))

    def _solve(self, problem, solver, options):
        options = _with_working_dtype(problem, solver, options)
        with warnings.catch_warnings():
            # said once below, as scikit-learn's ConvergenceWarning
            warnings.simplefilter("ignore", SolverConvergenceWarning)
            if self.progress:
                from cvxnn.progress import solve_with_progress

                solution = solve_with_progress(problem, solver, **options)
            else:
                solution = problem.solve(solver, **options)
        if solution.U is None:
            raise RuntimeError(f"fit: the {solver} solver returned no weights "
                               f"({solution.status}): {solution.message}")
        if solution.status != OPTIMAL:
            why = f": {solution.message}" if solution.message else ""
            cert = solution.certificate.summary()
            warnings.warn(f"fit: the {solver} solver stopped with status "
                          f"{solution.status!r}{why} ({cert}); "
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


def _shifted(Y, offset):
    """The targets around ``offset`` (as they are where it is None)."""
    return Y if offset is None else Y - offset


def _with_working_dtype(problem, solver, options):
    """``options`` with the backend's cheaper working dtype for ``problem``,
    where it names one (float32 for a loose R-FISTA solve of float64 data:
    ``backends.working_dtype``); the solution is certified on ``problem``."""
    dtype = backends.working_dtype(problem, solver, options)
    return options if dtype is None else {**options, "dtype": dtype}


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
