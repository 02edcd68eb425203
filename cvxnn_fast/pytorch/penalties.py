r"""The regularizers on a device, mirroring ``cvxnn_fast/common/_penalty.pxd``.

Weights are (c P, d) tensors, replicated on every process (nothing here
communicates). ``name`` is the regularizer's name, None when lam is 0.

* group_l1: groups are rows (neurons); feature_group_l1: columns
  (features); l1: entries; l2: ``0.5 ||U||^2``; None: 0.
"""

from cvxnn_fast.pytorch.device import import_torch

NORMS = {"group_l1": 1, "feature_group_l1": 0}  # the dim a group's norm runs over


def _group_norms(name, x):
    if name == "l1":
        return x.abs()
    return x.norm(dim=NORMS[name], keepdim=True)


def value(name, x):
    """R(x) as a Python float (accumulated in float64)."""
    if name is None:
        return 0.0
    x = x.double()
    if name == "l2":
        return 0.5 * float((x * x).sum())
    return float(_group_norms(name, x).sum())


def prox(name, v, t):
    """The prox of ``t R`` at v (a new tensor)."""
    torch = import_torch()
    if name is None:
        return v.clone()
    if name == "l2":
        return v / (1.0 + t)
    norms = _group_norms(name, v)
    scale = torch.where(norms > t, 1.0 - t / norms.clamp(min=t), 0.0)
    return v * scale.to(v.dtype)


def dual_norm(name, g):
    """Dual norm of a norm regularizer: the largest group norm of g (float)."""
    return float(_group_norms(name, g.double()).max())


def residual_sq(name, g, x, lam):
    """Squared norm of the minimum-norm element of g + lam dR(x) (float)."""
    torch = import_torch()
    g, x = g.double(), x.double()
    if lam == 0 or name is None:
        return float((g * g).sum())
    if name == "l2":
        r = g + lam * x
        return float((r * r).sum())
    x_norms, g_norms = _group_norms(name, x), _group_norms(name, g)
    on = g + lam * x / torch.where(x_norms > 0, x_norms, 1.0)
    on_sq = on * on if name == "l1" else (on * on).sum(dim=NORMS[name], keepdim=True)
    off_sq = (g_norms - lam).clamp(min=0.0) ** 2
    return float(torch.where(x_norms > 0, on_sq, off_sq).sum())
