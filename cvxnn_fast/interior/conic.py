r"""Cone algebra of the interior-point method: NT scaling, Jordan products, steps.

Two kinds of cones, each stored as a stacked array:

* nonnegative orthant, arrays of any shape: the scaling is diagonal,
  ``W = diag(sqrt(s / z))``, and the Jordan product is elementwise;
* second-order cones :math:`\{(x_0, \bar x) : x_0 \ge \|\bar x\|_2\}`, arrays
  (n_cones, m) with the scalar part in column 0, product
  :math:`x \circ y = (x^\top y,\; x_0 \bar y + y_0 \bar x)`.

For a second-order cone pair (s, z) in the interior, the Nesterov-Todd scaling
is the symmetric matrix :math:`W = \eta \bar W` with

.. math::
    \eta = \Big(\frac{s^\top J s}{z^\top J z}\Big)^{1/2}, \quad
    \bar w = \frac{\bar s + J \bar z}{\sqrt{2 (1 + \bar s^\top \bar z)}}, \quad
    \bar W = \begin{pmatrix} \bar w_0 & \bar w_1^\top \\
        \bar w_1 & I + \bar w_1 \bar w_1^\top / (1 + \bar w_0) \end{pmatrix},

where :math:`J = \mathrm{diag}(1, -I)` and :math:`\bar s = s / \sqrt{s^\top J s}`
(likewise :math:`\bar z`); :math:`\bar W^{-1} = J \bar W J`. It satisfies
:math:`W z = W^{-1} s = \lambda`, the scaled point (Andersen, Roos and Terlaky,
Math. Program. 95, 2003).
"""

import numpy as np

from cvxnn_fast.interior import _blocks

# Smallest relative distance kept between a cone point and the boundary.
SOC_MARGIN = 1e-12


def _jsquare(x):
    """``x^T J x = x0^2 - ||x1||^2`` per cone, factored as ``(x0 - r)(x0 + r)``
    to lose less to cancellation."""
    r = np.linalg.norm(x[:, 1:], axis=1)
    return (x[:, 0] - r) * (x[:, 0] + r)


def _jnorm(x):
    """``sqrt(x^T J x)`` (0 where rounding makes it negative)."""
    return np.sqrt(np.maximum(_jsquare(x), 0.0))


class SOCScaling:
    """NT scaling of second-order cone pairs (n_cones, m), applied without
    forming W: ``W x``, ``W^{-1} x`` and ``W^{-2} x`` cost O(m) per cone,
    using :math:`\bar W^{-1} = J \bar W J` and
    :math:`\bar W^2 = 2 \bar w \bar w^\top - J`.

    ``lam = W z = W^{-1} s`` is the scaled point.
    """

    def __init__(self, s, z):
        sn, zn = _jnorm(s), _jnorm(z)
        sb, zb = s / sn[:, None], z / zn[:, None]
        gamma = np.sqrt(np.maximum(0.5 * (1.0 + np.sum(sb * zb, axis=1)), 0.0))
        wb = sb.copy()
        wb[:, 0] += zb[:, 0]
        wb[:, 1:] -= zb[:, 1:]
        wb /= (2.0 * gamma)[:, None]
        self.w = wb
        self.eta = np.sqrt(sn / zn)
        self.lam = self.apply(z)

    def _apply_bar(self, x):
        w0, w1 = self.w[:, 0], self.w[:, 1:]
        a = np.sum(w1 * x[:, 1:], axis=1)
        out = np.empty_like(x)
        out[:, 0] = w0 * x[:, 0] + a
        out[:, 1:] = x[:, 1:] + (x[:, 0] + a / (1.0 + w0))[:, None] * w1
        return out

    def apply(self, x):
        """``W x``."""
        return self.eta[:, None] * self._apply_bar(x)

    def apply_inverse(self, x):
        """``W^{-1} x = J Wbar J x / eta``."""
        y = self._apply_bar(_flip(x))
        return _flip(y) / self.eta[:, None]

    def apply_inverse_squared(self, x):
        """``W^{-2} x = (2 Jw (Jw . x) - J x) / eta^2``."""
        Jw = _flip(self.w)
        out = 2.0 * np.sum(Jw * x, axis=1)[:, None] * Jw - _flip(x)
        return out / (self.eta**2)[:, None]

    def apply_squared(self, x):
        """``W^2 x = eta^2 (2 w (w . x) - J x)``."""
        out = 2.0 * np.sum(self.w * x, axis=1)[:, None] * self.w - _flip(x)
        return out * (self.eta**2)[:, None]

    def inverse_squared(self):
        """``W^{-2}`` as (n_cones, m, m) matrices."""
        Jw = _flip(self.w)
        m = self.w.shape[1]
        out = 2.0 * Jw[:, :, None] * Jw[:, None, :]
        out -= np.diag(np.r_[1.0, -np.ones(m - 1)])
        return out / (self.eta**2)[:, None, None]


