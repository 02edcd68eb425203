"""``fast_solve``: the compiled solvers behind ``problem.solve("fast")``.

* Gated ReLU: restarted FISTA with backtracking line search
  (:mod:`cvxnn_fast.fista._fista`), stopped on the certificate of
  :mod:`cvxnn.core.certificates` (relative duality gap where a dual point is
  cheap, relative KKT residual otherwise), in the pattern-mean metric of
  :mod:`cvxnn_fast.fista.preconditioner` where the problem has its curvature spike
  (``sol.info["metric_beta"]``).
* Gated ReLU at large n: Newton-CG (:mod:`cvxnn_fast.newton.solver`) with a
  subsample warm start and a subsampled Hessian.
* ReLU: an augmented Lagrangian method (:mod:`cvxnn_fast.augmented.solver`) whose
  subproblems are solved by the same compiled loop.
* Both: a primal-dual interior-point method (:mod:`cvxnn_fast.interior.solver`) for
  every loss and penalty, at sizes where its n x n (cross-entropy: n c x n c)
  Newton systems are cheap; ``method="auto"`` picks it there (see
  :func:`choose_method`) and, should it stall, continues with the
  first-order method from its iterate.

The loop runs in compiled code in chunks of about ``CHUNK_SECONDS``; between
chunks this driver prints progress, calls ``callback``, enforces
``time_limit`` and lets Ctrl-C through. KeyboardInterrupt is caught: the last
iterate is returned with status ``"user_limit"`` and a warning (R-FISTA, on
either backend: its best-certified iterate, where that certifies clearly
better than the last, as on any stop on a limit). Setup before
the first iteration (the feature metric's d x d eigendecomposition, the
interior point's reduction, a device's copy of the data) is not timed against
``time_limit`` and lets a KeyboardInterrupt propagate: there is no iterate
yet.
"""

import contextlib
import functools
import os
import time
import warnings

import numpy as np
import scipy

from cvxnn.core.certificates import certificate, has_duality_gap
from cvxnn.core.errors import ConvergenceWarning, NumericalBreakdown
from cvxnn.core.problem import check_problem, same_array, with_dtype
from cvxnn.core.solution import Solution
from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT
from cvxnn.core.validation import (
    check_bool,
    check_callback,
    check_float_dtype,
    check_positive_float,
    check_positive_int,
    check_weights,
)
from cvxnn_fast.augmented import solver as augmented
from cvxnn_fast.common.run import Monitor, Result, joined_history, settle_status
from cvxnn_fast.fista import solver as fista
from cvxnn_fast.interior import solver as interior
from cvxnn_fast.newton import solver as newton

DEFAULT_TOL = 1e-6
DEFAULT_MAX_ITER = 10_000
SINGLE_THREAD_FLOPS = 2e8
METHODS = ("auto", "fista", "augmented_lagrangian", "interior_point", "newton")
# "auto" takes the interior-point method for a problem it supports when one
# of its iterations costs at most this many flops (about 0.3 s here; ReLU:
# INTERIOR_MAX_FLOPS_RELU, about 4 s, since its first-order alternative, the
# augmented Lagrangian, is far slower: docs/design/interior-point.md) and
# its largest matrices (n x n, or P d x P d in weight space) and
# (2 n_outputs P, n) arrays at most INTERIOR_MAX_ENTRIES entries in all.
INTERIOR_MAX_FLOPS = 3e10
INTERIOR_MAX_FLOPS_RELU = 3e11
INTERIOR_MAX_ENTRIES = 2**25
# Cross-entropy couples the outputs (and feature_group_l1's cones span them):
# one (n c) x (n c) factor per step. Its interior point is taken only up to
# n c = INTERIOR_MAX_COUPLED (the campaign's sizes: n <= 250, 3 classes);
# digits (n = 400, 10 classes) stays on R-FISTA, which certifies it in 0.16 s
# where one such factor costs ~1 s here.
INTERIOR_MAX_COUPLED = 1000
# auto's interior point on gated ReLU: R-FISTA first, for the flops of this
# many interior-point steps (fista_budget).
INTERIOR_STEPS_PARITY = 4
# float32's reach is ~1e-5: a float32 working dtype iterates to this at the
# finest (then the problem's float64 goes on), and a loose float64 solve
# iterates in float32 from this tolerance up (cvxnn_fast/__init__.py)
FLOAT32_TOL = 1e-4
MIN_FISTA_BUDGET = 100


