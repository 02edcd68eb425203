r"""Model selection for the estimators: whitening, validation splits, lam paths,
early stopping.

* :class:`Whitening`: the affine map :math:`z = A^\top (x - \mu)`,
  :math:`A = Q \Lambda^{-1/2}` onto the whitened principal coordinates, with
  the map that carries gates into ``z``; :func:`network_on_inputs` carries a
  network trained on ``z`` back to ``x``.
* :func:`validation_splits`: one shuffled validation fraction (a float) or
  k folds (an int), stratified for classifiers when every class allows it.
* :func:`select_lam`: one warm-started path per split down a lam grid,
  scored on the held-out rows, stopped once the mean score has not improved
  for ``patience`` lams.
* :class:`BestIterate`: a ``fast_solve`` callback that keeps the iterate with
  the best validation score and stops the solve when it stops improving.

The estimators own the data handling; these functions only see problems,
held-out data and a scoring function ``score(outputs, targets) -> float``
(larger is better).
"""

import warnings

import numpy as np
from sklearn.model_selection import (
    KFold,
    ShuffleSplit,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

from cvxnn.core import backends
from cvxnn.core.certificates import lam_max
from cvxnn.core.network import TwoLayerNetwork, network_from_weights
from cvxnn.core.problem import with_lam
from cvxnn.core.status import interrupted as solve_interrupted
from cvxnn.core.validation import MIN_SAMPLES
from cvxnn.metrics import encode_targets
from cvxnn.path import lam_grid


class Whitening:
    r"""Centre, rotate onto the principal axes and scale them to unit variance.

    Fitted on rows ``X`` (n_samples, d): mean :math:`\mu`, variances
    :math:`\lambda_j` above ``rtol * lambda_1`` and axes :math:`q_j`;
    :math:`z = A^\top (x - \mu)` with :math:`A = Q \Lambda^{-1/2}` (d x k).
    Cost: one d x d covariance and eigendecomposition.
    """

    def __init__(self, X, rtol=1e-10):
        X64 = np.asarray(X, dtype=np.float64)
        self.mean = X64.mean(axis=0)
        cov = np.atleast_2d(np.cov(X64, rowvar=False, bias=True))
        values, axes = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1]
        values, axes = values[order], axes[:, order]
        keep = values > rtol * max(values[0], np.finfo(float).tiny)
        if not keep.any():
            keep[0], values[0] = True, 1.0
        self.A = axes[:, keep] / np.sqrt(values[keep])
        self.B = axes[:, keep] * np.sqrt(values[keep])  # pinv(A).T
        self.dtype = np.asarray(X).dtype

    def transform(self, X):
        """``(X - mean) @ A`` in the dtype of the fitted data."""
        Z = np.asarray(X, dtype=np.float64) @ self.A - self.mean @ self.A
        return np.ascontiguousarray(Z, dtype=self.dtype)

    def gates(self, G):
        r"""Gates ``(d + 1, P)`` on ``(x, 1)`` carried to ``(z, 1)``: the same
        hyperplanes on the span of the data (:math:`g_z = B^\top g_x`,
        :math:`b_z = b + \mu^\top g_x`)."""
        Gx, b = G[:-1], G[-1]
        return np.ascontiguousarray(np.vstack([self.B.T @ Gx, b + self.mean @ Gx]),
                                    dtype=self.dtype)


def _on_inputs(M, mean, A):
    """Rows of M (n, k + 1) acting on (z, 1) rewritten to act on (x, 1)."""
    Mx = M[:, :-1] @ A.T
    return np.ascontiguousarray(np.column_stack([Mx, M[:, -1] - Mx @ mean]),
                                dtype=M.dtype)


def network_on_inputs(network, mean, A):
    r"""A network trained on :math:`z = A^\top (x - \mu)` (with bias) rewritten
    as the same function of ``x``: first layer and gates composed with the
    affine map, exactly."""
    gates = None if network.gates is None else _on_inputs(network.gates.T, mean, A).T
    return TwoLayerNetwork(W1=_on_inputs(network.W1, mean, A), W2=network.W2,
                           gates=None if gates is None else np.ascontiguousarray(gates),
                           bias=True, b2=network.b2)