def _flip(x):
    """``J x``: the vector part negated."""
    out = x.copy()
    out[:, 1:] *= -1.0
    return out


def keep_interior(x, margin=SOC_MARGIN):
    """Lift each cone's scalar part to at least ``(1 + margin) ||x1||`` (in place).

    A step of 0.99 times the distance to the boundary stays inside in exact
    arithmetic, but a point with ``x0 - ||x1||`` below rounding (an active
    neuron's ``(t, u)`` late in a solve) has a computed ``x^T J x`` of 0 and
    its NT scaling divides by it. The lift is a relative change of ``margin``,
    which the next iteration's residuals absorb.
    """
    if len(x):
        r = np.linalg.norm(x[:, 1:], axis=1)
        np.maximum(x[:, 0], r * (1.0 + margin) + np.finfo(float).tiny, out=x[:, 0])


def apply(M, x):
    """Batched matrix-vector products ``M[i] @ x[i]``."""
    return np.matmul(M, x[:, :, None])[:, :, 0]


def soc_product(x, y):
    """Jordan product of second-order cone vectors (n_cones, m)."""
    out = np.empty_like(x)
    out[:, 0] = np.sum(x * y, axis=1)
    out[:, 1:] = x[:, :1] * y[:, 1:] + y[:, :1] * x[:, 1:]
    return out


def soc_divide(lam, r):
    """The x with ``lam o x = r`` for lam in the interior of its cone."""
    l0, l1 = lam[:, 0], lam[:, 1:]
    r0, r1 = r[:, 0], r[:, 1:]
    x0 = (l0 * r0 - np.sum(l1 * r1, axis=1)) / _jsquare(lam)
    x1 = (r1 - x0[:, None] * l1) / l0[:, None]
    return np.concatenate([x0[:, None], x1], axis=1)


def soc_identity(n_cones, m):
    e = np.zeros((n_cones, m))
    e[:, 0] = 1.0
    return e


def max_step_orthant(x, dx):
    """Largest alpha with ``x + alpha dx >= 0`` (inf when dx >= 0)."""
    x, dx = (np.ascontiguousarray(np.atleast_2d(a), dtype=np.float64)
             for a in (x, dx))
    return float(_blocks.orthant_step(x, dx))


def max_step_soc(x, dx):
    """Largest alpha keeping each ``x + alpha dx`` in its second-order cone.

    ``f(alpha) = (x0 + alpha dx0)^2 - ||x1 + alpha dx1||^2 = a alpha^2 + 2 b
    alpha + c`` with c >= 0; the first positive root, written as
    ``c / (sqrt(b^2 - a c) - b)`` to avoid cancellation, exists when a < 0, or
    when b < 0 and the discriminant is nonnegative.
    """
    if len(x) == 0:
        return np.inf
    a = dx[:, 0] ** 2 - np.sum(dx[:, 1:] ** 2, axis=1)
    b = x[:, 0] * dx[:, 0] - np.sum(x[:, 1:] * dx[:, 1:], axis=1)
    c = np.maximum(_jsquare(x), 0.0)
    disc = b * b - a * c
    hits = (a < 0) | ((b < 0) & (disc >= 0))
    with np.errstate(over="ignore"):  # a root past 1e308: no limit (inf)
        root = c / np.maximum(np.sqrt(np.maximum(disc, 0.0)) - b, 1e-300)
    return float(np.min(np.where(hits, root, np.inf)))
