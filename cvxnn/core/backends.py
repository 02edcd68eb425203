"""The table of solver backends: a solver name to the code that solves.

``Problem.solve(solver)`` and :func:`cvxnn.solve` look the name up here.
Backends register themselves: :mod:`cvxnn.solvers` registers the CVXPY
backend (every name CVXPY knows) when ``cvxnn`` is imported, and
:mod:`cvxnn_fast` registers ``"fast"`` when it is imported. The front end
never imports a backend module: a name that is not registered yet but
belongs to a known add-on package (``"fast"``) is resolved by importing that
package by name, once, in :func:`backend`.
"""

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """How to solve with one backend.

    ``solve(problem, solver_name, **options)`` returns a Solution;
    ``warm_start_helps(problem, options)`` says whether passing the previous
    solution of a path as ``warm_start`` speeds this backend up;
    ``working_dtype(problem, options)`` names a cheaper dtype for this
    backend's ``dtype`` option that still meets the options' tolerance, or
    None.
    """

    name: str
    solve: object
    warm_start_helps: object = None
    working_dtype: object = None
    options: frozenset = None  # the option names solve takes; None: not declared


_BACKENDS = {}
_FALLBACK = []  # the backend of every name no backend claims (CVXPY's)
# Names served by an add-on package that registers them when imported.
ADD_ONS = {"fast": "cvxnn_fast"}


def register_backend(name, solve, *, warm_start_helps=None, working_dtype=None,
                     options=None, fallback=False):
    """Make ``solve(problem, name, **options)`` the backend of ``name``.

    ``options``: the option names ``solve`` takes, where it declares them
    (front ends check them before any work). With ``fallback=True`` it also
    serves every name no backend claims.
    """
    entry = Backend(name.lower(), solve, warm_start_helps, working_dtype,
                    None if options is None else frozenset(options))
    _BACKENDS[entry.name] = entry
    if fallback:
        _FALLBACK[:] = [entry]


def registered():
    """Names with a registered backend (add-ons count once imported)."""
    return sorted(_BACKENDS)


def available(solver):
    """Whether an add-on name (``"fast"``) can be served; True for others."""
    try:
        backend(solver)
    except ImportError:
        return False
    return True


def backend(solver):
    """The :class:`Backend` of ``solver`` (importing its add-on if needed)."""
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name (str), got {solver!r}.")
    key = solver.lower()
    if key not in _BACKENDS and key in ADD_ONS:
        try:
            importlib.import_module(ADD_ONS[key])
        except ImportError as exc:
            raise ImportError(
                f"solver: {solver!r} needs the package {ADD_ONS[key]!r}, which "
                f"could not be imported ({exc}); reinstall cvxnn with pip."
            ) from exc
    entry = _BACKENDS.get(key) or (_FALLBACK[0] if _FALLBACK else None)
    if entry is None:
        raise ValueError(f"solver: no backend serves {solver!r}; known: "
                         f"{', '.join(registered())}.")
    return entry


def solve(problem, solver="CLARABEL", **options):
    """Solve ``problem`` with the backend of ``solver``; see :meth:`Problem.solve`."""
    return backend(solver).solve(problem, solver, **options)


def warm_start_helps(problem, solver, options):
    """Whether ``solver`` gains from a warm start on ``problem`` (paths ask)."""
    rule = backend(solver).warm_start_helps
    return bool(rule is not None and rule(problem, options))


def working_dtype(problem, solver, options):
    """A cheaper dtype ``solver`` would iterate ``problem`` in at ``options``
    (a value for its ``dtype`` option), or None (the estimators ask)."""
    rule = backend(solver).working_dtype
    return None if rule is None else rule(problem, options)


def option_names(solver):
    """The option names the backend of ``solver`` declares, or None (none
    declared, or an add-on that is not installed)."""
    return backend(solver).options if available(solver) else None


def check_option_names(solver, options, name):
    """TypeError naming ``name`` where ``options`` holds a name the backend of
    ``solver`` does not declare (nothing is checked where it declares none)."""
    for key in options:
        if not isinstance(key, str):
            raise TypeError(f"{name}: option names must be strings, got {key!r}.")
    known = option_names(solver)
    unknown = sorted(set(options) - known) if known is not None else []
    if unknown:
        raise TypeError(f"{name}: unknown option {unknown[0]!r} for solver="
                        f"{solver!r}; it takes {', '.join(sorted(known))}.")