def validation_splits(n_samples, cv, labels=None, random_state=0, name="cv"):
    """``[(train_index, validation_index), ...]`` for ``cv``.

    ``cv`` is a fraction in (0, 1) (one shuffled split holding out that
    fraction) or an int >= 2 (shuffled folds). With ``labels`` (classifiers)
    the split is stratified when every class has at least two members per
    split, else plain; a split must leave at least one validation row and
    MIN_SAMPLES training rows. ``name`` is the argument errors name.
    """
    seed = random_state if isinstance(random_state, (int, np.integer)) else 0
    counts = None if labels is None else np.unique(labels, return_counts=True)[1]
    if isinstance(cv, (float, np.floating)) and 0 < cv < 1:
        n_val = int(np.ceil(cv * n_samples))
        if n_samples - n_val < MIN_SAMPLES:
            raise ValueError(f"{name}: {cv} of {n_samples} samples leaves "
                             f"{n_samples - n_val} training rows; a fit needs at "
                             f"least {MIN_SAMPLES}.")
        stratify = counts is not None and counts.min() >= 2 and \
            counts.size <= min(n_val, n_samples - n_val)
        kind = StratifiedShuffleSplit if stratify else ShuffleSplit
        splitter = kind(1, test_size=n_val, random_state=seed)
    elif isinstance(cv, (int, np.integer)) and not isinstance(cv, bool) and cv >= 2:
        if cv > n_samples:
            raise ValueError(f"{name}: {cv} folds need at least {cv} samples, got "
                             f"{n_samples}.")
        if n_samples - -(-n_samples // cv) < MIN_SAMPLES:  # the largest fold held out
            raise ValueError(f"{name}: {cv} folds of {n_samples} samples leave "
                             f"{n_samples - -(-n_samples // cv)} training rows; a "
                             f"fit needs at least {MIN_SAMPLES}.")
        stratify = counts is not None and counts.min() >= cv
        kind = StratifiedKFold if stratify else KFold
        splitter = kind(int(cv), shuffle=True, random_state=seed)
    else:
        raise ValueError(f"{name}: expected a fraction in (0, 1) or an int >= 2, "
                         f"got {cv!r}.")
    return list(splitter.split(np.zeros((n_samples, 1)), labels))


def validation_key(problem, outputs, targets, score):
    """``(score, -mean loss)`` of outputs on held-out targets: the score, ties
    broken by the problem's own loss (accuracy plateaus are common). A score
    that is undefined there (R^2 of a single row: NaN) counts as -inf, so the
    loss decides."""
    Y = encode_targets(problem, targets, outputs.shape[0])  # the problem's columns
    loss = problem.loss.value(outputs, Y) / outputs.shape[0]
    value = score(outputs, targets)
    return np.array([value if np.isfinite(value) else -np.inf, -loss])


def _solve_quietly(problem, solver, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loose path solves need no warning
        return problem.solve(solver, **options)


def select_lam(problems, held_out, score, solver, options, *, n_lams, ratio,
               patience, path_tol=None):
    """Walk a warm-started path over every split.

    Parameters
    ----------
    problems : one Problem per split (their own lam is ignored).
    held_out : ``[(X_val in problem coordinates, targets), ...]``, one per split.
    score : ``score(outputs, targets) -> float``, larger is better.
    solver, options : solver name and its options (``tol`` replaced by
        ``path_tol`` when given).
    n_lams, ratio : the grid :func:`cvxnn.lam_grid` from the largest
        ``lam_max`` of the splits down to ``ratio`` times it.
    patience : stop once the mean score has not improved for this many lams.

    The first lam is the largest lam_max, where every split's solution is
    zero: it is scored without a solve.

    Ctrl-C (KeyboardInterrupt, in a solve or between them) ends the path:
    the lam being solved is dropped and the lams before it are returned.

    Returns
    -------
    lams : the lams solved (a prefix of the grid); scores : their mean
    validation scores; best : index of the best, compared by
    :func:`validation_key` (the largest lam among exact ties); solutions :
    the first split's solution at the best lam (None for the first lam);
    interrupted : whether Ctrl-C ended the path.
    """
    # All-zero targets: every lam gives the zero model; a grid from the
    # smallest lam float64 tells from 0 (as scikit-learn's LassoCV does).
    top = max(lam_max(p) for p in problems) or np.finfo(np.float64).resolution
    grid = lam_grid(problems[0], n_lams, ratio, lam_max=top)
    options = dict(options) if path_tol is None else {**options, "tol": path_tol}
    previous = [None] * len(problems)
    keys, best, best_solution, interrupted = [], 0, None, False
    try:
        for t, lam in enumerate(grid):
            split_keys = []
            for s, (problem, (X_val, Y_val)) in enumerate(zip(problems, held_out,
                                                              strict=True)):
                sub = with_lam(problem, lam)
                if t == 0:  # lam >= every split's lam_max: the solution is zero
                    zero = np.zeros((X_val.shape[0], sub.n_outputs), sub.dtype)
                    split_keys.append(validation_key(sub, zero, Y_val, score))
                    continue
                opts = dict(options)
                if previous[s] is not None and backends.warm_start_helps(
                        sub, solver, opts):
                    opts["warm_start"] = previous[s]
                sol = _solve_quietly(sub, solver, opts)
                if solve_interrupted(sol):
                    raise KeyboardInterrupt  # caught by the fast solver
                if sol.U is None:
                    split_keys.append([-np.inf, -np.inf])
                    continue
                previous[s] = sol
                split_keys.append(validation_key(sub, sol.predict(X_val), Y_val,
                                                 score))
            keys.append(tuple(np.mean(split_keys, axis=0)))
            if keys[-1] > keys[best] or t == 0:
                best, best_solution = t, previous[0]
            if t - best >= patience:
                break
    except KeyboardInterrupt:
        if not keys:
            raise
        interrupted = True
    return (grid[:len(keys)], np.array([k[0] for k in keys]), best, best_solution,
            interrupted)


def transfer_weights(solution, problem):
    """A warm start for ``problem`` from ``solution`` of a problem on a subset
    of its rows built with the same gates, in its dtype or another (patterns
    matched by their gate; patterns the subset merged or lost start at zero).

    Returns the array ``U`` (gated) or the tuple ``(V, W)`` (ReLU).
    """
    def keys(G):  # in float32, so that a float32 path's gates match float64 ones
        return [g.tobytes() for g in np.asarray(G.T, dtype=np.float32, order="C")]

    index = {g: i for i, g in enumerate(keys(solution.problem.gates))}
    kept = [(j, index[g]) for j, g in enumerate(keys(problem.gates)) if g in index]
    full, sub = (np.array(k, dtype=np.intp) for k in zip(*kept, strict=True)) \
        if kept else (np.zeros(0, np.intp),) * 2
    blocks = []
    for name in problem.formulation.block_names:
        B = np.zeros(problem.weight_shape, dtype=problem.X.dtype)
        B[:, full] = solution.blocks[name][:, sub]
        blocks.append(B)
    return blocks[0] if len(blocks) == 1 else tuple(blocks)


def step_hint(solution, options):
    """``{"step_size": last step}`` of an R-FISTA ``solution`` for a refit
    from it with the fast solver's R-FISTA (``options``: the refit's), else
    ``{}``. The loss's global curvature bound gives a first step ~200x too
    short near a fitted model (digits), which the line search makes up only
    by x1.1 per iteration."""
    steps = solution.history.get("step_size", np.zeros(0))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if (solution.info.get("method") != "fista" or steps.size == 0
            or options.get("method", "auto") not in ("auto", "fista")
            or options.get("device") is not None or "step_size" in options):
        return {}
    return {"step_size": float(steps[-1])}


class BestIterate:
    """``fast_solve`` callback: keep the iterate of best validation score.

    At every call (between the solver's compiled chunks, at least about
    every 0.25 s)
    the current iterate is scored on ``(X_val, Y_val)``; the solve is stopped
    once ``n_iter_no_change`` calls in a row did not improve the best score.
    """

    def __init__(self, problem, X_val, Y_val, score, n_iter_no_change):
        self.problem, self.X_val, self.Y_val = problem, X_val, Y_val
        self.score, self.patience = score, n_iter_no_change
        self.best_score, self.best_blocks, self.calls = (-np.inf, -np.inf), None, 0
        self._since = 0

    def offer(self, blocks):
        """Key (:func:`validation_key`) of ``blocks``; kept if the best so far."""
        net = network_from_weights(self.problem, blocks)
        value = tuple(validation_key(self.problem, net.predict(self.X_val),
                                     self.Y_val, self.score))
        self.calls += 1
        if value > self.best_score:
            self.best_score, self.best_blocks, self._since = value, blocks, 0
        else:
            self._since += 1
        return value

    def __call__(self, info):
        self.offer(info["weights"]())
        return self._since >= self.patience
