"""Checks that a cvxnn model file is whole before anything is built from it.

:mod:`cvxnn.io` calls these on every load; each raises :class:`ModelFileError`
with a message that says what is wrong (the loader adds the file name):

* **structure**: the arrays a kind needs are present and no others; dtypes
  are the kinds expected (float32/float64 data and weights of one dtype, bool
  patterns, numeric histories, string or numeric labels); shapes agree with
  each other and with the sizes in the metadata; metadata fields have the
  types and values expected (known loss, regularizer and formulation names,
  ``lam >= 0``, a known status, one that comes with weights has them, ...);
* **values**: data, gates, weights and multipliers are finite; class labels
  are sorted and distinct (as ``numpy.unique`` gives them); certificate
  numbers are ones a certificate can hold;
* **checksum** (verified by :mod:`cvxnn.io.archive` after these checks, so
  that the messages above name the problem when they can): SHA-256 of each
  array and of the JSON header, so that any change after saving is detected;
* **objective**: the stored objective recomputed from the stored weights and
  data by :meth:`cvxnn.Problem.objective`, the function every backend uses.

Cost: one pass over the bytes for the finiteness tests and one for SHA-256
(about 1-2 GB/s), and one objective evaluation (two GEMM-sized products).
``docs/design/model-files.md`` explains the choices. Estimators' own checks
(settings, fitted attributes) are in :mod:`cvxnn.io.estimator_checks`.
"""

import dataclasses
import math
import numbers

import numpy as np

from cvxnn.core.certificates import Certificate
from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.losses import LOSSES
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.status import CVXPY_STATUSES, SOLVER_ERROR, WITH_WEIGHTS
from cvxnn.io.archive import ModelFileError

# Every status a solution can have: cvxnn's own and those of CVXPY, which the
# CVXPY backend passes on (with weights or, failed, without).
STATUSES = WITH_WEIGHTS | {SOLVER_ERROR} | CVXPY_STATUSES
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# Recomputing the objective on another machine (another BLAS) changes only
# rounding; the tolerance is relative to max(|stored|, |recomputed|, F(0)).
OBJECTIVE_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
_CERTIFICATE_FIELDS = frozenset(f.name for f in dataclasses.fields(Certificate))
_CERTIFICATE_REQUIRED = frozenset(
    f.name for f in dataclasses.fields(Certificate)
    if f.default is dataclasses.MISSING)


# --- metadata fields ----------------------------------------------------------
def get_field(meta, key, where):
    if key not in meta:
        raise ModelFileError(f"metadata field '{where}.{key}' is missing.")
    return meta[key]


def bad_field(where, key, want, value):
    return ModelFileError(f"metadata field '{where}.{key}' must be {want}, got "
                          f"{value!r}.")


def mapping(meta, key, where, optional=False):
    value = meta.get(key) if optional else get_field(meta, key, where)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise bad_field(where, key, "a JSON object", value)
    return value


def string_field(meta, key, where, choices=None):
    """A string field (or None where ``choices`` holds None, as the
    regularizers do)."""
    value = get_field(meta, key, where)
    allowed = isinstance(value, str) or (value is None and choices is not None
                                         and None in choices)
    if not allowed or (choices is not None and value not in choices):
        want = "a string" if choices is None else \
            f"one of {', '.join(repr(c) for c in sorted(choices, key=str))}"
        raise bad_field(where, key, want, value)
    return value


def bool_field(meta, key, where):
    value = get_field(meta, key, where)
    if not isinstance(value, bool):
        raise bad_field(where, key, "true or false", value)
    return value


def int_field(meta, key, where, optional=False):
    value = meta.get(key) if optional else get_field(meta, key, where)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_field(where, key, "a non-negative integer", value)
    return value


def number_field(meta, key, where, finite=True):
    value = get_field(meta, key, where)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            finite and not math.isfinite(value)):
        raise bad_field(where, key, "a finite number" if finite else "a number",
                        value)
    return float(value)


# --- arrays -------------------------------------------------------------------
_KINDS = {"float": "float32 or float64", "bool": "bool",
          "numeric": "numeric (bool, int or float)",
          "label": "numbers, bools or strings", "string": "strings"}


def _kind_ok(arr, kind):
    if kind == "float":
        return arr.dtype in FLOATS
    codes = {"bool": "b", "numeric": "biuf", "label": "biufU", "string": "U"}[kind]
    return arr.dtype.kind in codes


