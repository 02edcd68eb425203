"""Checks of a saved estimator: class, settings, fitted attributes, solution.

Part of the structure checks (:mod:`cvxnn.io.checks`) that :mod:`cvxnn.io`
runs on every load, before the checksum, and on every save, so that a file
that would be refused is never written. Each raises :class:`ModelFileError`
naming the metadata field or array at fault:

* the **class** is one of :data:`OWN_FITTED` (nothing a file names is
  imported or called);
* the **settings** (constructor parameters) are exactly the class's, agree
  with the problem the solution solved (formulation, regularizer, lam, bias,
  loss, whitening) and pass the estimator's own checks, those ``fit`` runs
  (the estimators' ``_check_settings``);
* the **fitted attributes** are those ``fit`` of the class sets and agree
  with the solution: sizes, active neurons, classes as ``numpy.unique``
  gives them (the labels of every prediction), the problem's classes and
  outputs those the classifier's target encoding gives, a finite whitening,
  a CV path that holds the chosen lam.
"""

import numpy as np

from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.losses import LOSSES
from cvxnn.io.archive import ModelFileError
from cvxnn.io.checks import (
    array,
    bad_field,
    bool_field,
    check_solution,
    expect_shape,
    finite,
    get_field,
    int_field,
    mapping,
    no_other_arrays,
    number_field,
    same_dtype,
    shown,
    sorted_labels,
    string_field,
)

#: The fitted attributes ``fit`` of each class sets besides those of every
#: class: n_features_in_, n_active_, n_iter_, feature_names_in_ (data
#: frames) and whiten_mean_, whiten_components_ (``whiten=True``).
OWN_FITTED = {
    "ConvexReLURegressor": ("_y_1d",),
    "ConvexReLUClassifier": ("loss_", "classes_"),
    "ConvexReLURegressorCV": ("_y_1d", "lam_", "lams_", "scores_"),
    "ConvexReLUClassifierCV": ("loss_", "classes_", "lam_", "lams_", "scores_"),
}
#: Fitted attributes a class may lack: files written before the regressors
#: fitted around an intercept have none (the intercept was zero).
OPTIONAL_FITTED = {"ConvexReLURegressor": ("intercept_",),
                   "ConvexReLURegressorCV": ("intercept_",)}
ESTIMATOR_CLASSES = tuple(OWN_FITTED)
_COMMON = ("n_features_in_", "n_active_", "n_iter_", "feature_names_in_",
           "whiten_mean_", "whiten_components_")
#: Fitted attributes stored in the JSON header; the others are arrays.
FITTED_SCALARS = ("n_features_in_", "n_active_", "n_iter_", "loss_", "_y_1d", "lam_")
FITTED_ARRAYS = ("classes_", "feature_names_in_", "lams_", "scores_", "whiten_mean_",
                 "whiten_components_", "intercept_")


def check_estimator(header, arrays):
    """Check a saved estimator: class, settings, fitted attributes, solution."""
    name = header.get("class")
    if name not in OWN_FITTED:
        raise ModelFileError(f"holds an unknown estimator class {name!r}.")
    solution = mapping(header, "solution", "estimator")
    sizes = check_solution(solution, arrays, "solution/")
    if "solution/U" not in arrays:
        raise ModelFileError("array 'solution/U' is missing: a fitted estimator's "
                             "solution has weights.")
    fitted = mapping(header, "fitted", "estimator")
    _check_names(name, fitted, arrays)
    params = mapping(header, "params", "estimator")
    problem = solution["problem"]
    _check_params(params, problem, arrays, fitted)
    estimator = _from_params(name, params, arrays)
    _check_fitted(fitted, solution, arrays, sizes)
    n_classes = None
    if "classes_" in OWN_FITTED[name]:
        n_classes = _check_classifier(estimator, fitted, problem["loss"], arrays,
                                      sizes)
    else:
        _check_regressor(fitted, problem["loss"], arrays, sizes)
    if "lams_" in OWN_FITTED[name]:
        _check_path(fitted, arrays)
    _check_settings(estimator, params, problem["loss"], sizes["n_samples"],
                    n_classes)
    mapping(header, "metadata", "estimator")


def _check_names(name, fitted, arrays):
    """The fitted attributes are those ``fit`` of the class sets."""
    own = OWN_FITTED[name]
    odd = sorted(set(fitted) - set(FITTED_SCALARS))
    if odd:
        raise ModelFileError(f"metadata field 'fitted' holds unknown attributes "
                             f"({', '.join(odd)}).")
    for key in own:
        if key in FITTED_SCALARS:
            get_field(fitted, key, "fitted")
        elif f"fitted/{key}" not in arrays:
            raise ModelFileError(f"array 'fitted/{key}' is missing.")
    foreign = sorted(set(fitted) - set(own) - set(_COMMON))
    if foreign:
        raise ModelFileError(f"metadata field 'fitted' holds {', '.join(foreign)}, "
                             f"which a {name} does not have.")
    allowed = {f"fitted/{k}" for k in (*own, *_COMMON, *OPTIONAL_FITTED.get(name, ()))
               if k in FITTED_ARRAYS}
    no_other_arrays(arrays, allowed | {"params/gates"}, ("solution/",))


