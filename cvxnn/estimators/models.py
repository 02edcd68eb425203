"""The estimators: :class:`ConvexReLURegressor` and :class:`ConvexReLUClassifier`."""


import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d, validate_data

from cvxnn.core.losses import label_array
from cvxnn.core.validation import check_choice
from cvxnn.estimators.base import (
    FLOAT_DTYPES,
    _ConvexReLUBase,
)


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    r"""Two-layer ReLU regression trained to global optimality (squared loss).

    Minimizes :math:`\frac1n\sum_j \tfrac12\|h(x_j) - (y_j - b)\|^2 +
    \lambda R(U)` over the convex reformulation, with the intercept ``b``
    the mean of the training targets (``intercept_``), and predicts
    :math:`h(x) + b`; ``y`` may have several columns (one set of neurons per
    output). ``problem_`` and ``solution_`` hold the centred targets.

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
        docs/design/defaults.md); images want more (120 on Fashion-MNIST).
    gates : str, callable or array (d, n_gates), default="gaussian"
        A gate family by name (see :data:`GATE_FAMILIES`), a sampler with the
        same signature, or fixed gate vectors (d counts the bias column).
    gate_options : dict or None, default=None
        Keyword arguments for the gate family.
    bias : bool, default=True
        Append a column of ones to X (neurons with a bias term).
    whiten : bool, default=False
        Solve in the whitened principal coordinates of the training data
        (:class:`cvxnn.estimators.selection.Whitening`): better conditioned, so
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
        (at least about every 0.25 s) and stop after ``n_iter_no_change`` scores
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
        The equivalent non-convex network; used by :meth:`predict`. A
        regressor's has the intercept as its output bias ``b2``.
    intercept_ : ndarray (n_outputs,)
        Regressors only: the mean of the training targets (with
        ``early_stopping``, of the rows solved on), which the network's
        neurons fit around.
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
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y: a regressor needs numeric targets, got dtype "
                             f"{y.dtype} (class labels? use ConvexReLUClassifier).")
        self._y_1d = y.ndim == 1
        return X, y.astype(X.dtype, copy=False), "squared"

    def _split_labels(self, Y):
        """Labels to stratify validation splits by: none for regression."""
        return None

    def _target_offset(self, Y):
        """The intercept: the mean of the targets (n_outputs,)."""
        return np.atleast_1d(np.mean(Y, axis=0, dtype=np.float64)).astype(Y.dtype)

    def _score_outputs(self, Z, Y):
        """R^2 of network outputs ``Z`` (n, n_outputs) against targets ``Y``;
        NaN on a single row, where it is undefined (the callers count NaN as
        the worst score and let the loss decide)."""
        if Y.shape[0] < 2:
            return float("nan")
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
        label_array(y)  # None or mixed types: named here, not by np.unique
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
        """Targets in the encoding the loss expects (see the class docstring):
        cross-entropy one-hot rows of ``n_classes`` columns, so that a
        validation or CV split missing a class keeps one output per class."""
        if self.loss_ == "cross_entropy":
            return np.eye(n_classes, dtype=dtype)[codes]
        if self.loss_ == "logistic":
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
