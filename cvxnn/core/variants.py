"""Cheap variants of a built :class:`~cvxnn.core.problem.Problem`.

A regularization path solves the same problem for many ``lam``, and the cone
decomposition needs the ReLU program on the gated program's data and
patterns. Neither should recompute the patterns: the variants built here
share ``X``, ``y``, ``patterns`` and ``gates`` with the original (the arrays
are not copied; do not modify them in place) and reuse its cached
``gradient_at_zero``, which does not depend on ``lam`` or the formulation.
"""

from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.problem import Problem
from cvxnn.core.validation import check_choice, check_lam


def check_problem(problem, name="problem"):
    if not isinstance(problem, Problem):
        raise TypeError(
            f"{name}: expected a cvxnn Problem (from cvxnn.build_problem), got "
            f"{type(problem).__name__}."
        )
    return problem


def replace_problem(problem, *, lam=None, formulation=None):
    """A copy of ``problem`` with ``lam`` and/or ``formulation`` replaced.

    Parameters
    ----------
    problem : Problem
    lam : float >= 0 or None (keep).
    formulation : ``"gated_relu"``, ``"relu"`` or None (keep).

    Returns
    -------
    Problem sharing the data, patterns and gates of ``problem``.
    """
    check_problem(problem)
    lam = problem.lam if lam is None else check_lam(lam)
    form = problem.formulation
    if formulation is not None:
        form = FORMULATIONS[check_choice(formulation, "formulation",
                                         tuple(FORMULATIONS))]
    new = Problem(problem.X, problem.y, problem.patterns, problem.gates,
                  problem.loss, problem.regularizer, lam, form, problem.bias,
                  problem.classes)
    if "gradient_at_zero" in problem.__dict__:  # functools.cached_property slot
        new.__dict__["gradient_at_zero"] = problem.__dict__["gradient_at_zero"]
    return new


def with_lam(problem, lam):
    """``problem`` with its regularization strength replaced by ``lam``."""
    return replace_problem(problem, lam=lam)


def relu_twin(problem):
    """The ReLU program on the data, patterns and gates of ``problem``."""
    return replace_problem(problem, formulation="relu")


def gated_twin(problem):
    """The gated ReLU program on the data, patterns and gates of ``problem``."""
    return replace_problem(problem, formulation="gated_relu")
