r"""Non-convex training (SGD, Adam) of the network equivalent to a convex program.

For a cvxnn problem with ``c`` outputs and ``P`` patterns the equivalent
network gives every output ``k`` its own ``m`` neurons (one-vs-all, as the
convex program does), with first-layer weights ``W1[k, i]`` (d) and output
weights ``a[k, i]``:

.. math::
    \hat y_k(x) = \sum_{i=1}^{m} \sigma_{k i}(x)\, (x^\top W_{1,k i})\, a_{k i},
    \qquad
    \Phi(W_1, a) = \frac1n \sum_j \ell(\hat y(x_j), y_j)
                   + \frac\lambda2 (\|W_1\|_F^2 + \|a\|_2^2).

* gated ReLU: ``m = P``, ``sigma_ki(x) = 1[x^T g_i > 0]`` with the problem's
  gates. For group_l1 the global minimum of Phi equals the convex optimum
  (map each block ``u`` to ``u / sqrt(||u||)`` and ``sqrt(||u||)``), so
  ``Phi - F*`` is a gap to the same optimum.
* ReLU: ``m = 2P``, ``sigma_ki(x) = 1[x^T W_{1,ki} > 0]``. The network is not
  tied to the sampled patterns, so its infimum can lie *below* the convex
  optimum of the subsampled program; a negative gap is possible and is
  reported as reached.

:func:`objective` (NumPy, through ``problem.loss``) is the one measure of
every iterate. Training uses PyTorch when it imports (autograd, same
formulas) and :class:`NumpyNetwork` (hand-written gradient) otherwise.
Mini-batch gradients of ``loss_batch + (lam/2)||theta||^2`` are unbiased for
Phi. The clock is paused while the full objective is evaluated.
"""

import time

import numpy as np


def has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def width(problem):
    """Neurons per output of the equivalent network."""
    return problem.n_patterns * (2 if problem.formulation.has_cones else 1)


def initial_params(problem, seed=0):
    """PyTorch-style uniform initialization (seeded): W1 (c, m, d), a (c, m)."""
    rng = np.random.default_rng(seed)
    c, d, m = problem.n_outputs, problem.n_features, width(problem)
    W1 = rng.uniform(-1, 1, (c, m, d)) / np.sqrt(d)
    a = rng.uniform(-1, 1, (c, m)) / np.sqrt(m)
    return W1.astype(problem.dtype), a.astype(problem.dtype)


def params_from_solution(problem, sol):
    """The network's (W1, a) at a convex solution (group_l1 mapping, zeros kept)."""
    if problem.formulation.has_cones:
        blocks, signs = [sol.V, sol.W], [1.0, -1.0]
    else:
        blocks, signs = [sol.U], [1.0]
    W1s, As = [], []
    for B, sign in zip(blocks, signs, strict=True):
        norms = np.linalg.norm(B, axis=2)
        root = np.sqrt(norms)
        W1s.append(np.divide(B, root[..., None], out=np.zeros_like(B),
                             where=root[..., None] > 0))
        As.append(sign * root)
    return np.concatenate(W1s, axis=1), np.concatenate(As, axis=1)


def _activations(X, W1, mask):
    Z = np.einsum("nd,cmd->ncm", X, W1)
    gate = mask[:, None, :] if mask is not None else Z > 0
    return Z, gate


def objective(problem, W1, a):
    r"""Phi(W1, a) of the module docstring, computed with ``problem.loss``."""
    X = problem.X
    mask = problem.patterns if not problem.formulation.has_cones else None
    Z, gate = _activations(X, W1, mask)
    Yhat = np.einsum("ncm,cm->nc", Z * gate, a)
    data = problem.loss.value(Yhat, problem.y) / problem.n_samples
    return data + 0.5 * problem.lam * float(np.sum(W1**2) + np.sum(a**2))


class NumpyNetwork:
    """Loss and gradient of Phi on a mini-batch, by hand (the NumPy fallback)."""

    def __init__(self, problem):
        self.problem = problem
        self.gated = not problem.formulation.has_cones

    def loss_and_grad(self, rows, W1, a):
        p = self.problem
        X, Y = p.X[rows], p.y[rows]
        Z, gate = _activations(X, W1, p.patterns[rows] if self.gated else None)
        act = Z * gate
        Yhat = np.einsum("ncm,cm->nc", act, a)
        S = p.loss.gradient(Yhat, Y) / len(rows)
        dZ = S[:, :, None] * a[None] * gate
        grad_W1 = np.einsum("ncm,nd->cmd", dZ, X) + p.lam * W1
        grad_a = np.einsum("nc,ncm->cm", S, act) + p.lam * a
        return grad_W1, grad_a


