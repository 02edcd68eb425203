r"""Regularization paths: one problem solved for a decreasing sequence of lam.

* :func:`lam_grid` gives the geometric grid
  :math:`\lambda_t = \lambda_{\max} \cdot r^{t / (T - 1)}`, ``t = 0..T-1``,
  from :func:`cvxnn.lam_max` (the smallest lam whose solution is zero) down
  to ``ratio * lam_max``.
* :func:`regularization_path` solves the problem at every lam of a grid and
  records, per lam, the solution, objective, active neurons, certificate,
  wall time and train/validation metrics (:class:`RegularizationPath`).

The problems along the path differ only in ``lam``; they are built with
:func:`cvxnn.core.problem.with_lam`, which shares the data, the patterns and the
cached gradient at zero, so no pattern is recomputed. With ``solver="fast"``
and ``warm_start=True`` each solve starts from the previous solution; solving
a decreasing grid is then cheaper than solving each lam from zero (the first
point, at lam_max, is zero). CVXPY programs are rebuilt for every lam, so CVXPY
has nothing to warm start from and ``warm_start`` only applies to ``"fast"``;
nor does the interior-point method that ``fast_solve`` runs on small ReLU
problems, whatever the loss (``PathPoint.warm_started`` says which points were).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from cvxnn.core import backends, operator
from cvxnn.core.certificates import lam_max as compute_lam_max
from cvxnn.core.cvxpy_solvers import check_solver, check_solver_handles
from cvxnn.core.errors import ConvergenceWarning
from cvxnn.core.problem import check_new_X, check_problem, with_lam
from cvxnn.core.status import interrupted
from cvxnn.core.validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_finite,
    check_positive_float,
    check_positive_int,
    check_real,
)
from cvxnn.metrics import encode_targets, metrics
from cvxnn.plot import plot_path


def lam_grid(problem, n_lams=20, ratio=1e-3, *, lam_max=None):
    """Geometric grid of ``n_lams`` values from lam_max down to ``ratio * lam_max``.

    Parameters
    ----------
    problem : Problem with a norm regularizer (unless ``lam_max`` is given).
    n_lams : int >= 1 (1 gives ``[lam_max]``).
    ratio : float in (0, 1], the last value over the first.
    lam_max : float > 0, start of the grid instead of :func:`cvxnn.lam_max`.

    Returns
    -------
    lams : ndarray (n_lams,), decreasing.
    """
    check_problem(problem)
    n_lams = check_positive_int(n_lams, "n_lams")
    ratio = check_positive_float(ratio, "ratio")
    if ratio > 1:
        raise ValueError(f"ratio: must be in (0, 1], got {ratio!r}.")
    top = compute_lam_max(problem) if lam_max is None else check_positive_float(
        lam_max, "lam_max")
    if not np.isfinite(top) or top <= 0:
        raise ValueError(f"lam_max: must be a finite number > 0, got {top!r} (a zero "
                         "gradient at 0 means the zero solution is optimal for "
                         "every lam).")
    if n_lams == 1:
        return np.array([top])
    return top * ratio ** (np.arange(n_lams) / (n_lams - 1))


@dataclass
class PathPoint:
    """One lam of a path.

    Attributes
    ----------
    lam : float.
    solution : :class:`~cvxnn.core.solution.Solution` of the problem at ``lam``.
    objective : its convex objective (nan if the solve failed).
    n_active : active neurons (see :func:`active_neurons`).
    certificate : its certificate (None if the solve failed).
    time : wall seconds of the solve, building the CVXPY program included.
    n_iter : solver iterations, when reported.
    train, validation : metric dicts (see :func:`metrics`); validation is
        None without validation data.
    warm_started : whether the solve started from the previous solution.
    """

    lam: float
    solution: object
    objective: float
    n_active: int
    certificate: object
    time: float
    n_iter: int | None
    train: dict
    validation: dict | None
    warm_started: bool


@dataclass
class RegularizationPath:
    """The points of a path, in the order solved, with column accessors."""

    points: list
    solver: str
    interrupted: bool = False

    def __len__(self):
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, index):
        return self.points[index]

    def column(self, name):
        """``[getattr(point, name) for point in self]`` as an array."""
        return np.array([getattr(p, name) for p in self.points])

    @property
    def lams(self):
        return self.column("lam")

    @property
    def total_time(self):
        return float(np.sum(self.column("time")))

    @property
    def total_iterations(self):
        """Sum of the iterations reported (None if a solve did not report them)."""
        iters = [p.n_iter for p in self.points]
        return None if any(i is None for i in iters) else int(sum(iters))

    def metric(self, name, split="validation"):
        """One metric along the path, e.g. ``metric("accuracy")`` (nan if absent);
        ``split``: ``"validation"`` or ``"train"``."""
        check_choice(split, "split", ("validation", "train"))
        rows = [getattr(p, split) or {} for p in self.points]
        return np.array([r.get(name, np.nan) for r in rows], dtype=float)

    def plot(self, filename=None, metric=None):
        """Active neurons and a validation metric vs lam; see
        :func:`cvxnn.plot.plot_path`."""
        return plot_path(self, filename, metric)


def active_neurons(solution, rtol=1e-6):
    r"""Neurons that contribute to the training predictions.

    Block ``u`` of pattern ``i`` counts when
    :math:`\|D_i X u\|_2 > \mathrm{rtol} \cdot \|Y\|_F`, its contribution to the
    predictions relative to the targets. Gated ReLU counts the blocks of
    ``U``, ReLU those of ``V`` and ``W`` (each is a neuron of the network).
    The threshold makes interior-point solutions (tiny but non-zero blocks)
    and proximal ones (exact zeros) count alike.
    """
    rtol = check_real(rtol, "rtol", "a finite number >= 0", lambda v: v >= 0)
    if solution.U is None:
        return 0
    problem = solution.problem
    scale = float(np.linalg.norm(problem.y)) or 1.0
    mask = problem.patterns[:, None, :]
    count = 0
    for B in solution.blocks.values():
        contribution = np.linalg.norm(operator.products(problem.X, B) * mask, axis=0)
        count += int(np.sum(contribution > rtol * scale))
    return count


def _check_lams(lams):
    arr = check_finite(as_float_array(lams, "lams"), "lams")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lams: expected a non-empty 1-D sequence of values, got "
                         f"shape {arr.shape}.")
    if np.any(arr < 0):
        raise ValueError(f"lams: every lam must be >= 0, got {float(arr.min())!r}.")
    return arr.astype(np.float64)


def _check_solver(solver, options):
    """The solver name to pass to Problem.solve, checked before any work."""
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name (str), got {solver!r}.")
    if solver.lower() == "fast":
        if not backends.available("fast"):
            raise ValueError("solver: 'fast' is not available in this build; use "
                             "a CVXPY solver.")
        return "fast"
    return check_solver(solver, options)


def _data(problem, X, y):
    """(raw X, encoded Y) for metrics (the networks take raw inputs: unscaled
    where ``standardize=True`` built the problem); the training data when X
    is None, with X None where the problem is gated (see :func:`_evaluate`)."""
    if X is None:
        if not problem.formulation.has_cones:
            return None, problem.y
        X = problem.X * problem.input_scale if problem.input_scale is not None \
            else problem.X
        return np.ascontiguousarray(X[:, :-1] if problem.bias else X), problem.y
    if y is None:
        raise ValueError("y_val: required when X_val is given.")
    scaled = problem.prepare_X(X, "X_val")  # validated; the network takes X raw
    raw = np.ascontiguousarray(check_new_X(X, "X_val"), dtype=problem.dtype)
    return raw, encode_targets(problem, y, scaled.shape[0])


def _evaluate(problem, solution, data):
    """Metrics of the solution's network on ``data``. On the gated training
    data they are the convex model's predictions, which the network's equal
    there by its patterns: the raw training data rebuilt from the scaled
    ones (standardize) differ by rounding, enough to flip a gate's test on a
    row at a tie (a path's training MSE 0.615 where the network scored 0.599
    on the data itself)."""
    if data is None:
        return None
    if solution.U is None:
        return {}
    X, Y = data
    predictions = (problem.model_predict(solution.blocks) if X is None
                   else solution.predict(X))
    return metrics(problem, predictions, Y)


def _solve_point(problem, lam, solver, previous, options, train, validation, rtol):
    sub = with_lam(problem, lam)
    options = dict(options)
    warm = previous is not None and backends.warm_start_helps(sub, solver, options)
    if warm:
        options["warm_start"] = previous
    start = time.perf_counter()
    sol = sub.solve(solver, **options)
    elapsed = time.perf_counter() - start
    return PathPoint(lam=float(lam), solution=sol, objective=sol.objective,
                     n_active=active_neurons(sol, rtol), certificate=sol.certificate,
                     time=elapsed, n_iter=sol.n_iter,
                     train=_evaluate(sub, sol, train),
                     validation=_evaluate(sub, sol, validation), warm_started=warm)


def regularization_path(problem, lams, solver="fast", warm_start=True, X_val=None,
                        y_val=None, *, active_rtol=1e-6, **solver_options):
    r"""Solve ``problem`` at every lam of ``lams``, in the order given.

    Parameters
    ----------
    problem : Problem (its own lam is ignored).
    lams : sequence of floats >= 0; a decreasing grid (:func:`lam_grid`) is
        what warm starts profit from.
    solver : ``"fast"`` (default) or any installed CVXPY solver.
    warm_start : bool; with ``"fast"``, start each solve from the previous
        solution that has weights (a solve stopped by ``time_limit`` or
        ``max_iter`` included: its iterate is still the nearest start; see
        the module docstring).
    X_val, y_val : optional validation data (raw features, targets as for
        :func:`cvxnn.build_problem`) for validation metrics.
    active_rtol : relative threshold of :func:`active_neurons`.
    **solver_options : passed to every solve (``tol``, ``max_iter``, ...).

    Returns
    -------
    RegularizationPath of :class:`PathPoint`, one per lam.

    Notes
    -----
    Ctrl-C (KeyboardInterrupt) stops the path: the solutions computed so far
    are returned (the interrupted fast solve's last iterate included, with
    status ``"user_limit"``), ``path.interrupted`` is True and a
    :class:`~cvxnn.core.errors.ConvergenceWarning` says where it stopped.
    """
    check_problem(problem)
    lams = _check_lams(lams)
    check_bool(warm_start, "warm_start")
    solver = _check_solver(solver, solver_options)
    if solver == "fast":
        backends.check_option_names(solver, solver_options, "regularization_path")
    elif len(lams):
        check_solver_handles(solver, with_lam(problem, float(lams.max())))
    active_rtol = check_real(active_rtol, "active_rtol", "a finite number >= 0",
                             lambda v: v >= 0)
    if X_val is None and y_val is not None:
        raise ValueError("X_val: required when y_val is given.")
    validation = None if X_val is None else _data(problem, X_val, y_val)
    train = _data(problem, None, None)
    points, previous = [], None
    try:
        for lam in lams:
            point = _solve_point(problem, lam, solver,
                                 previous if warm_start else None, solver_options,
                                 train, validation, active_rtol)
            points.append(point)
            if interrupted(point.solution):
                raise KeyboardInterrupt
            if point.solution.U is not None:
                previous = point.solution
    except KeyboardInterrupt:
        warnings.warn(f"regularization_path: interrupted by the user after "
                      f"{len(points)} of {len(lams)} lams; returning those.",
                      ConvergenceWarning, stacklevel=2)
        return RegularizationPath(points, solver, interrupted=True)
    return RegularizationPath(points, solver)

