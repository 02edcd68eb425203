r"""The masked operator on a device, over row blocks, and its sums over samples.

For weights ``U`` (c P, d) and the rows of X, D held here (all of them, or
one process's shard),

.. math:: \hat y_{jk} = \sum_i D_{ji}\, x_j^\top u_{k,i}, \qquad
          G_{k,i} = \sum_j D_{ji} S_{jk}\, x_j .

Each row block of ``m`` rows costs two GEMMs, ``X_b U^T`` (m, cP) and
``M_b^T X_b`` with ``M_b = D_b * S_b`` (m, cP), plus masked reductions; no
array larger than (m, cP) is formed, ``m`` set by :data:`BLOCK_ENTRIES`.
Predictions stay with their rows (no communication); every sum over samples
(the adjoint, loss values, dual values) goes through :meth:`DeviceData.sum`,
an all-reduce when the rows are sharded over processes.
"""

import numpy as np

from cvxnn_fast.pytorch.device import import_torch, torch_dtype

# Entries of one (m, cP) scratch block (64 MiB in float32).
BLOCK_ENTRIES = 2**24


class DeviceData:
    """X (m, d), patterns D (m, P) and targets Y (m, c) of the rows held here.

    ``n_samples`` counts the rows of all processes. With ``sharded`` the sums
    run over the ``torch.distributed`` process group ``group`` (None: the
    world); without, this process holds every row.
    """

    def __init__(self, X, D, Y, n_samples, group=None, sharded=False):
        self.torch = import_torch()
        self.X, self.D, self.Y = X, D, Y
        self.n_samples = int(n_samples)
        self.group, self.sharded = group, bool(sharded)
        self.dtype = X.dtype
        self.device = X.device
        self.n_outputs, self.n_patterns = Y.shape[1], D.shape[1]
        self.n_features = X.shape[1]
        width = self.n_outputs * self.n_patterns
        self.block = int(max(1, min(X.shape[0], BLOCK_ENTRIES // max(1, width))))
        self._Z = X.new_empty((self.block, width))
        self._M = X.new_empty((self.block, width))
        self._Dm = X.new_empty((self.block, self.n_patterns))

    @classmethod
    def from_arrays(cls, X, D, Y, device, dtype):
        """Copy NumPy (or torch) X, D, Y to ``device`` in ``dtype``."""
        torch = import_torch()
        tdtype = torch_dtype(dtype)

        def put(A, kind):
            A = A if isinstance(A, torch.Tensor) else torch.from_numpy(np.asarray(A))
            return A.to(device=device, dtype=kind).contiguous()

        X, Y, D = put(X, tdtype), put(Y, tdtype), put(D, torch.bool)
        return cls(X, D, Y, X.shape[0])

    @property
    def weight_rows(self):
        return self.n_outputs * self.n_patterns

    def _blocks(self):
        m = self.X.shape[0]
        for start in range(0, m, self.block):
            stop = min(m, start + self.block)
            mask = self._Dm[: stop - start]
            mask.copy_(self.D[start:stop])
            yield start, stop, mask

    def forward(self, U):
        """Predictions (m, c) of the rows held here; U is (c P, d). No communication."""
        c, P = self.n_outputs, self.n_patterns
        out = self.X.new_empty((self.X.shape[0], c))
        for start, stop, mask in self._blocks():
            Z = self._Z[: stop - start]
            self.torch.matmul(self.X[start:stop], U.T, out=Z)
            self.torch.bmm(Z.view(-1, c, P), mask.unsqueeze(2),
                           out=out[start:stop].unsqueeze(2))
        return out

    def local_adjoint(self, S):
        """``sum_j D_ji S_jk x_j`` over the rows held here, (c P, d)."""
        c, P = self.n_outputs, self.n_patterns
        G = self.X.new_zeros((c * P, self.n_features))
        for start, stop, mask in self._blocks():
            M = self._M[: stop - start].view(-1, c, P)
            self.torch.mul(S[start:stop].unsqueeze(2), mask.unsqueeze(1), out=M)
            G.addmm_(M.view(stop - start, c * P).T, self.X[start:stop])
        return G

    def adjoint(self, S):
        """The adjoint summed over all rows (all processes), (c P, d)."""
        return self.sum(self.local_adjoint(S))

    def sum(self, tensor):
        """All-reduce (sum) of a tensor over the processes; itself when alone."""
        if self.sharded:
            self.torch.distributed.all_reduce(tensor, group=self.group)
        return tensor

    def stop_reason(self, own):
        """The reason of an agreed stop, the same on every process: the first
        process's that asked (``own``: this one's, or "" where it did not)."""
        if not self.sharded:
            return own
        reasons = [None] * self.torch.distributed.get_world_size(self.group)
        self.torch.distributed.all_gather_object(reasons, own or None,
                                                 group=self.group)
        return next((r for r in reasons if r), "stopped by another process")

    def sum_scalars(self, *values):
        """Sums over processes of float64 scalars (0-d tensors or floats)."""
        packed = self.torch.stack([self.torch.as_tensor(v, dtype=self.torch.float64,
                                                        device=self.device)
                                   for v in values])
        return self.sum(packed).tolist()

    def zeros_like_predictions(self):
        return self.X.new_zeros((self.X.shape[0], self.n_outputs))
