"""lam chosen by validation: :class:`ConvexReLURegressorCV` and
:class:`ConvexReLUClassifierCV` (a warm-started path, then a certified refit)."""



from cvxnn.estimators.models import ConvexReLUClassifier, ConvexReLURegressor

_CV_DOC = r"""
    lam is chosen by validation on a warm-started regularization path:

    1. the rows are split by ``cv`` (a fraction: one shuffled validation
       split; an int: that many folds), stratified for classifiers;
    2. on every split, the problem is solved down the geometric grid of
       ``n_lams`` values from ``lam_max`` (:func:`cvxnn.lam_max`, the largest
       over the splits) to ``lam_ratio * lam_max``, each solve warm-started
       from the previous one (gated ReLU; a ReLU path solves each lam cold
       where the interior point runs) at the loose tolerance ``path_tol`` and scored
       on the held-out rows (%s);
    3. the path stops once the mean score has not improved for ``patience``
       lams; ``lam_`` is the lam of best mean score, ties broken by the
       mean held-out loss, then by the larger lam (an undefined score, R^2
       of a one-row split, counts as -inf: the loss decides);
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
        From 1e-4 up, where R-FISTA alone runs the solves (past the interior
        point's sizes), the path solves float32 copies of float64 data (the
        refit's weights are certified in the data's dtype).
    %s
        As for the plain estimator (no ``lam``; no early stopping), except
        that ``regularizer`` must be a norm (group_l1, feature_group_l1, l1):
        the path starts at lam_max. Targets with lam_max = 0 (all zero; for
        the regressors, which fit around the targets' mean, any constant)
        give the zero model (plus the intercept), on a grid from float64's
        resolution (1e-15).

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
                "path_tol": 2e-2}


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
                   "problem_, solution_, network_, intercept_, certificate_, "
                   "n_active_, n_iter_, n_features_in_"))

    def __init__(self, *, cv=0.2, n_lams=10, lam_ratio=1e-3, patience=2,
                 path_tol=2e-2, formulation="gated_relu", loss="squared",
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
                 path_tol=2e-2, formulation="gated_relu", loss="auto",
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
