r"""Data-parallel R-FISTA (and Newton-CG, :mod:`cvxnn_fast.pytorch.newton`)
over ``torch.distributed`` processes.

The rows of X, y and the patterns are sharded over the processes of a
process group (one per GPU with NCCL, one per CPU node with Gloo; launched by
``torchrun``, see docs/usage.md). Each process loads only its own shard
(``load_shard(rank, world_size)``). Per R-FISTA iteration the processes
exchange one all-reduce of the gradient (c P d floats) and a few float64
scalars (loss sums, dual value, one per line-search trial); the weights, the
prox and every decision are replicated, so all processes take the same steps
and return the same solution and certificate, equal to the single-process
solve of the same problem to rounding. Once per solve the pattern-mean
metric's beta rule all-reduces a d x d Gram matrix; at the polish's pauses
(:mod:`cvxnn_fast.pytorch.polish`) its Newton sums are all-reduced.

Setup is global where it must be: the sample count is summed, the label set
(classification) and the pattern deduplication are agreed through
all-gathers of small per-process summaries (per-gate column ids and non-empty
flags), so the kept patterns and gates are exactly those
:func:`cvxnn.build_problem` keeps on the whole data.
"""

import hashlib
import os
import time
import warnings

import numpy as np

from cvxnn.core.errors import ConvergenceWarning, NumericalBreakdown
from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.losses import LOSSES
from cvxnn.core.patterns import standard_normal_gates
from cvxnn.core.regularizers import REGULARIZERS
from cvxnn.core.solution import Solution
from cvxnn.core.status import OPTIMAL
from cvxnn.core.validation import (
    as_float_array,
    check_bool,
    check_callback,
    check_choice,
    check_finite,
    check_lam,
    check_positive_float,
    check_positive_int,
    check_random_state,
    check_weights,
)
from cvxnn_fast.common.run import Monitor, Result, joined_history, settle_status
from cvxnn_fast.fista.solver import K, describe, nonfinite_cause
from cvxnn_fast.pytorch import fista, newton
from cvxnn_fast.pytorch.certificates import Spec, certificate
from cvxnn_fast.pytorch.device import (
    import_torch,
    resolve_device,
    torch_dtype,
    working_dtype,
)
from cvxnn_fast.pytorch.operator import BLOCK_ENTRIES, DeviceData
from cvxnn_fast.pytorch.polish import ShardedPolisher
from cvxnn_fast.pytorch.solver import (
    best_of,
    check_method,
    run_state,
    to_device,
    to_numpy,
)

DEFAULT_MAX_ITER = 10_000


class ShardedProblem:
    """A gated ReLU problem whose rows are spread over processes.

    Holds this process's rows on its device (``data``) and what every process
    shares: gates (d, P), loss, regularizer, lam, bias, classes. Exposes the
    attributes a :class:`~cvxnn.core.solution.Solution` and its network need
    (``n_samples`` counts all processes' rows).
    """

    formulation = FORMULATIONS["gated_relu"]
    input_scale = None

    def __init__(self, data, gates, loss, regularizer, lam, bias, classes, dtype,
                 group):
        self.data, self.gates = data, gates
        self.loss, self.regularizer, self.lam = loss, regularizer, lam
        self.bias, self.classes, self.dtype, self.group = bias, classes, dtype, group

    n_samples = property(lambda self: self.data.n_samples)
    n_features = property(lambda self: self.data.n_features)
    n_patterns = property(lambda self: self.data.n_patterns)
    n_outputs = property(lambda self: self.data.n_outputs)
    weight_shape = property(
        lambda self: (self.n_outputs, self.n_patterns, self.n_features))

    def __repr__(self):
        return (f"ShardedProblem(loss={self.loss.name!r}, regularizer="
                f"{self.regularizer.name!r}, lam={self.lam:g}, n_samples="
                f"{self.n_samples}, d={self.n_features}, n_patterns="
                f"{self.n_patterns}, n_outputs={self.n_outputs}, rows here="
                f"{self.data.X.shape[0]}, device={self.data.device})")


def _group_info(group):
    dist = import_torch().distributed
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "build_sharded_problem: torch.distributed is not initialized; call "
            "torch.distributed.init_process_group('nccl' or 'gloo') first (torchrun "
            "sets the environment it reads).")
    return dist, dist.get_rank(group), dist.get_world_size(group)


def _default_device(dist, group):
    if dist.get_backend(group) == "nccl":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def _all_gather(dist, obj, group, world):
    out = [None] * world
    dist.all_gather_object(out, obj, group=group)
    return out


