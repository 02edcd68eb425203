"""Save and load solutions, networks and fitted estimators as versioned .npz files.

Files are plain NumPy ``.npz`` archives readable with
``numpy.load(path, allow_pickle=False)``: arrays are stored as they are
(dtype and bits kept), and everything else (names, statuses, numbers, the
certificate, estimator parameters) as one JSON header, the 0-d string array
``__cvxnn__``. Python floats survive JSON exactly (``repr`` round-trips).

What each kind holds:

* ``"solution"``: the whole :class:`cvxnn.Solution`, including its problem
  (X and y as used, patterns, gates, loss, regularizer, lam, formulation,
  bias, classes), so that predictions, the objective and the certificate can
  be recomputed after loading.
* ``"network"``: a :class:`cvxnn.TwoLayerNetwork` alone (W1, W2, gates,
  bias): the small file to deploy.
* ``"estimator"``: a fitted :class:`~cvxnn.estimators.ConvexReLURegressor`
  or :class:`~cvxnn.estimators.ConvexReLUClassifier`: its parameters, fitted
  attributes and solution.

``FORMAT_VERSION`` grows when the layout changes; a file written by a newer
version is refused with a message rather than misread.

Loading checks a file whole before it builds anything (:mod:`cvxnn.io.archive`
reads and verifies the checksum, :mod:`cvxnn.io.checks` checks the content):
the arrays a kind needs, their dtypes and shapes against each other and the
metadata, finite data and weights, a SHA-256 checksum of every array and of
the JSON header, and the stored objective recomputed from the stored weights
and data. Anything wrong raises :class:`ModelFileError` (a ``ValueError``)
naming the file and the problem; a file that cannot be opened raises the
usual ``OSError``. Saving runs the same structure checks (all but the
objective) first and writes nothing they refuse (``ValueError``).

Files without a checksum (written before cvxnn stored one; same format
version, since the checksum is one more header entry that older readers
ignore) are refused by default, with a message saying how to re-save them:
without a checksum an edited header field or a changed gate cannot be ruled
out. ``allow_no_checksum=True`` loads them after every other check passes,
to be saved again. Such files also lack ``input_scale``, so a problem built
with ``standardize=True`` loads unscaled: re-solve rather than re-save those.
"""

import dataclasses
import numbers

import numpy as np

from cvxnn.core.certificates import Certificate
from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.losses import LOSSES
from cvxnn.core.network import TwoLayerNetwork
from cvxnn.core.problem import Problem
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.solution import Solution
from cvxnn.decomposition import DecompositionReport
from cvxnn.io.archive import (
    FORMAT_VERSION,
    HEADER,
    KINDS,
    ModelFileError,
    check_path,
    malformed,
    naming,
)
from cvxnn.io.archive import read_archive as _read
from cvxnn.io.archive import write_archive as _write
from cvxnn.io.checks import check_network as _check_network
from cvxnn.io.checks import check_objective as _check_objective
from cvxnn.io.checks import check_solution as _check_solution
from cvxnn.io.estimator_checks import FITTED_ARRAYS as _FITTED_ARRAYS
from cvxnn.io.estimator_checks import FITTED_SCALARS as _FITTED_SCALARS
from cvxnn.io.estimator_checks import check_estimator as _check_estimator

__all__ = ["FORMAT_VERSION", "HEADER", "KINDS", "ModelFileError", "load",
           "load_metadata", "load_model", "load_network", "load_solution", "save",
           "save_model", "save_network", "save_solution", "solution_from_parts",
           "solution_parts"]


# --- JSON values ----------------------------------------------------------
def _jsonable(value, name):
    """``value`` as plain JSON types; TypeError naming ``name`` if impossible."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {_key(k, name): _jsonable(v, f"{name}[{k!r}]") for k, v in value.items()}
    if type(value).__module__ == "torch" and type(value).__name__ == "device":
        return str(value)  # "cpu", "cuda:1": what device= takes back
    if isinstance(value, DecompositionReport):  # back as one by _info_from_parts
        return _jsonable(dataclasses.asdict(value), name)
    raise TypeError(f"{name}: cannot be saved without pickle ({type(value).__name__}); "
                    "use numbers, strings, lists, dicts or arrays.")


def _key(key, name):
    if not isinstance(key, str):
        raise TypeError(f"{name}: dict keys must be strings to be saved, got {key!r}.")
    return key


def _sub(arrays, prefix):
    """The arrays under ``prefix/``, with the prefix stripped."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def _prefixed(arrays, prefix):
    return {f"{prefix}/{k}": v for k, v in arrays.items()}


