r"""The paper's reference implementation (``pip install pyscnn``) on cvxnn problems.

pyscnn (import name ``scnn``) solves the same convex programs with its own
R-FISTA (gated ReLU) and augmented Lagrangian (ReLU) methods. Three things
must agree before its times mean anything:

* **data and patterns**: it gets ``problem.X`` (bias column already in it, so
  ``bias=False``; ``unitize_data=False`` so it does not rescale the columns)
  and ``problem.gates``; it recomputes ``1[X G > 0]``, deduplicates with
  ``np.unique`` (which reorders the columns) and keeps the generating gates.
  :func:`pattern_order` matches its gates to ours column by column, so its
  weights are permuted back to cvxnn's neuron order exactly.
* **objective scaling**: pyscnn minimizes
  :math:`\frac{1}{2nc}\|\hat Y - Y\|_F^2 + \lambda_s R(U)` (squared loss only;
  its public solvers take no other loss), cvxnn
  :math:`\frac{1}{2n}\|\hat Y - Y\|_F^2 + \lambda R(U)`. With
  :math:`\lambda_s = \lambda / c` the cvxnn objective is exactly ``c`` times
  pyscnn's for group_l1 = NeuronGL1, l1 = L1 and l2 = L2 (both
  ``(lam/2)||U||^2``). pyscnn's FeatureGL1 carries an extra factor
  ``sqrt(d)`` (:math:`\lambda_s \sqrt d \sum_f \|U_{:,:,f}\|`), so there
  :math:`\lambda_s = \lambda / (c \sqrt d)`; on ReLU it takes one norm over
  V and W together, a different program, which is refused.
* **the check**: :func:`check_objective` evaluates pyscnn's internal
  objective and cvxnn's :meth:`Problem.objective` on the same random weights
  (permuted) and returns the relative difference; callers refuse to time a
  problem where it exceeds 1e-10.

Timing: the clock starts when pyscnn's optimization procedure is called (its
data conversion and pattern computation are excluded, as ``build_problem`` is
for cvxnn's solvers). Every iterate is recorded through pyscnn's callback
hook; the time spent inside the callback (one copy of the weights) is
subtracted, and pyscnn's own per-iteration metrics are switched off. The
objective of each iterate is then computed by cvxnn, so every curve is
measured by the same function.
"""

import time
from dataclasses import dataclass

import numpy as np

REGULARIZERS = {"group_l1": "NeuronGL1", "feature_group_l1": "FeatureGL1",
                "l1": "L1", "l2": "L2"}


def available():
    """True when pyscnn (module ``scnn``) imports."""
    try:
        import scnn.optimize  # noqa: F401
    except ImportError:
        return False
    return True


def unsupported(problem):
    """Why pyscnn cannot solve ``problem`` ("" when it can)."""
    if problem.loss.name != "squared":
        return (f"pyscnn's public solvers (RFISTA, AL) minimize the squared loss "
                f"only, not {problem.loss.name}")
    if problem.regularizer.name not in REGULARIZERS or problem.lam == 0:
        return "pyscnn needs one of group_l1, feature_group_l1, l1, l2 with lam > 0"
    if problem.formulation.has_cones and \
            problem.regularizer.name == "feature_group_l1":
        return ("pyscnn's FeatureGL1 on ReLU takes one norm over V and W together, "
                "cvxnn's penalty is R(V) + R(W)")
    return ""


def their_lam(problem):
    """pyscnn's lam for the objective ``cvxnn objective / n_outputs``."""
    lam = problem.lam / problem.n_outputs
    if problem.regularizer.name == "feature_group_l1":
        lam /= np.sqrt(problem.n_features)
    return lam


@dataclass
class Prepared:
    """pyscnn's public objects and internal model for one cvxnn problem."""

    solver: object
    regularizer: object
    internal: object
    X: object
    y: object
    order: np.ndarray


def prepare(problem, max_iter=10_000, tol=1e-12, device="cpu"):
    """Build pyscnn's model, solver, regularizer and internal model.

    ``device`` is pyscnn's: "cpu" (its NumPy backend) or "cuda" (torch)."""
    import scnn.regularizers as regs
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.private.interface import build_internal_model, process_data, set_device
    from scnn.solvers import AL, RFISTA

    why = unsupported(problem)
    if why:
        raise ValueError(f"problem: {why}.")
    c = problem.n_outputs
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: pyscnn runs on 'cpu' or 'cuda', got {device!r}.")
    set_device(device, problem.dtype.name, 0)
    reg = getattr(regs, REGULARIZERS[problem.regularizer.name])(their_lam(problem))
    G = np.array(problem.gates, dtype=np.float64)
    if problem.formulation.has_cones:
        model = ConvexReLU(G, c=c)
        solver = AL(model, max_primal_iters=max_iter, tol=tol, constraint_tol=tol)
    else:
        model = ConvexGatedReLU(G, c=c)
        solver = RFISTA(model, max_iters=max_iter, tol=tol)
    (X, y), _, _ = process_data(problem.X, problem.y, None, None, False, False)
    internal = build_internal_model(model, reg, X)
    order = pattern_order(problem, _np(internal.U))
    return Prepared(solver, reg, internal, X, y, order)


def _np(tensor):
    import lab

    return np.asarray(lab.to_np(tensor), dtype=np.float64)


def pattern_order(problem, G_theirs):
    """``order[j]``: the cvxnn neuron behind pyscnn's neuron j (exact gate match)."""
    if G_theirs.shape != problem.gates.shape:
        raise ValueError(f"pyscnn kept {G_theirs.shape[1]} patterns, cvxnn "
                         f"{problem.n_patterns}: the problems differ.")
    ours = {col.tobytes(): i for i, col in
            enumerate(np.asarray(problem.gates, np.float64).T)}
    try:
        return np.array([ours[col.tobytes()] for col in
                         np.ascontiguousarray(G_theirs.T)])
    except KeyError:
        raise ValueError("pyscnn's gates are not cvxnn's gates.") from None


