r"""The eigenbasis feature metric of R-FISTA on a device.

Group norms ``||u_i||`` (and ``||U||^2``) do not change under an orthogonal
change of feature basis. With ``Sigma = X^T X / n = Q diag(lam_j) Q^T``
(d x d, float64, one all-reduce when sharded; every process runs the same
``eigh``), R-FISTA runs on ``X Q`` with weights ``W = U Q``: same objective,
patterns and certificate, and in that basis the metric
``M = I_{cP} (x) diag(m)``, ``m_j = lam_j + delta``, fits the curvature of
correlated features (see ``docs/design/feature-metric.md``):

* step: ``z = y - t g / m``; norm: ``||x||_M^2 = sum_j m_j ||x_{:, j}||^2``;
* prox of ``t R`` in M, per group (row) ``z_i``: ``w_i = 0`` where
  ``||m z_i|| <= t``, else ``w_i = u m z_i / (1 + u m)`` with ``u > 0`` the
  root of ``1 / ||m z_i / (1 + u m)|| = 1 / t`` (a concave increasing
  function of u: Newton from ``u = 0`` increases monotonically to it, and
  is exact in one step when m is constant); l2: ``w = m z / (m + t)``.

With ``beta > 0`` the metric is ``(I + beta Pi) (x) diag(m)`` (the
pattern-mean part of :mod:`cvxnn_fast.pytorch.metric`): ``x_i =
prox(z_i - beta s)`` with each output's shift s found by diagonal
quasi-Newton steps; off by default (see the design note).

Only for the rotation-invariant regularizers (group_l1, l2, none). The cost
is one ``n d^2`` GEMM for Sigma and one for ``X Q`` at setup, a copy of X,
and ``O(c P d)`` per prox (against ``n c P d`` per product).
"""

from cvxnn_fast.fista.feature_metric import basis, considered, wanted
from cvxnn_fast.pytorch.device import import_torch
from cvxnn_fast.pytorch.metric import block_mean, per_row
from cvxnn_fast.pytorch.operator import DeviceData

NEWTON_STEPS = 60
NEWTON_RTOL = 1e-14
SHIFT_STEPS = 50
SHIFT_RTOL = 1e-10  # ||F|| relative to the rows' size
HALVINGS = 30


def gram(data):
    """``X^T X / n`` over all rows (float64, host NumPy; one all-reduce)."""
    torch = data.torch
    G = data.X.new_zeros((data.n_features, data.n_features), dtype=torch.float64)
    for start in range(0, data.X.shape[0], data.block):
        Xb = data.X[start:start + data.block].double()
        G.addmm_(Xb.T, Xb)
    return data.sum(G).cpu().numpy() / data.n_samples


