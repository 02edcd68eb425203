"""``fast_solve``: the compiled solvers behind ``problem.solve("fast")``.

* Gated ReLU: restarted FISTA with backtracking line search
  (:mod:`cvxnn_fast._fista`), stopped on the certificate of
  :mod:`cvxnn.certificates` (relative duality gap where a dual point is
  cheap, relative KKT residual otherwise), in the pattern-mean metric of
  :mod:`cvxnn_fast.metric` where the problem has its curvature spike
  (``sol.info["metric_beta"]``).
* ReLU: an augmented Lagrangian method (:mod:`cvxnn_fast.augmented`) whose
  subproblems are solved by the same compiled loop.

The loop runs in compiled code in chunks of about ``CHUNK_SECONDS``; between
chunks this driver prints progress, calls ``callback``, enforces
``time_limit`` and lets Ctrl-C through. KeyboardInterrupt is caught: the last
iterate is returned with status ``"user_limit"`` and a warning.
"""

import contextlib
import time
import warnings

import numpy as np

from cvxnn._validation import check_positive_float, check_positive_int, check_weights
from cvxnn.exceptions import ConvergenceWarning
from cvxnn.solution import Solution
from cvxnn.variants import check_problem
from cvxnn_fast import augmented, engine

DEFAULT_MAX_ITER = 10_000
SINGLE_THREAD_FLOPS = 2e7


def _check_arguments(problem, tol, max_iter, callback, cone_tol, time_limit):
    check_problem(problem)
    tol = check_positive_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    cone_tol = tol if cone_tol is None else check_positive_float(cone_tol, "cone_tol")
    if time_limit is not None:
        time_limit = check_positive_float(time_limit, "time_limit")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback: expected a callable or None, got {callback!r}.")
    return tol, max_iter, cone_tol, time_limit


def _warm_blocks(problem, warm_start):
    """Initial weight blocks (and ReLU multipliers) from a warm start."""
    names = problem.formulation.block_names
    shape, dtype = problem.weight_shape, problem.dtype
    if warm_start is None:
        return {k: np.zeros(shape, dtype) for k in names}, None
    if isinstance(warm_start, Solution):
        if warm_start.U is None:
            raise ValueError("warm_start: that solution has no weights (it failed).")
        given = [getattr(warm_start, k) for k in names]
        if any(g is None for g in given):
            given = ([warm_start.U] if names == ("U",) else
                     [np.maximum(warm_start.U, 0), np.maximum(-warm_start.U, 0)])
        blocks = {k: check_weights(g, "warm_start", shape, dtype)
                  for k, g in zip(names, given, strict=True)}
        return blocks, warm_start.multipliers
    if names == ("U",):
        return {"U": check_weights(warm_start, "warm_start", shape, dtype)}, None
    if not isinstance(warm_start, (tuple, list)) or len(warm_start) != 2:
        raise TypeError(
            "warm_start: a ReLU problem takes a Solution or a tuple (V, W).")
    return {k: check_weights(g, f"warm_start {k}", shape, dtype)
            for k, g in zip(names, warm_start, strict=True)}, None


def fast_solve(problem, tol=1e-6, max_iter=DEFAULT_MAX_ITER, warm_start=None,
               verbose=False, callback=None, cone_tol=None, time_limit=None):
    """Solve a cvxnn problem with the compiled first-order solvers.

    Parameters
    ----------
    problem : cvxnn.Problem
    tol : float > 0
        Target of ``certificate.optimality``: the relative duality gap when
        lam > 0 (all losses; group_l1, feature_group_l1, l1, l2), else the
        KKT residual relative to the gradient at zero.
    max_iter : int
        Iterations of R-FISTA (for ReLU: inner iterations over all outer ones).
        Reaching it returns the iterate as ``"optimal_inaccurate"`` with a
        :class:`cvxnn.exceptions.ConvergenceWarning`.
    warm_start : None, Solution, array U (gated) or tuple (V, W) (ReLU)
        Starting point; a ReLU Solution also passes its cone multipliers.
    verbose : bool
        Print a progress line about every half second.
    callback : callable(state: dict) -> bool or None
        Called between compiled chunks with ``iteration, time, objective,
        optimality`` (and ``cone_violation`` for ReLU); returning True stops
        the solve with status ``"user_limit"``.
    cone_tol : float, optional
        ReLU only: largest cone violation accepted as optimal (default tol).
    time_limit : float, optional
        Wall seconds; reaching it returns status ``"user_limit"``.

    Returns
    -------
    cvxnn.Solution
        ``solver="fast"``, ``n_iter``, ``history`` (arrays ``time``,
        ``objective``, ``optimality``, ``step_size``, ``cone_violation``).
    """
    tol, max_iter, cone_tol, time_limit = _check_arguments(
        problem, tol, max_iter, callback, cone_tol, time_limit)
    blocks, multipliers = _warm_blocks(problem, warm_start)
    monitor = engine.Monitor(verbose, callback, time_limit)
    with _blas_threads(problem):
        if problem.formulation.name == "relu":
            result = augmented.solve(problem, blocks, multipliers, tol, cone_tol,
                                     max_iter, monitor)
        else:
            result = engine.solve_gated(problem, blocks["U"], tol, max_iter, monitor)
    return _finish(problem, result, tol)


def _blas_threads(problem):
    """One BLAS thread while the operator's GEMMs are small (when threadpoolctl
    is installed; otherwise BLAS keeps its own setting).

    Below ``SINGLE_THREAD_FLOPS`` per product, handing a GEMM to a second
    thread costs more than it saves, and far more on a loaded machine, where
    OpenBLAS's waiting threads compete with other processes for the cores.
    """
    c, P, d = problem.weight_shape
    rows = c * P * len(problem.formulation.block_names)
    if 2.0 * problem.n_samples * d * rows >= SINGLE_THREAD_FLOPS:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _finish(problem, result, tol):
    """Turn an engine result into a Solution; warn where the solve fell short."""
    status, message = result.status, result.message
    if status != "optimal":
        warnings.warn(f"fast_solve: {message}", ConvergenceWarning, stacklevel=3)
    elapsed = time.monotonic() - result.start
    return Solution.from_weights(
        problem, status=status, solver="fast", solve_time=elapsed,
        n_iter=result.n_iter, history=result.history, message=message,
        multipliers=result.multipliers, info={"tol": tol, **result.info},
        **result.blocks)