def to_theirs(prep, blocks):
    """cvxnn blocks (problem order) -> pyscnn's weight tensor."""
    import lab

    stack = [B[:, prep.order, :] for B in blocks]
    W = stack[0] if len(stack) == 1 else np.stack(stack)
    return lab.tensor(W, dtype=lab.get_dtype())


def to_ours(prep, weights, relu):
    """pyscnn's weight tensor -> dict of cvxnn blocks (problem order)."""
    W = _np(weights)
    parts = (W[0], W[1]) if relu else (W,)
    out = []
    for part in parts:
        B = np.zeros_like(part)
        B[:, prep.order, :] = part
        out.append(B)
    return dict(zip(("V", "W") if relu else ("U",), out, strict=True))


def check_objective(problem, prep, seed=0):
    """Relative difference of the two objectives at the same random weights."""
    rng = np.random.default_rng(seed)
    names = problem.formulation.block_names
    blocks = {k: rng.standard_normal(problem.weight_shape) / problem.n_features
              for k in names}
    ours = problem.objective(**blocks)
    kwargs = {"ignore_lagrange_penalty": True} if len(names) == 2 else {}
    theirs = float(prep.internal.objective(prep.X, prep.y,
                                           w=to_theirs(prep, blocks.values()),
                                           **kwargs))
    return abs(ours - problem.n_outputs * theirs) / abs(ours)


class _TimeUp(Exception):
    """Raised from the callback to stop pyscnn at the time limit."""


def solve(problem, max_iter=10_000, tol=1e-12, max_records=20_000, time_limit=None,
          device="cpu", objective_every=None):
    """Run pyscnn; returns (history dict, final cvxnn blocks, its exit status).

    ``history`` has ``time`` (seconds, callback time excluded), ``objective``
    and, for ReLU, ``cone_violation``, all computed by cvxnn on pyscnn's
    iterates (at most ``max_records`` of them, evenly thinned), ``weights``
    (those iterates as cvxnn blocks) and ``iterations`` (pyscnn's count). pyscnn has
    no time limit of its own: past ``time_limit`` the callback raises and
    the last recorded iterate is returned with status ``"time limit"``.

    ``objective_every=k`` (gated ReLU only) instead records, every k-th
    iteration, pyscnn's own objective of the iterate evaluated where it runs
    (times ``n_outputs``, which is cvxnn's objective: :func:`check_objective`
    is asserted below 1e-6 first). That is the mode for large problems and
    GPUs, where evaluating cvxnn's objective on the host for every record
    would take longer than the solve. On "cuda" the callback synchronizes
    the device before reading the clock, so the time it excludes is its own.
    """
    from scnn.metrics import Metrics
    from scnn.private.interface import build_metrics_tuple, build_optimizer
    from scnn.private.interface.utils import get_logger

    prep = prepare(problem, max_iter, tol, device)
    relu = problem.formulation.has_cones
    if objective_every is not None:
        if relu:
            raise ValueError("objective_every: only for gated ReLU problems.")
        mismatch = check_objective(problem, prep)
        if mismatch > 1e-6:
            raise RuntimeError(f"pyscnn's objective differs from cvxnn's by "
                               f"{mismatch:.1e} (relative): not the same problem.")
    sync = _synchronizer(device)
    metrics = Metrics(metric_freq=10**9, objective=False, grad_norm=False)
    procedure = build_optimizer(prep.solver, prep.regularizer, metrics)
    procedure.metric_freq = 10**9
    times, weights, objective, spent, calls = [], [], [], [0.0], [0]
    start = time.perf_counter()

    def record(model, X, y):
        sync()
        entered = time.perf_counter()
        now = entered - start - spent[0]
        calls[0] += 1
        if objective_every is None:
            times.append(now)
            weights.append(_np(model.weights).copy())
            if len(weights) > max_records:  # thin: keep every other record
                del weights[1::2], times[1::2]
        elif calls[0] % objective_every == 0 or calls[0] == 1:
            times.append(now)
            objective.append(problem.n_outputs * float(model.objective(X, y)))
            weights[:] = [model.weights]
        spent[0] += time.perf_counter() - entered
        if time_limit is not None and now >= time_limit:
            raise _TimeUp
        return model

    try:
        status, model, _ = procedure(get_logger("scnn", False, False, None),
                                     prep.internal, lambda m: m, (prep.X, prep.y),
                                     (prep.X, prep.y), build_metrics_tuple(metrics),
                                     callback=record)
        final = model.weights
    except _TimeUp:
        status, final = "time limit", weights[-1]
    if objective_every is not None:
        history = {"time": np.array(times), "objective": np.array(objective),
                   "iterations": calls[0]}
    else:
        history = _history(problem, prep, times, weights, relu)
        history["iterations"] = calls[0]
    return history, to_ours(prep, final, relu), status


def _synchronizer(device):
    """A function that waits for the device's queued work (a no-op on "cpu")."""
    if device == "cpu":
        return lambda: None
    import torch

    return torch.cuda.synchronize


def _history(problem, prep, times, weights, relu):
    objective, violation, ours = [], [], []
    for W in weights:
        blocks = to_ours(prep, W, relu)
        ours.append(blocks)
        objective.append(problem.objective(**blocks))
        if relu:
            violation.append(problem.formulation.cone_violation(problem, blocks))
    out = {"time": np.array(times), "objective": np.array(objective),
           "weights": ours}
    if relu:
        out["cone_violation"] = np.array(violation)
    return out
