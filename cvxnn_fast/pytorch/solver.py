"""``fast_solve(problem, device=...)``: R-FISTA on a PyTorch device, one process
(Newton-CG: :mod:`cvxnn_fast.pytorch.newton`).

The problem's X, patterns and targets are copied to the device once (in the
working dtype: float32 on a GPU unless ``dtype="float64"``, the problem's
dtype on the CPU); the loop of :mod:`cvxnn_fast.pytorch.fista` runs there;
the device certificate (:mod:`cvxnn_fast.pytorch.certificates`) goes into
``sol.info["device_certificate"]`` (a dict of floats), and ``fast_solve``
builds the Solution with :meth:`Solution.from_weights`, like every backend.
"""

import time
from dataclasses import asdict

import numpy as np

from cvxnn.core.errors import NumericalBreakdown
from cvxnn.core.solution import Solution
from cvxnn.core.status import SOLVER_ERROR
from cvxnn_fast.common.polish import Polisher
from cvxnn_fast.common.run import Result
from cvxnn_fast.fista.solver import BEST_BY, K, describe, nonfinite_cause
from cvxnn_fast.newton import solver as newton
from cvxnn_fast.pytorch import fista
from cvxnn_fast.pytorch.certificates import Spec, certificate
from cvxnn_fast.pytorch.device import resolve_device, working_dtype
from cvxnn_fast.pytorch.operator import DeviceData

METHODS = ("auto", "fista", "newton")


def check_method(problem, method):
    """The method the PyTorch backend runs ("fista" or "newton"), or
    ValueError saying why not. ``"auto"``: Newton-CG where
    :func:`cvxnn_fast.newton.solver.preferred` (as with ``device=None``),
    else R-FISTA (the interior-point method has no device version)."""
    if problem.formulation.name != "gated_relu":
        raise ValueError(
            "device: the PyTorch backend runs R-FISTA and Newton-CG on the "
            "gated_relu program; the relu program's solvers (augmented "
            "Lagrangian, interior point) run with device=None.")
    if method not in METHODS:
        raise ValueError(f"method: the PyTorch backend runs {METHODS[1:]!r}, "
                         f"got {method!r}; use device=None for other methods.")
    if method == "newton":
        reason = newton.unsupported(problem)
        if reason:
            raise ValueError(f"method: {reason}; use 'fista'.")
        return method
    return "newton" if method == "auto" and newton.preferred(problem) else "fista"


def to_device(array, data):
    """A NumPy array on the data's device and dtype."""
    tensor = data.torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(device=data.device, dtype=data.dtype)


def to_numpy(tensor, shape=None):
    out = tensor.detach().cpu().numpy().copy()
    return out if shape is None else out.reshape(shape)


def run_state(run):
    """The compiled driver's state vector for :func:`describe`."""
    state = np.zeros(K["N_STATE"])
    state[K["S_ITER"]], state[K["S_OPT"]] = run.n_iter, run.optimality
    return state


def best_of(run, data, spec):
    """(weights, which, their device certificate or None) a run returns: the
    best-judged iterate where it stopped on a limit, judged below
    ``BEST_BY`` of the last iterate's optimality and certifies better (as the
    compiled driver; the same on every process of a sharded run: its
    numbers are all-reduced), else the last iterate."""
    if run.code == K["CONVERGED"] or run.best is None or \
            not run.best_optimality < BEST_BY * run.optimality:
        return run.y, "the last iterate", None
    best, last = certificate(data, spec, run.best), certificate(data, spec, run.y)
    if best.optimality < last.optimality:
        return run.best, "the best-certified iterate it saw", best
    return run.y, "the last iterate", last


def solve(problem, U0, tol, max_iter, monitor, device, dtype=None, data=None):
    """R-FISTA on ``device`` from U0 (c, P, d); returns a
    :class:`~cvxnn_fast.common.run.Result` for ``fast_solve``. ``data``: the
    problem's DeviceData when already on the device (Newton-CG's first phase)."""
    dev = resolve_device(device)
    wdtype = working_dtype(problem.dtype, dev, dtype)
    shape = problem.weight_shape
    if data is None:
        data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, dev,
                                      wdtype)
    spec = Spec.of(problem)
    x0 = to_device(U0.reshape(shape[0] * shape[1], shape[2]), data)
    polisher = Polisher(problem, tol, np.inf)
    run = fista.solve(data, spec, x0, tol, max_iter, monitor,
                      lambda y: {"U": to_numpy(y, shape)},
                      polish=_polish_hook(problem, polisher, max_iter))
    if run.code == K["NOT_FINITE"]:
        _breakdown(problem, run, monitor.start, shape)
    y, returned, cert = best_of(run, data, spec)
    quoted = None if returned == "the last iterate" else cert.optimality
    status, message = describe(run.code, run.stop, run_state(run), tol, quoted,
                               returned)
    U = to_numpy(y, shape)
    if polisher.result is not None:
        # The certified point itself, in the problem's dtype: rounding it to
        # a float32 working dtype can lose the certificate.
        U, cert = polisher.result[0]["U"], None
    info = {"device": str(dev), "dtype": wdtype.name,
            "polished": polisher.result is not None, "metric_beta": run.metric_beta,
            "feature_metric": run.feature_metric,
            "device_certificate": asdict(cert or certificate(
                data, spec, to_device(U.reshape(y.shape), data)))}
    return Result(status, message, {"U": U}, run.n_iter, run.history, monitor.start,
                  info=info, stop=run.stop)


def _polish_hook(problem, polisher, max_iter):
    """The group-scaling polish (:mod:`cvxnn_fast.common.polish`, host NumPy
    on the whole problem) of the device iterate, at the compiled loop's
    pauses; True when the polished point certifies (it is in
    ``polisher.result``)."""
    if not polisher.enabled:
        return None
    shape = problem.weight_shape

    def polish(it, optimality, y):
        if it < polisher.pause_at(max_iter):
            return None
        U = to_numpy(y, shape).astype(problem.dtype)
        if not polisher.attempt(it, optimality, {"U": U}):
            return None
        blocks, _, cert = polisher.result
        return cert.objective, cert.optimality, lambda: {"U": blocks["U"].copy()}

    return polish


def _breakdown(problem, run, start, shape):
    last = None
    if run.last_finite is not None:
        last = Solution.from_weights(
            problem, status=SOLVER_ERROR, solver="fast",
            solve_time=time.monotonic() - start, n_iter=run.n_iter,
            U=to_numpy(run.last_finite, shape))
    raise NumericalBreakdown(
        f"fast_solve: {nonfinite_cause(run.n_iter)}; check the data scaling "
        "(build_problem(..., standardize=True)) and lam. The last iterate with "
        "finite weights is in the exception's .solution.", last)
