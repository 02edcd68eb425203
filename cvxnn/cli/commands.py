"""The ``cvxnn`` command: fit, predict and compare from the shell.

Run ``cvxnn --help`` or ``cvxnn COMMAND --help``; :func:`main` takes the
argument list, so ``main(["fit", "data.csv", ...])`` works in Python too. It
returns the exit status: 0 on success, 2 on bad input (the message is
printed to stderr as ``cvxnn: error: ...``).
"""

import argparse
import ast
import csv
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from cvxnn.cli.tables import first_text, load_table

DESCRIPTION = """\
Train two-layer ReLU networks to global optimality by solving their convex
reformulation, and get a certificate (duality gap) that proves it.

commands:
  fit      train a model on a CSV/NPZ file and save it
  predict  predict with a saved model
  compare  solve one problem with several solvers and print the gap between them

data files:
  CSV  UTF-8, a header naming each column once; numeric feature columns; the
       target column (--target) may hold numbers (regression) or labels (classification)
  NPZ  arrays X (n_samples, n_features) and y (or the name given to --target)
"""

FIT_EXAMPLES = """\
examples:
  cvxnn fit houses.csv --target price --out houses.npz
  cvxnn fit iris.csv --target species --lam 1e-2 --n-gates 50 --out iris.npz
  cvxnn fit data.npz --formulation relu --solver CLARABEL --out model.npz
  cvxnn fit data.csv --target y --solver fast --option tol=1e-8 --progress \\
      --out model.npz
"""


def _solver_option(text):
    """``[SOLVER:]KEY=VALUE`` -> (solver or None, key, value)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    solver, _, key = key.rpartition(":")
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass  # a plain string such as a method name
    return solver or None, key, value


def _names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return names


def _problem_arguments():
    """Options shared by fit and compare: the data and the convex program."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("data", metavar="DATA", help="a .csv or .npz file")
    parser.add_argument("--target", "-t", metavar="COLUMN",
                        help="the column (CSV) or array (NPZ, default y) to predict")
    parser.add_argument("--features", metavar="COL,COL,...", type=_names,
                        help="CSV feature columns (default: all but the target)")
    parser.add_argument("--task", choices=("auto", "regression", "classification"),
                        default="auto", help="auto (default): classification when "
                        "the target holds text or the loss is logistic or "
                        "cross_entropy, else regression")
    parser.add_argument("--formulation", choices=("gated_relu", "relu"),
                        default="gated_relu", help="default: gated_relu")
    parser.add_argument("--loss", choices=("squared", "logistic", "cross_entropy"),
                        help="default: squared (regression); logistic for two "
                        "classes, cross_entropy for more")
    parser.add_argument("--regularizer", default="group_l1",
                        choices=("group_l1", "feature_group_l1", "l2", "l1", "none"),
                        help="default: group_l1 (neuron sparsity, = weight decay)")
    parser.add_argument("--lam", type=float, default=1e-3,
                        help="regularization strength, >= 0 (default 1e-3)")
    parser.add_argument("--n-gates", type=int, default=100,
                        help="random gates to sample (default 100)")
    parser.add_argument("--no-bias", dest="bias", action="store_false",
                        help="no bias term in the neurons")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the gate sampling (default 0)")
    parser.add_argument("--option", "-o", action="append", default=[],
                        type=_solver_option, metavar="[SOLVER:]KEY=VALUE",
                        help="a solver option, e.g. fast:tol=1e-8 or "
                        "CLARABEL:max_iter=50 (repeatable; SOLVER must be a solver "
                        "of the run; without it the option goes to every solver "
                        "of the run)")
    return parser