# --- problems and solutions ---------------------------------------------------
def _problem_parts(problem):
    if not isinstance(problem, Problem):  # a sharded solve's: rows on many processes
        raise ValueError(
            f"solution: its problem is a {type(problem).__name__}, whose rows no "
            "process holds together, so the solution cannot be saved; save "
            "sol.network (cvxnn.save(path, sol.network)) on one process instead.")
    meta = {"formulation": problem.formulation.name, "loss": problem.loss.name,
            "regularizer": problem.regularizer.name, "lam": float(problem.lam),
            "bias": bool(problem.bias),
            "sizes": {"n_samples": problem.n_samples,
                      "n_features": problem.n_features,
                      "n_patterns": problem.n_patterns,
                      "n_outputs": problem.n_outputs}}
    arrays = {"X": problem.X, "y": problem.y, "patterns": problem.patterns,
              "gates": problem.gates}
    if problem.classes is not None:
        arrays["classes"] = problem.classes
    if problem.input_scale is not None:
        arrays["input_scale"] = problem.input_scale
    return meta, arrays


def _problem_from_parts(meta, arrays):
    return Problem(arrays["X"], arrays["y"], arrays["patterns"], arrays["gates"],
                   LOSSES[meta["loss"]], REGULARIZERS[meta["regularizer"]],
                   meta["lam"], FORMULATIONS[meta["formulation"]], meta["bias"],
                   arrays.get("classes"), arrays.get("input_scale"))


def _split_info(info):
    """Solver extras: arrays go to the archive, the rest to JSON."""
    arrays = {k: np.asarray(v) for k, v in info.items() if isinstance(v, np.ndarray)}
    meta = {k: _jsonable(v, f"info[{k!r}]") for k, v in info.items()
            if k not in arrays}
    return meta, arrays


def solution_parts(solution):
    """Describe ``solution`` completely as JSON values and arrays.

    Parameters
    ----------
    solution : cvxnn.Solution

    Returns
    -------
    meta : dict of JSON values
    arrays : dict of ndarrays
    """
    problem_meta, arrays = _problem_parts(solution.problem)
    arrays = _prefixed(arrays, "problem")
    for name in ("U", "V", "W"):
        if getattr(solution, name) is not None:
            arrays[name] = getattr(solution, name)
    arrays.update(_prefixed({k: np.asarray(v) for k, v in solution.history.items()},
                            "history"))
    if solution.multipliers is not None:
        arrays.update({f"multipliers/{i}": m for i, m in
                       enumerate(solution.multipliers)})
    info_meta, info_arrays = _split_info(solution.info)
    arrays.update(_prefixed(info_arrays, "info"))
    cert = solution.certificate
    meta = {"problem": problem_meta, "status": solution.status,
            "objective": float(solution.objective), "solver": solution.solver,
            "solve_time": float(solution.solve_time),
            "n_iter": _jsonable(solution.n_iter, "n_iter"),
            "message": solution.message, "info": info_meta,
            "certificate": None if cert is None else
            _jsonable(dataclasses.asdict(cert), "certificate")}
    return meta, arrays


def solution_from_parts(meta, arrays):
    """Rebuild a solution from the output of :func:`solution_parts`.

    The stored objective is first recomputed from the stored weights and data
    (one objective evaluation); a mismatch raises :class:`ModelFileError`.

    Parameters
    ----------
    meta : dict
    arrays : dict of ndarrays

    Returns
    -------
    cvxnn.Solution
    """
    problem = _problem_from_parts(meta["problem"], _sub(arrays, "problem"))
    if arrays.get("U") is not None:
        blocks = {k: arrays[k] for k in problem.formulation.block_names}
        _check_objective(problem, blocks, meta["objective"])
    multipliers = _sub(arrays, "multipliers")
    cert = meta["certificate"]
    return Solution(
        problem=problem, status=meta["status"], objective=meta["objective"],
        U=arrays.get("U"), V=arrays.get("V"), W=arrays.get("W"),
        solver=meta["solver"], solve_time=meta["solve_time"],
        certificate=None if cert is None else Certificate(**cert),
        n_iter=meta["n_iter"], history=_sub(arrays, "history"),
        multipliers=(multipliers["0"], multipliers["1"]) if multipliers else None,
        info=_info_from_parts(meta["info"], _sub(arrays, "info")),
        message=meta["message"])


def _info_from_parts(meta, arrays):
    """Solver extras back: ``decomposition`` (saved as a dict of its fields)
    as a DecompositionReport again, its lists as tuples."""
    info = {**meta, **arrays}
    report = info.get("decomposition")
    names = [f.name for f in dataclasses.fields(DecompositionReport)]
    if isinstance(report, dict) and sorted(report) == sorted(names):
        info["decomposition"] = DecompositionReport(**{
            k: _tuples(v) if isinstance(v, list) else v for k, v in report.items()})
    return info


