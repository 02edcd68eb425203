r"""Cone decomposition: a gated ReLU solution becomes a ReLU network.

Given gated weights ``U`` on the patterns ``D``, :func:`decompose` finds ``V``
and ``W`` with

.. math:: V - W = U, \qquad v_{k,i},\ w_{k,i} \in K_i =
          \{w : (2 D_i - I) X w \ge 0\},

so that ``D_i X v = max(X v, 0)``: the ReLU network built from ``(V, W)``
predicts on the training data exactly what the gated model predicts. The
blocks are independent; each non-zero block ``u`` (zero blocks give
``v = w = 0``) is split by one of two methods:

* ``method="cvxpy"``: the exact second-order-cone program
  :math:`\min \sum \|v_{k,i}\| + \|w_{k,i}\|` (the group_l1 regularizer of the
  ReLU program) over all blocks at once, with any installed CVXPY solver
  (``solver="CLARABEL"`` by default).
* ``method="fast"``: the documented approximation :math:`w = \arg\min \|w\|`
  s.t. ``w`` and ``u + w`` in ``K_i``, then ``v = u + w``: one least-distance
  program per block, solved exactly by the active-set NNLS of
  :func:`cvxnn.decomposition.cones.least_distance` (milliseconds per block; first-order
  methods, dual projected FISTA and ADMM, were tried and need thousands of
  iterations on these thin cones). It preserves the training predictions
  exactly like the exact method; only the group norm ``sum ||v|| + ||w||``
  can be larger than the SOCP's (it equals it when ``u`` is in its cone,
  where ``w = 0``), and the report says by how much it grew over
  ``sum ||u||`` (``norm_growth``).

Either way the remaining solver-tolerance violation is then removed exactly
by moving ``w`` along an interior direction of its cone
(:func:`~cvxnn.decomposition.cones.repair`). A block cannot be split when
its cone has an empty interior and ``u`` is not in ``K_i - K_i`` (a proper
subspace then); such blocks are detected exactly
(:func:`~cvxnn.decomposition.cones.least_distance`), kept as
``v = u, w = 0`` (so ``V - W = U`` still holds but their cones are
violated), listed per pattern in the report, and announced by a
:class:`DecompositionWarning`; the solution's status is then ``"infeasible"``.
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from cvxnn._optional import cvxpy as cp
from cvxnn.core import operator
from cvxnn.core.cvxpy_solvers import check_solver
from cvxnn.core.problem import check_problem, relu_twin, same_array
from cvxnn.core.solution import Solution
from cvxnn.core.status import INFEASIBLE, OPTIMAL
from cvxnn.core.validation import check_choice, check_options, check_weights
from cvxnn.decomposition.cones import Cones, least_distance, repair

METHODS = ("fast", "cvxpy")


class DecompositionWarning(UserWarning):
    """Some block of a gated solution cannot be split into its cone."""


@dataclass(frozen=True)
class DecompositionReport:
    """What a decomposition did (``solution.info["decomposition"]``).

    Attributes
    ----------
    method : ``"fast"`` or ``"cvxpy"``.
    n_blocks : non-zero gated blocks that were split.
    undecomposable_blocks : ``(k, i)`` of the blocks that could not be split.
    undecomposable_patterns : the patterns ``i`` among them.
    degenerate_patterns : patterns of non-zero blocks whose cone has an empty
        interior (their blocks may still split, see the module docstring).
    gated_objective, relu_objective : the two programs' objectives at ``U``
        and at ``(V, W)``.
    gated_norm, relu_norm : ``sum ||u_{k,i}||`` and
        ``sum ||v_{k,i}|| + ||w_{k,i}||``.
    cone_violation : ``max(0, -(2 D_ji - 1) X_j v)`` over V and W.
    prediction_gap : max over the training data of
        ``|relu network - gated model|``.
    n_iter : the conic solver's iterations ("cvxpy"), None for "fast".
    solver_status : status of the split (``"optimal"``, the conic solver's
        status, or ``"infeasible"`` when some block cannot be split).
    """

    method: str
    n_blocks: int
    undecomposable_blocks: tuple
    undecomposable_patterns: tuple
    degenerate_patterns: tuple
    gated_objective: float
    relu_objective: float
    gated_norm: float
    relu_norm: float
    cone_violation: float
    prediction_gap: float
    n_iter: int | None
    solver_status: str

    @property
    def exact(self):
        """True when every block was split (the cones hold up to rounding)."""
        return not self.undecomposable_blocks

    @property
    def norm_growth(self):
        """``relu_norm / gated_norm`` (>= 1; 1 when U = 0)."""
        return self.relu_norm / self.gated_norm if self.gated_norm > 0 else 1.0

    @property
    def objective_growth(self):
        """``relu_objective - gated_objective``."""
        return self.relu_objective - self.gated_objective

    def summary(self):
        return (f"{self.method}: {self.n_blocks} blocks, norm growth "
                f"{self.norm_growth:.6g}, objective {self.gated_objective:.8g} -> "
                f"{self.relu_objective:.8g}, cone violation "
                f"{self.cone_violation:.3g}, prediction gap "
                f"{self.prediction_gap:.3g}, undecomposable patterns "
                f"{list(self.undecomposable_patterns)}")


@dataclass
class _Blocks:
    """The non-zero gated blocks and the cones they are split into."""

    k: np.ndarray  # output of each block, (M,)
    i: np.ndarray  # pattern of each block, (M,)
    cone: np.ndarray  # index of each block's pattern in `cones`, (M,)
    U: np.ndarray  # (M, d) float64
    cones: Cones

    @property
    def signs(self):
        return self.cones.signs[:, self.cone]

    @property
    def degenerate(self):
        return self.cones.degenerate[self.cone]


def _gated_weights(problem, solution):
    """U from a gated Solution of ``problem`` or an array, validated."""
    if isinstance(solution, Solution):
        if solution.U is None:
            raise ValueError(f"solution: the solve failed ({solution.status}); there "
                             "are no weights to decompose.")
        if solution.problem.formulation.has_cones:
            raise ValueError("solution: expected a gated_relu solution, got a "
                             f"{solution.problem.formulation.name} one.")
        for name in ("patterns", "input_scale", "X"):
            if not same_array(getattr(solution.problem, name), getattr(problem, name)):
                what = {"patterns": "activation patterns", "X": "data",
                        "input_scale": "column scales (standardize)"}[name]
                raise ValueError(f"solution: it was computed on other {what} than "
                                 "problem's.")
        solution = solution.U
    return check_weights(solution, "solution", problem.weight_shape, problem.dtype)


def _active_blocks(problem, U):
    k, i = np.nonzero(np.linalg.norm(U, axis=2) > 0)
    used, inverse = np.unique(i, return_inverse=True)
    return _Blocks(k, i, inverse, U[k, i].astype(np.float64), Cones(problem, used))


def _least_distance_split(blocks, which):
    """Exact minimum-norm splits ``w`` of the blocks ``which`` (LDP per block).

    Returns (W, ok): W (M, d) with the rows of ``which`` filled, ok (M,)
    False where a block cannot be split (only possible on degenerate cones).
    """
    X = blocks.cones.X
    W = np.zeros_like(blocks.U)
    ok = np.ones(len(blocks.k), dtype=bool)
    signs = blocks.signs
    for m in np.flatnonzero(which):
        C = signs[:, m, None] * X
        w = least_distance(C, np.maximum(0.0, -(C @ blocks.U[m])))
        if w is None:
            ok[m] = False
        else:
            W[m] = w
    return W, ok


def _split_cvxpy(blocks, W, ok, solver, options):
    """The exact SOCP over the splittable blocks; W filled in place."""
    X, U, S = blocks.cones.X, blocks.U[ok], blocks.signs[:, ok]
    if U.shape[0] == 0:
        return W, OPTIMAL, 0
    Wv = cp.Variable(U.shape, name="W")
    B = np.maximum(0.0, -S * (X @ U.T))
    objective = cp.sum(cp.norm(Wv + U, 2, axis=1)) + cp.sum(cp.norm(Wv, 2, axis=1))
    program = cp.Problem(cp.Minimize(objective), [cp.multiply(S, X @ Wv.T) >= B])
    try:
        program.solve(solver=solver, **options)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"decompose(method='cvxpy'): {solver} failed ({exc}); "
                           "try another solver or method='fast'.") from exc
    if Wv.value is None or program.status not in cp.settings.SOLUTION_PRESENT:
        raise RuntimeError(f"decompose(method='cvxpy'): {solver} returned status "
                           f"{program.status!r} and no split; try method='fast'.")
    W[ok] = Wv.value
    return W, program.status, program.solver_stats.num_iters


def _check_method_options(method, solver, options):
    """The CVXPY solver name for "cvxpy" (default CLARABEL); "fast" takes
    neither a solver nor options."""
    if method == "fast":
        if solver is not None:
            raise ValueError(f"solver: only method='cvxpy' uses a CVXPY solver; "
                             f"method='fast' got solver={solver!r}.")
        check_options(options, (), "decompose(method='fast')")
        return None
    return check_solver("CLARABEL" if solver is None else solver, options)


def decompose(problem, solution, method="fast", *, solver=None, **options):
    r"""Split a gated ReLU solution into the cones of the ReLU program.

    Parameters
    ----------
    problem : a gated_relu :class:`~cvxnn.core.problem.Problem`.
    solution : a :class:`~cvxnn.core.solution.Solution` of ``problem`` (or of a
        problem with the same patterns) or an array U (n_outputs, P, d).
    method : ``"fast"`` (default) or ``"cvxpy"`` (see the module docstring).
    solver : CVXPY solver for ``method="cvxpy"`` (any installed one; default
        CLARABEL). Not taken by ``method="fast"``.
    **options : the CVXPY solver's own options (``method="cvxpy"`` only).

    Returns
    -------
    Solution of the ReLU twin of ``problem`` (:func:`cvxnn.core.problem.relu_twin`:
    same data, patterns, gates, loss, regularizer and lam) at ``(V, W)``,
    ``V - W = U``. Its certificate reports the cone violation and the ReLU
    objective; ``solution.info["decomposition"]`` is a
    :class:`DecompositionReport` (norm growth, undecomposable patterns, ...).
    Status: ``"optimal"`` when every block was split (for ``"cvxpy"``, the
    conic solver's status), ``"infeasible"`` when some block cannot be.

    Raises
    ------
    RuntimeError
        When the CVXPY solver fails on the splitting program.
    """
    start = time.perf_counter()
    check_problem(problem)
    if problem.formulation.has_cones:
        raise ValueError("problem: decompose needs the gated_relu problem whose "
                         f"solution is split, got a {problem.formulation.name} one.")
    check_choice(method, "method", METHODS)
    solver = _check_method_options(method, solver, options)
    U = _gated_weights(problem, solution)
    blocks = _active_blocks(problem, U)
    # Exact LDP: every block for "fast", the degenerate-cone ones for "cvxpy"
    # (which both proves whether they split and gives a feasible split).
    which = np.ones(len(blocks.k), bool) if method == "fast" else blocks.degenerate
    W, ok = _least_distance_split(blocks, which)
    status, n_iter, name = OPTIMAL, None, "decompose[fast]"
    if method == "cvxpy":
        W, status, n_iter = _split_cvxpy(blocks, W, ok, solver, options)
        name = f"decompose[cvxpy:{solver}]"
    W = repair(blocks.cones, blocks.cone, blocks.U, W)
    W[~ok] = 0.0
    W = _exact_ends(blocks, W)
    return _assemble(problem, U, blocks, W, ok, status, n_iter, method, name, start)


def _exact_ends(blocks, W):
    """W with the splits that need no arithmetic made exact: u in its cone
    splits as v = u, w = 0, and u in minus its cone as v = 0, w = -u. Both
    reach ``||v|| + ||w|| = ||u||``, the least any split can (triangle
    inequality), with one neuron; a conic solver returned them only to its
    tolerance (a spurious neuron of norm ~2e-7) and the least-distance split
    left v at rounding level."""
    signed = blocks.signs * (blocks.cones.X @ blocks.U.T)  # (n, M)
    W = W.copy()
    inside, opposite = (signed >= 0).all(axis=0), (signed <= 0).all(axis=0)
    W[opposite & ~inside] = -blocks.U[opposite & ~inside]
    W[inside] = 0.0
    return W


def _relu_predictions(X, V, W):
    """``sum_i max(X v_i, 0) - max(X w_i, 0)`` per output, (n, n_outputs)."""
    return (np.maximum(operator.products(X, V), 0).sum(axis=2)
            - np.maximum(operator.products(X, W), 0).sum(axis=2))


def _assemble(problem, U, blocks, W_act, ok, status, n_iter, method, name, start):
    V = np.zeros(problem.weight_shape)
    W = np.zeros(problem.weight_shape)
    W[blocks.k, blocks.i] = W_act
    V[blocks.k, blocks.i] = blocks.U + W_act
    bad = [(int(k), int(i)) for k, i in zip(blocks.k[~ok], blocks.i[~ok], strict=True)]
    patterns = tuple(sorted({i for _, i in bad}))
    if bad:
        status = INFEASIBLE
        empty = sorted({int(i) for i in blocks.i[~ok & blocks.degenerate]})
        thin = sorted(set(patterns) - set(empty))
        why = ([f"patterns {empty}: the cone has an empty interior and u is not "
                "in K_i - K_i"] if empty else []) + (
               [f"patterns {thin}: the cone is too thin for the least-distance "
                "split, whose w would exceed about 1e6 times the rows' scale; "
                "method='cvxpy' may split them"] if thin else [])
        warnings.warn(
            f"decompose: {len(bad)} block(s) cannot be split into their cones "
            f"({'; '.join(why)}); they are kept as v = u, w = 0 and violate the "
            "cones.", DecompositionWarning, stacklevel=3)
    twin = relu_twin(problem)
    sol = Solution.from_weights(twin, status=status, solver=name,
                                solve_time=time.perf_counter() - start, V=V, W=W,
                                n_iter=n_iter)
    X = problem.X
    gap = np.max(np.abs(_relu_predictions(X, sol.V, sol.W)
                        - operator.predict(X, problem.patterns, U)), initial=0.0)
    report = DecompositionReport(
        method=method, n_blocks=len(blocks.k), undecomposable_blocks=tuple(bad),
        undecomposable_patterns=patterns,
        degenerate_patterns=tuple(int(i) for i in np.unique(
            blocks.i[blocks.degenerate])),
        gated_objective=float(problem.objective(U)), relu_objective=sol.objective,
        gated_norm=float(np.linalg.norm(U, axis=2).sum()),
        relu_norm=float(np.linalg.norm(sol.V, axis=2).sum()
                        + np.linalg.norm(sol.W, axis=2).sum()),
        cone_violation=float(sol.certificate.cone_violation),
        prediction_gap=float(gap), n_iter=n_iter, solver_status=status)
    sol.info["decomposition"] = report
    if bad:
        sol.message = report.summary()
    return sol