def _check_params(params, problem, arrays, fitted):
    """The estimator's parameters agree with the problem its solution solved
    (a CV estimator's chosen ``lam_`` stands for ``lam``) and the whitening."""
    chosen = {"lam": fitted["lam_"]} if "lam_" in fitted else {}
    for key in ("formulation", "regularizer", "lam", "bias"):
        value = chosen[key] if key in chosen else get_field(params, key, "params")
        if value != problem[key]:
            raise ModelFileError(
                f"metadata field 'params.{key}' is {value!r} but the solution "
                f"was computed with {key}={problem[key]!r}.")
    whiten = bool_field(params, "whiten", "params")
    if whiten != ("fitted/whiten_components_" in arrays):
        raise ModelFileError(
            f"metadata field 'params.whiten' is {str(whiten).lower()} but the file "
            f"holds {'no' if whiten else 'a'} whitening "
            "('fitted/whiten_components_').")
    gates = get_field(params, "gates", "params")
    if gates == {"array": True}:
        finite(array(arrays, "params/gates", "float", 2), "params/gates")
    elif not isinstance(gates, str):
        raise bad_field("params", "gates", "a gate family name or {\"array\": true}",
                        gates)
    elif "params/gates" in arrays:
        raise ModelFileError("array 'params/gates' does not belong in this file "
                             f"(params.gates is {gates!r}).")


def _from_params(name, params, arrays):
    """An unfitted estimator of class ``name`` with the saved settings."""
    import cvxnn.estimators as estimators

    cls = getattr(estimators, name)  # one of OWN_FITTED
    expected = set(cls._get_param_names())
    if set(params) != expected:
        odd = ", ".join(sorted(set(params) ^ expected))
        raise ModelFileError(f"metadata field 'params' does not hold the parameters "
                             f"of {cls.__name__} (differs in: {odd}).")
    if isinstance(params["gates"], dict):
        params = {**params, "gates": arrays["params/gates"]}
    return cls(**params)


def _check_fitted(fitted, solution, arrays, sizes):
    d = _check_whitening(arrays, sizes["n_features"]
                         - int(solution["problem"]["bias"]))
    _expect_field(fitted, "n_features_in_", d, f"the data have {d} features")
    _expect_field(fitted, "n_iter_", solution["n_iter"], "the solution says so",
                  optional=True)
    blocks = [arrays["solution/" + b]
              for b in FORMULATIONS[solution["problem"]["formulation"]].block_names]
    n_active = sum(int(np.count_nonzero(np.linalg.norm(B, axis=2) > 0))
                   for B in blocks)
    _expect_field(fitted, "n_active_", n_active,
                  "that many weight blocks are non-zero")
    names = array(arrays, "fitted/feature_names_in_", "string", 1, required=False)
    if names is not None:
        expect_shape(names, "fitted/feature_names_in_", (d,),
                     f"the model takes {d} features")
        if np.unique(names).size != names.size:  # a fit refuses such data
            raise ModelFileError("array 'fitted/feature_names_in_' names a "
                                 f"feature twice: {shown(names)}.")


def _check_whitening(arrays, d):
    """The whitening map, finite, if there is one (the problem then holds ``d``
    whitened features); the number of features the model takes."""
    components = array(arrays, "fitted/whiten_components_", "float", 2,
                       required=False)
    mean = array(arrays, "fitted/whiten_mean_", "float", 1,
                 required=components is not None)
    if components is None:
        if mean is not None:
            raise ModelFileError("array 'fitted/whiten_mean_' comes without "
                                 "'fitted/whiten_components_' (a whitening has "
                                 "both).")
        return d
    expect_shape(components, "fitted/whiten_components_", (components.shape[0], d),
                 f"the problem has {d} features")
    d = components.shape[0]
    expect_shape(mean, "fitted/whiten_mean_", (d,), f"the model takes {d} features")
    finite(mean, "fitted/whiten_mean_")
    finite(components, "fitted/whiten_components_")
    return d


def _expect_field(fitted, key, value, why, optional=False):
    stored = int_field(fitted, key, "fitted", optional=optional)
    if stored != value:
        raise ModelFileError(f"metadata field 'fitted.{key}' is {stored!r} but "
                             f"should be {value!r} ({why}).")