def _tuples(value):
    return tuple(_tuples(v) if isinstance(v, list) else v for v in value)


def save_solution(path, solution):
    """Write ``solution`` (with its problem) to ``path`` as a cvxnn .npz.

    Parameters
    ----------
    path : str or path-like
        Written exactly as given (no extension is added).
    solution : cvxnn.Solution
    """
    if not isinstance(solution, Solution):
        raise TypeError(f"solution: expected a cvxnn.Solution, got "
                        f"{type(solution).__name__}.")
    meta, arrays = solution_parts(solution)
    _write(path, "solution", {"solution": meta}, arrays, _solution_check)


def load_solution(path, *, allow_no_checksum=False):
    """Read a solution written by :func:`save_solution`, checking it first.

    Parameters
    ----------
    path : str or path-like
    allow_no_checksum : bool
        Load a file written before checksums were stored (every other check
        still runs); save it again to add one.

    Raises
    ------
    ModelFileError
        Naming the file and what is wrong with it (see the module docstring).

    Returns
    -------
    cvxnn.Solution
        Arrays bit-identical to the saved ones; the same status, objective,
        certificate, history, multipliers and problem settings.
    """
    with naming(path):
        header, arrays = _read(path, "solution", _solution_check, allow_no_checksum)
        with malformed():
            return solution_from_parts(header["solution"], arrays)


def _solution_check(header, arrays):
    if not isinstance(header.get("solution"), dict):
        raise ModelFileError("metadata field 'solution' is missing.")
    _check_solution(header["solution"], arrays)


# --- networks ---------------------------------------------------------------
def save_network(path, network):
    """Write a :class:`cvxnn.TwoLayerNetwork` (W1, W2, gates, bias, b2) to ``path``.

    Parameters
    ----------
    path : str or path-like
    network : cvxnn.TwoLayerNetwork
        Its arrays must agree (they are checked when it is built, not when
        changed later); ValueError otherwise, and nothing is written.
    """
    if not isinstance(network, TwoLayerNetwork):
        raise TypeError(f"network: expected a cvxnn.TwoLayerNetwork, got "
                        f"{type(network).__name__}.")
    arrays = {"W1": network.W1, "W2": network.W2}
    if network.gates is not None:
        arrays["gates"] = network.gates
    if network.b2 is not None:
        arrays["b2"] = network.b2
    meta = {"bias": bool(network.bias), "activation": network.activation,
            "sizes": {"n_neurons": network.n_neurons,
                      "n_features": network.W1.shape[1],
                      "n_outputs": network.W2.shape[0]}}
    _write(path, "network", meta, arrays, _check_network)


def load_network(path, *, allow_no_checksum=False):
    """Read a network written by :func:`save_network`, checking it first.

    Parameters
    ----------
    path : str or path-like
    allow_no_checksum : bool
        See :func:`load_solution`.

    Returns
    -------
    cvxnn.TwoLayerNetwork
    """
    with naming(path):
        header, arrays = _read(path, "network", _check_network, allow_no_checksum)
    return TwoLayerNetwork(W1=arrays["W1"], W2=arrays["W2"],
                           gates=arrays.get("gates"), bias=header["bias"],
                           b2=arrays.get("b2"))


# --- estimators ---------------------------------------------------------------
def _params_parts(estimator):
    params = estimator.get_params(deep=False)
    arrays = {}
    gates = params["gates"]
    if callable(gates):
        # Loading must never import code named in a file (that is what makes
        # pickle unsafe), so samplers are saved by their registered name.
        raise ValueError("gates: a callable cannot be saved; register it with "
                         "cvxnn.estimators.register_gate_family and pass its name.")
    if not isinstance(gates, str):
        gates = np.asarray(gates)  # integer, boolean, float16 gates fit as float64
        arrays["params/gates"] = (gates if gates.dtype in (np.float32, np.float64)
                                  else gates.astype(np.float64))
        params["gates"] = {"array": True}
    if isinstance(params["random_state"], np.random.Generator):
        raise ValueError("random_state: a numpy Generator cannot be saved; fit with "
                         "an int seed to save the model.")
    return _jsonable(params, "params"), arrays


def _params_from_parts(params, arrays):
    if isinstance(params["gates"], dict):
        params["gates"] = arrays["params/gates"]
    return params


