r"""Optimality certificates: free functions of (problem, weights).

The same functions judge every backend. For the objective
``F = f(A U) + lam R(U)`` with ``f(Z) = (1/n) sum_j loss(Z_j, y_j)``:

* **objective**: F at the weights (:meth:`Problem.objective`).
* **duality gap**: ``F - D(S)`` at the dual point built from the residual,
  ``S = grad f(A U)``, rescaled into the dual feasible set
  (``S <- S * min(1, lam / R°(A^T S))`` for the norms group_l1,
  feature_group_l1 and l1; no rescaling is needed for l2). Weak duality makes
  it an upper bound on ``F - F*``; it is 0 exactly at the optimum. For ReLU
  the dual point also needs the cone multipliers; with them
  ``A^T S`` becomes ``A^T S - C^T lambda`` (V) and ``-A^T S - C^T mu`` (W).
  Available when lam > 0 and R is a norm or l2; None otherwise.
* **relative gap**: duality gap / max(|F|, 1e-12 f(0)), f(0) the data fit
  at zero (1e-12 where f(0) is 0; :func:`gap_floor`): the floor follows the
  objective's scale, so
  that an objective near zero (an interpolating fit) can be certified while
  targets of tiny scale (squared loss, y ~ 1e-8) are judged as at unit
  scale. With an absolute floor of 1e-12 the zero model of targets times
  1e-8 (F ~ 1e-16, four times the optimum) certified at once.
* **KKT residual**: Frobenius norm of the minimum-norm element of
  ``grad f + lam dR`` (for ReLU: of the Lagrangian's gradient with the
  multipliers, over V and W). **relative KKT residual** divides it by
  ``||grad f(0)||``, the gradient of the data fit at zero, so that it is
  dimensionless.
* **cone violation** (ReLU): ``max(0, -(2 D_ji - 1) X_j v_{k,i})`` over all
  samples, neurons and both blocks.

:attr:`Certificate.optimality` is the number stopping tests compare to
``tol``: the relative gap's magnitude where there is one, else the relative
KKT residual. A gap below zero is possible only for ReLU weights that violate
the cones (bought an objective below the optimum); by ``tol`` and more, it is
as far from a certificate as a positive one.
"""

from dataclasses import dataclass

import numpy as np

from cvxnn.core import operator
from cvxnn.core.cone_multipliers import relu_lam_max
from cvxnn.core.problem import check_problem
from cvxnn.core.validation import check_real, check_weights


@dataclass(frozen=True)
class Certificate:
    """What a solution proves about itself (see the module docstring).

    Attributes
    ----------
    objective : F at the weights.
    dual_objective, duality_gap, relative_gap : the dual value at the
        residual's dual point, ``F - D`` and ``(F - D) / |F|`` (None without
        a cheap dual point: lam = 0 or no norm; for ReLU, without the cone
        multipliers).
    kkt_residual, relative_kkt_residual : the minimum-norm element of
        ``grad f + lam dR``, and it over ``||grad f(0)||``.
    cone_violation : ReLU only, the largest violation of a cone constraint.
    optimality : what tol is compared to (property; see ``satisfied``).
    """

    objective: float
    dual_objective: float | None
    duality_gap: float | None
    relative_gap: float | None
    kkt_residual: float | None
    relative_kkt_residual: float | None
    cone_violation: float | None = None

    @property
    def optimality(self):
        """|relative gap| if available, else relative KKT residual (None if
        neither)."""
        if self.relative_gap is not None:
            return abs(self.relative_gap)
        return self.relative_kkt_residual

    def satisfied(self, tol, cone_tol=None):
        """True when optimality <= tol and (ReLU) cone violation <= cone_tol
        (both > 0; inf accepts any value)."""
        tol = check_real(tol, "tol", "a number > 0", _positive, finite=False)
        cone_tol = tol if cone_tol is None else check_real(
            cone_tol, "cone_tol", "a number > 0", _positive, finite=False)
        opt = self.optimality
        cones_ok = self.cone_violation is None or self.cone_violation <= cone_tol
        return opt is not None and opt <= tol and cones_ok

    def summary(self):
        """One line: the objective and every field that is known."""
        parts = [f"objective={self.objective:.8g}"]
        for name in ("duality_gap", "relative_gap", "kkt_residual",
                     "relative_kkt_residual", "cone_violation"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value:.3g}")
        return ", ".join(parts)


def _positive(value):
    return value > 0


def has_duality_gap(problem):
    """Whether a cheap dual point exists: lam > 0 and R a norm or l2."""
    reg = problem.regularizer
    return problem.lam > 0 and (reg.is_norm or reg.name == "l2")


def _dual_objective(problem, S_unscaled, Zs):
    """Dual value at the residual-based point.

    Zs are the blocks' ``A^T S - C^T lambda`` (the multipliers' term for ReLU).
    """
    reg, lam, n = problem.regularizer, problem.lam, problem.n_samples
    if reg.is_norm:
        worst = max(reg.dual_norm(Z) for Z in Zs)
        alpha = 1.0 if worst <= lam else lam / worst
        return -problem.loss.conjugate(alpha * S_unscaled, problem.y) / n
    conj = problem.loss.conjugate(S_unscaled, problem.y) / n
    return -conj + sum(reg.dual_value(Z, lam) for Z in Zs)


GAP_FLOOR = 1e-12


def gap_floor(problem):
    """The relative gap's denominator at the least: ``GAP_FLOOR`` times the
    data fit at zero; ``GAP_FLOOR`` itself where that is 0 (zero targets,
    or too small to square: U = 0 is optimal, and an iterate within 1e-12
    of it certifies, as before the floor followed the scale)."""
    return float(relative_floor(problem.zero_fit))


