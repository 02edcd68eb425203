"""Input validation at the boundary of the library.

Every public entry point checks its arguments here, once, before any work;
kernels and solvers downstream trust what they receive. Each error names the
argument and says what was wrong and what is accepted.
"""

import numbers
import re

import numpy as np

FLOAT_DTYPES = (np.float64, np.float32)
MIN_SAMPLES = 2  # rows a problem needs


def check_choice(value, name, choices):
    """Return ``value`` if it is one of ``choices`` (strings or None), else raise."""
    if not (value is None or isinstance(value, str)) or value not in choices:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {shown}.")
    return value


def is_tensor(A):
    """True for a PyTorch tensor (duck typing: torch is never imported here)."""
    return type(A).__module__.split(".")[0] == "torch" and hasattr(A, "detach")


def host_array(A):
    """A PyTorch tensor (on any device) as a NumPy array; anything else as is.

    Tested by duck typing, so torch is never imported here: problems can be
    built from tensors, converted once at this boundary.
    """
    if is_tensor(A):
        A = A.detach().cpu()
        # NumPy has no bfloat16: as other non-float32/64 input, float64
        return (A.double() if str(A.dtype) == "torch.bfloat16" else A).numpy()
    return A


def _reject_unsupported_container(A, name):
    if hasattr(A, "tocsr") and hasattr(A, "nnz"):
        raise TypeError(
            f"{name}: sparse matrices are not supported (the patterns make the "
            f"problem dense); pass {name}.toarray() instead."
        )
    if isinstance(A, np.ma.MaskedArray) and np.ma.is_masked(A):
        raise TypeError(
            f"{name}: masked arrays with masked entries are not supported; fill "
            "or drop the masked entries first."
        )


def as_float_array(A, name, dtype=None):
    """Convert ``A`` to a float32/float64 ndarray, rejecting what cannot be one.

    Integer and boolean input becomes float64; float32 and float64 are kept
    unless ``dtype`` is given.
    """
    A = host_array(A)
    _reject_unsupported_container(A, name)
    try:
        arr = np.asarray(A)
    except Exception as exc:  # ragged lists, exotic objects
        raise TypeError(
            f"{name}: could not be read as a numeric array ({exc})."
        ) from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex values are not supported.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected a numeric array, got dtype {arr.dtype} "
            "(strings or objects?)."
        )
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.float64
    # np.asarray, not np.ascontiguousarray, which turns 0-d input into 1-d.
    with np.errstate(over="ignore"):
        out = np.asarray(arr, dtype=dtype, order="C")
    if out.dtype.itemsize < arr.dtype.itemsize and arr.dtype.kind == "f" and \
            np.isinf(out).any() and not np.isinf(arr[np.isinf(out)]).all():
        raise ValueError(
            f"{name}: values up to {np.abs(arr[np.isfinite(arr)]).max():.3g} do "
            f"not fit in {np.dtype(dtype)}, the dtype of the data they go with "
            f"(largest {np.finfo(dtype).max:.3g}); rescale them or use float64.")
    return out


def check_finite(arr, name):
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{name}: contains {bad} values; all entries must be finite.")
    return arr


def check_X(X, name="X"):
    """A 2-D finite float array with at least two samples and one feature."""
    arr = as_float_array(X, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array (n_samples, n_features), got "
            f"{arr.ndim}-D with shape {arr.shape}."
        )
    n, d = arr.shape
    if n < MIN_SAMPLES:
        raise ValueError(f"{name}: needs at least {MIN_SAMPLES} samples, got {n}.")
    if d < 1:
        raise ValueError(f"{name}: needs at least 1 feature, got {d}.")
    return check_finite(arr, name)


def check_y_shape(y, n_samples, name="y"):
    """Return y as a 2-D array (n_samples, n_columns), without dtype change."""
    y = host_array(y)
    _reject_unsupported_container(y, name)
    try:
        arr = np.asarray(y)
    except Exception as exc:  # ragged lists, exotic objects
        raise TypeError(f"{name}: could not be read as an array ({exc}).") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex values are not supported.")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected shape (n_samples,) or (n_samples, n_outputs), got "
            f"shape {arr.shape}."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name}: has {arr.shape[0]} samples but X has {n_samples}; they must "
            "match."
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name}: has no output columns.")
    return arr


def check_lam(lam):
    """A finite real number >= 0."""
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, numbers.Real):
        raise TypeError(f"lam: expected a real number >= 0, got {lam!r}.")
    lam = float(lam)
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam: must be a finite number >= 0, got {lam!r}.")
    return lam


DEVICE_PATTERN = re.compile(r"(cpu|cuda)(:[0-9]+)?")  # what the backend runs on


def check_device_name(device, name="device"):
    """``device`` as the PyTorch backend takes it (None, ``"cpu"``,
    ``"cuda"``, ``"cuda:<index>"`` or a ``torch.device``), checked by its
    form only: whether this machine has that GPU is the backend's to say."""
    if device is None or type(device).__module__ == "torch":
        return device
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"{name}: expected None, 'cpu', 'cuda', 'cuda:<index>' or "
                         f"a torch.device, got {device!r}.")
    return device


def check_float_dtype(dtype, name="dtype"):
    """The NumPy dtype float32 or float64 named by ``dtype``: "float32",
    np.float32, np.dtype(...), torch.float64 (by its name; torch is not
    imported)."""
    try:
        found = np.dtype(dtype).name
    except TypeError:  # torch.float32, or not a dtype at all
        found = str(dtype).replace("torch.", "")
    if found not in ("float32", "float64"):
        raise ValueError(f"{name}: expected None, 'float32' or 'float64', got "
                         f"{dtype!r}.")
    return np.dtype(found)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}.")
    return bool(value)


def check_callback(callback, name="callback"):
    if callback is not None and not callable(callback):
        raise TypeError(f"{name}: expected a callable or None, got {callback!r}.")
    return callback


def check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name}: must be >= 1, got {value!r}.")
    return int(value)


def check_real(value, name, what, valid, finite=True):
    """A float (not a bool) that is finite (where ``finite``) and passes
    ``valid``; else TypeError/ValueError saying it must be ``what``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {what}, got {value!r}.")
    value = float(value)
    if not ((np.isfinite(value) or not finite) and valid(value)):
        raise ValueError(f"{name}: expected {what}, got {value!r}.")
    return value


def check_positive_float(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a positive number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}.")
    return value


def check_random_state(random_state):
    """A numpy Generator from None, an int seed or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, numbers.Integral)
        and not isinstance(random_state, bool)
    ):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state: must be >= 0, got {random_state}.")
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state: expected None, an int seed or a numpy Generator, got "
        f"{random_state!r}."
    )


def check_weights(A, name, shape, dtype):
    """A finite array of exactly ``shape``, cast to ``dtype``, C-contiguous."""
    arr = as_float_array(A, name, dtype=dtype)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}.")
    return check_finite(arr, name)


def check_options(options, allowed, where):
    """Raise TypeError naming the first keyword not in ``allowed``."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        shown = ", ".join(sorted(allowed)) or "(none)"
        raise TypeError(
            f"{where}: unknown option {unknown[0]!r}; accepted options: {shown}."
        )