def save_model(path, estimator, metadata=None):
    """Write a fitted cvxnn estimator to ``path`` (parameters, attributes, solution).

    Parameters
    ----------
    path : str or path-like
    estimator : ConvexReLURegressor, ConvexReLUClassifier or their CV
        versions, fitted.
    metadata : dict or None
        Extra JSON-able facts to keep with the model (e.g. the command line
        stores column names); read back with :func:`load_metadata`.

    Raises
    ------
    TypeError or ValueError
        Naming the parameter, for settings ``fit`` would refuse (checked by
        the estimator's own checks), or naming what a file that would be
        refused when loaded gets wrong; nothing is written then.
    """
    from cvxnn.estimators.base import _ConvexReLUBase

    if not isinstance(estimator, _ConvexReLUBase):
        raise TypeError(f"estimator: expected a cvxnn estimator, got "
                        f"{type(estimator).__name__}.")
    if not hasattr(estimator, "solution_"):
        raise ValueError("estimator: is not fitted; call fit before saving.")
    params, arrays = _params_parts(estimator)
    classes = getattr(estimator, "classes_", None)
    estimator._check_settings(estimator.solution_.problem.n_samples,
                              None if classes is None else len(classes))
    fitted = {k: _jsonable(getattr(estimator, k), k) for k in _FITTED_SCALARS
              if hasattr(estimator, k)}
    arrays.update({f"fitted/{k}": getattr(estimator, k)
                   for k in _FITTED_ARRAYS if hasattr(estimator, k)})
    sol_meta, sol_arrays = solution_parts(estimator.solution_)
    arrays.update(_prefixed(sol_arrays, "solution"))
    meta = {"class": type(estimator).__name__, "params": params, "fitted": fitted,
            "solution": sol_meta, "metadata": _jsonable(metadata or {}, "metadata")}
    _write(path, "estimator", meta, arrays, _check_estimator)


def load_model(path, *, allow_no_checksum=False):
    """Read a fitted estimator written by :func:`save_model`, checking it first.

    Parameters
    ----------
    path : str or path-like
    allow_no_checksum : bool
        See :func:`load_solution`.

    Returns
    -------
    ConvexReLURegressor or ConvexReLUClassifier
        Fitted, predicting exactly what the saved estimator predicted.
    """
    with naming(path):
        header, arrays = _read(path, "estimator", _check_estimator,
                               allow_no_checksum)
        with malformed():
            return _estimator_from_parts(header, arrays)


def _estimator_from_parts(header, arrays):
    import cvxnn.estimators as estimators

    cls = getattr(estimators, header["class"])  # checked: one of OWN_FITTED
    solution = solution_from_parts(header["solution"], _sub(arrays, "solution"))
    est = cls(**_params_from_parts(header["params"], arrays))
    for key, value in header["fitted"].items():
        setattr(est, key, value)
    for key, value in _sub(arrays, "fitted").items():
        setattr(est, key, value)
    est.solution_ = solution
    est.problem_ = solution.problem
    est._set_network()
    est.certificate_ = solution.certificate
    return est


def load_metadata(path, *, allow_no_checksum=False):
    """The ``metadata`` dict saved with a model by :func:`save_model`.

    Only the header is read; its checksum is verified (it covers the array
    digests, so the metadata belongs to the arrays it was saved with).

    Parameters
    ----------
    path : str or path-like
    allow_no_checksum : bool
        See :func:`load_solution`.

    Returns
    -------
    dict
    """
    with naming(path):
        header, _ = _read(path, "estimator", allow_no_checksum=allow_no_checksum)
        metadata = header.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ModelFileError("metadata field 'metadata' is not a JSON object.")
    return metadata


# --- any kind -----------------------------------------------------------------
def save(path, obj):
    """Save a Solution, TwoLayerNetwork or fitted estimator (chosen by type).

    Parameters
    ----------
    path : str or path-like
        Written exactly as given.
    obj : Solution, TwoLayerNetwork, ConvexReLURegressor or ConvexReLUClassifier
    """
    from cvxnn.estimators.base import _ConvexReLUBase

    check_path(path)
    if isinstance(obj, Solution):
        return save_solution(path, obj)
    if isinstance(obj, TwoLayerNetwork):
        return save_network(path, obj)
    if not isinstance(obj, _ConvexReLUBase):
        raise TypeError(f"obj: expected a Solution, a TwoLayerNetwork or a fitted "
                        f"cvxnn estimator, got {type(obj).__name__}.")
    return save_model(path, obj)


def load(path, *, allow_no_checksum=False):
    """Load whatever :func:`save` wrote, checking it first.

    Parameters
    ----------
    path : str or path-like
    allow_no_checksum : bool
        See :func:`load_solution`.

    Raises
    ------
    ModelFileError
        Naming the file and what is wrong with it.

    Returns
    -------
    Solution, TwoLayerNetwork or fitted estimator
    """
    with naming(path):
        header, _ = _read(path, verify=False)  # the loader of the kind verifies
    return {"solution": load_solution, "network": load_network,
            "estimator": load_model}[header["kind"]](
                path, allow_no_checksum=allow_no_checksum)
