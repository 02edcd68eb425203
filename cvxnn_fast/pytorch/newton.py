r"""Newton-CG (:mod:`cvxnn_fast.newton.solver`) with its data products on a
PyTorch device.

The solver's loop, line search, CG, certificate, preconditioner and
subsample choices run on the host exactly as with ``device=None``; only its
products with the data ``A U`` (n, c) and ``A^T S`` (c, P, d), two masked
GEMMs over row blocks each, run on the device through
:class:`cvxnn_fast.pytorch.operator.DeviceData` (X and the patterns uploaded
once, in the working dtype). Per product the weights (c P d) or the loss
gradient (n c) go up and the predictions (n c) or the gradient (c P d) come
down. The host side works in the working dtype too (a cast copy of the
problem where it differs from the problem's), so a float32 device solve
takes the steps of a float32 NumPy one. Row subsets (subsampled Hessian,
subsample warm start) index the device copy: no second upload. The first
R-FISTA phase of the non-quadratic losses runs on the device
(:func:`cvxnn_fast.pytorch.solver.solve`) on the same device data.

Across processes (:func:`solve_sharded`, reached by
``solve_sharded(problem, method="newton")`` of
:mod:`cvxnn_fast.pytorch.distributed`) every process runs the same loop on
its own rows: :class:`ShardHost` gives it the sample count and loss sums of
all processes, :class:`ShardedProducts` the all-reduced products, summed
Kronecker factors and agreed stops (docs/design/newton.md).
"""

import contextlib
from dataclasses import asdict

import numpy as np

from cvxnn.core.formulations import FORMULATIONS
from cvxnn.core.problem import Problem
from cvxnn_fast.newton import solver as newton
from cvxnn_fast.newton.curvature import SUBSAMPLE_ROWS, Kronecker
from cvxnn_fast.newton.products import Products
from cvxnn_fast.pytorch.device import cpu_threads, resolve_device, working_dtype
from cvxnn_fast.pytorch.fista import SINGLE_THREAD_FLOPS
from cvxnn_fast.pytorch.operator import DeviceData


class DeviceProducts(Products):
    """The products of ``problem`` (host, working dtype) on ``data``, the
    same rows on the device; the interface of
    :class:`cvxnn_fast.newton.products.Products`."""

    def __init__(self, problem, data):
        super().__init__(problem)
        self.data = data
        self.torch = data.torch
        self.shape = problem.weight_shape
        self.dtype = problem.dtype

    def _up(self, array):
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        return tensor.to(device=self.data.device, dtype=self.data.dtype)

    def _down(self, tensor):
        # forward and adjoint return fresh tensors (not the data's scratch)
        return tensor.cpu().numpy().astype(self.dtype, copy=False)

    def predict(self, U):
        c, P, d = self.shape
        return self._down(self.data.forward(self._up(U).reshape(c * P, d)))

    def adjoint(self, S):
        return self._down(self.data.adjoint(self._up(S))).reshape(self.shape)

    def rows(self, rows, sub):
        """The products of ``sub`` (``problem`` on ``rows``): device rows
        indexed on the device; its gradient at zero computed there too."""
        data = self.data
        index = self.torch.from_numpy(np.asarray(rows, np.int64)).to(data.device)
        sub_data = DeviceData(data.X[index], data.D[index], data.Y[index],
                              len(rows))
        ops = DeviceProducts(sub, sub_data)
        ops.set_gradient_at_zero()
        return ops

    def set_gradient_at_zero(self):
        """Fill the problem's cached ``gradient_at_zero`` from the device."""
        p = self.problem
        S = p.loss.gradient(np.zeros_like(p.y), p.y).astype(p.dtype, copy=False)
        p.data_cache["gradient_at_zero"] = self.adjoint(S) / p.n_samples

    def first_order(self, problem, U0, tol, max_iter, monitor):
        """R-FISTA on the device, on this object's data."""
        from cvxnn_fast.pytorch import solver as torch_solver

        return torch_solver.solve(problem, U0, tol, max_iter, monitor,
                                  self.data.device, self.data.dtype, data=self.data)