def build_parser():
    """The argparse parser of the ``cvxnn`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="cvxnn", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _problem_arguments()
    fit = sub.add_parser("fit", parents=[common], help="train and save a model",
                         description="Train a model and save it to --out.",
                         epilog=FIT_EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("--solver", default="auto", help="fast, a CVXPY solver such as "
                     "CLARABEL, or auto (default: fast when built, else CLARABEL)")
    fit.add_argument("--out", required=True, metavar="MODEL",
                     help="where to save the model (.npz)")
    fit.add_argument("--progress", action="store_true",
                     help="show a progress bar while solving (needs tqdm)")
    fit.add_argument("--device", metavar="DEVICE",
                     help="run the fast solver on a PyTorch device: cpu, cuda, "
                     "cuda:1 (needs torch; default: the compiled solvers)")
    pred = sub.add_parser("predict", help="predict with a saved model",
                          description="Predict with a model saved by `cvxnn fit`.")
    pred.add_argument("model", metavar="MODEL", help="a model saved by cvxnn fit")
    pred.add_argument("data", metavar="DATA", help="a .csv (columns named as in "
                      "training; others are ignored) or .npz (array X; its "
                      "feature_names, if any, must name the model's columns)")
    pred.add_argument("--out", metavar="CSV", help="write a CSV here instead of "
                      "printing to stdout")
    pred.add_argument("--proba", action="store_true",
                      help="class probabilities instead of labels (classifiers)")
    comp = sub.add_parser("compare", parents=[common],
                          help="solve with several solvers, print the gap",
                          description="Solve the same convex program with each "
                          "solver and print objective, certificate, time and the "
                          "gap to the first solver.")
    comp.add_argument("--solvers", nargs="+", default=["fast", "CLARABEL"],
                      metavar="SOLVER", help="default: fast CLARABEL")
    comp.add_argument("--verbose", "-v", action="store_true",
                      help="progress bars while solving (needs tqdm)")
    comp.add_argument("--plot", metavar="PNG", help="save a convergence plot of the "
                      "solvers that record a history (needs matplotlib)")
    return parser


def main(argv=None):
    """Run the ``cvxnn`` command with ``argv`` (default ``sys.argv[1:]``).

    Parameters
    ----------
    argv : list of str or None

    Returns
    -------
    int
        Exit status: 0 on success, 2 on an error (printed to stderr), 1
        when the output pipe closed; argparse's usage errors exit 2 by
        SystemExit.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"fit": run_fit, "predict": run_predict, "compare": run_compare}
    try:
        commands[args.command](args)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, RuntimeError, ImportError, OSError) as exc:
        print(f"cvxnn: error: {exc}", file=sys.stderr)
        return 2
    return 0


# --- fit ----------------------------------------------------------------------
def _is_classification(args, y):
    if args.task != "auto":
        return args.task == "classification"
    return y.dtype.kind in "USO" or args.loss in ("logistic", "cross_entropy")


def _target(args, y):
    """The target column as fitted: integer codes written with leading zeros
    (kept as text, see load_table) are numbers again for a regression."""
    if not _is_classification(args, y) and y.dtype.kind == "U" and \
            first_text(y) is None:
        return y.astype(np.float64)
    return y


def _options_for(args, solver):
    """Solver options of ``--option`` meant for ``solver`` (or for any solver)."""
    return {key: value for name, key, value in args.option
            if name is None or name.lower() == solver.lower()}


def _check_options(options, solvers):
    """Each ``--option SOLVER:KEY=VALUE`` names one of ``solvers``, and a KEY
    the solver it goes to takes, where that solver declares its options."""
    from cvxnn.core import backends
    from cvxnn.core.cvxpy_solvers import COMMON_OPTIONS, SOLVER_OPTIONS

    names = {name.lower() for name in solvers}
    for solver, key, _ in options:
        if solver is not None and solver.lower() not in names:
            raise ValueError(f"--option: {solver!r} (in {solver}:{key}) is not a "
                             f"solver of this run; it uses {', '.join(solvers)}.")
        for target in solvers if solver is None else [solver]:
            if target.lower() == "fast":
                known = backends.option_names("fast")
            else:
                known = SOLVER_OPTIONS.get(target.upper())
                known = None if known is None else known | COMMON_OPTIONS
            if known is not None and key not in known:
                raise ValueError(f"--option: {target} takes no option {key!r}; it "
                                 f"takes {', '.join(sorted(known))}.")