class _Adam:
    def __init__(self, lr, shapes, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros(s) for s in shapes]
        self.v = [np.zeros(s) for s in shapes]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            mhat = m / (1 - self.b1**self.t)
            vhat = v / (1 - self.b2**self.t)
            p -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def _numpy_stepper(problem, method, lr, W1, a):
    net = NumpyNetwork(problem)
    adam = _Adam(lr, [W1.shape, a.shape]) if method == "adam" else None

    def step(rows):
        gW, ga = net.loss_and_grad(rows, W1, a)
        if adam is not None:
            adam.step([W1, a], [gW, ga])
        else:
            W1[...] -= lr * gW
            a[...] -= lr * ga

    return step, lambda: (W1, a)


def _torch_stepper(problem, method, lr, W1, a, seed):
    import torch

    torch.manual_seed(seed)
    X = torch.from_numpy(problem.X)
    Y = torch.from_numpy(np.ascontiguousarray(problem.y))
    mask = (torch.from_numpy(problem.patterns).to(X.dtype)
            if not problem.formulation.has_cones else None)
    tW1 = torch.tensor(W1, requires_grad=True)
    ta = torch.tensor(a, requires_grad=True)
    opt = (torch.optim.Adam if method == "adam" else torch.optim.SGD)([tW1, ta],
                                                                      lr=lr)
    loss_fn = TORCH_LOSSES[problem.loss.name]
    c, m, d = tW1.shape

    def step(rows):
        idx = torch.from_numpy(rows)
        Xb, Yb = X[idx], Y[idx]
        Z = (Xb @ tW1.reshape(c * m, d).T).reshape(-1, c, m)
        act = Z * mask[idx][:, None, :] if mask is not None else torch.relu(Z)
        Yhat = (act * ta).sum(-1)
        value = loss_fn(Yhat, Yb) + 0.5 * problem.lam * (
            (tW1 * tW1).sum() + (ta * ta).sum())
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    def params():
        return tW1.detach().numpy().copy(), ta.detach().numpy().copy()

    return step, params


def _torch_losses():
    def squared(Yhat, Y):
        return 0.5 * ((Yhat - Y) ** 2).sum(1).mean()

    def logistic(Yhat, Y):
        import torch.nn.functional as F

        return F.softplus(-Y * Yhat).sum(1).mean()

    def cross_entropy(Yhat, Y):
        return (Yhat.logsumexp(1) - (Yhat * Y).sum(1)).mean()

    return {"squared": squared, "logistic": logistic, "cross_entropy": cross_entropy}


TORCH_LOSSES = _torch_losses()


def train(problem, method, lr, seconds, batch_size=32, seed=0, backend=None,
          max_evals=200, max_steps=None):
    """Train the equivalent network for ``seconds`` of (paused-clock) time.

    ``max_steps`` (optional) stops earlier, after that many mini-batch steps.

    Returns a dict with arrays ``time`` and ``objective`` (Phi at checkpoints
    spaced geometrically in time, the first at 0) and ``diverged``.
    """
    if method not in ("sgd", "adam"):
        raise ValueError(f"method: expected 'sgd' or 'adam', got {method!r}.")
    backend = backend or ("torch" if has_torch() else "numpy")
    W1, a = initial_params(problem, seed)
    if backend == "torch":
        step, params = _torch_stepper(problem, method, lr, W1, a, seed)
    else:
        step, params = _numpy_stepper(problem, method, lr, W1, a)
    rng = np.random.default_rng(seed)
    n, bs = problem.n_samples, min(batch_size, problem.n_samples)
    times, values = [0.0], [objective(problem, W1, a)]
    clock, next_eval, ratio = 0.0, seconds / 1000.0, (1000.0 ** (1.0 / max_evals))
    steps, max_steps = 0, np.inf if max_steps is None else max_steps
    while clock < seconds and steps < max_steps:
        order = rng.permutation(n)
        for start in range(0, n - bs + 1, bs):
            t0 = time.perf_counter()
            step(order[start:start + bs])
            clock += time.perf_counter() - t0
            steps += 1
            done = clock >= seconds or steps >= max_steps
            if clock >= next_eval or done:
                values.append(objective(problem, *params()))
                times.append(clock)
                next_eval = max(next_eval, clock) * ratio
                if not np.isfinite(values[-1]) or done:
                    break
        if not np.isfinite(values[-1]):
            break
    return {"time": np.array(times), "objective": np.array(values),
            "diverged": not np.isfinite(values[-1])}


def best_of_grid(problem, method, lrs, seconds, **kwargs):
    """Train at every step size; the run with the lowest final Phi, its lr, all."""
    runs = {lr: train(problem, method, lr, seconds, **kwargs) for lr in lrs}
    finite = {lr: r for lr, r in runs.items() if not r["diverged"]}
    if not finite:
        return None, None
    lr = min(finite, key=lambda k: finite[k]["objective"][-1])
    return finite[lr], lr