class ShardedProducts(DeviceProducts):
    """The products of one process's rows of a
    :class:`~cvxnn_fast.pytorch.distributed.ShardedProblem`: adjoints and
    loss sums all-reduced (``DeviceData`` with ``sharded``), the Kronecker
    factors summed over the processes' subsamples, stop decisions agreed,
    row subsamples drawn per process, and the first R-FISTA phase sharded
    too."""

    def __init__(self, host, sharded, first_order):
        super().__init__(host, sharded.data)
        self.sharded, self._first_order = sharded, first_order
        self.world = self.torch.distributed.get_world_size(sharded.group)

    def _sum_array(self, array):
        tensor = self.torch.from_numpy(np.array(array, np.float64))
        return self.data.sum(tensor.to(self.data.device)).cpu().numpy()

    def kronecker(self, problem):
        return _ShardedKronecker(problem.X, problem.patterns, self._sum_array,
                                 rows=max(1, SUBSAMPLE_ROWS // self.world))

    def agree(self, flag):
        return self.data.sum_scalars(1.0 if flag else 0.0)[0] > 0

    def agree_stop(self, stop):
        if not self.agree(bool(stop)):
            return None
        return self.data.stop_reason(stop)

    def first_order(self, problem, U0, tol, max_iter, monitor):
        return self._first_order(self.sharded, U0, tol, max_iter, monitor)

    def sample(self, problem, fraction, random_state):
        """A seeded ``fraction`` of this process's rows (seeded by the rank
        too), indexed on the device: (local rows, their ShardHost, its
        products); the sample's size is summed over the processes."""
        data, s = self.data, self.sharded
        rank = self.torch.distributed.get_rank(s.group)
        m = data.X.shape[0]
        rng = np.random.default_rng([random_state, rank])
        rows = np.sort(rng.choice(m, min(m, max(int(fraction * m), 1)),
                                  replace=False))
        index = self.torch.from_numpy(rows.astype(np.int64)).to(data.device)
        count = data.sum_scalars(float(len(rows)))[0]
        sub_data = DeviceData(data.X[index], data.D[index], data.Y[index],
                              int(count), data.group, sharded=True)
        sub_sharded = type(s)(sub_data, s.gates, s.loss, s.regularizer, s.lam,
                              s.bias, s.classes, s.dtype, s.group)
        sub = ShardHost(sub_sharded)
        ops = ShardedProducts(sub, sub_sharded, self._first_order)
        ops.set_gradient_at_zero()
        return rows, sub, ops


class _ShardedKronecker(Kronecker):
    """The Kronecker factors from every process's subsample of its rows."""

    def __init__(self, X, D, sum_array, rows):
        self._sum = sum_array
        super().__init__(X, D, rows=rows)


class _SummedLoss:
    """A loss whose sums over samples (value, conjugate) run over all the
    processes' rows; per-sample quantities are the loss's own."""

    def __init__(self, loss, data):
        self._loss, self._data = loss, data

    def __getattr__(self, name):
        return getattr(self._loss, name)

    def value(self, Yhat, Y):
        return self._data.sum_scalars(float(self._loss.value(Yhat, Y)))[0]

    def conjugate(self, S, Y):
        return self._data.sum_scalars(float(self._loss.conjugate(S, Y)))[0]


class ShardHost(Problem):
    """One process's rows as the host problem of Newton-CG: its X, targets
    and patterns (working dtype), the sample count of all processes, and
    the loss sums over all of them (so ``data_fit`` and the certificate's
    dual value are the whole problem's)."""

    def __init__(self, sharded):
        data = sharded.data
        X = data.X.cpu().numpy()
        super().__init__(
            X, data.Y.cpu().numpy(), data.D.cpu().numpy(),
            sharded.gates.astype(X.dtype), _SummedLoss(sharded.loss, data),
            sharded.regularizer, sharded.lam, FORMULATIONS["gated_relu"],
            sharded.bias, sharded.classes)
        self._n_samples = data.n_samples

    @property
    def n_samples(self):
        return self._n_samples


def solve_sharded(sharded, U0, tol, max_iter, monitor, first_order, stall=False):
    """Newton-CG on a :class:`~cvxnn_fast.pytorch.distributed.ShardedProblem`,
    called by every process; a :class:`~cvxnn_fast.common.run.Result` whose
    weights are the same on every process. ``first_order(sharded, U0, tol,
    max_iter, monitor)``: the sharded R-FISTA that starts the non-quadratic
    losses (:func:`cvxnn_fast.pytorch.distributed.fista_result`). ``stall``:
    as :func:`cvxnn_fast.newton.solver.solve_gated`'s."""
    host = ShardHost(sharded)
    ops = ShardedProducts(host, sharded, first_order)
    ops.set_gradient_at_zero()
    c, P, d = host.weight_shape
    flops = 2.0 * sharded.data.X.shape[0] * d * c * P
    device = sharded.data.device
    with cpu_threads(device, flops, SINGLE_THREAD_FLOPS), _host_blas(device):
        return newton.solve_gated(host, np.asarray(U0, host.dtype), tol, max_iter,
                                  monitor, ops, stall)


def host_problem(problem, dtype):
    """``problem`` itself in its dtype, else a copy with X and y cast (the
    patterns and gates shared)."""
    if problem.dtype == dtype:
        return problem
    return Problem(np.ascontiguousarray(problem.X, dtype), problem.y.astype(dtype),
                   problem.patterns, problem.gates, problem.loss,
                   problem.regularizer, problem.lam, problem.formulation,
                   problem.bias, problem.classes, problem.input_scale)


def solve(problem, U0, tol, max_iter, monitor, device, dtype=None, stall=False):
    """Newton-CG with its products on ``device``; a
    :class:`~cvxnn_fast.common.run.Result` for ``fast_solve``, with
    ``info["device_certificate"]``: the certificate (the shared formulas) of
    the returned weights from the device's predictions and gradient."""
    dev = resolve_device(device)
    wdtype = working_dtype(problem.dtype, dev, dtype)
    host = host_problem(problem, wdtype)
    data = DeviceData.from_arrays(host.X, host.patterns, host.y, dev, wdtype)
    ops = DeviceProducts(host, data)
    if host is not problem:
        ops.set_gradient_at_zero()
    c, P, d = host.weight_shape
    flops = 2.0 * host.n_samples * d * c * P
    with cpu_threads(dev, flops, SINGLE_THREAD_FLOPS), _host_blas(dev):
        result = newton.solve_gated(host, np.asarray(U0, wdtype), tol, max_iter,
                                    monitor, ops, stall)
        cert = newton.Point(host, result.blocks["U"], ops=ops).cert
    result.info.update(device=str(dev), dtype=wdtype.name,
                       device_certificate=asdict(cert))
    return result


def _host_blas(device):
    """On a CPU device, the host's BLAS (NumPy's and SciPy's OpenBLAS) at one
    thread: its pools spin after each call on the cores torch's threads
    need (docs/design/newton.md, "On devices"). Needs threadpoolctl."""
    if device.type != "cpu":
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