def array(arrays, name, kind, ndim, required=True):
    """``arrays[name]`` checked for presence, dtype kind and dimension."""
    if name not in arrays:
        if required:
            raise ModelFileError(f"array {name!r} is missing.")
        return None
    arr = arrays[name]
    if not _kind_ok(arr, kind):
        raise ModelFileError(f"array {name!r} has dtype {arr.dtype} but must hold "
                             f"{_KINDS[kind]}.")
    if arr.ndim != ndim:
        raise ModelFileError(f"array {name!r} has shape {arr.shape} but must have "
                             f"{ndim} dimension{'s' if ndim > 1 else ''}.")
    return arr


def expect_shape(arr, name, shape, why):
    if arr.shape != tuple(shape):
        raise ModelFileError(f"array {name!r} has shape {arr.shape} but {why}, "
                             f"so it must be {tuple(shape)}.")


def same_dtype(arr, name, dtype, source):
    if arr.dtype != dtype:
        raise ModelFileError(f"array {name!r} has dtype {arr.dtype} but {source} "
                             f"has {dtype}; they must match.")


def finite(arr, name):
    if not np.all(np.isfinite(arr)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ModelFileError(f"array {name!r} has {bad} non-finite value"
                             f"{'s' if bad > 1 else ''} (nan or inf).")


def sorted_labels(arr, name):
    """Labels as ``numpy.unique`` gives them: finite, sorted, each once (the
    label of output or code ``i`` depends on it)."""
    if arr.dtype.kind == "f":
        finite(arr, name)
    if not np.array_equal(np.unique(arr), arr):
        raise ModelFileError(f"array {name!r} must hold sorted and distinct labels "
                             f"(as numpy.unique gives them), got {shown(arr)}.")


def shown(arr, limit=6):
    """The first ``limit`` values of a 1-D array, for a message."""
    values = arr[:limit].tolist()
    return repr(values)[:-1] + ", ...]" if arr.size > limit else repr(values)


def no_other_arrays(arrays, allowed, prefixes=()):
    for name in sorted(arrays):
        if name not in allowed and not name.startswith(tuple(prefixes)):
            raise ModelFileError(f"array {name!r} does not belong in this file.")


# --- problems -----------------------------------------------------------------
_PROBLEM_ARRAYS = ("X", "y", "patterns", "gates", "classes", "input_scale")


def check_problem(meta, arrays, prefix, where):
    """Check a problem's metadata and arrays; return its sizes and dtype."""
    string_field(meta, "formulation", where, FORMULATIONS)
    string_field(meta, "loss", where, LOSSES)
    string_field(meta, "regularizer", where, REGULARIZERS)
    lam = number_field(meta, "lam", where)
    if lam < 0:
        raise bad_field(where, "lam", "a finite number >= 0", lam)
    bool_field(meta, "bias", where)
    X = array(arrays, prefix + "X", "float", 2)
    n_samples, d = X.shape
    if n_samples < 1 or d < 1:
        raise ModelFileError(f"array {prefix + 'X'!r} has shape {X.shape}: no data.")
    y = array(arrays, prefix + "y", "float", 2)
    same_dtype(y, prefix + "y", X.dtype, repr(prefix + "X"))
    expect_shape(y, prefix + "y", (n_samples, max(y.shape[1], 1)),
                 f"{prefix + 'X'!r} has {n_samples} rows")
    D = array(arrays, prefix + "patterns", "bool", 2)
    expect_shape(D, prefix + "patterns", (n_samples, D.shape[1]),
                 f"{prefix + 'X'!r} has {n_samples} rows")
    sizes = {"n_samples": n_samples, "n_features": d, "n_patterns": D.shape[1],
             "n_outputs": y.shape[1]}
    G = array(arrays, prefix + "gates", "float", 2)
    same_dtype(G, prefix + "gates", X.dtype, repr(prefix + "X"))
    expect_shape(G, prefix + "gates", (d, sizes["n_patterns"]),
                 f"d={d} and P={sizes['n_patterns']}")
    _check_classes(arrays, prefix + "classes", sizes["n_outputs"], meta["loss"])
    scale = array(arrays, prefix + "input_scale", "float", 1, required=False)
    if scale is not None:
        expect_shape(scale, prefix + "input_scale", (d,), f"d={d}")
        finite(scale, prefix + "input_scale")
        if np.any(scale <= 0):
            raise ModelFileError(f"array {prefix + 'input_scale'!r} has scales <= 0.")
    for name in ("X", "y", "gates"):
        finite(arrays[prefix + name], prefix + name)
    _check_sizes(meta, where, sizes)
    return {**sizes, "dtype": X.dtype}


def _check_classes(arrays, name, n_outputs, loss):
    """Logistic: two classes whatever the outputs; cross-entropy: one per
    output; otherwise one per output, or two for a single output."""
    classes = array(arrays, name, "label", 1, required=False)
    if classes is None:
        return
    sorted_labels(classes, name)
    if loss == "logistic":
        if classes.size != 2:
            raise ModelFileError(f"array {name!r} has {classes.size} classes; the "
                                 "logistic loss has 2.")
    elif classes.size != n_outputs and not (
            loss != "cross_entropy" and n_outputs == 1 and classes.size == 2):
        raise ModelFileError(f"array {name!r} has {classes.size} classes but the "
                             f"problem has {n_outputs} outputs.")


def _check_sizes(meta, where, sizes):
    """The sizes the writer recorded (absent in older files) against the arrays."""
    stored = mapping(meta, "sizes", where, optional=True)
    if stored is None:
        return
    for key, value in sizes.items():
        if int_field(stored, key, f"{where}.sizes") != value:
            raise ModelFileError(f"the arrays give {key}={value} but the metadata "
                                 f"says {key}={stored[key]} ('{where}.sizes').")


# --- solutions ----------------------------------------------------------------
_BLOCKS = ("U", "V", "W")


def check_solution(meta, arrays, prefix="", where="solution"):
    """Check a saved solution (its problem, weights, status, certificate).

    ``prefix`` is the archive folder of its arrays (``"solution/"`` in an
    estimator file). Returns the problem's sizes and dtype.
    """
    problem_meta = mapping(meta, "problem", where)
    sizes = check_problem(problem_meta, arrays, prefix + "problem/",
                          f"{where}.problem")
    status = string_field(meta, "status", where, STATUSES)
    for key in ("solver", "message"):
        string_field(meta, key, where)
    if number_field(meta, "solve_time", where, finite=False) < 0:
        raise bad_field(where, "solve_time", "a number >= 0", meta["solve_time"])
    int_field(meta, "n_iter", where, optional=True)
    mapping(meta, "info", where)
    formulation = FORMULATIONS[problem_meta["formulation"]]
    present = [b for b in _BLOCKS if prefix + b in arrays]
    expected = ["U", *(b for b in formulation.block_names if b != "U")]
    if (present and present != expected) or (not present
                                              and status in WITH_WEIGHTS):
        want = " and ".join(repr(prefix + b) for b in expected)
        why = (f"status {status!r} comes with weights" if status in WITH_WEIGHTS
               else f"a {formulation.name} solution stores {want} or no weights")
        raise ModelFileError(f"{why}, but the file holds "
                             f"{', '.join(repr(prefix + b) for b in present) or 'none'}"
                             f" (expected {want}).")
    objective = number_field(meta, "objective", where, finite=False)
    certificate = mapping(meta, "certificate", where, optional=True)
    if present:
        _check_weights(arrays, prefix, present, sizes, formulation)
        if not math.isfinite(objective):
            raise bad_field(where, "objective", "finite for a solution with weights",
                       objective)
        if certificate is None:
            raise ModelFileError(f"metadata field '{where}.certificate' is missing "
                                 "for a solution with weights.")
    elif not math.isnan(objective) or certificate is not None:
        raise ModelFileError("a solution without weights must have objective nan "
                             f"and no certificate ('{where}').")
    if certificate is not None:
        _check_certificate(certificate, objective, formulation,
                           f"{where}.certificate")
    _check_extras(arrays, prefix, sizes, formulation)
    return sizes


def _check_weights(arrays, prefix, present, sizes, formulation):
    shape = (sizes["n_outputs"], sizes["n_patterns"], sizes["n_features"])
    why = (f"the problem has n_outputs={shape[0]}, P={shape[1]}, d={shape[2]} "
           f"(from {prefix}problem/y, patterns and X)")
    for name in present:
        arr = array(arrays, prefix + name, "float", 3)
        same_dtype(arr, prefix + name, sizes["dtype"], repr(prefix + "problem/X"))
        expect_shape(arr, prefix + name, shape, why)
        finite(arr, prefix + name)
    blocks = {b: arrays[prefix + b] for b in formulation.block_names}
    if "U" not in blocks and not np.array_equal(formulation.combine(blocks),
                                                arrays[prefix + "U"]):
        raise ModelFileError(f"array {prefix + 'U'!r} is not "
                             f"{' - '.join(repr(prefix + b) for b in blocks)}.")


def _check_certificate(cert, objective, formulation, where):
    """Field names, and numbers a certificate can hold: no nan, finite gaps
    (a ReLU gap may be below zero, where cones are violated), residuals and
    cone violations >= 0, the latter for ReLU only."""
    odd = sorted((set(cert) - _CERTIFICATE_FIELDS) | (_CERTIFICATE_REQUIRED
                                                       - set(cert)))
    if odd:
        raise ModelFileError(f"metadata field '{where}' has unknown or missing "
                             f"fields ({', '.join(odd)}).")
    for key, value in cert.items():
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, numbers.Real)
                                  or math.isnan(value)):
            raise bad_field(where, key, "a number (not nan) or null", value)
    for key in ("duality_gap", "relative_gap"):
        if cert[key] is not None and not math.isfinite(cert[key]):
            raise bad_field(where, key, "a finite number or null", cert[key])
    for key in ("kkt_residual", "relative_kkt_residual", "cone_violation"):
        if cert.get(key) is not None and cert[key] < 0:
            raise bad_field(where, key, "a number >= 0 or null", cert[key])
    if cert.get("cone_violation") is not None and not formulation.has_cones:
        raise bad_field(where, "cone_violation", "null for a "
                        f"{formulation.name} solution", cert["cone_violation"])
    if cert["objective"] != objective:
        raise ModelFileError(f"metadata field '{where}.objective' is "
                             f"{cert['objective']!r} but the solution's objective "
                             f"is {objective!r}.")


