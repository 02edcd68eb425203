"""Plots of convergence and regularization paths (optional: ``cvxnn[plot]``).

Every helper but :func:`plot_path` takes plain arrays or solutions, draws on
a matplotlib ``Axes`` (a new figure when ``ax`` is None) and returns it, so
plots can be combined and saved by the caller (``ax.figure.savefig("path.png")``);
:func:`plot_path` takes a path and returns its own two-panel ``Figure``.

* :func:`plot_convergence`: the optimality certificate (relative duality gap
  or relative KKT residual) against time or iterations, log scale, from a
  solver's ``history`` (``"time"``, ``"objective"``, ``"optimality"``).
* :func:`plot_regularization_path`: active neurons against ``lam`` (log
  scale), with an optional score (accuracy, R^2) on a second y axis.
* :func:`plot_path`: the two-panel figure of a
  :class:`~cvxnn.path.RegularizationPath` (``path.plot()``): active neurons
  on top, a metric below.
"""

import numpy as np

from cvxnn._optional import optional_import


def _pyplot():
    return optional_import("matplotlib.pyplot", "plotting", "plot")


def _axes(ax):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=(6, 4))
    return ax


def _history(run, name):
    """The history dict of a Solution or a dict; ValueError if it is empty."""
    history = getattr(run, "history", run)
    if not isinstance(history, dict) or not history:
        raise ValueError(
            f"{name}: has no history to plot; CVXPY solvers record none, the fast "
            "solver fills solution.history."
        )
    return history


def _curve(history, key, name):
    if key == "iteration" and key not in history:
        any_values = next(iter(history.values()))
        return np.arange(len(any_values))
    if key not in history:
        raise ValueError(f"{name}: history has no {key!r}; it has "
                         f"{', '.join(sorted(history))}.")
    return np.asarray(history[key], dtype=float)


def plot_convergence(runs, x="time", y="optimality", labels=None, ax=None):
    """Plot a certificate (default: optimality) against time for one or more solves.

    Parameters
    ----------
    runs : Solution, dict, or list of them
        Solutions with a ``history`` or history dicts of equal-length arrays,
        e.g. ``{"time": t, "optimality": gap}``.
    x : {"time", "iteration"} or another history key, default="time"
        Horizontal axis (``"iteration"`` is the index when not recorded).
    y : str, default="optimality"
        Vertical axis, drawn on a log scale when every value drawn here is
        positive (NaN entries are gaps).
    labels : list of str or None
        One legend entry per run (default: each solution's solver name).
    ax : matplotlib Axes or None

    Returns
    -------
    matplotlib Axes
    """
    runs = runs if isinstance(runs, (list, tuple)) else [runs]
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"labels: expected {len(runs)} labels, got {len(labels)}.")
    ax = _axes(ax)
    positive = True
    for i, run in enumerate(runs):
        history = _history(run, f"runs[{i}]")
        xs, ys = _curve(history, x, f"runs[{i}]"), _curve(history, y, f"runs[{i}]")
        label = labels[i] if labels is not None else getattr(run, "solver", None)
        ax.plot(xs, ys, label=label)
        values = np.asarray(ys, dtype=float)
        positive &= bool(np.all(values[~np.isnan(values)] > 0))  # a NaN is a gap
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("time (s)" if x == "time" else x)
    ax.set_ylabel(y)
    if any(line.get_label()[:1] != "_" for line in ax.get_lines()):
        ax.legend()
    return ax


def _check_path(lams, values, name):
    values = np.asarray(values, dtype=float)
    if values.shape != lams.shape:
        raise ValueError(f"{name}: expected {lams.size} values (one per lam), got "
                         f"shape {values.shape}.")
    return values


def plot_regularization_path(lams, n_active, score=None, score_label="score",
                             ax=None):
    """Plot active neurons (and optionally a score) along a regularization path.

    Parameters
    ----------
    lams : array (n_lams,), positive
        Regularization strengths, drawn on a log-scale x axis.
    n_active : array (n_lams,)
        Active neurons (non-zero blocks) of each solution.
    score : array (n_lams,) or None
        A quality measure per lam (accuracy, R^2), drawn on a second y axis.
    score_label : str
        Label of the score axis.
    ax : matplotlib Axes or None

    Returns
    -------
    matplotlib Axes
        The neuron axis; the score axis, if any, is ``ax.score_axis``.
    """
    lams = np.asarray(lams, dtype=float)
    if lams.ndim != 1 or lams.size == 0 or np.any(lams <= 0):
        raise ValueError("lams: expected a non-empty 1-D array of positive values.")
    n_active = _check_path(lams, n_active, "n_active")
    ax = _axes(ax)
    ax.plot(lams, n_active, "o-", color="C0", label="active neurons")
    ax.set_xscale("log")
    ax.set_xlabel("lam")
    ax.set_ylabel("active neurons", color="C0")
    ax.score_axis = None
    if score is not None:
        score = _check_path(lams, score, "score")
        twin = ax.twinx()
        twin.plot(lams, score, "s--", color="C1", label=score_label)
        twin.set_ylabel(score_label, color="C1")
        ax.score_axis = twin
    return ax


def _default_metric(path):
    for split in ("validation", "train"):
        for name in ("accuracy", "mse"):
            if np.any(np.isfinite(path.metric(name, split))):
                return name, split
    return "loss", "train"


def plot_path(path, filename=None, metric=None):
    """Plot active neurons and a metric against lam (log scale; points at
    lam = 0 are left out).

    Parameters
    ----------
    path : RegularizationPath.
    filename : optional path of a PNG to save.
    metric : metric name (default: validation accuracy, else validation mse,
        else the training one); the training curve is drawn dashed. Failed
        solves are gaps.

    Returns
    -------
    matplotlib.figure.Figure
    """
    Figure = optional_import("matplotlib.figure", "plotting", "plot").Figure
    if metric is not None:
        known = sorted({key for p in path.points
                        for key in (p.train or {}) | (p.validation or {})})
        if metric not in known:
            have = ", ".join(known) or "none (no solve succeeded)"
            raise ValueError(f"metric: {metric!r} is not measured along this path; "
                             f"it has {have}.")
    name, split = _default_metric(path) if metric is None else (metric, "validation")
    fig = Figure(figsize=(6, 5.5), constrained_layout=True)
    lams = np.asarray(path.lams, dtype=float)
    shown = lams > 0  # the lam axis is logarithmic: lam = 0 points are left out
    if not shown.any():
        raise ValueError("path: has no point with lam > 0 to draw"
                         + (" (it is empty)." if lams.size == 0 else "."))
    top, bottom = fig.subplots(2, 1, sharex=True)
    lams = lams[shown]
    # a failed solve has no network: a gap, not 0 neurons
    active = np.array([np.nan if p.solution.U is None else p.n_active
                       for p in path.points], dtype=float)
    plot_regularization_path(lams, active[shown], ax=top)
    valid = np.asarray(path.metric(name))[shown] if split == "validation" else None
    if valid is not None and np.any(np.isfinite(valid)):
        bottom.plot(lams, valid, "o-", label=f"validation {name}")
    train = np.asarray(path.metric(name, "train"))[shown]
    bottom.plot(lams, train, "s--", label=f"train {name}")
    bottom.set_xlabel("lam")
    bottom.set_ylabel(name)
    bottom.legend()
    top.set_title(f"regularization path ({path.solver})")
    if filename is not None:
        fig.savefig(filename, dpi=120)
    return fig
