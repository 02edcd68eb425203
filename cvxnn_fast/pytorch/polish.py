r"""Group-scaling polish of a sharded solve: :mod:`cvxnn_fast.common.polish`
with every sum over samples all-reduced.

The same Phi(s) (data fit of the groups' predictions scaled by s, plus
``lam sum_g s_g rho_g``), the same damped projected Newton steps from
``s = 1`` in ``[0, MAX_SCALE]``, the same schedule
(:class:`~cvxnn_fast.common.polish.Polisher`). Each process forms the
contributions ``B`` (m, c, groups) of its own rows; the gradient
``B^T S / n`` (groups), the Hessian ``B^T (diag(w) - q q^T) B / n``
(groups x groups, float64) and the loss sums are all-reduced, so every
process takes the same Newton steps (solved on the host from identical
numbers). The polished point is judged by the device certificate.
"""

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve

from cvxnn_fast.common import polish as host
from cvxnn_fast.pytorch import losses
from cvxnn_fast.pytorch.certificates import certificate


def _hessian_factors(name, S, Y):
    """Per-row loss Hessian ``diag(Wd_j) - Q_j Q_j^T`` at gradient S (float64)."""
    if name == "squared":
        return S.new_ones(S.shape), None
    if name == "logistic":
        sig = -Y * S
        return sig * (1.0 - sig), None
    p = S + Y
    return p, p


def _groups(U3, axes, reg):
    """Norms of U's groups (flat) and the mask of the non-zero ones."""
    if axes == (2,):
        norms = (U3.abs().sum(dim=2) if reg == "l1" else U3.norm(dim=2)).flatten()
    else:
        norms = U3.norm(dim=(0, 1))
    return norms, norms > 0


def _contributions(data, U3, axes, mask):
    """Predictions of each non-zero group of U (c, P, d) alone over the rows
    held here, (m, c, groups), float64."""
    torch = data.torch
    c, P = data.n_outputs, data.n_patterns
    X, D = data.X.double(), data.D.double()
    if axes == (2,):
        index = torch.nonzero(mask).flatten()  # neuron k P + i, of output k
        Z = (X @ U3.reshape(c * P, -1)[index].T) * D[:, index % P]
        B = X.new_zeros((X.shape[0], c, index.numel()))
        B[:, index // P, torch.arange(index.numel(), device=X.device)] = Z
        return B
    B = torch.einsum("jp,kpf->jkf", D, U3) * X[:, None, :]
    return B[:, :, mask]


class _Phi:
    """Phi, its gradient and Hessian over the sharded rows."""

    def __init__(self, data, spec, B, norms):
        self.data, self.spec, self.B, self.norms = data, spec, B, norms
        self.Y = data.Y.double()

    def value(self, s):
        Yhat = self.B @ s
        fit, S = losses.value_and_gradient(self.spec.loss, Yhat, self.Y)
        total = self.data.sum_scalars(fit)[0] / self.data.n_samples
        return total + self.spec.lam * float(self.norms @ s), S

    def newton_step(self, s, S):
        torch, n = self.data.torch, self.data.n_samples
        grad = self.data.sum(torch.einsum("jkg,jk->g", self.B, S)) / n
        grad = (grad + self.spec.lam * self.norms).cpu().numpy()
        s_np = s.cpu().numpy()
        free = ~(((s_np <= 0) & (grad > 0)) | ((s_np >= host.MAX_SCALE) & (grad < 0)))
        if not free.any():
            return torch.zeros_like(s)
        Bf = self.B[:, :, torch.from_numpy(free).to(self.B.device)]
        Wd, Q = _hessian_factors(self.spec.loss, S, self.Y)
        H = torch.einsum("jkg,jk,jkh->gh", Bf, Wd, Bf)
        if Q is not None:
            Qt = torch.einsum("jk,jkg->jg", Q, Bf)
            H = H - Qt.T @ Qt
        H = (self.data.sum(H) / n).cpu().numpy()
        H[np.diag_indices_from(H)] += host.DAMPING * max(
            float(np.trace(H)) / len(H), np.finfo(float).tiny)
        delta = np.zeros_like(s_np)
        try:
            delta[free] = -cho_solve(cho_factor(H), grad[free])
        except np.linalg.LinAlgError:
            delta[free] = -solve(H, grad[free], assume_a="sym")
        return torch.from_numpy(delta).to(s.device)


def scales(phi, groups):
    """:func:`cvxnn_fast.common.polish.scales` over the sharded rows."""
    torch = phi.data.torch
    s = torch.ones(groups, dtype=torch.float64, device=phi.data.device)
    value, S = phi.value(s)
    for _ in range(host.NEWTON_STEPS):
        delta = phi.newton_step(s, S)
        step = 1.0
        while step > 1e-6:
            trial = (s + step * delta).clamp(0.0, host.MAX_SCALE)
            trial_value, trial_S = phi.value(trial)
            if trial_value <= value:
                break
            step /= 2
        else:
            break
        done = float((trial - s).abs().max()) <= host.SCALE_TOL * max(
            1.0, float(trial.max()))
        s, value, S = trial, trial_value, trial_S
        if done:
            break
    return s


def polish(data, spec, U, axes):
    """U (c P, d) with each group rescaled to minimize Phi, or None where
    the host polish would not run (no non-zero group, too many)."""
    U3 = U.double().view(data.n_outputs, data.n_patterns, -1)
    norms, mask = _groups(U3, axes, spec.reg)
    groups = int(mask.sum())
    if groups == 0 or groups > host.MAX_GROUPS or \
            data.n_samples * data.n_outputs * groups > host.MAX_ENTRIES:
        return None
    B = _contributions(data, U3, axes, mask)
    s = scales(_Phi(data, spec, B, norms[mask]), groups)
    full = s.new_ones(mask.shape)
    full[mask] = s
    c, P = data.n_outputs, data.n_patterns
    shape = (c * P, 1) if axes == (2,) else (1, U.shape[1])
    return (U.double() * full.view(shape)).to(U.dtype)


class ShardedPolisher(host.Polisher):
    """The compiled loop's polish schedule, polishing over the sharded rows
    and judging by the device certificate (``result[0]`` is the device U)."""

    def __init__(self, problem, data, spec, tol):
        super().__init__(problem, tol, np.inf)
        self.data, self.spec = data, spec
        self.axes = host.group_axes(problem)

    def attempt(self, it, optimality, U):
        self.next_iter = it + max(self.min_spacing, int(np.ceil(self.SPACING * it)))
        if not self.enabled or not optimality <= self.START:
            return False
        polished = polish(self.data, self.spec, U, self.axes)
        if polished is None:
            self.enabled = False
            return False
        cert = certificate(self.data, self.spec, polished)
        if cert.satisfied(self.tol, np.inf):
            self.result = (polished, None, cert)
            return True
        return False