class FeatureMetric:
    """Basis Q (d, d) and weights m (d,) of the metric, on the data's device."""

    def __init__(self, data, Q, m):
        torch = data.torch
        self.Q = torch.from_numpy(Q).to(device=data.device, dtype=torch.float64)
        self.m = torch.from_numpy(m).to(device=data.device, dtype=torch.float64)
        if data.sharded:  # one basis for all (eigh may differ across hosts in signs)
            dist = torch.distributed
            src = 0 if data.group is None else dist.get_global_rank(data.group, 0)
            for tensor in (self.Q, self.m):
                dist.broadcast(tensor, src=src, group=data.group)
        self.spread = float(self.m.max() / self.m.min())
        self.root = None  # the group prox's last roots: the next one's start
        self.beta, self.c = 0.0, data.n_outputs  # spike part: (I + beta Pi) (x) .
        self.shift = None  # each output's shift (c, d): the next prox's start

    @classmethod
    def of(cls, data, damping=None):
        """From the eigendecomposition of the data's Gram matrix (damping:
        delta / mean(lam), default feature_metric.DAMPING of the compiled loop)."""
        return cls(data, *basis(gram(data), damping))

    def rotated(self, data):
        """The data with X replaced by ``X Q`` (in its working dtype)."""
        torch = data.torch
        Xr = torch.empty_like(data.X)
        Q = self.Q.to(data.dtype)
        for start in range(0, data.X.shape[0], data.block):
            torch.matmul(data.X[start:start + data.block], Q,
                         out=Xr[start:start + data.block])
        return DeviceData(Xr, data.D, data.Y, data.n_samples, data.group,
                          data.sharded)

    def to_basis(self, U):
        """``U Q`` (rows of U in the eigenbasis), U's dtype."""
        return (U.double() @ self.Q).to(U.dtype)

    def from_basis(self, W):
        """``W Q^T``, W's dtype."""
        return (W.double() @ self.Q.T).to(W.dtype)

    def inverse(self, v):
        """``M^{-1} v``."""
        g = v.double()
        if self.beta > 0:
            g = g - self.beta / (1.0 + self.beta) * block_mean(g, self.c)
        return (g / self.m).to(v.dtype)

    def step(self, y, g, t, scale=None):
        """``y - t M^{-1} g`` in float64, the prox's input (see metric.step);
        with per-output ``scale`` (c,) (beta 0 only) output k's block takes
        ``t * scale[k]`` (the metric ``M / scale[k]``)."""
        if scale is not None:
            t = t * per_row(scale, y.shape[0]).double()
        return y.double() - t * self.inverse(g.double())

    def squared_distance(self, x, y, scale=None):
        """``||x - y||_M^2`` (float, accumulated in float64), output k's block
        divided by ``scale[k]`` where given (beta 0 only)."""
        delta = x.double() - y.double()
        if scale is not None:
            rows = (delta * delta * self.m).sum(dim=1)
            return float((rows.view(self.c, -1).sum(dim=1) / scale).sum())
        value = (delta * delta * self.m).sum()
        if self.beta > 0:
            P = delta.shape[0] // self.c
            mean = delta.view(self.c, P, -1).mean(dim=1)
            value = value + self.beta * P * (mean * mean * self.m).sum()
        return float(value)

    def prox(self, reg, v, t, scale=None, dtype=None):
        """The prox of ``t R`` at v (c P, d) in M (a new tensor of ``dtype``,
        default v's); with per-output ``scale`` (c,) (beta 0 only) output k's
        block takes ``t * scale[k]``."""
        dtype = v.dtype if dtype is None else dtype
        if reg is None or t == 0:
            return v.to(dtype, copy=True)
        if scale is not None:  # per row: (rows,) for the group prox
            t = t * per_row(scale, v.shape[0])[:, 0]
            if reg == "l2":
                t = t[:, None]
        z, m, beta = v.double(), self.m, self.beta
        if reg == "l2":  # linear: the shift in closed form
            if beta > 0:
                z3 = z.view(self.c, -1, z.shape[1])
                shift = -t * z3.mean(dim=1, keepdim=True) / (m + t + beta * m)
                z = (z3 - beta * shift).view(z.shape)
            return (m * z / (m + t)).to(dtype)
        if self.root is None or self.root.shape[0] != z.shape[0]:
            self.root = z.new_zeros(z.shape[0])
        if beta == 0:
            return group_prox(z, m, t, self.root).to(dtype)
        if self.shift is None:
            self.shift = z.new_zeros((self.c, z.shape[1]))
        return _shifted_prox(z.view(self.c, -1, z.shape[1]), m, t, beta, self.shift,
                             self.root).view(v.shape).to(dtype)


def _shifted_rows(z, m, t, beta, shift, root):
    """Rows ``x_i = prox(z_i - beta shift)`` (c, P, d) at a shift (c, d),
    ``F = shift - mean_i(x_i - z_i)``, ``||F||^2`` and the diagonal of the
    prox's Jacobian (the part ``u m / (1 + u m)``) summed over rows (c, d)."""
    c, P, d = z.shape
    x = group_prox((z - beta * shift[:, None, :]).view(c * P, d), m, t, root)
    x = x.view(c, P, d)
    F = shift - (x - z).mean(dim=1)
    um = root.view(c, P, 1) * m
    return x, F, (F * F).sum(dim=1), (um / (1.0 + um)).sum(dim=1)


