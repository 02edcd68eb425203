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

Only for the rotation-invariant regularizers (group_l1, l2, none). The cost
is one ``n d^2`` GEMM for Sigma and one for ``X Q`` at setup, a copy of X,
and ``O(c P d)`` per prox (against ``n c P d`` per product).
"""

import math

import numpy as np

from cvxnn_fast.pytorch.device import import_torch
from cvxnn_fast.pytorch.operator import DeviceData

REGULARIZERS = ("group_l1", "l2", None)
MIN_FEATURES = 16  # below: the Euclidean metric (products are cheap anyway)
MIN_SPREAD = 10.0  # max(m) / min(m) below this: Sigma is near a multiple of I
DAMPING = 1e-3  # delta = DAMPING * mean(lam_j)
NEWTON_STEPS = 60
NEWTON_RTOL = 1e-14


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
        self.spread = float(m.max() / m.min())
        self.root = None  # the group prox's last roots: the next one's start

    @classmethod
    def of(cls, data, damping=DAMPING):
        """From the eigendecomposition of the data's Gram matrix."""
        lam, Q = np.linalg.eigh(gram(data))
        lam = np.clip(lam, 0.0, None)
        m = lam + damping * max(float(lam.mean()), np.finfo(float).tiny)
        return cls(data, np.ascontiguousarray(Q), m)

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
        return (v.double() / self.m).to(v.dtype)

    def step(self, y, g, t):
        """``y - t M^{-1} g``."""
        return (y.double() - t * g.double() / self.m).to(y.dtype)

    def squared_distance(self, x, y):
        """``||x - y||_M^2`` (float, accumulated in float64)."""
        delta = x.double() - y.double()
        return float((delta * delta * self.m).sum())

    def prox(self, reg, v, t):
        """The prox of ``t R`` at v (c P, d) in M (a new tensor)."""
        if reg is None or t == 0:
            return v.clone()
        z = v.double()
        if reg == "l2":
            return (self.m * z / (self.m + t)).to(v.dtype)
        if self.root is None or self.root.shape[0] != z.shape[0]:
            self.root = z.new_zeros(z.shape[0])
        return group_prox(z, self.m, t, self.root).to(v.dtype)


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
    None: the rule (rotation-invariant regularizer, at least MIN_FEATURES
    features, spread of m at least MIN_SPREAD); False: never; True: wherever
    the regularizer allows it."""
    if feature_metric is False or spec.reg not in REGULARIZERS:
        return None
    if feature_metric is None and data.n_features < MIN_FEATURES:
        return None
    fm = FeatureMetric.of(data)
    if feature_metric is None and not (math.isfinite(fm.spread)
                                       and fm.spread >= MIN_SPREAD):
        return None
    return fm