def _on_every_process(work, dist, group, world, where="build_sharded_problem"):
    """``work()`` on this process; an error on any process is raised on every
    one (this process's own, else a RuntimeError naming the process that
    failed and why). Otherwise the others would wait in the next collective
    until the process group's timeout, or die on a closed connection."""
    try:
        result, error = work(), None
    except Exception as exc:  # re-raised below, on every process
        result, error = None, exc
    failed = _all_gather(dist, None if error is None else
                         f"{type(error).__name__}: {error}", group, world)
    if error is not None:
        raise error
    for k, message in enumerate(failed):
        if message is not None:
            raise RuntimeError(f"{where}: process {k} failed: {message}")
    return result


def _local_shard(X, y):
    """A shard's own checks: finite 2-D X, one target row per row of X."""
    X = check_finite(as_float_array(X, "X shard"), "X shard")
    if X.ndim != 2 or X.shape[1] < 1:
        raise ValueError(f"X shard: expected a 2-D array (rows, n_features), got "
                         f"shape {X.shape}.")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y shard: has {y.shape[0] if y.ndim else 0} rows but the "
                         f"X shard has {X.shape[0]}; they must match.")
    return X, y


def _check_shard(X, y, dist, group, world):
    widths = set(_all_gather(dist, X.shape[1], group, world))
    if len(widths) > 1:
        raise ValueError(f"X shard: the processes' shards have different numbers "
                         f"of features {sorted(widths)}.")
    return X, y


def _check_agreement(X, Y, dist, group, world):
    """Every process's shard has the same dtype and number of outputs: the
    collectives exchange arrays of those sizes (a mismatch would abort Gloo)."""
    seen = _all_gather(dist, (X.dtype.name, Y.shape[1]), group, world)
    dtypes, outputs = sorted({s[0] for s in seen}), sorted({s[1] for s in seen})
    if len(dtypes) > 1:
        raise ValueError(f"X shard: the processes' shards have different dtypes "
                         f"{dtypes}.")
    if len(outputs) > 1:
        raise ValueError(f"y shard: the processes' targets have different numbers "
                         f"of outputs {outputs}.")


def _targets(loss, y, n_rows, dtype, dist, group, world):
    """Targets as the loss uses them, with labels (or a logistic loss's
    coding of its columns) agreed over all processes: each shard's are
    encoded with rows of every shard's values appended."""
    column = y.ndim == 1 or y.shape[1] == 1
    if not (loss.is_classification and (column or loss.name == "logistic")):
        return loss.prepare_targets(y, n_rows, dtype)
    # an empty shard's y (often float64) has no values to change the union's type
    labels = np.unique(y.ravel()) if y.size else None
    shown = [v for v in _all_gather(dist, labels, group, world) if v is not None]
    union = np.unique(np.concatenate(shown))
    extra = union if column else np.repeat(union[:, None], y.shape[1], axis=1)
    body = y.ravel() if column else y
    Y, classes = loss.prepare_targets(np.concatenate([body, extra]),
                                      n_rows + union.size, dtype)
    return np.ascontiguousarray(Y[:n_rows]), classes