def _check_extras(arrays, prefix, sizes, formulation):
    """History (1-D numeric), ReLU multipliers, info arrays; nothing else."""
    allowed = {prefix + b for b in _BLOCKS} | {
        f"{prefix}problem/{k}" for k in _PROBLEM_ARRAYS}
    multipliers = [f"{prefix}multipliers/{i}" for i in (0, 1)]
    given = [m for m in multipliers if m in arrays]
    if given:
        if "V" not in formulation.block_names or len(given) != 2:
            raise ModelFileError(f"arrays {', '.join(map(repr, given))}: ReLU "
                                 f"solutions store both {multipliers} or neither.")
        shape = (sizes["n_samples"], sizes["n_outputs"], sizes["n_patterns"])
        for name in multipliers:
            arr = array(arrays, name, "float", 3)
            expect_shape(arr, name, shape, "the problem has (n_samples, "
                         "n_outputs, P) = " + str(shape))
            finite(arr, name)
    for name in arrays:
        if name.startswith(prefix + "history/"):
            array(arrays, name, "numeric", 1)
    no_other_arrays({k: v for k, v in arrays.items() if k.startswith(prefix)},
                    allowed | set(multipliers),
                    (prefix + "history/", prefix + "info/"))


def check_objective(problem, blocks, stored):
    """Recompute the objective with :meth:`Problem.objective`; compare with ``stored``.

    Tolerance ``OBJECTIVE_RTOL[dtype] * max(|stored|, |recomputed|, F(0))``,
    ``F(0)`` being the loss at zero weights (the natural scale when the
    objective is near zero). Cost: one objective evaluation.
    """
    value = float(problem.objective(**blocks))
    at_zero = problem.data_fit(np.zeros_like(problem.y))
    scale = max(abs(stored), abs(value), abs(at_zero))
    if not abs(value - stored) <= OBJECTIVE_RTOL[problem.dtype] * scale:
        raise ModelFileError(
            f"the stored objective {stored!r} differs from {value!r}, the "
            "objective recomputed from the stored weights, data and settings "
            "(the weights, data or settings do not belong together).")


