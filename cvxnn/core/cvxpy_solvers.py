"""Names and declared options of the CVXPY solvers (checked before any work).

The CVXPY backend, the ReLU lam_max programs and the decomposition all take
a CVXPY solver name; :func:`check_solver` validates it in one place.
"""

from cvxnn._optional import cvxpy as cp
from cvxnn.core.validation import (
    check_bool,
    check_options,
    check_positive_float,
    check_positive_int,
)

# Keywords CVXPY's Problem.solve takes for every solver.
COMMON_OPTIONS = frozenset({"verbose", "warm_start", "canon_backend", "ignore_dpp"})

SOLVER_OPTIONS = {
    "CLARABEL": frozenset({
        "max_iter", "time_limit", "tol_gap_abs", "tol_gap_rel", "tol_feas",
        "tol_infeas_abs", "tol_infeas_rel", "tol_ktratio", "reduced_tol_gap_abs",
        "reduced_tol_gap_rel", "reduced_tol_feas", "reduced_tol_infeas_abs",
        "reduced_tol_infeas_rel", "reduced_tol_ktratio", "equilibrate_enable",
        "equilibrate_max_iter", "equilibrate_min_scaling", "equilibrate_max_scaling",
        "linesearch_backtrack_step", "min_switch_step_length",
        "min_terminate_step_length", "max_step_fraction", "direct_kkt_solver",
        "direct_solve_method", "static_regularization_enable",
        "static_regularization_constant", "static_regularization_proportional",
        "dynamic_regularization_enable", "dynamic_regularization_eps",
        "dynamic_regularization_delta", "iterative_refinement_enable",
        "iterative_refinement_reltol", "iterative_refinement_abstol",
        "iterative_refinement_max_iter", "iterative_refinement_stop_ratio",
        "presolve_enable", "max_threads", "chordal_decomposition_enable",
        "chordal_decomposition_merge_method", "chordal_decomposition_compact",
        "chordal_decomposition_complete_dual", "input_sparse_dropzeros",
    }),
    "ECOS": frozenset({
        "max_iters", "abstol", "reltol", "feastol", "abstol_inacc", "reltol_inacc",
        "feastol_inacc", "nitref",
    }),
    "SCS": frozenset({
        "max_iters", "eps_abs", "eps_rel", "eps_infeas", "alpha", "scale",
        "adaptive_scale", "normalize", "rho_x", "acceleration_lookback",
        "acceleration_interval", "time_limit_secs", "write_data_filename",
        "log_csv_filename", "use_indirect", "gpu", "mkl", "linear_solver",
    }),
    "MOSEK": frozenset({"mosek_params", "save_file", "bfs", "accept_unknown", "eps"}),
}


# Options whose values are checked here (the rest are the solver's to judge).
VALUE_CHECKS = {
    "verbose": check_bool, "warm_start": check_bool,
    "max_iter": check_positive_int, "max_iters": check_positive_int,
    "time_limit": check_positive_float, "time_limit_secs": check_positive_float,
}


def installed_solvers():
    """Names accepted by ``Problem.solve``: installed CVXPY solvers and "fast"."""
    return sorted(cp.installed_solvers()) + ["fast"]


def check_solver(solver, options):
    """The upper-case name of an installed CVXPY solver, after checking that
    ``options`` are among those it declares (and the common ones' values);
    ValueError/TypeError otherwise."""
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name, got {solver!r}; "
                        f"installed: {', '.join(installed_solvers())}.")
    name = solver.upper()
    installed = cp.installed_solvers()
    if name not in installed:
        known = "a CVXPY solver that is not installed" if name in cp.settings.SOLVERS \
            else "not a solver CVXPY knows"
        raise ValueError(
            f"solver: {solver!r} is {known}; installed: "
            f"{', '.join(installed_solvers())}."
        )
    if name in SOLVER_OPTIONS:
        check_options(options, COMMON_OPTIONS | SOLVER_OPTIONS[name],
                      f"solve(solver={name!r})")
    for key, value in options.items():
        if key in VALUE_CHECKS:
            VALUE_CHECKS[key](value, key)
    return name


# Regularizers and losses whose CVXPY forms need more than linear constraints.
_SOC_REGULARIZERS = ("group_l1", "feature_group_l1")
_EXP_LOSSES = ("logistic", "cross_entropy")


def check_solver_handles(name, problem):
    """ValueError, before any work, where the CVXPY solver ``name`` cannot
    take ``problem``'s program: its loss or regularizer needs cones (exponential
    for logistic and cross-entropy, second-order for group norms) or a
    quadratic objective the solver does not handle. Solvers CVXPY does not
    describe are left to it."""
    try:
        from cvxpy.reductions.solvers import defines
    except ImportError:  # another CVXPY layout: CVXPY judges when it solves
        return
    conic = defines.SOLVER_MAP_CONIC.get(name)
    qp = defines.SOLVER_MAP_QP.get(name)
    if conic is None and qp is None:
        return
    cones = {c.__name__ for c in getattr(conic, "SUPPORTED_CONSTRAINTS", ())}
    needs = []
    if problem.loss.name in _EXP_LOSSES:
        needs.append(("ExpCone", f"exponential cones (the {problem.loss.name} loss)"))
    if problem.regularizer.name in _SOC_REGULARIZERS and problem.lam > 0:
        needs.append(("SOC", f"second-order cones (the {problem.regularizer.name} "
                             "penalty)"))
    quadratic = problem.loss.name == "squared" or (
        problem.regularizer.name == "l2" and problem.lam > 0)
    as_cone = conic is not None and all(cone in cones for cone, _ in needs) and (
        not quadratic or "SOC" in cones)
    as_qp = qp is not None and not needs
    if as_cone or as_qp:
        return
    what = [text for cone, text in needs if cone not in cones or conic is None]
    if quadratic and "SOC" not in cones and qp is None:
        what.append("a quadratic objective")
    raise ValueError(
        f"solver: {name} cannot solve this problem, which needs "
        f"{' and '.join(what)}; CLARABEL, ECOS and SCS solve every cvxnn problem.")