def _raw_patterns(X, G):
    """``X @ G > 0`` on the device, in row blocks, (m, n_gates) bool."""
    torch = import_torch()
    out = torch.empty((X.shape[0], G.shape[1]), dtype=torch.bool, device=X.device)
    step = max(1, BLOCK_ENTRIES // max(1, G.shape[1]))
    for start in range(0, X.shape[0], step):
        torch.gt(X[start:start + step] @ G, 0, out=out[start:start + step])
    return out


def _kept_patterns(D_raw, dist, group, world):
    """Gates whose patterns ``build_problem`` keeps on the whole data: first
    occurrence of each distinct column, non-empty, in gate order."""
    D = D_raw.cpu().numpy()
    packed = np.ascontiguousarray(np.packbits(D, axis=0).T)
    keys = packed.view(np.dtype((np.void, max(1, packed.shape[1])))).ravel()
    if packed.shape[1] == 0:
        keys = np.zeros(D.shape[1], np.int64)
    _, ids = np.unique(keys, return_inverse=True)
    gathered = _all_gather(dist, (ids.ravel(), D.any(axis=0)), group, world)
    all_ids = np.stack([g[0] for g in gathered], axis=1)
    nonzero = np.any([g[1] for g in gathered], axis=0)
    _, first = np.unique(all_ids, axis=0, return_index=True)
    first.sort()
    return first[nonzero[first]]


def build_sharded_problem(load_shard, *, loss="squared", regularizer="group_l1",
                          lam=1e-3, n_gates=100, gates=None, bias=False,
                          random_state=0, device=None, dtype=None, group=None):
    """This process's part of a gated ReLU problem whose rows are sharded.

    Parameters
    ----------
    load_shard : callable(rank, world_size) -> (X_shard, y_shard)
        Loads this process's rows (any split of the rows; the problem is that
        of the shards stacked in rank order).
    loss, regularizer, lam, n_gates, gates, bias, random_state
        As :func:`cvxnn.build_problem` (gated ReLU; every process draws the
        same gates from ``random_state``). ``standardize`` is not offered.
    device : None, str or torch.device
        This process's device; default ``cuda:$LOCAL_RANK`` under NCCL, else
        ``"cpu"``.
    dtype : None, "float32" or "float64"
        Working dtype (default float32 on a GPU, the shard's dtype on CPU).
    group : torch.distributed process group, default the world.

    Returns
    -------
    ShardedProblem
    """
    dist, rank, world = _group_info(group)
    loss = LOSSES[check_choice(loss, "loss", tuple(LOSSES))]
    regularizer = REGULARIZERS[check_choice(regularizer, "regularizer",
                                            tuple(REGULARIZERS))]
    lam = check_lam(lam)
    bias = check_bool(bias, "bias")
    dev = resolve_device(_default_device(dist, group) if device is None else device)
    X, y = _on_every_process(lambda: _local_shard(*load_shard(rank, world)), dist,
                             group, world)
    X, y = _check_shard(X, y, dist, group, world)
    Y, classes = _targets(loss, y, X.shape[0], X.dtype, dist, group, world)
    _check_agreement(X, Y, dist, group, world)
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1), X.dtype)])
    d = X.shape[1]
    G = (standard_normal_gates(d, check_positive_int(n_gates, "n_gates"),
                        check_random_state(random_state), X.dtype) if gates is None
         else check_weights(gates, "gates", (d, np.shape(gates)[-1]), X.dtype))
    wdtype = working_dtype(X.dtype, dev, dtype)
    tdtype = torch_dtype(wdtype)
    torch = import_torch()
    X_dev = torch.from_numpy(np.ascontiguousarray(X)).to(dev, tdtype)
    D_raw = _raw_patterns(X_dev, torch.from_numpy(G).to(dev, tdtype))
    kept = _kept_patterns(D_raw, dist, group, world)
    if kept.size == 0:
        raise ValueError("gates: no gate activates any sample; use more gates.")
    count = torch.tensor([float(X.shape[0])], dtype=torch.float64, device=dev)
    dist.all_reduce(count, group=group)
    index = torch.from_numpy(kept).to(dev)
    data = DeviceData(X_dev, D_raw.index_select(1, index).contiguous(),
                      torch.from_numpy(Y).to(dev, tdtype), int(count.item()), group,
                      sharded=True)
    return ShardedProblem(data, np.ascontiguousarray(G[:, kept]), loss, regularizer,
                          lam, bool(bias), classes, X.dtype, group)


def _start(problem, warm_start):
    """The start on the device: the same on every process (a warm start that
    differs between them is refused on all, naming them)."""
    c, P, d = problem.weight_shape
    dist = import_torch().distributed
    world = dist.get_world_size(problem.group)

    def start():
        if warm_start is None:
            return np.zeros((c, P, d), problem.dtype)
        U0 = warm_start.U if isinstance(warm_start, Solution) else warm_start
        return check_weights(U0, "warm_start", (c, P, d), problem.dtype)

    U0 = _on_every_process(start, dist, problem.group, world, "solve_sharded")
    digests = _all_gather(dist, None if warm_start is None else
                          hashlib.sha256(U0.tobytes()).hexdigest(), problem.group,
                          world)
    if len(set(digests)) > 1:
        given = [k for k, digest in enumerate(digests) if digest is not None]
        raise ValueError(f"warm_start: differs between the processes (given on "
                         f"{given} of {world}); every process must pass the same "
                         "start (a Solution of solve_sharded is).")
    return to_device(U0.reshape(c * P, d), problem.data)


def _polish_hook(polisher, max_iter):
    """The polish over the sharded rows at the compiled loop's pauses."""
    if not polisher.enabled:
        return None

    def polish(it, optimality, y):
        if it < polisher.pause_at(max_iter) or not polisher.attempt(it, optimality, y):
            return None
        U, _, cert = polisher.result
        shape = polisher.problem.weight_shape
        return cert.objective, cert.optimality, lambda: {"U": to_numpy(U, shape)}

    return polish