def _check_arguments(problem, tol, max_iter, callback, cone_tol, time_limit):
    check_problem(problem)
    tol = check_positive_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    cone_tol = tol if cone_tol is None else check_positive_float(cone_tol, "cone_tol")
    if time_limit is not None:
        time_limit = check_positive_float(time_limit, "time_limit")
    check_callback(callback)
    return tol, max_iter, cone_tol, time_limit


def choose_method(problem, method="auto", warm_start=None):
    """The solver ``fast_solve`` runs.

    ``"auto"``: the interior-point method where no warm start is given and
    its iterations are cheap (:data:`INTERIOR_MAX_FLOPS`, ReLU
    :data:`INTERIOR_MAX_FLOPS_RELU`, :data:`INTERIOR_MAX_ENTRIES`;
    cross-entropy and feature_group_l1 in n space: n c at most
    :data:`INTERIOR_MAX_COUPLED`; for gated ReLU ``fast_solve`` runs
    R-FISTA for :func:`fista_budget` iterations first, and the interior
    point only where that has not certified, ``info["fista_iterations"]``;
    with a warm start, ReLU likewise runs the augmented Lagrangian first;
    gated ReLU without a duality gap, lam = 0 or no penalty, goes to the
    interior point at once, a warm start or not: R-FISTA is judged there by
    its KKT residual, which a badly scaled column hardly moves);
    else Newton-CG where
    :func:`cvxnn_fast.newton.solver.preferred` (gated ReLU, squared loss,
    group_l1, n at least 100,000 and 80 P d); else R-FISTA (gated ReLU) or
    the augmented Lagrangian (ReLU). An explicit ``method`` that cannot run
    raises ValueError. (``fast_solve`` with ``"auto"`` continues an
    interior-point run that ends ``optimal_inaccurate``, and a Newton-CG run
    that stalls, with the first-order method, warm started at its iterate;
    ``sol.info["fallback_from"]`` says so and ``info["interior_steps"]`` or
    ``info["newton_steps"]`` counts the first method's steps; ``n_iter`` and
    ``max_iter`` count the second's. Newton-CG's steps come first in the
    history; the interior point's are not in it.)
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}.")
    relu = problem.formulation.has_cones
    first_order = "augmented_lagrangian" if relu else "fista"
    if method == "auto":
        if newton.preferred(problem):
            return "newton"  # n >= 100,000, measured on its own (newton.md)
        cold = warm_start is None or not (relu or has_duality_gap(problem))
        usable = cold and not interior.unsupported(problem)
        return "interior_point" if usable and _cheap(problem) else first_order
    if method == "newton":
        reason = newton.unsupported(problem)
        if reason:
            raise ValueError(f"method: {reason}; use {first_order!r}.")
        return method
    if method not in (first_order, "interior_point"):
        raise ValueError(
            f"method: {method!r} does not solve the {problem.formulation.name} "
            f"program (gated_relu: 'fista' or 'interior_point'; relu: "
            "'augmented_lagrangian' or 'interior_point').")
    if method == "interior_point":
        reason = interior.unsupported(problem) or _memory_short(problem)
        if reason:
            raise ValueError(f"method: {reason}; use {first_order!r}.")
        if warm_start is not None:
            raise ValueError(
                "warm_start: the interior-point method starts from its own "
                f"interior point; use method={first_order!r} to warm-start.")
    return method


def _memory_short(problem):
    """Why the interior point's systems would not fit in this machine's
    memory, or "". Three float64 arrays of ``estimated_entries`` (the
    matrix, its factor, a temporary) against the physical memory: a named
    interior point on 20,000 rows of 10-class cross-entropy was killed by
    the kernel at 24 GB instead of being refused."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this platform
        return ""
    need = 3 * 8 * interior.estimated_entries(problem)
    if need <= total:
        return ""
    return (f"the interior point's systems need about {need / 2**30:.3g} GiB "
            f"(n={problem.n_samples}, weight shape {problem.weight_shape}) where "
            f"this machine has {total / 2**30:.3g} GiB")


