r"""The three losses on a device, mirroring ``cvxnn_fast/common/_loss.pxd``.

Each function works on the rows held here and returns *local sums*; the
caller sums them over processes (:meth:`DeviceData.sum_scalars`) and divides
by n. Elementwise terms are formed in float64 (they are (m, c) arrays, cheap
beside the (m, cP) products), so the sums the stopping test and the line
search compare keep float64 accuracy when the products are float32.

* squared: ``0.5 ||z - y||^2``; conjugate ``0.5 ||s||^2 + <s, y>``.
* logistic: ``sum_k log(1 + exp(-y_k z_k))``; conjugate
  ``sum_k p log p + (1 - p) log(1 - p)``, ``p = -y_k s_k``.
* cross_entropy: ``logsumexp(z) - z_t``; conjugate ``sum_k q log q``,
  ``q = s + y``.
"""

from cvxnn_fast.pytorch.device import import_torch

torch = None


def _torch():
    global torch
    if torch is None:
        torch = import_torch()
    return torch


def value_and_gradient(name, Z, Y):
    """(sum of the loss over rows as a float64 0-d tensor, gradient S (m, c))."""
    t = _torch()
    Z64, Y64 = Z.double(), Y.double()
    if name == "squared":
        R = Z64 - Y64
        return 0.5 * (R * R).sum(), R.to(Z.dtype)
    if name == "logistic":
        yz = Y64 * Z64
        S = -Y64 * t.sigmoid(-yz)
        return t.nn.functional.softplus(-yz).sum(), S.to(Z.dtype)
    lse = t.logsumexp(Z64, dim=1)
    S = t.softmax(Z64, dim=1) - Y64
    return (lse - (Y64 * Z64).sum(dim=1)).sum(), S.to(Z.dtype)


def conjugate_sum(name, S, Y, alpha):
    """Sum over rows of loss*(alpha s_j) (float64 0-d tensor); alpha in [0, 1]."""
    t = _torch()
    s, Y64 = alpha * S.double(), Y.double()
    if name == "squared":
        return (0.5 * s * s + s * Y64).sum()
    if name == "logistic":
        p = (-Y64 * s).clamp(0.0, 1.0)
        return (t.special.xlogy(p, p) + t.special.xlogy(1 - p, 1 - p)).sum()
    q = (s + Y64).clamp(min=0.0)
    return t.special.xlogy(q, q).sum()


def bregman_sum(name, Z_new, Z_y, S_y, Y):
    """Sum over rows of loss(z_new) - loss(z_y) - <loss'(z_y), z_new - z_y>,
    written without cancellation (see ``bregman_sum`` in ``_loss.pxd``)."""
    t = _torch()
    delta = Z_new.double() - Z_y.double()
    Y64 = Y.double()
    if name == "squared":
        return 0.5 * (delta * delta).sum()
    if name == "logistic":
        sig = t.sigmoid(-Y64 * Z_y.double())
        du = -Y64 * delta
        return (t.log1p(sig * t.expm1(du)) - sig * du).sum()
    p = S_y.double() + Y64
    acc = (p * t.expm1(delta)).sum(dim=1)
    lin = (p * delta).sum(dim=1)
    return (t.log1p(acc) - lin).sum()


def curvature_sums(name, S, Y):
    """Each output's summed diagonal loss curvature over the rows held here
    (c,), float64, from the gradient S (as ``update_output_scale`` in
    ``_fista.pyx``: squared 1, logistic ``sig (1 - sig)``, cross-entropy
    ``p (1 - p)`` with ``p = s + y`` formed in the working dtype)."""
    t = _torch()
    if name == "squared":
        return t.full((S.shape[1],), float(S.shape[0]), dtype=t.float64,
                      device=S.device)
    if name == "logistic":
        sig = (-Y * S).double()
        return (sig * (1.0 - sig)).sum(dim=0)
    p = (S + Y).double()
    return (p - p * p).sum(dim=0)


def gradient_at_zero(name, Y):
    """Loss gradient at zero predictions, (m, c)."""
    return value_and_gradient(name, Y.new_zeros(Y.shape), Y)[1]