def relative_floor(zero_fit):
    """:func:`gap_floor` from the data fit at zero (the device and the
    interior point compute that on their own data)."""
    return GAP_FLOOR * zero_fit if zero_fit > 0 else GAP_FLOOR


def _gradient_scale(problem):
    scale = float(np.linalg.norm(problem.gradient_at_zero))
    return scale if scale > 0 else 1.0


def _residual_norm(problem, Zs, blocks):
    reg, lam = problem.regularizer, problem.lam
    total = 0.0
    for Z, B in zip(Zs, blocks, strict=True):
        R = reg.subgradient_residual(Z, B, lam) if lam > 0 else Z
        total += float(np.sum(R * R))
    return float(np.sqrt(total))


def _assemble(problem, blocks, Zs, S, cone_violation, with_dual=True, Yhat=None):
    """The certificate from the dual candidates; ``Yhat``, the predictions at
    ``blocks`` when already computed, saves one product for the objective."""
    primal = (problem.objective(**blocks) if Yhat is None else
              problem.data_fit(Yhat) + problem.penalty(blocks))
    dual = gap = rel = None
    if with_dual and has_duality_gap(problem):
        dual = float(_dual_objective(problem, S, Zs))
        gap = primal - dual
        rel = gap / max(abs(primal), gap_floor(problem))
    kkt = rel_kkt = None
    if with_dual:
        kkt = _residual_norm(problem, Zs, list(blocks.values()))
        rel_kkt = kkt / _gradient_scale(problem)
    return Certificate(primal, dual, gap, rel, kkt, rel_kkt, cone_violation)


def _data_gradient(problem, blocks):
    """Predictions Yhat and unscaled loss gradient S, both (n, n_outputs), and
    A^T S / n (n_outputs, P, d)."""
    Yhat = problem.model_predict(blocks)
    S = problem.loss.gradient(Yhat, problem.y)
    G = operator.adjoint(problem.X, problem.patterns, S) / problem.n_samples
    return Yhat, S, G


def gated_certificate(problem, U):
    """Certificate of gated ReLU weights U (n_outputs, P, d)."""
    blocks = problem.blocks(U=U)
    Yhat, S, G = _data_gradient(problem, blocks)
    return _assemble(problem, blocks, [G], S, None, Yhat=Yhat)


def relu_certificate(problem, V, W, multipliers=None):
    """Certificate of ReLU weights V, W, given the cone multipliers if known.

    ``multipliers`` is a pair ``(lam_V, lam_W)`` of nonnegative arrays
    (n_samples, n_outputs, P), one per cone constraint
    ``(2 D_ji - 1) X_j v_{k,i} >= 0``. Without them only the objective and the
    cone violation are reported.
    """
    blocks = problem.blocks(V=V, W=W)
    multipliers = _check_multipliers(problem, multipliers)
    violation = problem.formulation.cone_violation(problem, blocks)
    if multipliers is None:
        return _assemble(problem, blocks, [], None, violation, with_dual=False)
    Yhat, S, G = _data_gradient(problem, blocks)
    lam_V, lam_W = (np.maximum(m, 0) for m in multipliers)
    X, D = problem.X, problem.patterns
    Z_V = G - operator.cone_adjoint(X, D, lam_V)
    Z_W = -G - operator.cone_adjoint(X, D, lam_W)
    return _assemble(problem, blocks, [Z_V, Z_W], S, violation, Yhat=Yhat)


def _check_multipliers(problem, multipliers):
    """None, or the pair (lam_V, lam_W) as finite (n_samples, n_outputs, P)
    float arrays (their own float dtype kept: a float64 bound stays one)."""
    if multipliers is None:
        return None
    shape = (problem.n_samples, problem.n_outputs, problem.n_patterns)
    if not isinstance(multipliers, (tuple, list)) or len(multipliers) != 2:
        raise ValueError(f"multipliers: expected a pair (lam_V, lam_W) of arrays of "
                         f"shape {shape}, got {type(multipliers).__name__}"
                         + (f" of length {len(multipliers)}."
                            if isinstance(multipliers, (tuple, list)) else "."))
    return tuple(check_weights(m, f"multipliers[{i}]", shape, None)
                 for i, m in enumerate(multipliers))


def certificate(problem, U=None, *, V=None, W=None, multipliers=None):
    """Certificate of weights of either formulation (see the module docstring);
    ``multipliers`` (ReLU only) as in :func:`relu_certificate`."""
    check_problem(problem)
    if problem.formulation.has_cones:
        return relu_certificate(problem, V, W, multipliers)
    if multipliers is not None:
        raise ValueError("multipliers: the gated_relu problem has no cone "
                         "constraints; pass them for a relu problem only.")
    return gated_certificate(problem, U)


def lam_max(problem):
    """Smallest lam for which the zero weights solve the program (norms only).

    Gated ReLU: ``lam_max = R°(grad f(0))``, the dual norm of the data-fit
    gradient at 0. ReLU: the cone multipliers enter; see
    :func:`cvxnn.core.cone_multipliers.relu_lam_max`.
    """
    check_problem(problem)
    if problem.formulation.has_cones:
        return relu_lam_max(problem)
    reg = problem.regularizer
    if not reg.is_norm:
        raise ValueError(
            f"regularizer: lam_max exists only for norms (group_l1, "
            f"feature_group_l1, l1), not {reg.name!r}."
        )
    return reg.dual_norm(problem.gradient_at_zero)