def _cheap(problem):
    """Whether the interior-point method's iterations fit the limits."""
    n, (c, _, _) = problem.n_samples, problem.weight_shape
    if (interior.dense_capacitance(problem) and n * c > INTERIOR_MAX_COUPLED
            and not interior.use_weight_space(problem)):
        return False  # one (n c) factor: cross-entropy, feature_group_l1
    # Each form is judged by its own steps (fast_solve may run a bounded
    # first-order method first, _first_order_then_interior).
    limit = (INTERIOR_MAX_FLOPS_RELU if problem.formulation.has_cones
             else INTERIOR_MAX_FLOPS)
    return (interior.estimated_flops(problem) <= limit
            and interior.estimated_entries(problem) <= INTERIOR_MAX_ENTRIES)


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
        # Cone multipliers are one per sample, output and pattern.
        same_rows = all(same_array(getattr(warm_start.problem, k), getattr(problem, k))
                        for k in ("X", "patterns"))
        return blocks, warm_start.multipliers if same_rows else None
    if names == ("U",):
        return {"U": check_weights(warm_start, "warm_start", shape, dtype)}, None
    if not isinstance(warm_start, (tuple, list)) or len(warm_start) != 2:
        raise TypeError(
            "warm_start: a ReLU problem takes a Solution or a tuple (V, W).")
    return {k: check_weights(g, f"warm_start {k}", shape, dtype)
            for k, g in zip(names, warm_start, strict=True)}, None