# --- networks -----------------------------------------------------------------
def check_network(header, arrays):
    """Check a saved network: W1 (m, d), W2 (k, m), gates (d, m) or none,
    b2 (k,) or none."""
    bias = bool_field(header, "bias", "network")
    W1 = array(arrays, "W1", "float", 2)
    m, d = W1.shape
    if d < 1 + int(bias):
        raise ModelFileError(f"array 'W1' has shape {W1.shape}: no input features.")
    W2 = array(arrays, "W2", "float", 2)
    same_dtype(W2, "W2", W1.dtype, "'W1'")
    expect_shape(W2, "W2", (max(W2.shape[0], 1), m), f"'W1' has {m} neurons")
    gates = array(arrays, "gates", "float", 2, required=False)
    if gates is not None:
        same_dtype(gates, "gates", W1.dtype, "'W1'")
        expect_shape(gates, "gates", (d, m), f"'W1' has shape {W1.shape}")
    activation = header.get("activation")
    if activation is not None and activation != ("relu" if gates is None
                                                 else "gated_relu"):
        raise ModelFileError(f"the metadata says activation={activation!r} but the "
                             f"file {'lacks' if gates is None else 'holds'} "
                             "the array 'gates'.")
    b2 = array(arrays, "b2", "float", 1, required=False)
    if b2 is not None:
        same_dtype(b2, "b2", W1.dtype, "'W1'")
        expect_shape(b2, "b2", (W2.shape[0],), f"'W2' has {W2.shape[0]} outputs")
    for name in ("W1", "W2", "gates", "b2"):
        if name in arrays:
            finite(arrays[name], name)
    no_other_arrays(arrays, {"W1", "W2", "gates", "b2"})
    _check_sizes(header, "network", {"n_neurons": m, "n_features": d,
                                     "n_outputs": W2.shape[0]})