def _fista(problem, x0, tol, max_iter, monitor):
    """Sharded R-FISTA from x0 (c P, d) on the device: (run, status,
    message, U on the device, its certificate or None, whether polished)."""
    data, spec, shape = problem.data, Spec.of(problem), problem.weight_shape
    polisher = ShardedPolisher(problem, data, spec, tol)
    run = fista.solve(data, spec, x0, tol, max_iter, monitor,
                      lambda y: {"U": to_numpy(y, shape)},
                      polish=_polish_hook(polisher, max_iter))
    if run.code == K["NOT_FINITE"]:
        raise NumericalBreakdown(
            f"solve_sharded: {nonfinite_cause(run.n_iter)}; check the data "
            "scaling and lam.", None)
    U, returned, cert = best_of(run, data, spec)
    quoted = None if returned == "the last iterate" else cert.optimality
    status, message = describe(run.code, run.stop, run_state(run), tol, quoted,
                               returned)
    if polisher.result is not None:
        U, _, cert = polisher.result
    return run, status, message, U, cert, polisher.result is not None


def fista_result(problem, U0, tol, max_iter, monitor):
    """Sharded R-FISTA from U0 (c, P, d) as a
    :class:`~cvxnn_fast.common.run.Result` (Newton-CG's first phase)."""
    run, status, message, U, _, _ = _fista(
        problem, to_device(np.reshape(U0, (-1, problem.n_features)), problem.data),
        tol, max_iter, monitor)
    return Result(status, message, {"U": to_numpy(U, problem.weight_shape)},
                  run.n_iter, run.history, monitor.start, stop=run.stop)


def solve_sharded(problem, tol=1e-6, max_iter=DEFAULT_MAX_ITER, warm_start=None,
                  verbose=False, callback=None, time_limit=None, method="auto"):
    """R-FISTA or Newton-CG on a :class:`ShardedProblem`, called by every
    process.

    Same options, statuses and history as ``fast_solve``; ``verbose`` prints
    on rank 0 only; ``callback`` runs on every process (a stop asked by any
    process stops all of them at the next iteration). ``method``: "fista",
    "newton" (:func:`cvxnn_fast.pytorch.newton.solve_sharded`: its
    products and sums over the shards, its CG and line search replicated,
    its row subsamples drawn on every shard), or "auto" (Newton-CG where
    :func:`cvxnn_fast.newton.solver.preferred` says so, as in one process;
    the default).
    Every process returns the same Solution; its certificate is the device
    certificate (the same formulas as :mod:`cvxnn.core.certificates`, sums
    all-reduced), as no process holds the whole data. Ctrl-C is left to the
    launcher.
    """
    tol = check_positive_float(tol, "tol")
    max_iter = check_positive_int(max_iter, "max_iter")
    if time_limit is not None:
        time_limit = check_positive_float(time_limit, "time_limit")
    verbose = check_bool(verbose, "verbose")
    check_callback(callback)
    auto, method = method == "auto", check_method(problem, method)
    data, spec = problem.data, Spec.of(problem)
    rank = import_torch().distributed.get_rank(problem.group)
    monitor = Monitor(verbose and rank == 0, callback, time_limit, "solve_sharded")
    shape = problem.weight_shape
    info = {}
    if method == "newton":
        result = newton.solve_sharded(problem, to_numpy(_start(problem, warm_start),
                                                        shape), tol, max_iter, monitor,
                                      fista_result, stall=auto)
        status, message, n_iter, history = (result.status, result.message,
                                            result.n_iter, result.history)
        U, cert = to_device(result.blocks["U"].reshape(-1, shape[2]), data), None
        info.update(result.info)
        if result.info.get("stalled"):  # as fast_solve: R-FISTA goes on
            method = "fista"
            info = {"fallback_from": "newton", "newton_steps": n_iter}
    if method == "fista":
        start = U if info.get("fallback_from") else _start(problem, warm_start)
        run, status, message, U, cert, polished = _fista(problem, start, tol,
                                                         max_iter, monitor)
        if info.get("fallback_from"):  # Newton's steps first, as fast_solve
            run.history = joined_history(history, run.history)
        n_iter, history = run.n_iter, run.history
        info.update(metric_beta=run.metric_beta, feature_metric=run.feature_metric,
                    polished=polished)
    cert = cert or certificate(data, spec, U)
    U = to_numpy(U, shape).astype(problem.dtype)
    solution = settle_status(Solution(
        problem=problem, status=status, objective=cert.objective, U=U, V=None,
        W=None, solver="fast", solve_time=time.monotonic() - monitor.start,
        certificate=cert, n_iter=n_iter, history=history, message=message,
        info={"tol": tol, "method": method, "device": str(data.device),
              "dtype": str(data.dtype).replace("torch.", ""), **info,
              "world_size": import_torch().distributed.get_world_size(problem.group)}),
        tol, working="device")
    if solution.status != OPTIMAL:
        warnings.warn(f"solve_sharded: {solution.message}", ConvergenceWarning,
                      stacklevel=2)
    return solution