def fast_solve(problem, tol=DEFAULT_TOL, max_iter=DEFAULT_MAX_ITER, warm_start=None,
               verbose=False, callback=None, cone_tol=None, time_limit=None,
               method="auto", device=None, dtype=None, step_size=None):
    """Solve a cvxnn problem with the compiled first-order solvers.

    Parameters
    ----------
    problem : cvxnn.Problem
    tol : float > 0
        Target of ``certificate.optimality``: the relative duality gap when
        lam > 0 (all losses; group_l1, feature_group_l1, l1, l2), else the
        KKT residual relative to the gradient at zero.
    max_iter : int
        Iterations of R-FISTA (augmented Lagrangian: inner iterations over all
        outer ones; interior point: Newton steps, at most
        ``interior.MAX_ITER``; Newton-CG: Newton steps, and as many R-FISTA
        iterations again for its first phase on logistic and cross-entropy
        losses; each phase of an ``auto`` hand-over has its own; the
        callback's iteration numbers count on across phases).
        Reaching it returns the iterate as ``"optimal_inaccurate"`` with a
        :class:`cvxnn.core.errors.ConvergenceWarning`.
    warm_start : None, Solution, array U (gated) or tuple (V, W) (ReLU)
        Starting point; a ReLU Solution also passes its cone multipliers.
    verbose : bool
        Print a progress line about every half second.
    callback : callable(state: dict) -> bool or None
        Called between compiled chunks (at least about every 0.25 s, more
        often while R-FISTA tries its polish; every Newton step for the
        interior point) with ``iteration, time, objective,
        optimality`` (and ``cone_violation`` for ReLU), and ``weights``: a
        function of no arguments that returns a copy of the current iterate
        as a dict of blocks (``{"U": ...}`` or ``{"V": ..., "W": ...}``), for
        tracking e.g. test accuracy during a solve. Returning True stops the
        solve with status ``"user_limit"``.
    cone_tol : float, optional
        ReLU only: largest cone violation accepted as optimal (default tol).
    time_limit : float, optional
        Wall seconds; reaching it returns status ``"user_limit"``. Checked
        between chunks of iterations (an interior-point step is one), so a
        solve can overrun it by one step or by its setup. R-FISTA stopped by
        it (or by max_iter or the callback) returns the iterate it judged
        best where that is below 0.8 of the last one's optimality and
        certifies better (the message says so): its residual's dual point
        oscillates on correlated features.
    method : {"auto", "fista", "augmented_lagrangian", "interior_point", "newton"}
        See :func:`choose_method`; ``sol.info["method"]`` says which ran.
    device : None, str or torch.device
        None (or ``"cpu"`` without PyTorch installed): the compiled solvers.
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``: R-FISTA
        (``method="fista"``) or Newton-CG (``"newton"``; its data products on
        the device) on that PyTorch device (gated ReLU;
        :mod:`cvxnn_fast.pytorch`; ``"auto"``: Newton-CG where it would run
        with device=None, else R-FISTA), same statuses, callback, time limit
        and certificate;
        ``sol.info["device_certificate"]`` holds the one computed on the
        device (a dict of the Certificate's fields).
    dtype : None, "float32" or "float64" (or np.float32, torch.float64, ...)
        The working dtype. PyTorch backend: default float32 on a GPU, the
        problem's dtype on the CPU. Compiled solvers: default the problem's;
        another one solves a copy of the problem in it (same patterns), and
        the returned weights are certified on the problem as given. float32
        iterates to ``max(tol, 1e-4)`` at the finest; where it does so for a
        float64 problem and its weights miss ``tol`` there (precision, or
        range: an overflow restarts in float64), and no stop was asked, the
        solve goes on in float64 from them with what is left of ``max_iter``
        (``sol.info["refined"]``; an interior point, which takes no warm
        start, restarts with all of it), and the better-certified weights
        of the two come back. float32 on float64
        data halves the cost of the data products of R-FISTA for tol at
        float32's reach (about 1e-5 and up; the estimators use it from 1e-4
        where R-FISTA runs alone).
    step_size : float > 0, optional
        R-FISTA only: its first step, in place of ``1 / L`` from power
        iterations on the loss's global curvature bound. That bound is far
        above the local curvature of a fitted cross-entropy model (digits:
        first step 0.2, final steps ~50, reached by the line search's x1.1
        per iteration), so a refit that starts near a solution of similar
        data gains from that solve's last step; too long a first step costs
        one halving per factor of 2. A warm start that is a Solution of the
        same data, patterns and loss (a path's previous lam) hands over its
        last step and metric without this option.

    Returns
    -------
    cvxnn.Solution
        ``solver="fast"``, ``n_iter``, ``history`` (arrays ``time``,
        ``objective``, ``optimality``, ``step_size``, and ``cone_violation``
        where the method tracks it: the ReLU methods and the interior point;
        Newton-CG adds ``cg_iterations``).
    """
    tol, max_iter, cone_tol, time_limit = _check_arguments(
        problem, tol, max_iter, callback, cone_tol, time_limit)
    if step_size is not None:
        step_size = check_positive_float(step_size, "step_size")
    verbose = check_bool(verbose, "verbose")
    if _on_torch(device):
        if step_size is not None:
            raise ValueError("step_size: the PyTorch backend estimates its own.")
        return _torch_solve(problem, tol, max_iter, warm_start, verbose, callback,
                            time_limit, method, device, dtype)
    if dtype is not None:
        with np.errstate(over="ignore"):  # the working solve breaks down
            working = with_dtype(problem, check_float_dtype(dtype))
        if working is not problem:
            return _in_working_dtype(problem, working, tol, cone_tol, max_iter,
                                     time_limit, dict(
                                         warm_start=warm_start, verbose=verbose,
                                         callback=callback, method=method,
                                         step_size=step_size))
    auto = method == "auto"
    method = choose_method(problem, method, warm_start)
    gated = not problem.formulation.has_cones
    # where auto takes the interior point: a bounded first-order run first,
    # from the warm start where one is given (the interior point ignores it);
    # cold, on gated ReLU only (ReLU's cold start is the interior point's),
    # and where a duality gap judges it: without one (lam = 0, no penalty)
    # R-FISTA's KKT residual passed tol 14% above the optimum where a
    # column's scale was 1e-8 (docs/design/convergence.md)
    interior_after = auto and (
        (gated and method == "interior_point" and has_duality_gap(problem)) or (
            method in ("fista", "augmented_lagrangian") and warm_start is not None
            and choose_method(problem) == "interior_point"))
    # auto's gated interior point runs R-FISTA before it (a duality gap) or
    # after it (should it stall): both take the first step
    if step_size is not None and not (
            method == "fista" or (auto and gated and method == "interior_point")):
        raise ValueError(f"step_size: only R-FISTA (method 'fista', gated ReLU) "
                         f"takes a first step; this solve runs {method!r}.")
    blocks, multipliers = _warm_blocks(problem, warm_start)
    monitor = Monitor(verbose, callback, time_limit)
    args = (problem, tol, cone_tol, max_iter, monitor)
    with _blas_threads(problem, method):
        if interior_after:
            beta, step = _path_hint(problem, warm_start)
            result = _first_order_then_interior(problem, blocks, args,
                                          (beta, step_size or step), multipliers)
        elif auto and method == "interior_point":
            result = _interior_then_first_order(problem, blocks, args,
                                                (None, step_size))
        elif auto and method == "newton":
            result = _newton_then_fista(problem, blocks, args)
        else:
            beta, step = _path_hint(problem, warm_start)
            result = _run(method, blocks, multipliers, *args,
                          fista_hint=(beta, step_size or step))
            result.info["method"] = method
    if step_size is not None and result.n_iter == 0 and \
            result.message.startswith("the line search found no decrease"):
        # not precision: a first step far from 1/L (40 halvings reach 1e-12
        # of it; one below 1e-30 is not tried)
        result.message = (
            f"the line search found no decrease from step_size={step_size:.3g} down "
            "to 1e-12 of it: it is far from the smooth part's 1/L; give one nearer "
            "it, or none (then it is estimated); returning the start.")
    return _finish(problem, result, tol, cone_tol)


