r"""The certificate on a device: the formulas of :mod:`cvxnn.core.certificates`.

Same dual point (the loss gradient S at the weights, rescaled by
``alpha = min(1, lam / R°(A^T S / n))`` for the norms; for l2 the dual adds
``-||A^T S / n||^2 / (2 lam)``), same KKT residual and the same
normalizations, computed from the device operator so that a sharded problem
gets them through all-reduces. Everything is returned as Python floats.
"""

import math
from dataclasses import dataclass

from cvxnn.core.certificates import Certificate, relative_floor
from cvxnn_fast.pytorch import losses, penalties


@dataclass(frozen=True)
class Spec:
    """What the device solver needs to know of a problem's objective."""

    loss: str
    reg: str | None  # None when there is no penalty (also when lam is 0)
    lam: float
    n_outputs: int

    @classmethod
    def of(cls, problem):
        reg = problem.regularizer.name if problem.lam > 0 else None
        return cls(problem.loss.name, reg, float(problem.lam), problem.n_outputs)

    @property
    def reg_is_norm(self):
        return self.reg in ("group_l1", "feature_group_l1", "l1")

    @property
    def has_gap(self):
        """As :func:`cvxnn.core.certificates.has_duality_gap`."""
        return self.lam > 0 and (self.reg_is_norm or self.reg == "l2")


def at_point(data, spec, Z, extra=()):
    """Loss sum and gradient at predictions Z: (data fit, S, G = A^T S / n,
    the sums over processes of ``extra`` float scalars)."""
    fit_sum, S = losses.value_and_gradient(spec.loss, Z, data.Y)
    G = data.adjoint(S)
    G /= data.n_samples
    sums = data.sum_scalars(fit_sum, *extra)
    return sums[0] / data.n_samples, S, G, sums[1:]


def dual_value(data, spec, S, G):
    """The dual objective at the residual-based dual point (has_gap only)."""
    alpha = 1.0
    if spec.reg_is_norm:
        worst = penalties.dual_norm(spec.reg, G)
        alpha = 1.0 if worst <= spec.lam else spec.lam / worst
    conj = data.sum_scalars(losses.conjugate_sum(spec.loss, S, data.Y, alpha))[0]
    dual = -conj / data.n_samples
    if spec.reg == "l2":
        dual -= float((G.double() ** 2).sum()) / (2.0 * spec.lam)
    return dual


def gap_floor(data, spec):
    """As :func:`cvxnn.core.certificates.gap_floor`: ``GAP_FLOOR`` times the
    data fit at zero (one all-reduce)."""
    fit_sum, _ = losses.value_and_gradient(spec.loss, data.Y.new_zeros(data.Y.shape),
                                           data.Y)
    return relative_floor(data.sum_scalars(fit_sum)[0] / data.n_samples)


def relative_gap(objective, dual, floor):
    """|F - D| / max(|F|, floor), as
    :attr:`cvxnn.core.certificates.Certificate.optimality` (floor:
    :func:`gap_floor`)."""
    return abs(objective - dual) / max(abs(objective), floor)


def gradient_scale(data, spec):
    """||grad f(0)||, the KKT residual's normalization (1 where it is 0)."""
    S0 = losses.gradient_at_zero(spec.loss, data.Y)
    scale = float(data.adjoint(S0).double().norm()) / data.n_samples
    return scale if scale > 0 else 1.0


def certificate(data, spec, U, grad0=None):
    """:class:`~cvxnn.core.certificates.Certificate` of gated weights U (c P, d)."""
    fit, S, G, _ = at_point(data, spec, data.forward(U))
    primal = fit + spec.lam * penalties.value(spec.reg, U)
    dual = gap = rel = None
    if spec.has_gap:
        dual = dual_value(data, spec, S, G)
        gap = primal - dual
        rel = gap / max(abs(primal), gap_floor(data, spec))  # signed, as the host's
    kkt = math.sqrt(penalties.residual_sq(spec.reg, G, U, spec.lam))
    grad0 = gradient_scale(data, spec) if grad0 is None else grad0
    return Certificate(primal, dual, gap, rel, kkt, kkt / grad0, None)