def _shifted_prox(z, m, t, beta, shift, root):
    """The prox in ``(I + beta Pi) (x) diag(m)``: ``x_i = prox(z_i - beta s)``
    with s the root of ``F(s) = s - mean_i(x_i - z_i)`` (per output), by
    diagonal quasi-Newton steps ``F / (1 + beta / P diag)`` with halvings on
    ``||F||^2`` (as the first phase of :mod:`cvxnn_fast.pytorch.metric`);
    ``shift`` (c, d) is the start, updated in place."""
    torch = import_torch()
    P = z.shape[1]
    floor = SHIFT_RTOL**2 * ((z * z).sum(dim=(1, 2)) / P + 1e-300)
    x, F, sq, diag = _shifted_rows(z, m, t, beta, shift, root)
    for _ in range(SHIFT_STEPS):
        running = sq > floor
        if not bool(running.any()):
            break
        delta = F / (1.0 + beta / P * diag)
        alpha, moved = torch.ones_like(sq), torch.zeros_like(running)
        for _ in range(HALVINGS):
            trial = shift - alpha[:, None] * delta
            xt, Ft, sqt, dt = _shifted_rows(z, m, t, beta, trial, root)
            ok = running & ~moved & (sqt < sq)
            shift.copy_(torch.where(ok[:, None], trial, shift))
            x = torch.where(ok[:, None, None], xt, x)
            F, diag = (torch.where(ok[:, None], a, b) for a, b in ((Ft, F), (dt, diag)))
            sq, moved = torch.where(ok, sqt, sq), moved | ok
            if bool((moved | ~running).all()):
                break
            alpha = torch.where(moved, alpha, 0.5 * alpha)
        if not bool(moved.any()):
            break
    return x


def group_prox(z, m, t, u=None):
    """Rows ``argmin_w t ||w|| + 0.5 sum_j m_j (w_j - z_j)^2`` of z (rows, d),
    float64 (see the module docstring); a handful of Newton steps, each a
    few passes over z. ``u`` (rows,), where given, is the start (a previous
    root), updated in place: from the right of a root the first step lands
    left of it (the tangent lies above a concave function), from where the
    steps increase monotonically."""
    torch = import_torch()
    mz = m * z
    mz2 = mz * mz
    on = mz2.sum(dim=1) > t * t
    if u is None:
        u = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    u.masked_fill_(~on, 0.0)
    for _ in range(NEWTON_STEPS):
        r = torch.addcmul(torch.ones_like(m), u[:, None], m).reciprocal_()
        a2 = mz2 * r * r  # a = m z / (1 + u m), squared
        phi = torch.where(on, a2.sum(dim=1), 1.0).rsqrt()
        slope = (a2.mul_(r) @ m) * phi**3
        du = torch.where(on, (1.0 / t - phi) / torch.where(on, slope, 1.0), 0.0)
        u.add_(du).clamp_(min=0.0)
        if not bool((du.abs() > NEWTON_RTOL * u).any()):
            break
    r = torch.addcmul(torch.ones_like(m), u[:, None], m).reciprocal_()
    return torch.where(on[:, None], u[:, None] * mz * r, 0.0)


def choose(data, spec, feature_metric=None):
    """The FeatureMetric to run in, or None (Euclidean). ``feature_metric``
    None: the rule of :mod:`cvxnn_fast.fista.feature_metric` (rotation-invariant
    regularizer, at least MIN_FEATURES features, spread of m at least
    MIN_SPREAD, or MIN_SPREAD_WEIGHTED for cross-entropy and logistic); False:
    never; True: wherever the regularizer allows it."""
    if not considered(spec.reg, data.n_features, feature_metric):
        return None
    fm = FeatureMetric.of(data)
    return fm if wanted(fm.m.cpu().numpy(), spec.loss, feature_metric) else None