def _interior_then_first_order(problem, blocks, args, fista_hint=(None, None)):
    """``method="auto"``'s interior point; where it ends ``optimal_inaccurate``
    (ill-conditioned, or no minimizer) or breaks down, the first-order method
    goes on from its iterate (from ``blocks`` after a breakdown; R-FISTA with
    ``fista_hint`` as for :func:`_run`)."""
    first_order = "augmented_lagrangian" if problem.formulation.has_cones else "fista"
    multipliers, interior_run = None, None
    try:
        result = _run("interior_point", blocks, None, *args)
        result.info["method"] = "interior_point"
        if result.status != OPTIMAL_INACCURATE:
            return result
        blocks = {k: np.ascontiguousarray(b) for k, b in result.blocks.items()}
        multipliers, interior_run = result.multipliers, result
    except NumericalBreakdown:
        pass
    args[-1].next_phase()  # the monitor
    result = _run(first_order, blocks, multipliers, *args, fista_hint=fista_hint)
    result.info.update(method=first_order, fallback_from="interior_point")
    if interior_run is not None:
        result.info["interior_steps"] = interior_run.n_iter
    return result


def fista_budget(problem):
    """R-FISTA's iterations before ``auto`` turns to the gated interior
    point: the flops of ``INTERIOR_STEPS_PARITY`` interior-point
    steps at the four masked GEMMs' ``4 n c P d`` an iteration (the augmented
    Lagrangian's before the ReLU one: ``16 n c P d``; at least
    ``MIN_FISTA_BUDGET``). R-FISTA certifies well-conditioned problems (lam
    near lam_max) in tens to hundreds of iterations, and the interior point
    is bounded where R-FISTA's count grows without bound (tiny lam,
    correlated features): the pair costs at most about twice the interior
    point (docs/design/interior-point.md, "auto")."""
    n = problem.n_samples
    c, P, d = problem.weight_shape
    parity = INTERIOR_STEPS_PARITY * interior.estimated_flops(problem)
    # ReLU's augmented Lagrangian: V and W, and their cone products, 16 n c P d
    # (counted as R-FISTA's, its first phase cost 12-34 interior steps, not 4)
    per_iteration = (16.0 if problem.formulation.has_cones else 4.0) * n * c * P * d
    return max(MIN_FISTA_BUDGET, int(parity / per_iteration))