def _check_output(flag, path, inputs=()):
    """``path`` can be written, before any work: its directory exists, it is
    not a directory, it is none of the ``inputs`` (files the command reads,
    which writing it would destroy), and it is a writable file or its
    directory takes a new one."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise ValueError(f"{flag}: directory {directory!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(f"{flag}: {path!r} is a directory; give a file name.")
    if os.path.exists(path):
        for name in inputs:
            if os.path.exists(name) and os.path.samefile(path, name):
                raise ValueError(f"{flag}: {path!r} is the input {name!r}; writing "
                                 "it would destroy it. Give another file name.")
        if not os.access(path, os.W_OK):
            raise ValueError(f"{flag}: {path!r} exists and is not writable.")
        return
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ValueError(f"{flag}: cannot create a file in directory {directory!r} "
                         f"({exc.strerror or exc}).") from None


def _check_plot(path):
    """``--plot``: a writable path whose extension matplotlib can save."""
    from cvxnn._optional import optional_import

    _check_output("--plot", path)
    bases = optional_import("matplotlib.backend_bases", "--plot", "plot")
    kinds = bases.FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1].lower()
    if suffix[1:] not in kinds:
        raise ValueError(f"--plot: {path!r} must end in an image extension "
                         f"matplotlib writes ({', '.join(sorted(kinds))}), got "
                         f"{suffix or 'none'}.")


def make_estimator(args, y, solver):
    """The estimator the problem options of ``args`` describe.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options of ``fit`` or ``compare``.
    y : ndarray
        The target column (text targets make a classifier).
    solver : str

    Returns
    -------
    ConvexReLURegressor or ConvexReLUClassifier
    """
    from cvxnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

    classify = _is_classification(args, y)
    text = first_text(y) if not classify and y.dtype.kind in "USO" else None
    if text is not None:
        raise ValueError(f"--task regression: the target {args.target or 'y'!r} holds "
                         f"text such as {text!r}; use --task classification or a "
                         "numeric target.")
    if not classify and args.loss not in (None, "squared"):
        raise ValueError(f"--loss: {args.loss!r} is for classification; use --task "
                         "classification or --loss squared.")
    cls = ConvexReLUClassifier if classify else ConvexReLURegressor
    loss = args.loss or ("auto" if classify else "squared")
    return cls(formulation=args.formulation, loss=loss,
               regularizer=None if args.regularizer == "none" else args.regularizer,
               lam=args.lam, n_gates=args.n_gates, bias=args.bias, solver=solver,
               solver_options=_options_for(args, solver) or None,
               progress=getattr(args, "progress", False), random_state=args.seed,
               device=getattr(args, "device", None))


def _require_target(table, args):
    if table.y is None:
        raise ValueError(f"--target: name the column to predict; {args.data} has "
                         f"columns {', '.join(table.feature_names)}.")


def run_fit(args):
    """``cvxnn fit``: train, print a summary, save the model.

    Parameters
    ----------
    args : argparse.Namespace
    """
    from cvxnn.estimators import resolve_solver
    from cvxnn.io import save_model

    solver = resolve_solver(args.solver)
    _check_solvers([solver], "--solver")
    _check_options(args.option, [solver])
    _check_output("--out", args.out, inputs=[args.data])
    table = load_table(args.data, args.target, args.features)
    _require_target(table, args)
    y = _target(args, table.y)
    est = make_estimator(args, y, solver)
    start = time.perf_counter()
    est.fit(table.X, y)
    elapsed = time.perf_counter() - start
    for line in summary_lines(est, table.X, y, elapsed):
        print(line)
    save_model(args.out, est, metadata={"feature_names": table.feature_names,
                                        "target": table.target})
    print(f"saved model to {args.out}")


def _certificate_line(cert):
    if cert is None:
        return "certificate: none (the solve failed)"
    parts = []
    for label, value in (("relative duality gap", cert.relative_gap),
                         ("relative KKT residual", cert.relative_kkt_residual),
                         ("cone violation", cert.cone_violation)):
        if value is not None:
            parts.append(f"{label} {value:.2e}")
    return "certificate: " + (", ".join(parts) or "not available")


def summary_lines(est, X, y, elapsed):
    """The lines ``cvxnn fit`` prints about a fitted estimator.

    Parameters
    ----------
    est : fitted ConvexReLURegressor or ConvexReLUClassifier
    X, y : the training data (for the training score)
    elapsed : float, wall seconds of the fit

    Returns
    -------
    list of str
    """
    problem, sol = est.problem_, est.solution_
    task = (f"classification ({est.classes_.size} classes)"
            if hasattr(est, "classes_") else "regression")
    score = est.score(X, y)
    score_name = "training accuracy" if hasattr(est, "classes_") else "training R^2"
    reg = problem.regularizer.name
    return [
        f"data: {X.shape[0]} samples, {X.shape[1]} features, {task}",
        f"problem: {problem.formulation.name}, loss {problem.loss.name}, "
        f"regularizer {reg}, lam {problem.lam:g}, {problem.n_patterns} patterns",
        f"solver: {sol.solver}, status {sol.status}, {sol.solve_time:.3g} s solve, "
        f"{elapsed:.3g} s total" + (f", {sol.n_iter} iterations"
                                    if sol.n_iter is not None else ""),
        f"objective: {sol.objective:.10g}",
        _certificate_line(sol.certificate),
        f"{score_name}: {score:.4f}",
        f"active neurons: {est.n_active_}",
    ]


# --- predict --------------------------------------------------------------------
def _prediction_columns(est, X, proba):
    if proba:
        if not hasattr(est, "predict_proba"):
            raise ValueError("--proba: this model has no class probabilities (a "
                             "regressor, or a classifier trained with squared loss).")
        P = est.predict_proba(X)
        return [f"proba_{c}" for c in est.classes_], P
    pred = est.predict(X)
    return None, pred if pred.ndim == 2 else pred[:, None]


def run_predict(args):
    """``cvxnn predict``: write predictions as CSV to --out or stdout.

    Parameters
    ----------
    args : argparse.Namespace
    """
    from cvxnn.io import load_metadata, load_model

    if args.out:
        _check_output("--out", args.out, inputs=[args.model, args.data])
    est = load_model(args.model)
    meta = load_metadata(args.model)
    # a model fitted by `cvxnn fit` names its columns in the metadata; one
    # fitted in Python on a DataFrame, in the estimator
    names = meta.get("feature_names") or (
        [str(name) for name in est.feature_names_in_]
        if hasattr(est, "feature_names_in_") else None)
    if names is None:
        print(f"cvxnn: warning: {args.model} names no columns (fitted on an array, "
              f"not by `cvxnn fit` or on a DataFrame): the columns of {args.data} "
              "are taken in file order.", file=sys.stderr)
    table = load_table(args.data, features=names, model=True)
    with warnings.catch_warnings():  # its columns were picked by those names
        warnings.filterwarnings("ignore", "X does not have valid feature names")
        header, values = _prediction_columns(est, table.X, args.proba)
    if header is None:
        target = meta.get("target") or "prediction"
        header = [target] if values.shape[1] == 1 else [
            f"{target}_{k}" for k in range(values.shape[1])]
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([_cell(v) for v in row] for row in values)
    finally:
        if args.out:
            out.close()


def _cell(value):
    return repr(float(value)) if isinstance(value, np.floating) else value


# --- compare ----------------------------------------------------------------------
def _check_solvers(solvers, flag="--solvers"):
    import cvxpy as cp

    from cvxnn.estimators import fast_available

    for name in solvers:
        if name.lower() == "fast":
            if not fast_available():
                raise ValueError(f"{flag}: 'fast' is not available (cvxnn_fast "
                                 "has no fast_solve in this build).")
        elif name.upper() not in cp.installed_solvers():
            raise ValueError(f"{flag}: {name!r} is not an installed solver; "
                             f"installed: fast, {', '.join(cp.installed_solvers())}.")


def _solve(problem, solver, options, verbose):
    if verbose:
        from cvxnn.progress import solve_with_progress

        return solve_with_progress(problem, solver, **options)
    return problem.solve(solver, **options)


def run_compare(args):
    """``cvxnn compare``: one problem, several solvers, a table and the gaps.

    Parameters
    ----------
    args : argparse.Namespace
    """
    _check_solvers(args.solvers)
    _check_options(args.option, args.solvers)
    if args.plot:
        _check_plot(args.plot)
    table = load_table(args.data, args.target, args.features)
    _require_target(table, args)
    y = _target(args, table.y)
    est = make_estimator(args, y, args.solvers[0])
    problem = est._make_problem(*est._prepare(table.X, y))
    print(f"problem: {problem!r}")
    solutions = [_solve(problem, s, _options_for(args, s), args.verbose)
                 for s in args.solvers]
    for line in compare_lines(problem, solutions):
        print(line)
    if args.plot:
        _plot_runs(solutions, args.plot)


def _row(sol):
    cert = sol.certificate
    opt = "-" if cert is None or cert.optimality is None else f"{cert.optimality:.2e}"
    cone = "-" if cert is None or cert.cone_violation is None \
        else f"{cert.cone_violation:.1e}"
    active = sol.n_active if sol.U is not None else "-"
    iters = "-" if sol.n_iter is None else sol.n_iter
    return (f"{sol.solver:<10} {sol.status:<19} {sol.objective:<20.14g} {opt:>10} "
            f"{cone:>8} {sol.solve_time:>9.3g} {iters!s:>6} {active!s:>7}")


def _gap_line(problem, ref, sol):
    if ref.U is None or sol.U is None:
        return f"{sol.solver} vs {ref.solver}: no gap (a solve failed)"
    diff = sol.objective - ref.objective
    rel = abs(diff) / max(abs(ref.objective), 1e-12)
    pred = np.max(np.abs(problem.model_predict(sol.blocks)
                         - problem.model_predict(ref.blocks)))
    line = (f"{sol.solver} vs {ref.solver}: objective difference {diff:+.3e} "
            f"(relative {rel:.3e}), max training-prediction difference {pred:.3e}")
    gaps = [s.certificate.duality_gap for s in (ref, sol)]
    if None not in gaps:
        # F_a - F* <= gap_a and F_b - F* <= gap_b, so |F_a - F_b| <= max(gaps).
        ok = abs(diff) <= max(gaps) + 1e-12 * max(1.0, abs(ref.objective))
        line += f"; within the certified gaps: {'yes' if ok else 'NO'}"
    return line


def compare_lines(problem, solutions):
    """The table and gap lines ``cvxnn compare`` prints.

    Parameters
    ----------
    problem : cvxnn.Problem
    solutions : list of cvxnn.Solution
        The first is the reference the others are compared to.

    Returns
    -------
    list of str
    """
    head = (f"{'solver':<10} {'status':<19} {'objective':<20} {'optimality':>10} "
            f"{'cone':>8} {'time (s)':>9} {'iters':>6} {'active':>7}")
    lines = [head] + [_row(sol) for sol in solutions]
    ref = solutions[0]
    lines += [_gap_line(problem, ref, sol) for sol in solutions[1:]]
    return lines


def _plot_runs(solutions, path):
    from cvxnn.plot import plot_convergence

    runs = [s for s in solutions if s.history]
    if not runs:
        print(f"no solver recorded a history; {path} not written")
        return
    ax = plot_convergence(runs)
    ax.figure.savefig(path, dpi=100)
    _pyplot_close(ax.figure)
    print(f"saved convergence plot to {path}")


def _pyplot_close(figure):
    import matplotlib.pyplot as plt

    plt.close(figure)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
