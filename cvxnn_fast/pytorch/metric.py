r"""The pattern-mean metric on a device: ``cvxnn_fast/fista/_metric.pxd`` in torch.

R-FISTA on gated ReLU runs in ``M = I + beta Pi``, ``Pi`` the projector onto
the weights that repeat one vector over the P neurons of an output (see
:mod:`cvxnn_fast.fista.preconditioner` for why). On (c P, d) weights viewed
as (c, P, d):

* step: ``y - t M^{-1} g = y - t (g - beta / (1 + beta) mean_k(g))``;
* norm: ``||x||_M^2 = ||x||^2 + beta P sum_k ||mean_k(x)||^2``;
* prox of ``t R`` in M (group_l1, l1, l2): ``x_i = prox_tR(z_i - beta m_k)``
  with ``m_k`` the root of ``F(m) = m - mean_i(x_i - z_i)``, found by damped
  diagonal quasi-Newton steps, then inexact Newton (Jacobi-preconditioned CG
  on ``I + (beta / P) (diag + W^T W)``) for the outputs where they stall;
  the same steps, tests and constants as the compiled kernel, batched over
  the c outputs, in float64 whatever the working dtype (c P d entries per
  evaluation, against n c P d for a product).

Everything here acts on replicated weights and gradients: no communication.
The beta rule (:func:`beta`) is that of
:func:`cvxnn_fast.fista.solver.metric_beta`, on all rows: its d x d Gram
matrix is one all-reduce, its power iterations one adjoint each.
"""

import numpy as np

from cvxnn_fast.fista import preconditioner
from cvxnn_fast.fista.solver import CURVATURE
from cvxnn_fast.pytorch.device import import_torch

NEWTON_STEPS = 50  # as _metric.pxd
HALVINGS = 30
CG_STEPS = 20
OFF_SPIKE_ITERATIONS = 5  # power iterations of metric_beta


def applies(spec, n_patterns):
    """True where the compiled loop may use the metric (see preconditioner)."""
    return spec.reg in preconditioner.REGULARIZERS and n_patterns > 1


