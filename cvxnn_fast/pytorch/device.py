"""Devices and dtypes of the PyTorch backend; the one place torch is imported.

PyTorch is optional (``pip install "cvxnn[torch]"``): :func:`import_torch`
imports it on first use and says how to install it when it is missing.
"""

import contextlib

import numpy as np

from cvxnn.core.validation import check_float_dtype

INSTALL_HINT = ('install PyTorch: pip install "cvxnn[torch]" (see the README for '
                "CPU-only and CUDA builds)")
DEVICE_TYPES = ("cpu", "cuda")


def import_torch():
    """The ``torch`` module, or ImportError saying how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"device: the PyTorch backend needs torch ({exc}); "
                          f"{INSTALL_HINT}.") from exc
    return torch


def torch_available():
    """Whether ``import torch`` works (without importing it twice)."""
    try:
        import_torch()
    except ImportError:
        return False
    return True


def is_torch_device(device):
    """True for a ``torch.device`` (tested without importing torch)."""
    return type(device).__name__ == "device" and type(device).__module__ == "torch"


def resolve_device(device):
    """A ``torch.device`` from ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a
    ``torch.device``; ValueError naming the device when it is malformed, of
    another type, or a GPU this machine does not have."""
    torch = import_torch()
    if isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"device: {device!r} is not a device string PyTorch understands "
                f"({exc}); use 'cpu', 'cuda' or 'cuda:<index>'.") from None
    elif isinstance(device, torch.device):
        dev = device
    else:
        raise TypeError(f"device: expected None, a string such as 'cuda' or a "
                        f"torch.device, got {device!r}.")
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"device: {device!r} is a {dev.type!r} device; the PyTorch "
                         "backend runs on 'cpu' and 'cuda' devices.")
    if dev.type == "cuda":
        dev = _cuda_device(torch, dev, device)
    return dev


def _cuda_device(torch, dev, given):
    if not torch.cuda.is_available():
        raise ValueError(
            f"device: {given!r} asks for a CUDA GPU, but this PyTorch "
            f"({torch.__version__}) sees none (a CPU-only build, or no driver); "
            "use device='cpu' or install a CUDA build of PyTorch.")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= count:
        raise ValueError(f"device: {given!r} names GPU {index}, but this machine "
                         f"has {count} (cuda:0 to cuda:{count - 1}).")
    return torch.device("cuda", index)


def working_dtype(problem_dtype, device, dtype=None):
    """The NumPy dtype a solve on ``device`` runs in.

    ``dtype`` (None, "float32", "float64" or a NumPy/torch float dtype) when
    given; else float32 on a GPU and the problem's dtype on the CPU.
    """
    if dtype is None:
        return np.dtype(np.float32 if device.type == "cuda" else problem_dtype)
    return check_float_dtype(dtype)


def torch_dtype(dtype):
    """The torch dtype of a NumPy float dtype."""
    torch = import_torch()
    return torch.float32 if np.dtype(dtype) == np.float32 else torch.float64


@contextlib.contextmanager
def cpu_threads(device, flops, single_thread_flops):
    """One intra-op thread for a CPU solve whose products cost under
    ``single_thread_flops`` (as the compiled backend limits BLAS): handing
    small products to a thread pool costs more than it saves, and on a
    loaded machine far more (a 240-sample cross-entropy solve took 66 s at
    two threads with the machine's load at 11, 0.7 s at one)."""
    torch = import_torch()
    if device.type != "cpu" or flops >= single_thread_flops:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
