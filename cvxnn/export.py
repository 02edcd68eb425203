r"""Export a trained network to PyTorch (optional dependency: ``cvxnn[torch]``).

:func:`to_torch` turns a :class:`cvxnn.TwoLayerNetwork` (or a Solution or a
fitted estimator holding one) into a ``torch.nn.Module`` computing

.. math::

    h(x) = W_2\,\big(a(x) \odot (W_1 \tilde x)\big) + b_2, \qquad
    a(x) = 1[G^\top \tilde x > 0] \text{ (gated)}, \quad
    a(x) \odot z = \max(z, 0) \text{ (ReLU)},

with :math:`\tilde x = (x, 1)` when the network has a bias and :math:`b_2`
its output bias (zero where it has none: a regressor's network has its
intercept there), so the module
takes raw inputs of shape (batch, n_features) like ``network.predict``. The
bias column is split off into ``nn.Linear`` biases, so the first layer is an
ordinary ``nn.Linear(n_features, n_neurons)`` that can be fine-tuned; the
gates are a fixed buffer. Parameters keep the network's dtype.
"""


from cvxnn._optional import optional_import
from cvxnn.core.network import TwoLayerNetwork


def _torch():
    return optional_import("torch", "exporting to PyTorch", "torch")


def _network_of(obj):
    """The TwoLayerNetwork behind a network, Solution or fitted estimator."""
    if isinstance(obj, TwoLayerNetwork):
        return obj
    network = getattr(obj, "network_", None) or getattr(obj, "network", None)
    if not isinstance(network, TwoLayerNetwork):
        raise TypeError(
            f"network: expected a TwoLayerNetwork, a Solution or a fitted cvxnn "
            f"estimator, got {type(obj).__name__}."
        )
    return network


def _linear(torch, W, bias, dtype):
    """nn.Linear holding ``W`` (out, d); its last column is the bias if ``bias``."""
    W = torch.as_tensor(W, dtype=dtype)
    weight, b = (W[:, :-1], W[:, -1]) if bias else (W, None)
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias:
            layer.bias.copy_(b)
    return layer


def to_torch(network):
    """A ``torch.nn.Module`` with the predictions of ``network``.

    Parameters
    ----------
    network : TwoLayerNetwork, Solution or fitted estimator

    Returns
    -------
    torch.nn.Module
        ``module(x)`` maps a (batch, n_features) tensor to (batch, n_outputs),
        equal to ``network.predict(x)`` up to rounding. Attributes: ``hidden``
        (first layer, ``nn.Linear``), ``output`` (``nn.Linear``, with the
        network's ``b2`` as its bias where it has one),
        ``gates`` and ``gate_bias`` buffers (gated networks only).
    """
    net = _network_of(network)
    torch = _torch()
    dtype = torch.float64 if net.W1.dtype.itemsize == 8 else torch.float32

    class TwoLayerReLU(torch.nn.Module):
        """Two-layer (gated) ReLU network exported from cvxnn."""

        def __init__(self):
            super().__init__()
            self.gated = net.gates is not None
            self.hidden = _linear(torch, net.W1, net.bias, dtype)
            self.output = torch.nn.Linear(net.W2.shape[1], net.W2.shape[0],
                                          bias=net.b2 is not None, dtype=dtype)
            with torch.no_grad():
                self.output.weight.copy_(torch.as_tensor(net.W2, dtype=dtype))
                if net.b2 is not None:
                    self.output.bias.copy_(torch.as_tensor(net.b2, dtype=dtype))
            if self.gated:
                gate = _linear(torch, net.gates.T, net.bias, dtype)
                self.register_buffer("gates", gate.weight.detach().clone())
                self.register_buffer("gate_bias", None if gate.bias is None
                                     else gate.bias.detach().clone())

        def forward(self, x):
            z = self.hidden(x)
            if self.gated:
                g = torch.nn.functional.linear(x, self.gates, self.gate_bias)
                return self.output((g > 0).to(z.dtype) * z)
            return self.output(torch.relu(z))

    return TwoLayerReLU()