def _first_order_then_interior(problem, blocks, args, fista_hint=(None, None),
                         multipliers=None):
    """``method="auto"``'s interior point after a bounded first-order run:
    R-FISTA (gated ReLU; ``fista_hint`` as for :func:`_run`) or, from a warm
    start, the augmented Lagrangian (ReLU; with the warm start's
    ``multipliers``) for :func:`fista_budget` iterations first, from
    ``blocks`` (a warm start or zeros); where that has not certified (or
    its line search gave out), the interior point from its own start,
    continued as :func:`_interior_then_first_order` does. ``info`` names
    the first run ``fista_budget`` / ``fista_iterations`` (gated) or
    ``augmented_budget`` / ``augmented_iterations`` (ReLU)."""
    problem, tol, cone_tol, max_iter, monitor = args
    budget = min(max_iter, fista_budget(problem))
    relu = problem.formulation.has_cones
    method, name = (("augmented_lagrangian", "augmented") if relu
                    else ("fista", "fista"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            first = (augmented.solve(problem, blocks, multipliers, tol, cone_tol,
                                     budget, monitor) if relu else
                     fista.solve_gated(problem, blocks["U"], tol, budget, monitor,
                                       *fista_hint))
    except NumericalBreakdown:  # the interior point may still solve it
        first = None
    if first is not None and first.status == OPTIMAL_INACCURATE:
        # short of its own (tightened) target, the returned weights may still
        # certify tol: then _finish calls them optimal, no interior point
        first.certificate = first.certificate or certificate(
            problem, **first.blocks,
            **({"multipliers": first.multipliers} if relu else {}))
    if first is not None and (first.status != OPTIMAL_INACCURATE
                              or first.certificate.satisfied(tol, cone_tol)):
        first.info.update({"method": method, f"{name}_budget": budget})
        return first  # certified, or stopped by the user
    monitor.next_phase()
    result = _interior_then_first_order(problem, blocks, args,
                                        (None, None) if relu else fista_hint)
    result.info.update({f"{name}_budget": budget, f"{name}_iterations": (
        first.n_iter if first is not None else None)})
    result.info.setdefault("fallback_from", method)
    return result


def _newton_then_fista(problem, blocks, args):
    """``method="auto"``'s Newton-CG; where it stalls (see
    :data:`cvxnn_fast.newton.solver.STALL_STEPS`), R-FISTA goes on from its
    iterate."""
    problem, tol, _, max_iter, monitor = args
    result = newton.solve_gated(problem, blocks["U"], tol, max_iter, monitor,
                                stall=True)
    result.info["method"] = "newton"
    if not result.info.get("stalled"):
        return result
    stalled = result
    monitor.next_phase()
    result = fista.solve_gated(problem, np.ascontiguousarray(result.blocks["U"]),
                               tol, max_iter, monitor)
    return handed_over(stalled, result)


def handed_over(stalled, result):
    """``result`` of R-FISTA after a stalled Newton-CG: info says so, and the
    history holds Newton's steps first (the keys both have)."""
    result.info.update(method="fista", fallback_from="newton",
                       newton_steps=stalled.n_iter)
    result.history = joined_history(stalled.history, result.history)
    return result


def _run(method, blocks, multipliers, problem, tol, cone_tol, max_iter, monitor,
         fista_hint=(None, None)):
    """One method's engine on the problem, from ``blocks`` (first-order);
    ``fista_hint``: R-FISTA's (metric beta, first step), see _path_hint."""
    if method == "interior_point":
        return interior.solve(problem, tol, cone_tol, max_iter, monitor)
    if method == "augmented_lagrangian":
        return augmented.solve(problem, blocks, multipliers, tol, cone_tol,
                               max_iter, monitor)
    if method == "newton":
        return newton.solve_gated(problem, blocks["U"], tol, max_iter, monitor)
    return fista.solve_gated(problem, blocks["U"], tol, max_iter, monitor,
                             *fista_hint)


def _on_torch(device):
    """Whether ``device`` asks for the PyTorch backend (see fast_solve)."""
    from cvxnn_fast.pytorch.device import torch_available

    return not (device is None or (device == "cpu" and not torch_available()))


def _in_working_dtype(problem, working, tol, cone_tol, max_iter, time_limit,
                      options):
    """fast_solve's compiled solvers on ``working`` (``problem`` in another
    dtype), the weights certified on ``problem``. Where the working dtype is
    the less precise one and its weights miss ``tol`` there, the solve goes on
    in ``problem``'s dtype from them with the iterations ``max_iter`` has
    left, unless a stop was asked (from the start, with all of ``max_iter``,
    after a breakdown or a non-finite certificate: float32's range)."""
    start = time.monotonic()
    counted = _CountOn(options["callback"])
    name, first, warm_start, budget = working.dtype.name, None, None, max_iter
    coarser = np.finfo(working.dtype).eps > np.finfo(problem.dtype).eps
    # below its reach float32 stalls, and auto's hand-overs (the interior
    # point's optimal_inaccurate to a first-order method) then spent all of
    # max_iter there: it iterates to FLOAT32_TOL, the float64 continuation
    # does the rest
    floor = FLOAT32_TOL if coarser else 0.0
    try:
        # judged here, on the problem as given; float32's overflows are caught
        with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # BLAS's overflows
            first = fast_solve(working, tol=max(tol, floor), max_iter=max_iter,
                               cone_tol=max(cone_tol, floor),
                               time_limit=time_limit,
                               **{**options, "callback": counted})
    except NumericalBreakdown:
        warm_start = options["warm_start"]
    if first is not None:
        # its messages and info quote the user's tol, not the floored one
        message = first.message.replace(f"tol={max(tol, floor):.1e}", f"tol={tol:.1e}")
        info = {k: v for k, v in first.info.items() if k != "tol"}
        result = Result(first.status, message,
                        _cast(first.blocks, problem.dtype), first.n_iter,
                        first.history, start, _cast(first.multipliers, problem.dtype),
                        info={**info, "dtype": name})
        judged = Solution.from_weights(
            problem, status=first.status, solver="fast", solve_time=0.0,
            multipliers=result.multipliers, **result.blocks)
        result.certificate = judged.certificate
        finite = np.isfinite(judged.certificate.optimality)
        left = None if time_limit is None else time_limit - (time.monotonic() - start)
        # where the float32 solve ran the interior point (or handed over from
        # it: a float32 augmented Lagrangian spent all of max_iter at 3e-3
        # where float64's interior point certifies in 0.4 s), the float64
        # one starts from its own interior point (a float32 iterate does not
        # warm-start it), with all of max_iter, as after a breakdown (30
        # steps: 2.7e-6 in float32, then a cold float64 start with the 8
        # steps left ended at 0.65)
        cold = "interior_point" in (options["method"], first.info.get("method"),
                                    first.info.get("fallback_from"))
        budget = max_iter - counted.last if finite and not cold else max_iter
        if (first.status == USER_LIMIT or not coarser or budget <= 0
                or (left is not None and left <= 0)
                or judged.certificate.satisfied(tol, cone_tol)):
            return _finish(problem, result, tol, cone_tol, working="dtype",
                           stacklevel=4)
        warm_start = None if cold else judged if finite else options["warm_start"]
    if options["method"] == "interior_point":
        warm_start = None  # it refuses warm starts
    elapsed = time.monotonic() - start
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        second = fast_solve(problem, tol=tol, max_iter=budget, cone_tol=cone_tol,
                            time_limit=None if time_limit is None
                            else time_limit - elapsed,
                            **{**options, "warm_start": warm_start,
                               "step_size": None if first is not None
                               else options["step_size"],
                               "callback": _CountOn(options["callback"], counted.last,
                                                    elapsed)})
    if first is not None and finite and _better(judged.certificate,
                                                second.certificate, cone_tol):
        # a continuation that ended worse (an interior point restarted cold
        # with the few steps max_iter had left) keeps the working dtype's
        # weights
        result.info.update(refined=problem.dtype.name, refinement_kept=False,
                           working_iterations=counted.last)
        return _finish(problem, result, tol, cone_tol, working="dtype", stacklevel=4)
    # the continuation's max_iter is what the working dtype left of the user's
    said_budget = f"max_iter={budget} reached"
    whole = (said_budget if first is None or budget == max_iter else
             f"max_iter={max_iter} reached ({counted.last} iterations in {name}, "
             f"{budget} in {problem.dtype.name})")
    second.message = second.message.replace(said_budget, whole)
    for warning in said:
        warnings.warn(str(warning.message).replace(said_budget, whole),
                      warning.category, stacklevel=3)
    second.solve_time = time.monotonic() - start
    history = {**second.history,
               "time": np.asarray(second.history["time"]) + elapsed}
    if first is not None:  # n_iter stays the last phase's, as in auto's hand-overs
        history = joined_history(first.history, history)
    second.history = history
    second.info.update(dtype=name, refined=problem.dtype.name,
                       working_iterations=None if first is None else counted.last)
    return second


def _better(certificate, other, cone_tol):
    """Whether ``certificate`` beats ``other``: a lower optimality (``other``'s
    NaN or missing counts as worst) without a cone violation above both
    ``cone_tol`` and ``other``'s."""
    if other is None or not np.isfinite(other.optimality):
        return True
    violation = certificate.cone_violation or 0.0
    return (certificate.optimality < other.optimality
            and violation <= max(cone_tol, other.cone_violation or 0.0))


class _CountOn:
    """The user's callback (or none) for a later phase of a solve: iteration
    numbers and times shifted by those of the phases before; ``last``: the
    last iteration number it saw."""

    def __init__(self, callback, offset=0, time_offset=0.0):
        self.callback, self.offset, self.time_offset = callback, offset, time_offset
        self.last = offset

    def __call__(self, state):
        self.last = state["iteration"] + self.offset
        return self.callback is not None and self.callback(
            {**state, "iteration": self.last, "time": state["time"] + self.time_offset})


def _cast(arrays, dtype):
    """A dict or tuple of arrays (or None) in ``dtype``."""
    if arrays is None:
        return None
    if isinstance(arrays, dict):
        return {k: np.ascontiguousarray(a, dtype) for k, a in arrays.items()}
    return tuple(np.ascontiguousarray(a, dtype) for a in arrays)


def _torch_solve(problem, tol, max_iter, warm_start, verbose, callback, time_limit,
                 method, device, dtype):
    """fast_solve on a PyTorch device (imports torch)."""
    from cvxnn_fast.pytorch import solver as torch_solver

    auto, method = method == "auto", torch_solver.check_method(problem, method)
    blocks, _ = _warm_blocks(problem, warm_start)
    monitor = Monitor(verbose, callback, time_limit)
    if method == "newton":
        from cvxnn_fast.pytorch import newton as torch_newton

        result = torch_newton.solve(problem, blocks["U"], tol, max_iter, monitor,
                                    device, dtype, stall=auto)
        if result.info.get("stalled"):  # as _newton_then_fista
            monitor.next_phase()
            result = handed_over(result, torch_solver.solve(
                problem, result.blocks["U"], tol, max_iter, monitor, device, dtype))
            method = "fista"
    else:
        result = torch_solver.solve(problem, blocks["U"], tol, max_iter, monitor,
                                    device, dtype)
    result.info["method"] = method
    return _finish(problem, result, tol, working="device")


def _path_hint(problem, warm_start):
    """(metric beta, step size) of a warm start on the same data, or Nones.

    Both depend only on the smooth part (data, patterns, loss), not on lam: a
    solution of ``with_lam(problem, other_lam)`` hands them over, and the
    next solve of a path skips the power iterations that estimate them
    (about 10 ms per solve on digits, most of a tiny solve).
    """
    if not isinstance(warm_start, Solution):
        return None, None
    previous = warm_start.problem
    same = (previous is not None and previous.X is problem.X
            and previous.patterns is problem.patterns
            and previous.loss.name == problem.loss.name
            and previous.formulation is problem.formulation)
    beta = warm_start.info.get("metric_beta")
    steps = warm_start.history.get("step_size", np.zeros(0))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if not same or beta is None or steps.size == 0:
        return None, None
    return float(beta), float(steps[-1])


@functools.cache
def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries, found once
    (finding them costs ~2-4 ms, a large part of a small solve)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _blas_threads(problem, method):
    """BLAS thread limits for one solve (when threadpoolctl is installed;
    otherwise BLAS keeps its own settings).

    * Below ``SINGLE_THREAD_FLOPS`` per product (the operator's GEMM; for the
      interior-point method, one iteration), every BLAS runs one thread:
      handing a small GEMM to a second thread costs more than it saves, and
      far more on a loaded machine.
    * Where NumPy and SciPy load two different BLAS libraries (the PyPI wheels
      each bundle their own OpenBLAS), the one that does not carry the
      method's large products is held to one thread. An OpenBLAS thread pool
      spins for a while after each call, so two pools on the same cores slow
      each other's GEMMs (3x slower on the bench_fast ReLU problem).
    """
    try:
        controller = _blas_controller()
    except ImportError:
        return contextlib.nullcontext()
    c, P, d = problem.weight_shape
    rows = c * P * len(problem.formulation.block_names)
    flops = (interior.estimated_flops(problem) if method == "interior_point"
             else 2.0 * problem.n_samples * d * rows)
    if flops < SINGLE_THREAD_FLOPS:
        return controller.limit(limits=1)
    big = os.path.dirname(np.__file__ if method == "interior_point"
                          else scipy.__file__)
    others = [lib.filepath for lib in controller.lib_controllers
              if not lib.filepath.startswith(big)]
    if len(others) == len(controller.lib_controllers):
        return contextlib.nullcontext()  # cannot tell the libraries apart
    return controller.select(filepath=others).limit(limits=1)


def _finish(problem, result, tol, cone_tol=None, working=None, stacklevel=3):
    """Turn an engine result into a Solution: ``optimal`` only where the
    returned weights' certificate meets tol (and cone_tol); warn where the
    solve fell short. ``working``: "device" or "dtype" where the loop ran on
    a PyTorch device or in another working dtype (its messages quote its own
    numbers)."""
    elapsed = time.monotonic() - result.start
    solution = Solution.from_weights(
        problem, status=result.status, solver="fast", solve_time=elapsed,
        n_iter=result.n_iter, history=result.history, message=result.message,
        multipliers=result.multipliers, info={"tol": tol, **result.info},
        certificate=result.certificate, **result.blocks)
    settle_status(solution, tol, cone_tol, working)
    if solution.status != OPTIMAL:
        warnings.warn(f"fast_solve: {solution.message}", ConvergenceWarning,
                      stacklevel=stacklevel)
    return solution