def block_mean(x, c):
    """Pi x: each output's mean over its neurons, repeated (x is (c P, d))."""
    rows, d = x.shape
    mean = x.view(c, rows // c, d).mean(dim=1, keepdim=True)
    return mean.expand(c, rows // c, d).reshape(rows, d)


def per_row(scale, rows):
    """Per-output multipliers (c,) repeated over each output's rows, (rows, 1)."""
    return scale.repeat_interleave(rows // scale.shape[0])[:, None]


def step(y, g, t, beta, c, scale=None):
    """``y - t M^{-1} g`` in float64, the prox's input (as the compiled
    loop's spike_step: a step rounded to float32 drifts the momentum); with
    per-output ``scale`` (c,) output k's block takes ``t * scale[k]`` (the
    metric ``M / scale[k]`` there)."""
    g = g.double()
    direction = g - beta / (1.0 + beta) * block_mean(g, c) if beta > 0 else g
    if scale is not None:
        t = t * per_row(scale, y.shape[0]).double()
    return y.double() - t * direction


def squared_distance(x, y, beta, c, scale=None):
    """``||x - y||_M^2`` (float, accumulated in float64), output k's block
    divided by ``scale[k]`` where given."""
    delta = x.double() - y.double()
    P = x.shape[0] // c
    mean = delta.view(c, P, -1).mean(dim=1)
    blocks = (delta * delta).view(c, -1).sum(dim=1) + beta * P * (mean * mean).sum(
        dim=1)
    return float((blocks if scale is None else blocks / scale).sum())


def spike_curvature(data):
    """``lambda_max(X^T diag(counts^2) X) / (n P)`` over all rows (one d x d
    all-reduce), as :func:`cvxnn_fast.fista.preconditioner.spike_curvature`."""
    torch = data.torch
    gram = data.X.new_zeros((data.n_features, data.n_features), dtype=torch.float64)
    for start in range(0, data.X.shape[0], data.block):
        Xb = data.X[start:start + data.block].double()
        counts = data.D[start:start + data.block].sum(dim=1, dtype=torch.float64)
        gram.addmm_(Xb.T, counts[:, None] ** 2 * Xb)
    gram = data.sum(gram)
    if not bool(torch.isfinite(gram).all()):
        return np.inf
    top = float(np.linalg.eigvalsh(gram.cpu().numpy())[-1])
    return top / (data.n_samples * data.n_patterns)


def largest_curvature(data, curvature, transform, iterations):
    """Power iterations on ``T H``, ``H = curvature A^T A / n``, from the
    compiled driver's seeded start (T: ``transform``)."""
    torch = data.torch
    shape = (data.weight_rows, data.n_features)
    r = torch.from_numpy(np.random.default_rng(0).standard_normal(shape))
    r = transform(r.to(device=data.device, dtype=data.dtype))
    L = 1.0
    for _ in range(iterations):
        norm = float(r.double().norm())
        if norm == 0:
            return 0.0
        r = r / norm
        r = transform(data.adjoint(data.forward(r)) * (curvature / data.n_samples))
        L = float(r.double().norm())
    return L


def beta(data, spec):
    """beta of the metric: :data:`preconditioner.BETA` where the curvature
    along repeated weights is at least ``MIN_RATIO`` times the largest off
    them, else 0 (as :func:`cvxnn_fast.fista.solver.metric_beta`)."""
    if not applies(spec, data.n_patterns):
        return 0.0
    c = data.n_outputs
    spike = CURVATURE[spec.loss] * spike_curvature(data)
    rest = largest_curvature(data, CURVATURE[spec.loss],
                             lambda v: v - block_mean(v, c), OFF_SPIKE_ITERATIONS)
    if not (np.isfinite(spike) and np.isfinite(rest)) or rest <= 0:
        return 0.0
    return preconditioner.BETA if spike >= preconditioner.MIN_RATIO * rest else 0.0


class _Rows:
    """The rows' prox at m: mean over rows (c, d), diagonal part of its
    Jacobian summed over rows (c, d), and (group_l1) the shifted rows w and
    the factors f (c, P) of the low-rank part ``W_i = f_i w_i`` (with
    ``f_i^2 = t / ||w_i||^3`` on active rows); the prox itself is not formed
    (see :func:`_prox_rows`): the mean comes from one contraction."""

    def __init__(self, reg, z, z_mean, m, beta, t):
        torch = import_torch()
        self.reg, self.t, P, d = reg, t, z.shape[1], z.shape[2]
        self.w, self.factor = None, None
        if reg == "l2":  # linear: the mean in closed form, no pass over rows
            self.mean = (z_mean - beta * m) / (1.0 + _shaped(t, 2))
            self.diag = (P / (1.0 + _shaped(t, 2))) * torch.ones_like(m)
            return
        self.w = z - beta * m[:, None, :]
        if reg == "group_l1":
            t = _shaped(t, 2)
            norm = self.w.norm(dim=2)
            on = norm > t
            safe = torch.where(on, norm, 1.0)
            self.scale = torch.where(on, 1.0 - t / safe, 0.0)
            self.factor = torch.where(on, torch.sqrt(t / safe) / safe, 0.0)
            self.mean = torch.einsum("kp,kpd->kd", self.scale, self.w) / P
            self.diag = self.scale.sum(dim=1, keepdim=True).expand(-1, d)
        else:  # l1
            t = _shaped(t, 3)
            size = self.w.abs()
            on = size > t
            self.scale = torch.where(on, 1.0 - t / torch.where(on, size, 1.0), 0.0)
            self.mean = (self.scale * self.w).mean(dim=1)
            self.diag = on.sum(dim=1, dtype=m.dtype)


def _evaluate(reg, z, z_mean, m, beta, t):
    """The rows at m, F(m) = m - mean_i(x_i - z_i) and ||F||^2 per output."""
    rows = _Rows(reg, z, z_mean, m, beta, t)
    F = m - (rows.mean - z_mean)
    return rows, F, (F * F).sum(dim=1)


def _shaped(t, ndim):
    """A threshold: a float, or per output (c, 1) broadcast to ``ndim`` axes."""
    return t if isinstance(t, float) else t.view(-1, *([1] * (ndim - 1)))


def _dot(a, b):
    return (a * b).sum(dim=1)


def _newton_direction(F, rows, coef):
    """Solve ``(I + coef (diag + W^T W)) delta = F`` per output by
    Jacobi-preconditioned CG (at most CG_STEPS steps, to 1e-8 relative
    residual), matrix-free; outputs stop one by one, as the compiled kernel."""
    torch = import_torch()
    base = 1.0 + coef * rows.diag
    prec = base
    if rows.factor is not None:
        prec = base + coef * torch.einsum("kp,kpd->kd", rows.factor**2, rows.w**2)
    delta, r = torch.zeros_like(F), F.clone()
    p = r / prec
    rz, r0 = _dot(r, p), _dot(r, r)
    live = torch.ones_like(r0, dtype=torch.bool)
    for _ in range(CG_STEPS):
        q = base * p
        if rows.factor is not None:
            Wp = rows.factor**2 * torch.einsum("kpd,kd->kp", rows.w, p)
            q = q + coef * torch.einsum("kpd,kp->kd", rows.w, Wp)
        pq = _dot(p, q)
        live = live & (pq > 0)
        alpha = torch.where(live, rz / torch.where(live, pq, 1.0), 0.0)
        delta = delta + alpha[:, None] * p
        r = r - alpha[:, None] * q
        rz_new = _dot(r, r / prec)
        live = live & (_dot(r, r) > 1e-16 * r0)
        if not bool(live.any()):
            break
        p = r / prec + torch.where(live, rz_new / rz, 0.0)[:, None] * p
        rz = torch.where(live, rz_new, rz)
    return delta


def prox(reg, v, t, beta, c, m, scale=None, dtype=None):
    """The prox of ``t R`` at v (c P, d) in M (a new tensor of ``dtype``,
    default v's); ``m`` (c, d), float64, holds each output's shift: the
    start, updated in place. With per-output ``scale`` (c,) output k's block
    takes ``t * scale[k]``."""
    dtype = v.dtype if dtype is None else dtype
    if reg is None or t == 0:
        return v.to(dtype, copy=True)
    if scale is not None:
        t = t * scale
    torch = import_torch()
    z = v.double().view(c, -1, v.shape[1])
    z_mean, coef = z.mean(dim=1), beta / z.shape[1]
    scale = 1e-26 * ((z * z).sum(dim=(1, 2)) / z.shape[1] + 1e-300)
    rows, F, sq = _evaluate(reg, z, z_mean, m, beta, t)
    diag, running = rows.diag, sq > scale
    full = torch.zeros_like(running)
    for _ in range(NEWTON_STEPS):
        if not bool(running.any()):
            break
        delta = F / (1.0 + coef * diag)
        if bool((full & running).any()):
            rows = _Rows(reg, z, z_mean, m, beta, t)  # W at m
            delta = torch.where(full[:, None], _newton_direction(F, rows, coef),
                                delta)
        m_new, F_new, diag_new, sq_new, accepted = _halvings(
            reg, z, z_mean, m, delta, sq, running, beta, t)
        full = full | (accepted & (sq_new > 1e-2 * sq))
        m.copy_(torch.where(accepted[:, None], m_new, m))
        F = torch.where(accepted[:, None], F_new, F)
        diag = torch.where(accepted[:, None], diag_new, diag)
        sq = torch.where(accepted, sq_new, sq)
        running = accepted & (sq > scale)
    return _prox_rows(reg, z, z_mean, m, beta, t).reshape(v.shape).to(dtype)


def _prox_rows(reg, z, z_mean, m, beta, t):
    """``prox_tR(z_i - beta m)`` for every row, (c, P, d)."""
    if reg == "l2":
        return (z - beta * m[:, None, :]) / (1.0 + _shaped(t, 3))
    rows = _Rows(reg, z, z_mean, m, beta, t)
    scale = rows.scale[:, :, None] if reg == "group_l1" else rows.scale
    return scale * rows.w


def _halvings(reg, z, z_mean, m, delta, sq, running, beta, t):
    """Backtrack ``m - alpha delta`` (alpha halved per output) until ||F||^2
    decreases; returns (m, F, diag, ||F||^2, accepted) of the outputs that
    found a decrease (the others give up: m is at rounding level)."""
    torch = import_torch()
    alpha = torch.ones_like(sq)
    done = ~running
    best = [m.clone(), torch.zeros_like(m), torch.zeros_like(m), sq.clone()]
    accepted = torch.zeros_like(running)
    for _ in range(HALVINGS):
        trial = m - alpha[:, None] * delta
        rows, F, new_sq = _evaluate(reg, z, z_mean, trial, beta, t)
        ok = ~done & (new_sq < sq)
        for i, value in enumerate((trial, F, rows.diag)):
            best[i] = torch.where(ok[:, None], value, best[i])
        best[3] = torch.where(ok, new_sq, best[3])
        accepted, done = accepted | ok, done | ok
        if bool(done.all()):
            break
        alpha = torch.where(done, alpha, 0.5 * alpha)
    return (*best, accepted)
