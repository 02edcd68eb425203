"""Progress bars for long solves, regularization paths and comparisons.

tqdm is an optional dependency (``pip install cvxnn[progress]``); everything
here raises an ImportError that says so when it is asked for a bar and tqdm
is missing, and does nothing when the bar is disabled.

* :class:`SolveProgress` is a callback for the fast solver: it receives the
  solver's state dict (``iteration``, ``time``, ``objective``, ``optimality``
  and, for ReLU, ``cone_violation``) every few iterations and shows them.
* :func:`solve_with_progress` solves a problem with a bar. The fast solver
  updates it while it runs; a CVXPY solver has no callback, so its bar
  completes in one step and shows the final objective and certificate.
* :func:`track` wraps any loop (a regularization path, a list of solvers)
  in a bar when ``verbose`` and returns the iterable untouched otherwise.
"""

import sys

from cvxnn._optional import optional_import


def _tqdm():
    return optional_import("tqdm.auto", "progress bars", "progress").tqdm


def _format_state(state):
    """The bar's postfix for a solver state or a certificate summary dict."""
    shown = {}
    for key, fmt in (("objective", "{:.6g}"), ("optimality", "{:.2e}"),
                     ("cone_violation", "{:.1e}")):
        value = state.get(key)
        if value is not None:
            shown[key if key != "cone_violation" else "cone"] = fmt.format(value)
    return shown


class SolveProgress:
    """A tqdm bar driven by a solver callback.

    Parameters
    ----------
    total : int or None
        Iteration budget (``max_iter``), the bar's length; None counts up.
    desc : str
        Label shown left of the bar.
    file : file-like or None
        Where to draw (default ``sys.stderr``).
    disable : bool
        Build no bar; calls do nothing.

    Notes
    -----
    An instance is callable as ``progress(state)`` with the solver's state
    dict; the bar advances to ``state["iteration"]`` and shows objective,
    optimality (relative duality gap or KKT residual) and cone violation.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, total=None, desc="solve", file=None, disable=False):
        self.last_state = None
        self.bar = None
        if not disable:
            self.bar = _tqdm()(total=total, desc=desc, unit="it", leave=True,
                               file=file if file is not None else sys.stderr,
                               dynamic_ncols=True)

    def __call__(self, state):
        """Advance the bar to ``state["iteration"]`` and show the state.

        Parameters
        ----------
        state : dict
            The solver's state: iteration, time, objective, optimality and
            (ReLU) cone_violation.
        """
        self.last_state = dict(state)
        if self.bar is None:
            return
        iteration = int(state.get("iteration", self.bar.n + 1))
        self.bar.set_postfix(_format_state(state), refresh=False)
        self.bar.update(max(0, iteration - self.bar.n))

    def finish(self, solution, complete=False):
        """Show the final status, objective and certificate of ``solution``.

        Parameters
        ----------
        solution : cvxnn.Solution
        complete : bool
            Advance the bar to its total (a solver that reported no
            progress) instead of to ``solution.n_iter``.
        """
        if self.bar is None:
            return
        cert = solution.certificate
        state = {"objective": solution.objective}
        if cert is not None:
            state["optimality"] = cert.optimality
            state["cone_violation"] = cert.cone_violation
        postfix = _format_state(state)
        postfix["status"] = solution.status
        self.bar.set_postfix(postfix, refresh=False)
        target = self.bar.total if complete else solution.n_iter
        if target is not None:
            self.bar.update(max(0, int(target) - self.bar.n))
        self.bar.refresh()

    def close(self):
        """Close the bar (idempotent)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _chain(first, second):
    if second is None:
        return first

    def both(state):
        first(state)
        second(state)

    return both


def solve_with_progress(problem, solver="fast", file=None, **options):
    """Solve ``problem`` while showing a progress bar.

    Parameters
    ----------
    problem : cvxnn.Problem
    solver : str
        ``"fast"`` (bar updated during the solve through ``callback``) or a
        CVXPY solver name (bar completed once the solve returns).
    file : file-like or None
        Where to draw the bar (default ``sys.stderr``).
    **options
        Options of the solver; a ``callback`` given here is still called.

    Returns
    -------
    cvxnn.Solution
    """
    fast = isinstance(solver, str) and solver.lower() == "fast"
    total = options.get("max_iter") if fast else 1
    with SolveProgress(total=total, desc=f"{solver}", file=file) as bar:
        if fast:
            options["callback"] = _chain(bar, options.get("callback"))
        solution = problem.solve(solver, **options)
        bar.finish(solution, complete=not fast)
    return solution


def track(iterable, desc="", total=None, verbose=True, file=None):
    """Iterate over ``iterable`` with a progress bar when ``verbose``.

    Parameters
    ----------
    iterable : iterable
        The loop, e.g. the values of lam of a regularization path.
    desc : str
        Label of the bar.
    total : int or None
        Length, if ``len(iterable)`` does not give it.
    verbose : bool
        False returns ``iterable`` itself (no tqdm needed).
    file : file-like or None
        Where to draw the bar (default ``sys.stderr``).

    Returns
    -------
    iterable
        A tqdm wrapper (``.set_postfix`` shows per-step results) or the input.
    """
    if not verbose:
        return iterable
    return _tqdm()(iterable, desc=desc, total=total,
                   file=file if file is not None else sys.stderr)