def _check_classifier(estimator, fitted, loss, arrays, sizes):
    """``loss_``; ``classes_`` (sorted, distinct) against the problem's outputs
    and classes, which the classifier builds from the codes of its classes
    (``_targets``, then the loss's ``prepare_targets``). Returns the number
    of classes."""
    if string_field(fitted, "loss_", "fitted") != loss:
        raise ModelFileError(f"metadata field 'fitted.loss_' is {fitted['loss_']!r} "
                             f"but the solution was computed with loss={loss!r}.")
    classes = array(arrays, "fitted/classes_", "label", 1)
    sorted_labels(classes, "fitted/classes_")
    n_classes = classes.size
    if n_classes < 2:
        raise ModelFileError(f"array 'fitted/classes_' has {n_classes} classes; a "
                             "classifier has at least 2.")
    estimator.loss_ = loss
    try:
        Y = estimator._targets(np.arange(n_classes), n_classes, np.float64)
        Y, expected = LOSSES[loss].prepare_targets(Y, n_classes, np.float64)
    except ValueError as exc:
        raise ModelFileError(f"array 'fitted/classes_' has {n_classes} classes, "
                             f"which a {loss} classifier cannot have ({exc}).") from exc
    if sizes["n_outputs"] != Y.shape[1]:
        raise ModelFileError(f"array 'fitted/classes_' has {n_classes} classes but "
                             f"the {loss} problem has {sizes['n_outputs']} outputs.")
    stored = arrays.get("solution/problem/classes")
    if (stored is None) != (expected is None) or (
            stored is not None and not np.array_equal(stored, expected)):
        raise ModelFileError(
            "array 'solution/problem/classes' is "
            f"{'absent' if stored is None else shown(stored)} but a {loss} "
            f"classifier of {n_classes} classes solves for "
            f"{'none' if expected is None else shown(expected)} (the codes of its "
            "classes).")
    return n_classes


def _check_regressor(fitted, loss, arrays, sizes):
    if LOSSES[loss].is_classification:
        raise ModelFileError(f"the solution of a regressor was computed with the "
                             f"classification loss {loss!r}.")
    if "solution/problem/classes" in arrays:
        raise ModelFileError("array 'solution/problem/classes' does not belong in "
                             "a regressor's file.")
    if bool_field(fitted, "_y_1d", "fitted") and sizes["n_outputs"] != 1:
        raise ModelFileError(f"metadata field 'fitted._y_1d' is true but the "
                             f"problem has {sizes['n_outputs']} outputs.")
    intercept = array(arrays, "fitted/intercept_", "float", 1, required=False)
    if intercept is not None:
        same_dtype(intercept, "fitted/intercept_", sizes["dtype"],
                   "'solution/problem/X'")
        expect_shape(intercept, "fitted/intercept_", (sizes["n_outputs"],),
                     f"the problem has {sizes['n_outputs']} outputs")
        finite(intercept, "fitted/intercept_")


def _check_path(fitted, arrays):
    """A CV estimator's path: ``lams_`` (finite, >= 0), ``scores_`` (one per
    lam; an undefined score counts as -inf, none is nan) and ``lam_`` one of
    the lams."""
    lams = array(arrays, "fitted/lams_", "float", 1)
    finite(lams, "fitted/lams_")
    if lams.size == 0 or np.any(lams < 0):
        raise ModelFileError(f"array 'fitted/lams_' has lams < 0 or none: "
                             f"{shown(lams)}.")
    scores = array(arrays, "fitted/scores_", "float", 1)
    expect_shape(scores, "fitted/scores_", lams.shape,
                 f"'fitted/lams_' has {lams.size} lams")
    if np.any(np.isnan(scores) | (scores == np.inf)):
        raise ModelFileError("array 'fitted/scores_' has nan or +inf scores (an "
                             "undefined score counts as -inf).")
    lam = number_field(fitted, "lam_", "fitted")
    if not np.any(lams == lam):
        raise ModelFileError(f"metadata field 'fitted.lam_' is {lam!r}, which is "
                             "not one of the lams of 'fitted/lams_' (the chosen "
                             "lam is).")


def _check_settings(estimator, params, loss, n_samples, n_classes):
    """The estimator's own ``_check_settings``, its error naming the metadata
    field; the loss (``"auto"`` resolved for classifiers) that of the problem."""
    try:
        estimator._check_settings(n_samples, n_classes)
    except (TypeError, ValueError) as exc:
        key = str(exc).split(":", 1)[0]
        hint = (" (register a custom family with "
                "cvxnn.estimators.register_gate_family before loading)"
                if key == "gates" else "")
        raise ModelFileError(
            f"metadata field 'params{'.' + key if key in params else ''}' holds a "
            f"setting {type(estimator).__name__} refuses: {exc}{hint}") from exc
    used = estimator.loss if n_classes is None else \
        estimator._resolve_loss(n_classes)
    if used != loss:
        resolved = "" if used == estimator.loss else \
            f" ({used!r} for {n_classes} classes)"
        raise ModelFileError(f"metadata field 'params.loss' is {estimator.loss!r}"
                             f"{resolved} but the solution was computed with "
                             f"loss={loss!r}.")
